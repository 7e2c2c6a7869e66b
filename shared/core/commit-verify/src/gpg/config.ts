import * as openpgp from 'openpgp';
import type { Config } from 'openpgp';

const { enums } = openpgp;

/**
 * The one openpgp.js configuration every GPG check in this package uses.
 *
 * openpgp.js reads `openpgp.config` (a mutable process-wide object) whenever no config is passed, so any other code in
 * the process could loosen our checks by mutating it. We take a private copy at load time and pin every setting that
 * decides whether a signature is accepted to its known-safe value explicitly, instead of trusting the global's current
 * state. Nothing here is loosened from the openpgp.js 6.x defaults; see quick-check.ts for how GitHub's web-flow key is
 * accepted without touching any of these.
 */
export const OPENPGP_CONFIG: Config = Object.freeze({
  ...openpgp.config,
  // SHA-1 stays acceptable only inside key certifications (old gpg keys self-sign with it); data signatures over a
  // commit must use a collision-resistant hash.
  rejectHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd]),
  rejectMessageHashAlgorithms: new Set([enums.hash.md5, enums.hash.ripemd, enums.hash.sha1]),
  rejectPublicKeyAlgorithms: new Set([enums.publicKey.elgamal, enums.publicKey.dsa]),
  rejectCurves: new Set([enums.curve.secp256k1]),
  minRSABits: 2047,
  // A key must say it may sign (key flags) before we accept a signature from it.
  allowMissingKeyFlags: false,
  // Reformatted keys would let a key's current self-signatures vouch for a signature made before they existed.
  allowInsecureVerificationWithReformattedKeys: false,
  // Unknown critical notations must make a signature fail, so none are "known".
  knownNotations: [],
  // Malformed packets are an error, never silently skipped. (Unsupported packet *versions* are skipped by openpgp.js;
  // the verifier then finds no usable signature packet and rejects.)
  ignoreMalformedPackets: false,
  enforceGrammar: true,
  // v5 (LibrePGP) entities are not part of RFC 9580; gpg 2.2 does not produce them for commit signing.
  enableParsingV5Entities: false,
});
