// Bounded memo tables keyed by exact bytes. Sigstore verification sees the same few certificates over and over (one
// Fulcio intermediate, the same leaf in every retry of one commit), so parsing them and checking a certificate's
// signature under its issuer are remembered — only successes, only by the exact DER of both sides, so a changed byte
// is a miss and a failure is always recomputed. Validity-time checks are not memoised: they depend on the call.
import type { KeyObject } from 'node:crypto';
import { publicKeyFromSpki, verifyWithAlgOid } from './keys.js';
import { parseCertificate } from './x509.js';
import type { Certificate } from './x509.js';

/**
 * A Map with insertion-order eviction once `limit` entries are held; `get` refreshes an entry (LRU). The project's
 * one bounded memo table (also the gitsign Rekor client's lookup cache).
 */
export class BoundedCache<V, K = string> {
  private readonly map = new Map<K, V>();
  constructor(private readonly limit: number) {}

  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: K, v: V): void {
    this.map.delete(key);
    this.map.set(key, v);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as K);
  }

  get size(): number {
    return this.map.size;
  }

  clear(): void {
    this.map.clear();
  }
}

function bytesKey(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
}

export interface ParsedCertificate {
  readonly cert: Certificate;
  /** The certificate's public key, imported on first use (throws KEY_INVALID for an unusable key). */
  readonly key: KeyObject;
}

const parsed = new BoundedCache<ParsedCertificate>(512);

/**
 * parseCertificate plus its public key, remembered by the exact DER. A certificate that does not parse throws (and is
 * not remembered). The returned objects are shared: treat them as read-only.
 */
export function parseCertificateCached(der: Uint8Array): ParsedCertificate {
  const k = bytesKey(der);
  const hit = parsed.get(k);
  if (hit !== undefined) return hit;
  // Copy: the caller's buffer may be a view into a larger, reused buffer.
  const own = Buffer.from(der);
  const cert = parseCertificate(own);
  let key: KeyObject | undefined;
  const out: ParsedCertificate = {
    cert,
    get key(): KeyObject {
      key ??= publicKeyFromSpki(cert.spki, 'signing certificate key');
      return key;
    },
  };
  parsed.set(k, out);
  return out;
}

const verifiedSignatures = new BoundedCache<true>(1024);

/**
 * Whether `issuer` (with `issuerKey`, its own public key) signed `child`. Only a verified signature is remembered, by
 * the exact DER of both certificates; a failure is recomputed every time and never stored.
 */
export function certSignedBy(child: Certificate, issuer: Certificate, issuerKey: KeyObject): boolean {
  const k = `${bytesKey(child.der)}\u0000${bytesKey(issuer.der)}`;
  if (verifiedSignatures.get(k) === true) return true;
  const ok = verifyWithAlgOid(issuerKey, child.sigAlgOid, child.tbs, child.signature);
  if (ok) verifiedSignatures.set(k, true);
  return ok;
}

/** Fully verified SCT sets (count of SCTs) by trust id + exact leaf and issuer DER; see sct.ts. */
export const verifiedSctSets = new BoundedCache<number>(1024);

// A trusted root is identified by object: an SCT verified under one root says nothing under another.
const trustIds = new WeakMap<object, number>();
let nextTrustId = 1;
export function trustId(trust: object): number {
  let id = trustIds.get(trust);
  if (id === undefined) {
    id = nextTrustId++;
    trustIds.set(trust, id);
  }
  return id;
}

/** Forget everything remembered (tests; benchmarks of the cold path). */
export function clearMemo(): void {
  parsed.clear();
  verifiedSignatures.clear();
  verifiedSctSets.clear();
}
