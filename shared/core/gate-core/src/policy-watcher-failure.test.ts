/** How the watcher reads a failed list/watch: a missing CRD, lost RBAC, or a transient error. */
import { describe, expect, it } from 'vitest';
import { POLICY_KINDS } from '@gitops-gate/policy';
import { describeWatchFailure } from './policy-watch.js';

const [gatePolicy] = POLICY_KINDS;
if (!gatePolicy) throw new Error('no GatePolicy kind');

describe('describeWatchFailure', () => {
  it('a 404 before the first list means the CRD is missing; after it, the objects stay in force', () => {
    expect(describeWatchFailure(gatePolicy, { code: 404 }, false)).toMatchObject({ missing: true });
    expect(describeWatchFailure(gatePolicy, { code: 404 }, true)).toMatchObject({
      missing: false,
      problem: expect.stringContaining('keeping'),
    });
    expect(describeWatchFailure(gatePolicy, { code: 403 }, false).problem).toContain('ClusterRoleBinding');
  });
});
