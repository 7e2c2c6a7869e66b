/**
 * The whole library as the verifier and CLI use it: one policy file format, every fixture commit gets its manifest
 * verdict offline, and policy mistakes are named.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { compilePolicy, parsePolicyFile, type CompiledPolicy } from './policy.js';
import { createBundleTrust, type BundleTrust } from '@gitops-gate/bundle-verify';
import { verifyCommit } from '@gitops-gate/commit-verify';
import { evaluatePolicies, policiesFor } from './commit-evaluation.js';

const FIX = new URL('../../../../../shared/fixtures/git-commits/', import.meta.url).pathname;
type Entry = {
  kind: string;
  valid: boolean | string;
  san?: string;
  issuer?: string;
  logIndex?: string;
  integratedTime?: string;
  fingerprint?: string;
};
const manifest = JSON.parse(readFileSync(join(FIX, 'manifest.json'), 'utf8')) as Record<string, Entry>;
const raw = (sha: string) => readFileSync(join(FIX, manifest[sha]!.kind, `${sha}.commit`));
const WEB_FLOW_FPR = '5DE3E0509C47EA3CF04A42D34AEE18F83AFDEB23';
const webFlowKey = readFileSync(join(FIX, 'pgp/github-web-flow-2017.asc'), 'utf8');
const allowedSigners = readFileSync(join(FIX, 'ssh/allowed_signers'), 'utf8');

function policyDoc(commits: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'gitops-gate.io/v1alpha1',
    kind: 'GatePolicy',
    metadata: { name: 'fixtures' },
    spec: { repository: 'https://github.com/sigstore/gitsign', branches: ['main'], commits, ...extra },
  };
}

let policy: CompiledPolicy;
let trust: BundleTrust;

beforeAll(async () => {
  trust = createBundleTrust();
  const identities = [
    ...new Set(
      Object.values(manifest)
        .filter((e) => e.san)
        .map((e) => `${e.san}|${e.issuer}`),
    ),
  ].map((s) => {
    const [identity, issuer] = s.split('|');
    return { identity, issuer };
  });
  policy = await compilePolicy(
    policyDoc({ gitsign: identities, ssh: { allowedSigners }, gpg: [{ fingerprint: WEB_FLOW_FPR, publicKey: webFlowKey }] }),
  );
});

describe('every fixture commit gets its manifest verdict, offline', () => {
  const shas = Object.keys(manifest);
  it('covers all kinds', () => {
    expect(shas.length).toBe(65);
  });
  it.each(shas)('%s', async (sha) => {
    const e = manifest[sha]!;
    const v = await verifyCommit(raw(sha), policy.commit, { expectedSha: sha, env: { trust } });
    if (e.valid === true) {
      expect(v, JSON.stringify(v)).toMatchObject({ ok: true });
      if (!v.ok) return;
      if (e.kind === 'gitsign-offline') {
        expect(v.signer).toMatchObject({ identity: e.san, issuer: e.issuer, logIndex: e.logIndex });
        expect(new Date(v.signer.signedAt!).toISOString()).toBe(e.integratedTime);
      }
      if (e.kind === 'pgp') expect(v.signer.keyFingerprint?.toUpperCase()).toBe(e.fingerprint);
      if (e.kind === 'ssh') expect(v.signer.keyFingerprint).toBe(e.fingerprint);
    } else {
      expect(v.ok).toBe(false);
      if (e.valid === 'unsigned') expect(v).toMatchObject({ code: 'UNSIGNED' });
      if (e.valid === 'unknown-key') expect(v).toMatchObject({ code: 'GPG_UNKNOWN_KEY' });
      // Signed by identities outside this policy; either rejection is right (the gitsign suite checks the lookup code).
      if (e.valid === 'needs-online-rekor')
        expect(['GITSIGN_NEEDS_ONLINE_LOOKUP', 'GITSIGN_IDENTITY_MISMATCH']).toContain(v.ok ? '' : v.code);
    }
  });
});

describe('policies', () => {
  const sshSha = Object.keys(manifest).find((s) => manifest[s]!.kind === 'ssh')!;
  const pgpSha = Object.keys(manifest).find((s) => manifest[s]!.kind === 'pgp' && manifest[s]!.valid === true)!;

  it('a method the policy does not list is rejected even when the signature is good', async () => {
    const onlySsh = await compilePolicy(policyDoc({ ssh: { allowedSigners } }));
    const v = await verifyCommit(raw(pgpSha), onlySsh.commit, { expectedSha: pgpSha });
    expect(v).toMatchObject({ ok: false, code: 'METHOD_NOT_ALLOWED' });
  });

  it('GPG keys: revoked verify nothing; a retired key verifies only inside its window', async () => {
    const revoked = await compilePolicy(policyDoc({ gpg: [{ fingerprint: WEB_FLOW_FPR, publicKey: webFlowKey, revoked: true }] }));
    expect(await verifyCommit(raw(pgpSha), revoked.commit)).toMatchObject({ ok: false, code: 'GPG_SIGNER_NOT_ALLOWED' });
    const retiredLongAgo = await compilePolicy(
      policyDoc({ gpg: [{ fingerprint: WEB_FLOW_FPR, publicKey: webFlowKey, validUntil: '2017-01-01T00:00:00Z' }] }),
    );
    expect(await verifyCommit(raw(pgpSha), retiredLongAgo.commit)).toMatchObject({ ok: false, code: 'GPG_KEY_OUTSIDE_POLICY_WINDOW' });
    const retiredLater = await compilePolicy(
      policyDoc({ gpg: [{ fingerprint: WEB_FLOW_FPR, publicKey: webFlowKey, validUntil: '2100-01-01T00:00:00Z' }] }),
    );
    expect(await verifyCommit(raw(pgpSha), retiredLater.commit)).toMatchObject({ ok: true });
  });

  it('default deny: no governing policy rejects', async () => {
    const out = await evaluatePolicies(raw(sshSha), [], { expectedSha: sshSha });
    expect(out.verdict).toMatchObject({ ok: false, code: 'NO_POLICY' });
  });

  it('every Enforce policy must pass; Audit policies are reported only', async () => {
    const good = await compilePolicy({ ...policyDoc({ ssh: { allowedSigners } }), metadata: { name: 'good' } });
    const strict = await compilePolicy({
      ...policyDoc({ gitsign: [{ identity: 'nobody@example.com', issuer: 'https://accounts.google.com' }] }),
      metadata: { name: 'strict' },
    });
    const audit = await compilePolicy({
      ...policyDoc({ gitsign: [{ identity: 'nobody@example.com', issuer: 'https://accounts.google.com' }] }, { mode: 'Audit' }),
      metadata: { name: 'audit' },
    });
    expect((await evaluatePolicies(raw(sshSha), [good, strict])).verdict).toMatchObject({ ok: false, policy: 'strict' });
    const withAudit = await evaluatePolicies(raw(sshSha), [good, audit]);
    expect(withAudit.verdict).toMatchObject({ ok: true, policy: 'good' });
    expect(withAudit.results.find((r) => r.policy === 'audit')?.verdict.ok).toBe(false);
  });

  it('selects policies by normalised repository and branch globs', async () => {
    const p = await compilePolicy(policyDoc({ ssh: { allowedSigners } }, { branches: ['main', 'release/*'] }));
    const norm = (u: string) => u.toLowerCase().replace(/\.git$/, '');
    expect(policiesFor([p], 'https://github.com/sigstore/gitsign.git', 'release/1.2', norm)).toHaveLength(1);
    expect(policiesFor([p], 'https://github.com/sigstore/gitsign.git', 'release/1.2/x', norm)).toHaveLength(0);
    expect(policiesFor([p], 'https://github.com/sigstore/gitsign.git', 'dev', norm)).toHaveLength(0);
    expect(policiesFor([p], 'https://github.com/other/gitsign', 'main', norm)).toHaveLength(0);
  });

  it.each([
    [{ gitsign: [{ identity: 'a@b', identityRegExp: '.*', issuer: 'https://x' }] }, /exactly one of identity and identityRegExp/],
    [{ gitsign: [{ identityRegExp: '(', issuer: 'https://x' }] }, /not a valid regular expression/],
    [{ gitsign: [{ identity: 'a@b', issuer: 'not a url' }] }, /issuer/],
    [{}, /at least one of gitsign, ssh or gpg/],
    [{ ssh: { allowedSigners: 'a@b ssh-ed25519 !!!' } }, /allowedSigners.*:1:/],
    [{ gpg: [{ fingerprint: 'abc', publicKey: webFlowKey }] }, /fingerprint/],
    [{ gpg: [{ fingerprint: 'A'.repeat(40), publicKey: webFlowKey }] }, /does not contain key/],
    [{ ssh: { allowedSigners }, requiredSigners: 2 }, /only 1 is supported/],
    [{ ssh: { allowedSigners }, typo: true }, /typo|Unrecognized/],
  ])('rejects an invalid policy naming the problem (%#)', async (commits, message) => {
    await expect(compilePolicy(policyDoc(commits as Record<string, unknown>))).rejects.toThrow(message);
  });

  it('reads YAML with several documents and JSON lists; rejects duplicate names', async () => {
    const yaml = `apiVersion: gitops-gate.io/v1alpha1
kind: GatePolicy
metadata: {name: a}
spec:
  repository: https://github.com/org/app
  branches: [main]
  commits:
    gitsign:
      - identity: alice@example.com
        issuer: https://accounts.google.com
---
apiVersion: gitops-gate.io/v1alpha1
kind: GatePolicy
metadata: {name: b}
spec:
  mode: Audit
  repository: https://github.com/org/app
  branches: ["*"]
  commits:
    gitsign: [{identityRegExp: "^https://github.com/org/.*$", issuer: "https://token.actions.githubusercontent.com"}]
`;
    const ps = await parsePolicyFile(yaml);
    expect(ps.map((p) => [p.name, p.mode])).toEqual([
      ['a', 'Enforce'],
      ['b', 'Audit'],
    ]);
    const json = JSON.stringify(
      [ps[0]!.spec].map((spec) => ({ apiVersion: 'gitops-gate.io/v1alpha1', kind: 'GatePolicy', metadata: { name: 'j' }, spec })),
    );
    expect(await parsePolicyFile(json)).toHaveLength(1);
    await expect(parsePolicyFile(`${yaml}---\n${yaml.split('---')[0]}`)).rejects.toThrow(/two policies named a/);
    await expect(parsePolicyFile('a: [')).rejects.toThrow(/not valid YAML/);
  });
});
