// Trust material, built once from a trusted_root.json object and reused for every verification: keys are imported,
// certificates parsed, and the unchanging CA-internal signature checks done (and remembered by exact DER bytes).
import { createRequire } from 'node:module';
import type { KeyObject } from 'node:crypto';
import { decodeBase64, isObject } from './encoding.js';
import { VerifyError } from './errors.js';
import { familyOf, keyKind, publicKeyFromPkcs1, publicKeyFromSpki } from './keys.js';
import { certSignedBy } from './memo.js';
import { KU_KEY_CERT_SIGN, OID, isSelfIssued, parseCertificate } from './x509.js';
import type { Certificate } from './x509.js';

export interface TimeRange {
  /** Inclusive bounds in milliseconds since the epoch (TimeRange is a closed interval). */
  start: number;
  end: number;
}

export interface TlogInstance extends TimeRange {
  logId: Buffer;
  /** Key id used for checkpoint key hints; the log id unless the root names a separate one. */
  checkpointKeyId: Buffer;
  baseUrl: string;
  /** host[:port] of baseUrl: the name a checkpoint signature line must carry. */
  host: string;
  key: KeyObject;
}

export interface CtLog extends TimeRange {
  logId: Buffer;
  key: KeyObject;
}

export interface CaChain extends TimeRange {
  uri: string;
  /** Issuing end first (as in trusted_root.json): certs[0] is the cert that usually issues leaves. */
  certs: Certificate[];
  keys: KeyObject[];
  /** pathOk[k]: certs[k..] form a valid CA path on their own (CA flags, key usage, names, signatures). */
  pathOk: boolean[];
}

export interface TimestampAuthority extends TimeRange {
  uri: string;
  certs: Certificate[];
  leafKey: KeyObject;
  /** Why the authority cannot be used, when it cannot. */
  unusable?: string;
}

export interface BundleTrust {
  /** The trusted_root.json object this trust was built from, as given (read-only; hashed for cache keys). */
  readonly json: object;
  readonly tlogs: readonly TlogInstance[];
  readonly ctlogs: readonly CtLog[];
  readonly certificateAuthorities: readonly CaChain[];
  readonly timestampAuthorities: readonly TimestampAuthority[];
}

const PUBLIC_GOOD_TUF = 'https://tuf-repo-cdn.sigstore.dev';

/** The public-good trusted_root.json shipped inside @sigstore/tuf's seeds.json; no network access. */
export function loadPublicGoodTrustedRoot(): object {
  const require = createRequire(import.meta.url);
  const seeds = require('@sigstore/tuf/seeds.json') as Record<string, { targets?: Record<string, string> }>;
  const encoded = seeds[PUBLIC_GOOD_TUF]?.targets?.['trusted_root.json'];
  if (typeof encoded !== 'string') throw new VerifyError('TRUSTED_ROOT_INVALID', 'seeds.json has no public-good trusted_root.json');
  return JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as object;
}

function invalid(reason: string): never {
  throw new VerifyError('TRUSTED_ROOT_INVALID', reason);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseTime(v: unknown, what: string, round: 'up' | 'down'): number {
  if (typeof v !== 'string') invalid(`${what} is not an RFC 3339 time`);
  const m = RFC3339.exec(v);
  if (m === null) invalid(`${what} is not an RFC 3339 time`);
  const whole = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]!.toUpperCase()}`);
  if (!Number.isFinite(whole)) invalid(`${what} is not a valid time`);
  const frac = m[7] === undefined ? 0 : Number(`0${m[7]}`) * 1000;
  // Sub-millisecond bounds are rounded inward so the interval never grows.
  return whole + (round === 'up' ? Math.ceil(frac) : Math.floor(frac));
}

function parseRange(v: unknown, what: string): TimeRange {
  // A missing start is a malformed root (the proto field is required); treating it as "since forever" would
  // silently widen trust. A missing end means the key is still current.
  if (!isObject(v)) invalid(`${what}.validFor is missing`);
  if (v['start'] === undefined || v['start'] === null) invalid(`${what}.validFor.start is missing`);
  const start = parseTime(v['start'], `${what}.validFor.start`, 'up');
  const end = v['end'] === undefined || v['end'] === null ? Number.MAX_SAFE_INTEGER : parseTime(v['end'], `${what}.validFor.end`, 'down');
  if (end < start) invalid(`${what}.validFor ends before it starts`);
  return { start, end };
}

function parseKeyId(v: unknown, what: string): Buffer {
  if (!isObject(v)) invalid(`${what} is missing`);
  const id = wrap(() => decodeBase64(v['keyId'], `${what}.keyId`));
  if (id.length === 0) invalid(`${what}.keyId is empty`);
  return id;
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof VerifyError && e.code !== 'TRUSTED_ROOT_INVALID') invalid(e.message);
    throw e;
  }
}

function parseLogKey(pk: unknown, what: string): { key: KeyObject; range: TimeRange } {
  if (!isObject(pk)) invalid(`${what}.publicKey is missing`);
  const der = wrap(() => decodeBase64(pk['rawBytes'], `${what}.publicKey.rawBytes`));
  const details = typeof pk['keyDetails'] === 'string' ? pk['keyDetails'] : '';
  const key = wrap(() =>
    details.startsWith('PKCS1_RSA') ? publicKeyFromPkcs1(der, `${what} key`) : publicKeyFromSpki(der, `${what} key`),
  );
  return { key, range: parseRange(pk['validFor'], `${what}.publicKey`) };
}

function hostOf(baseUrl: string, what: string): string {
  try {
    const u = new URL(baseUrl);
    if (u.host === '') invalid(`${what}.baseUrl has no host`);
    return u.host;
  } catch (e) {
    if (e instanceof VerifyError) throw e;
    return invalid(`${what}.baseUrl is not a URL`);
  }
}

// Issuer→subject signature checks between CA certificates never change: certSignedBy remembers verified pairs by
// the exact DER bytes of both certificates (a trusted root rebuilt from the same JSON costs no signature work).
function caSignedBy(child: Certificate, parent: Certificate, parentKey: KeyObject): boolean {
  return certSignedBy(child, parent, parentKey);
}

/** Name chaining plus key identifiers when both sides carry them. */
export function namesChain(child: Certificate, parent: Certificate): boolean {
  if (!Buffer.from(child.issuer).equals(parent.subject)) return false;
  if (child.authorityKeyId !== undefined && parent.subjectKeyId !== undefined) {
    return Buffer.from(child.authorityKeyId).equals(parent.subjectKeyId);
  }
  return true;
}

export function isUsableCa(cert: Certificate): boolean {
  if (cert.unknownCritical !== undefined) return false;
  if (cert.basicConstraints?.ca !== true) return false;
  if (cert.keyUsage !== undefined && !cert.keyUsage(KU_KEY_CERT_SIGN)) return false;
  return true;
}

function parseChain(v: unknown, what: string): { certs: Certificate[]; keys: KeyObject[] } {
  if (!isObject(v) || !Array.isArray(v['certificates']) || v['certificates'].length === 0) {
    invalid(`${what}.certChain has no certificates`);
  }
  const certs = (v['certificates'] as unknown[]).map((c, i) =>
    wrap(() => {
      if (!isObject(c)) invalid(`${what}.certChain.certificates[${i}] is not an object`);
      return parseCertificate(decodeBase64(c['rawBytes'], `${what} certificate`));
    }),
  );
  const keys = certs.map((c, i) => wrap(() => publicKeyFromSpki(c.spki, `${what} certificate ${i}`)));
  return { certs, keys };
}

function computePathOk(certs: Certificate[], keys: KeyObject[]): boolean[] {
  const n = certs.length;
  // linkOk[j]: certs[j] is a usable CA and, unless it is the anchor, is validly issued by certs[j+1].
  const linkOk = certs.map((c, j) => {
    if (!isUsableCa(c)) return false;
    if (j === n - 1) {
      // The anchor is trusted as configured; a self-issued anchor must still carry a valid self-signature.
      return !isSelfIssued(c) || caSignedBy(c, c, keys[j]!);
    }
    const parent = certs[j + 1]!;
    return namesChain(c, parent) && caSignedBy(c, parent, keys[j + 1]!);
  });
  const out: boolean[] = [];
  for (let k = 0; k < n; k++) {
    let ok = true;
    for (let j = k; j < n && ok; j++) {
      ok = linkOk[j]!;
      // In the path [leaf, certs[k], ...], certs[j] has (j - k) intermediates below it and above the leaf.
      const pathLen = certs[j]!.basicConstraints?.pathLen;
      if (ok && pathLen !== undefined && j - k > pathLen) ok = false;
    }
    out.push(ok);
  }
  return out;
}

const MEDIA_TYPE = /^application\/vnd\.dev\.sigstore\.trustedroot(\+json;version=0\.[12]|\.v0\.[12]\+json)$/;

export function createBundleTrust(trustedRootJson?: object): BundleTrust {
  const root: unknown = trustedRootJson ?? loadPublicGoodTrustedRoot();
  if (!isObject(root)) invalid('trusted root is not a JSON object');
  if (typeof root['mediaType'] !== 'string' || !MEDIA_TYPE.test(root['mediaType'])) {
    invalid('trusted root has an unsupported mediaType');
  }
  const arr = (name: string): unknown[] => {
    const v = root[name];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) invalid(`${name} is not an array`);
    return v;
  };

  const tlogs: TlogInstance[] = arr('tlogs').map((t, i) => {
    const what = `tlogs[${i}]`;
    if (!isObject(t)) invalid(`${what} is not an object`);
    if (typeof t['baseUrl'] !== 'string') invalid(`${what}.baseUrl is missing`);
    const { key, range } = parseLogKey(t['publicKey'], what);
    const logId = parseKeyId(t['logId'], `${what}.logId`);
    const checkpointKeyId =
      t['checkpointKeyId'] === undefined || t['checkpointKeyId'] === null
        ? logId
        : parseKeyId(t['checkpointKeyId'], `${what}.checkpointKeyId`);
    return { ...range, logId, checkpointKeyId, baseUrl: t['baseUrl'], host: hostOf(t['baseUrl'], what), key };
  });

  const ctlogs: CtLog[] = arr('ctlogs').map((t, i) => {
    const what = `ctlogs[${i}]`;
    if (!isObject(t)) invalid(`${what} is not an object`);
    const { key, range } = parseLogKey(t['publicKey'], what);
    return { ...range, logId: parseKeyId(t['logId'], `${what}.logId`), key };
  });

  const certificateAuthorities: CaChain[] = arr('certificateAuthorities').map((c, i) => {
    const what = `certificateAuthorities[${i}]`;
    if (!isObject(c)) invalid(`${what} is not an object`);
    const range = parseRange(c['validFor'], what);
    const { certs, keys } = parseChain(c['certChain'], what);
    return { ...range, uri: typeof c['uri'] === 'string' ? c['uri'] : '', certs, keys, pathOk: computePathOk(certs, keys) };
  });

  const timestampAuthorities: TimestampAuthority[] = arr('timestampAuthorities').map((c, i) => {
    const what = `timestampAuthorities[${i}]`;
    if (!isObject(c)) invalid(`${what} is not an object`);
    const range = parseRange(c['validFor'], what);
    const { certs, keys } = parseChain(c['certChain'], what);
    const tsa: TimestampAuthority = { ...range, uri: typeof c['uri'] === 'string' ? c['uri'] : '', certs, leafKey: keys[0]! };
    const unusable = tsaProblem(certs, keys);
    if (unusable !== undefined) tsa.unusable = unusable;
    return tsa;
  });

  return Object.freeze({ json: root, tlogs, ctlogs, certificateAuthorities, timestampAuthorities });
}

function tsaProblem(certs: Certificate[], keys: KeyObject[]): string | undefined {
  const leaf = certs[0]!;
  if (leaf.unknownCritical !== undefined) return `TSA certificate has unknown critical extension ${leaf.unknownCritical}`;
  if (familyOf(keys[0]!) === undefined || keyKind(keys[0]!) === 'unsupported') return 'TSA key type is not supported';
  // RFC 3161 2.3: the signing certificate must be limited to the timeStamping purpose.
  if (leaf.extKeyUsage === undefined || !leaf.extKeyUsage.includes(OID.ekuTimeStamping)) {
    return 'TSA certificate lacks the timeStamping extended key usage';
  }
  if (certs.length > 1) {
    if (!namesChain(leaf, certs[1]!) || !caSignedBy(leaf, certs[1]!, keys[1]!)) return 'TSA certificate is not issued by its chain';
    const path = computePathOk(certs.slice(1), keys.slice(1));
    if (path[0] !== true) return 'TSA certificate chain is invalid';
  }
  return undefined;
}
