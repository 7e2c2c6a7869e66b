/** The pure half of the policy watcher: what is in force, from listed objects and what the last run remembered. */
import { describe, expect, it } from 'vitest';
import { evaluatePolicyObjects, POLICY_KINDS, type PolicyLogger, type PolicyMemory, type PolicyObject } from './policy-objects.js';

const logger: PolicyLogger = { warn: () => undefined };
const [gatePolicy] = POLICY_KINDS;
if (!gatePolicy) throw new Error('no GatePolicy kind');
const gitsign = { gitsign: [{ identity: 'alice@example.com', issuer: 'https://accounts.google.com' }] };
const broken = { gitsign: [{ identityRegExp: '^($', issuer: 'https://accounts.google.com' }] };

function obj(name: string, generation: number, commits: unknown, mode = 'Enforce'): PolicyObject {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name, namespace: 'team', uid: `uid-${name}`, generation },
    spec: { mode, repository: 'https://github.com/org/app', branches: ['main'], commits },
  };
}
const fresh = (): PolicyMemory => ({ lastValid: new Map(), previous: new Map() });

describe('evaluatePolicyObjects', () => {
  it('a valid object is in force at its current generation', async () => {
    const r = await evaluatePolicyObjects([{ kind: gatePolicy, objects: [obj('p', 1, gitsign)] }], fresh(), logger);
    expect(r.inForce.map((p) => p.compiled.generation)).toEqual([1]);
    expect(r.outcomes[0]).toMatchObject({ ok: true, reason: 'Valid' });
  });

  it('attacker: breaking a valid Enforce policy keeps its last valid generation in force', async () => {
    const memory = fresh();
    await evaluatePolicyObjects([{ kind: gatePolicy, objects: [obj('p', 1, gitsign)] }], memory, logger);
    const r = await evaluatePolicyObjects([{ kind: gatePolicy, objects: [obj('p', 2, broken)] }], memory, logger);
    expect(r.inForce.map((p) => p.compiled.generation)).toEqual([1]);
    expect(r.broken).toEqual([]);
    expect(r.outcomes[0]).toMatchObject({ ok: false, reason: 'InvalidLastValidInForce' });
  });

  it('attacker: the previous snapshot counts as last valid after a restart', async () => {
    const memory = fresh();
    memory.previous.set('uid-p', obj('p', 1, gitsign));
    const r = await evaluatePolicyObjects([{ kind: gatePolicy, objects: [obj('p', 2, broken)] }], memory, logger);
    expect(r.inForce.map((p) => p.compiled.generation)).toEqual([1]);
  });

  it('a never-valid Enforce policy refuses what it selects; a never-valid Audit policy is not applied', async () => {
    const r = await evaluatePolicyObjects(
      [{ kind: gatePolicy, objects: [obj('e', 1, broken), obj('a', 1, broken, 'Audit')] }],
      fresh(),
      logger,
    );
    expect(r.inForce).toEqual([]);
    expect(r.broken.map((b) => b.name)).toEqual(['team/e']);
    expect(r.outcomes.map((o) => o.reason)).toEqual(['InvalidRefusing', 'Invalid']);
  });

  it('forgets objects no longer listed', async () => {
    const memory = fresh();
    await evaluatePolicyObjects([{ kind: gatePolicy, objects: [obj('p', 1, gitsign)] }], memory, logger);
    await evaluatePolicyObjects([{ kind: gatePolicy, objects: [] }], memory, logger);
    expect(memory.lastValid.size).toBe(0);
  });
});
