/**
 * Who a Fulcio certificate names, and whether a signer policy allows it.
 *
 * Matching is exact: an identity string must equal the certificate's SAN, and a user-written regular expression is
 * always anchored at both ends, so `billy@chainguard` never matches `billy@chainguard.dev`. The issuer is compared
 * exactly. Certificates naming more than one identity are refused rather than matched on "any of them".
 */
import { X509_OID, findExtension } from '@gitops-gate/bundle-verify';
import type { Certificate } from '@gitops-gate/bundle-verify';
import { TAG, isDerError, children, decodeOid, parseDer } from './der-view.js';

/** One allowed signer: exactly one of `identity` / `identityRegExp`, and the OIDC issuer that must have vouched. */
export interface GitsignIdentityRule {
  /** Certificate SAN (email or URI), compared exactly. */
  identity?: string;
  /** A regular expression over the whole SAN; it is anchored as `^(?:RE)$`. */
  identityRegExp?: string;
  /** OIDC issuer URL, compared exactly. */
  issuer: string;
}

export interface CertificateIdentity {
  /** The single SAN value (email, URI or Fulcio username). */
  san: string;
  sanType: 'email' | 'uri' | 'username';
  issuer: string;
}

export class IdentityError extends Error {
  constructor(
    readonly code: 'GITSIGN_CERTIFICATE_INVALID' | 'GITSIGN_IDENTITY_POLICY_INVALID',
    message: string,
  ) {
    super(message);
  }
}

const OID_SAN = X509_OID.subjectAltName;
const OID_ISSUER_V2 = X509_OID.fulcioIssuerV2;
const OID_ISSUER_V1 = X509_OID.fulcioIssuerV1;
const OID_FULCIO_USERNAME = X509_OID.fulcioOtherNameSan;

/** Reads the SAN and OIDC issuer out of a Fulcio leaf certificate. */
export function certificateIdentity(cert: Certificate): CertificateIdentity {
  try {
    return { ...subjectAltName(cert), issuer: oidcIssuer(cert) };
  } catch (err) {
    if (isDerError(err)) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', `certificate identity is malformed: ${err.message}`);
    throw err;
  }
}

function extensionValue(cert: Certificate, oid: string): Buffer | undefined {
  // bundle-verify's certificate parser already refuses a certificate carrying one extension twice.
  const ext = findExtension(cert, oid);
  return ext === undefined ? undefined : Buffer.from(ext.value.buffer, ext.value.byteOffset, ext.value.byteLength);
}

function subjectAltName(cert: Certificate): Pick<CertificateIdentity, 'san' | 'sanType'> {
  const raw = extensionValue(cert, OID_SAN);
  if (!raw) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'certificate has no subject alternative name');
  const found: Array<Pick<CertificateIdentity, 'san' | 'sanType'>> = [];
  for (const name of children(parseDer(raw))) {
    switch (name.tag) {
      case 0x81: // [1] rfc822Name
        found.push({ san: ia5(name.content), sanType: 'email' });
        break;
      case 0x86: // [6] uniformResourceIdentifier
        found.push({ san: ia5(name.content), sanType: 'uri' });
        break;
      case 0xa0: {
        // [0] otherName { type-id, [0] EXPLICIT value } — Fulcio puts usernames here as UTF8String.
        const [typeId, value] = children(name);
        if (typeId && decodeOid(typeId) === OID_FULCIO_USERNAME && value) {
          const inner = children(value)[0];
          if (inner?.tag === TAG.UTF8_STRING) found.push({ san: utf8(inner.content), sanType: 'username' });
        }
        break;
      }
      default:
        break; // DNS names, IPs, …: never an identity gitsign signers have.
    }
  }
  if (found.length === 0) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'certificate SAN holds no email, URI or username');
  if (found.length > 1) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'certificate SAN names more than one identity');
  return found[0]!;
}

function oidcIssuer(cert: Certificate): string {
  const v2 = extensionValue(cert, OID_ISSUER_V2);
  if (v2) {
    // 57264.1.8 holds a DER UTF8String.
    const s = parseDer(v2);
    if (s.tag !== TAG.UTF8_STRING)
      throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'OIDC issuer extension (1.8) is not a UTF8String');
    return nonEmpty(utf8(s.content));
  }
  const v1 = extensionValue(cert, OID_ISSUER_V1);
  // 57264.1.1 (deprecated) holds the raw issuer bytes.
  if (v1) return nonEmpty(utf8(v1));
  throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'certificate carries no OIDC issuer extension');
}

function nonEmpty(s: string): string {
  if (s.length === 0) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'OIDC issuer is empty');
  return s;
}

function ia5(b: Buffer): string {
  for (const c of b)
    if (c > 0x7e || c < 0x20) throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'SAN contains non-printable characters');
  return b.toString('latin1');
}

function utf8(b: Buffer): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    throw new IdentityError('GITSIGN_CERTIFICATE_INVALID', 'certificate string is not UTF-8');
  }
}

export interface CompiledRule {
  /** The rule's fields as compiled (a rule object edited later is recompiled, never matched stale). */
  source: Readonly<GitsignIdentityRule>;
  matches(id: CertificateIdentity): boolean;
  describe: string;
}

// Compiling a policy's regular expressions once per rule object keeps hot-path verification cheap.
const compiledCache = new WeakMap<GitsignIdentityRule, CompiledRule>();

/** Validates and compiles one rule; an unusable rule is an error, never a wildcard. */
export function compileRule(rule: GitsignIdentityRule): CompiledRule {
  if (rule === null || typeof rule !== 'object')
    throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', 'identity rule is not an object');
  const { identity, identityRegExp, issuer } = rule;
  const cached = compiledCache.get(rule);
  if (cached && cached.source.identity === identity && cached.source.identityRegExp === identityRegExp && cached.source.issuer === issuer) {
    return cached;
  }
  if (typeof issuer !== 'string' || issuer.length === 0) {
    throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', 'identity rule has no issuer');
  }
  const hasIdentity = identity !== undefined;
  const hasRegExp = identityRegExp !== undefined;
  if (hasIdentity === hasRegExp) {
    throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', 'identity rule needs exactly one of identity or identityRegExp');
  }
  let compiled: CompiledRule;
  if (hasIdentity) {
    if (typeof identity !== 'string' || identity.length === 0)
      throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', 'identity rule has an empty identity');
    compiled = {
      source: { identity, issuer },
      matches: (id) => id.san === identity && id.issuer === issuer,
      describe: `identity=${identity} issuer=${issuer}`,
    };
  } else {
    if (typeof identityRegExp !== 'string' || identityRegExp.length === 0) {
      throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', 'identity rule has an empty identityRegExp');
    }
    let re: RegExp;
    try {
      // Compiled on its own first: a pattern that is complete by itself (e.g. not `a)|(?:.*`) cannot break out of the
      // anchoring group below.
      new RegExp(identityRegExp, 'u');
      // Anchored whatever the user wrote: a pattern is a whole-identity match, never a substring search.
      re = new RegExp(`^(?:${identityRegExp})$`, 'u');
    } catch (err) {
      throw new IdentityError('GITSIGN_IDENTITY_POLICY_INVALID', `identityRegExp does not compile: ${(err as Error).message}`);
    }
    compiled = {
      source: { identityRegExp, issuer },
      matches: (id) => id.issuer === issuer && re.test(id.san),
      describe: `identityRegExp=^(?:${identityRegExp})$ issuer=${issuer}`,
    };
  }
  compiledCache.set(rule, compiled);
  return compiled;
}
