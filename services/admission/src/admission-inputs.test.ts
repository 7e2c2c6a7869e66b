import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import type { Application } from '@gitops-gate/gate-core';
import { createLogger } from '@gitops-gate/telemetry';
import { createAdmissionInputs } from './admission-inputs.js';
import type { AdmissionPolicy } from './decide.js';
import type { PolicyCache } from './sources.js';

const silent = createLogger('admission-test', 'silent', new Writable({ write: (_c, _e, cb) => cb() }));
const app = (name: string, rv: string): Application => ({
  metadata: { name, namespace: 'argocd', resourceVersion: rv },
  spec: { source: { repoURL: 'https://github.com/org/app', targetRevision: 'main' } },
});

function setup() {
  // `published`: what the gate wrote; the cache takes it on refresh, as createPolicyCache does.
  const state = { revision: '', published: '', apps: [app('a', '1')], fail: false };
  const policies: PolicyCache = {
    refresh: () => (state.fail ? Promise.reject(new Error('redis down')) : ((state.revision = state.published), Promise.resolve())),
    current: () => [] as AdmissionPolicy[],
    revision: () => state.revision,
  };
  const index = { update: vi.fn() };
  const inputs = createAdmissionInputs({ policies, listApplications: () => Promise.resolve(state.apps), index, logger: silent });
  return { state, index, inputs };
}

describe('createAdmissionInputs', () => {
  it('not ready until the gate has published a snapshot (never answer from an empty policy set)', async () => {
    const { state, inputs } = setup();
    await inputs.refresh();
    expect(inputs.ready()).toBe(false);
    state.published = 'r1';
    await inputs.refresh();
    expect(inputs.ready()).toBe(true);
  });

  it('re-indexes only when the Applications or the policy revision changed', async () => {
    const { state, index, inputs } = setup();
    await inputs.refresh();
    await inputs.refresh();
    expect(index.update).toHaveBeenCalledTimes(1);
    state.apps = [app('a', '2')];
    await inputs.refresh();
    expect(index.update).toHaveBeenCalledTimes(2);
    state.published = 'r2';
    await inputs.refresh();
    expect(index.update).toHaveBeenCalledTimes(3);
    await inputs.refresh();
    expect(index.update).toHaveBeenCalledTimes(3);
  });

  it('a failed read keeps the last index and readiness; start logs it instead of throwing', async () => {
    const { state, index, inputs } = setup();
    state.published = 'r1';
    await inputs.refresh();
    state.fail = true;
    await expect(inputs.refresh()).rejects.toThrow('redis down');
    await expect(inputs.start(60_000)).resolves.toBeUndefined();
    inputs.stop();
    expect(inputs.ready()).toBe(true);
    expect(index.update).toHaveBeenCalledTimes(1);
  });
});
