// Single-point corruptions of a valid bundle. Each one must turn a passing bundle into a rejected one.
import type { ConformanceCase } from './conformance-cases.js';

export interface Mutation {
  name: string;
  bundle: unknown;
  artifact: Buffer;
}

type Json = Record<string, any>;

function clone(c: ConformanceCase): Json {
  return JSON.parse(c.bundleText) as Json;
}

/** Flips one bit of base64-encoded bytes at a relative position (0..1). */
export function flipB64(b64: string, at: number, bit = 0): string {
  const buf = Buffer.from(b64, 'base64');
  const i = Math.min(buf.length - 1, Math.max(0, Math.floor(buf.length * at)));
  buf[i] = buf[i]! ^ (1 << bit);
  return buf.toString('base64');
}

function entry0(b: Json): Json {
  return b['verificationMaterial']['tlogEntries'][0] as Json;
}

/** The mutation classes of the brief, at a few positions each where a position matters. */
export function mutationsOf(c: ConformanceCase): Mutation[] {
  const out: Mutation[] = [];
  const add = (name: string, f: (b: Json) => boolean | void, artifact: Buffer = c.artifact): void => {
    const b = clone(c);
    if (f(b) === false) return; // not applicable to this bundle
    out.push({ name, bundle: b, artifact });
  };
  const positions = [0, 0.13, 0.37, 0.5, 0.71, 0.99];

  for (const at of positions) {
    add(`signature@${at}`, (b) => {
      if (b['messageSignature'] !== undefined) b['messageSignature']['signature'] = flipB64(b['messageSignature']['signature'], at);
      else b['dsseEnvelope']['signatures'][0]['sig'] = flipB64(b['dsseEnvelope']['signatures'][0]['sig'], at);
    });
    add(`certificate@${at}`, (b) => {
      const vm = b['verificationMaterial'];
      if (vm['certificate'] !== undefined) vm['certificate']['rawBytes'] = flipB64(vm['certificate']['rawBytes'], at);
      else if (vm['x509CertificateChain'] !== undefined) {
        const certs = vm['x509CertificateChain']['certificates'];
        certs[0]['rawBytes'] = flipB64(certs[0]['rawBytes'], at);
      } else return false;
    });
    add(`tlog-body@${at}`, (b) => {
      const e = entry0(b);
      e['canonicalizedBody'] = flipB64(e['canonicalizedBody'], at);
    });
    add(`dsse-payload@${at}`, (b) => {
      if (b['dsseEnvelope'] === undefined) return false;
      b['dsseEnvelope']['payload'] = flipB64(b['dsseEnvelope']['payload'], at);
    });
    add(`artifact@${at}`, () => true, flipArtifact(c.artifact, at));
  }
  add('inclusion-proof-hash', (b) => {
    const p = entry0(b)['inclusionProof'];
    if (p === undefined || p['hashes'].length === 0) return false;
    const k = Math.floor(p['hashes'].length / 2);
    p['hashes'][k] = flipB64(p['hashes'][k], 0.5, 3);
  });
  add('inclusion-proof-extra-hash', (b) => {
    const p = entry0(b)['inclusionProof'];
    if (p === undefined) return false;
    p['hashes'].push(Buffer.alloc(32, 7).toString('base64'));
  });
  add('integrated-time+1', (b) => {
    const e = entry0(b);
    if (e['integratedTime'] === undefined) return false;
    e['integratedTime'] = String(BigInt(e['integratedTime']) + 1n);
  });
  add('integrated-time-1', (b) => {
    const e = entry0(b);
    if (e['integratedTime'] === undefined) return false;
    e['integratedTime'] = String(BigInt(e['integratedTime']) - 1n);
  });
  add('log-index+1', (b) => {
    const e = entry0(b);
    e['logIndex'] = String(BigInt(e['logIndex']) + 1n);
  });
  add('log-index-1', (b) => {
    const e = entry0(b);
    if (BigInt(e['logIndex']) === 0n) return false;
    e['logIndex'] = String(BigInt(e['logIndex']) - 1n);
  });
  add('set-signature', (b) => {
    const e = entry0(b);
    if (e['inclusionPromise'] === undefined) return false;
    e['inclusionPromise']['signedEntryTimestamp'] = flipB64(e['inclusionPromise']['signedEntryTimestamp'], 0.6);
  });
  add('checkpoint-signatures', (b) => {
    const p = entry0(b)['inclusionProof'];
    if (p === undefined) return false;
    // Corrupt every signature line: the log's may be any of them (witness cosignatures come first sometimes).
    p['checkpoint']['envelope'] = (p['checkpoint']['envelope'] as string).replace(
      /^(\u2014 \S+ )(\S+)$/gmu,
      (_m: string, head: string, sig: string) => head + flipB64(sig, 0.8),
    );
  });
  // Bytes inside the TSTInfo and the signer's signature (embedded certificates are unsigned and ignored by design).
  for (const at of [0.1, 0.98]) {
    add(`timestamp@${at}`, (b) => {
      const ts = b['verificationMaterial']['timestampVerificationData']?.['rfc3161Timestamps'];
      if (ts === undefined || ts.length === 0) return false;
      ts[0]['signedTimestamp'] = flipB64(ts[0]['signedTimestamp'], at);
    });
  }
  add('message-digest', (b) => {
    if (b['messageSignature'] === undefined) return false;
    b['messageSignature']['messageDigest']['digest'] = flipB64(b['messageSignature']['messageDigest']['digest'], 0.5);
  });
  add('log-id', (b) => {
    const e = entry0(b);
    e['logId']['keyId'] = flipB64(e['logId']['keyId'], 0.9);
  });
  return out;
}

function flipArtifact(a: Buffer, at: number): Buffer {
  const b = Buffer.from(a);
  const i = Math.min(b.length - 1, Math.floor(b.length * at));
  b[i] = b[i]! ^ 1;
  return b;
}

/** Corruptions only this library is expected to catch (@sigstore/verify 4.1.3 accepts them). */
export function strictOnlyMutationsOf(c: ConformanceCase): Mutation[] {
  const out: Mutation[] = [];
  const add = (name: string, f: (b: Json) => boolean | void): void => {
    const b = clone(c);
    if (f(b) === false) return;
    out.push({ name, bundle: b, artifact: c.artifact });
  };
  // The proof's own root hash / tree size are ignored by @sigstore/verify (it uses the checkpoint's).
  add('inclusion-proof-root-hash', (b) => {
    const p = entry0(b)['inclusionProof'];
    if (p === undefined) return false;
    p['rootHash'] = flipB64(p['rootHash'], 0.5);
  });
  add('inclusion-proof-tree-size', (b) => {
    const p = entry0(b)['inclusionProof'];
    if (p === undefined) return false;
    p['treeSize'] = String(BigInt(p['treeSize']) + 1n);
  });
  return out;
}
