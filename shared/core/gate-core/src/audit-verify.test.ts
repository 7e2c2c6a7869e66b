/**
 * The audit chain without Redis: records sealed by gate-core and verified through an in-memory AuditChainSource, the
 * same port gate-store's Redis trail implements.
 */
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { sealRecord, headCheckpointNote, type AuditSigning, type DecisionInput, type DecisionRecord } from './audit.js';
import { verifyAuditChain, type AuditChainSource } from './audit-verify.js';
import { parseSigningKey, parseVerifierKey } from './checkpoint.js';

function input(app: string, sha: string): DecisionInput {
  return {
    deliveryId: 'd',
    repo: 'https://github.com/org/shop',
    branch: 'main',
    sha,
    app,
    action: 'pin',
    reason: 'verified',
    verdict: { outcome: 'verified', method: 'ssh', code: 'OK', reasons: [] },
  };
}

/** An in-memory trail: records in order, heads, signed checkpoints. */
function memoryTrail(signing?: AuditSigning) {
  const records: [string, string][] = [];
  const heads = new Map<string, string>();
  const sizes = new Map<string, number>();
  const checkpoints: Record<string, string> = {};
  const add = (rec: DecisionRecord) => {
    records.push([`${records.length + 1}-0`, JSON.stringify(rec)]);
    heads.set(rec.app, rec.hash);
    const size = (sizes.get(rec.app) ?? 0) + 1;
    sizes.set(rec.app, size);
    if (signing) checkpoints[rec.app] = headCheckpointNote(signing, rec, size);
  };
  const source: AuditChainSource = {
    checkpoints: async () => ({ ...checkpoints }),
    checkpoint: async (app) => checkpoints[app] ?? null,
    bases: async () => ({}),
    head: async (app) => heads.get(app) ?? null,
    async *records() {
      yield* records;
    },
  };
  return {
    records,
    heads,
    add,
    source,
    record: (app: string, sha: string) => add(sealRecord(input(app, sha), heads.get(app) ?? null, new Date())),
  };
}

describe('audit chain verification (pure, over a port)', () => {
  it('a sealed chain verifies; each record follows the previous one of its Application', async () => {
    const t = memoryTrail();
    t.record('argocd/shop', 'a'.repeat(40));
    t.record('argocd/cart', 'b'.repeat(40));
    t.record('argocd/shop', 'c'.repeat(40));
    expect(await verifyAuditChain(t.source)).toEqual({ ok: true, checked: 3, problems: [] });
    expect(await verifyAuditChain(t.source, 'argocd/shop')).toMatchObject({ ok: true, checked: 2 });
  });

  it('attacker: an edited record, a deleted middle record and a deleted newest record are each reported', async () => {
    const edited = memoryTrail();
    edited.record('argocd/shop', 'a'.repeat(40));
    const [id, json] = edited.records[0]!;
    edited.records[0] = [id, json.replace('"action":"pin"', '"action":"refuse"')];
    expect((await verifyAuditChain(edited.source)).problems.join('\n')).toMatch(/was modified/);

    const middle = memoryTrail();
    for (const c of ['a', 'b', 'c']) middle.record('argocd/shop', c.repeat(40));
    middle.records.splice(1, 1);
    expect((await verifyAuditChain(middle.source)).problems.join('\n')).toMatch(/does not follow the previous record/);

    const newest = memoryTrail();
    for (const c of ['a', 'b']) newest.record('argocd/shop', c.repeat(40));
    newest.records.pop();
    expect((await verifyAuditChain(newest.source)).problems.join('\n')).toMatch(/newest record is missing/);
  });

  it('attacker: a re-hashed rewrite verifies as a chain but not against the signed checkpoint', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const signer = parseSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 'test key');
    const verifier = parseVerifierKey(publicKey.export({ type: 'spki', format: 'pem' }).toString(), 'test key');
    const t = memoryTrail({ signer, cluster: 'test' });
    t.record('argocd/shop', 'a'.repeat(40));
    expect(await verifyAuditChain(t.source, undefined, { verifiers: [verifier] })).toMatchObject({ ok: true, checkpoints: 1 });
    // A Redis writer replaces the record by a re-hashed one (and its head) without the key.
    const forged = sealRecord({ ...input('argocd/shop', 'f'.repeat(40)) }, null, new Date());
    t.records[0] = ['1-0', JSON.stringify(forged)];
    t.heads.set('argocd/shop', forged.hash);
    expect((await verifyAuditChain(t.source)).ok).toBe(true);
    const signed = await verifyAuditChain(t.source, undefined, { verifiers: [verifier] });
    expect(signed.ok).toBe(false);
    expect(signed.problems.join('\n')).toMatch(/records were rewritten/);
  });
});
