import { describe, expect, it } from 'vitest';
import { POLICY_KINDS, type PolicyObject } from '@gitops-gate/policy';
import { policyStatusUpdate } from './policy-status.js';

const kind = POLICY_KINDS[0]!;
const at = () => new Date('2026-01-02T03:04:05Z');
const ready = { ok: true, reason: 'Valid', message: 'in force', selected: ['argocd/shop'] };

function policy(status?: PolicyObject['status']): PolicyObject {
  return { metadata: { name: 'p', namespace: 'argocd', generation: 3, uid: 'u' }, ...(status ? { status } : {}) };
}

describe('policy status update', () => {
  it('a new status is written with observedGeneration, the Ready condition and the selected Applications', () => {
    const u = policyStatusUpdate(kind, policy(), ready, at);
    expect(u.same).toBe(false);
    expect(u.body().status).toEqual({
      observedGeneration: 3,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Valid',
          message: 'in force',
          observedGeneration: 3,
          lastTransitionTime: '2026-01-02T03:04:05.000Z',
        },
      ],
      selectedApplications: { count: 1, names: ['argocd/shop'] },
    });
  });

  it('the status the object already carries is not written again (no write loop through the watch)', () => {
    const written = policyStatusUpdate(kind, policy(), ready, at).body().status as PolicyObject['status'];
    const again = policyStatusUpdate(kind, policy(written), ready, () => new Date(0));
    expect(again.same).toBe(true);
    // Another selection is a change; the transition time stays while Ready keeps its status.
    const moved = policyStatusUpdate(kind, policy(written), { ...ready, selected: ['argocd/cart'] }, () => new Date(0));
    expect(moved.same).toBe(false);
    expect(moved.wanted).not.toBe(again.wanted);
    expect((moved.body().status.conditions as { lastTransitionTime: string }[])[0]!.lastTransitionTime).toBe('2026-01-02T03:04:05.000Z');
  });

  it('lists at most 10 Application names, with the full count', () => {
    const selected = Array.from({ length: 12 }, (_, i) => `argocd/app-${i}`);
    const { selectedApplications } = policyStatusUpdate(kind, policy(), { ...ready, selected }, at).body().status as {
      selectedApplications: { count: number; names: string[] };
    };
    expect(selectedApplications.count).toBe(12);
    expect(selectedApplications.names).toHaveLength(10);
  });
});
