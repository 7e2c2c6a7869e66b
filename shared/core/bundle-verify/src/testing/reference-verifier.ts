// Baseline used by the differential test and the benchmark: @sigstore/verify 4.1.3 wired the way a careful
// caller must wire it (identity escaped and anchored, DSSE subject checked against the artifact). It is not
// used for verdicts in production code.
import { createHash } from 'node:crypto';
import { bundleFromJSON } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import type { TrustMaterial } from '@sigstore/verify';

export interface ReferencePolicy {
  identity?: string;
  issuer?: string;
  publicKeyPem?: string;
}

export interface ReferenceVerifier {
  verify(bundleJson: unknown, artifact: Uint8Array): { ok: boolean; reason?: string };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export function createReferenceVerifier(trustedRootJson: object, policy: ReferencePolicy): ReferenceVerifier {
  const root = TrustedRoot.fromJSON(trustedRootJson);
  let trust: TrustMaterial;
  if (policy.publicKeyPem !== undefined) {
    const der = pemToDer(policy.publicKeyPem);
    // The hint is ignored by our policy; the reference looks keys up by hint, so answer every hint with the key.
    trust = toTrustMaterial(root, () => ({
      publicKey: createPublicKeyFromDer(der),
      validFor: () => true,
    }));
  } else {
    trust = toTrustMaterial(root);
  }
  const verifier = new Verifier(trust);
  return {
    verify(bundleJson, artifact) {
      try {
        const bundle = bundleFromJSON(bundleJson);
        const entity = toSignedEntity(bundle, Buffer.from(artifact));
        if (policy.publicKeyPem !== undefined) {
          if (entity.key.$case !== 'public-key') return { ok: false, reason: 'not a key bundle' };
          verifier.verify(entity);
        } else {
          if (entity.key.$case !== 'certificate') return { ok: false, reason: 'not a certificate bundle' };
          verifier.verify(entity, {
            subjectAlternativeName: `^${escapeRegExp(policy.identity ?? '')}$`,
            extensions: { issuer: policy.issuer ?? '' },
          });
        }
        if (bundle.content.$case === 'dsseEnvelope') {
          const stmt = JSON.parse(Buffer.from(bundle.content.dsseEnvelope.payload).toString('utf8')) as {
            subject?: Array<{ digest?: Record<string, string> }>;
          };
          const hex = createHash('sha256').update(artifact).digest('hex');
          const match = (stmt.subject ?? []).some((s) => s.digest?.['sha256']?.toLowerCase() === hex);
          if (!match) return { ok: false, reason: 'subject digest mismatch' };
        }
        return { ok: true };
      } catch (e) {
        return { ok: false, reason: e instanceof Error ? e.message : String(e) };
      }
    },
  };
}

function pemToDer(pem: string): Buffer {
  const b64 = pem.replace(/-----(BEGIN|END)[^-]*-----/g, '').replace(/\s+/g, '');
  return Buffer.from(b64, 'base64');
}

import { createPublicKey } from 'node:crypto';
function createPublicKeyFromDer(der: Buffer) {
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}
