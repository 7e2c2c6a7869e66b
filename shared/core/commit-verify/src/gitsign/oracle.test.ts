/**
 * Differential test against @sigstore/verify: the log, SET, inclusion-proof, chain and SCT checks done here directly
 * must never accept what the reference Verifier, fed the same pieces as a message-signature bundle (the way gitsign's
 * sigstore-go path does it), rejects.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HashAlgorithm } from '@sigstore/protobuf-specs';
import type { Bundle } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import type { TrustMaterial } from '@sigstore/verify';
import { describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createBundleTrust } from '@gitops-gate/bundle-verify';
import { decodeSignaturePem, parseGitsignCms } from './cms.js';
import { verifyGitsignCommitSignature } from './index.js';
import { decodeTransparencyLogEntry, hashedRekordBody, sha256 } from './tlog-entry.js';

const FIXTURES = join(fileURLToPath(new URL('.', import.meta.url)), '../../../../../../shared/fixtures/git-commits');
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'manifest.json'), 'utf8')) as Record<
  string,
  { kind: string; valid: unknown; san?: string; issuer?: string }
>;
const valid = Object.entries(manifest).filter(([, m]) => m.kind === 'gitsign-offline' && m.valid === true);
const trust = createBundleTrust();
// The oracle builds its own trust model from the same trusted_root.json, with @sigstore/verify's own parser.
const referenceMaterial: TrustMaterial = toTrustMaterial(TrustedRoot.fromJSON(trust.json), {});

/** @sigstore/verify's verdict on the embedded entry; undefined when the pieces cannot even be assembled. */
function reference(material: TrustMaterial, der: Buffer): boolean | undefined {
  let bundle: Bundle;
  let artifact: Buffer;
  try {
    const cms = parseGitsignCms(der);
    const leaf = cms.certificates[0]!;
    const value = cms.unsignedAttrs.find((a) => a.oid === '1.3.6.1.4.1.57264.3.1')!.values[0]!;
    const e = decodeTransparencyLogEntry(value.content);
    artifact = cms.signedAttrsDer;
    bundle = {
      mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      verificationMaterial: {
        content: { $case: 'certificate', certificate: { rawBytes: leaf } },
        tlogEntries: [
          {
            logIndex: e.logIndex.toString(),
            logId: { keyId: e.logId },
            kindVersion: { kind: e.kind ?? '', version: e.version ?? '' },
            integratedTime: e.integratedTime.toString(),
            inclusionPromise: e.signedEntryTimestamp ? { signedEntryTimestamp: e.signedEntryTimestamp } : undefined,
            inclusionProof: e.inclusionProof
              ? {
                  logIndex: e.inclusionProof.logIndex.toString(),
                  rootHash: e.inclusionProof.rootHash,
                  treeSize: e.inclusionProof.treeSize.toString(),
                  hashes: e.inclusionProof.hashes,
                  checkpoint: { envelope: e.inclusionProof.checkpoint ?? '' },
                }
              : undefined,
            canonicalizedBody: hashedRekordBody(sha256(cms.signedAttrsDer), cms.signature, leaf),
          },
        ],
        timestampVerificationData: undefined,
      },
      content: {
        $case: 'messageSignature',
        messageSignature: { messageDigest: { algorithm: HashAlgorithm.SHA2_256, digest: sha256(artifact) }, signature: cms.signature },
      },
    };
  } catch {
    return undefined;
  }
  try {
    new Verifier(material, { tlogThreshold: 1, ctlogThreshold: material.ctlogs.length > 0 ? 1 : 0, timestampThreshold: 1 }).verify(
      toSignedEntity(bundle, artifact),
    );
    return true;
  } catch {
    return false;
  }
}

function armor(der: Buffer): string {
  return ['-----BEGIN SIGNED MESSAGE-----', ...(der.toString('base64').match(/.{1,64}/g) ?? []), '-----END SIGNED MESSAGE-----'].join('\n');
}

const identities = [...new Set(valid.map(([, m]) => `${m.san}\n${m.issuer}`))].map((s) => {
  const [identity, issuer] = s.split('\n') as [string, string];
  return { identity, issuer };
});

describe('agreement with @sigstore/verify', () => {
  it('both accept every valid fixture', async () => {
    for (const [sha] of valid) {
      const c = parseCommit(readFileSync(join(FIXTURES, 'gitsign-offline', `${sha}.commit`)));
      expect(reference(referenceMaterial, decodeSignaturePem(c.signature!)), sha).toBe(true);
      expect((await verifyGitsignCommitSignature({ payload: c.payload, signature: c.signature!, trust, identities })).ok, sha).toBe(true);
    }
  });

  it('never accepts a mutated signature the reference rejects', async () => {
    const [sha] = valid[3]!;
    const c = parseCommit(readFileSync(join(FIXTURES, 'gitsign-offline', `${sha}.commit`)));
    const der = decodeSignaturePem(c.signature!);
    let compared = 0;
    for (let i = 0; i < der.length; i += 7) {
      const mutated = Buffer.from(der);
      mutated[i]! ^= 0x10;
      const ref = reference(referenceMaterial, mutated);
      const mine = await verifyGitsignCommitSignature({ payload: c.payload, signature: armor(mutated), trust, identities });
      if (ref === undefined) continue;
      compared++;
      if (mine.ok) expect(ref, `byte ${i}`).toBe(true);
    }
    expect(compared).toBeGreaterThan(150);
  });
});
