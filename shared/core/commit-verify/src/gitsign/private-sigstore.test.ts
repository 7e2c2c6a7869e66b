/**
 * A private Sigstore built in the test: a Fulcio-like CA (root + intermediate), short-lived leaf certificates with the
 * Sigstore OIDC-issuer extension, a Rekor-like log (SETs, RFC 6962 inclusion proofs, signed checkpoints) and a
 * trusted_root.json naming them. Commits are signed gitsign-style (detached CMS via pkijs) with and without an
 * embedded log entry; the online lookups go to a Rekor stand-in on 127.0.0.1.
 */
// @peculiar/x509 resolves its services through tsyringe, which needs a Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { KeyObject, createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, webcrypto } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as x509 from '@peculiar/x509';
import { json as sigstoreJson } from '@sigstore/core';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommit } from '../commit.js';
import { createBundleTrust, loadPublicGoodTrustedRoot } from '@gitops-gate/bundle-verify';
import type { BundleTrust } from '@gitops-gate/bundle-verify';
import type { MethodResult } from '../types.js';
import { parseGitsignCms } from './cms.js';
import { RekorLookupError, commitObjectId, createRekorClient, verifyGitsignCommitSignature } from './index.js';
import type { GitsignIdentityRule, RekorLogEntry, RekorLookup } from './index.js';
import { hashedRekordBody, sha256 } from './tlog-entry.js';

type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
// Both libraries type their provider with the DOM's Crypto; Node's webcrypto is that API.
x509.cryptoProvider.set(crypto as never);
pkijs.setEngine('node-webcrypto', new pkijs.CryptoEngine({ name: 'node-webcrypto', crypto: crypto as never }));

const T0 = new Date('2026-01-15T12:00:00Z');
const ISSUER = 'https://issuer.sigstore.test';
const SIGNER = 'dev@sigstore.test';
const policy: GitsignIdentityRule[] = [{ identity: SIGNER, issuer: ISSUER }];
const OID_CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

// --- PKI ----------------------------------------------------------------------------------------------------------

type EcCurve = 'P-256' | 'P-384';

async function ecKeys(curve: EcCurve = 'P-384'): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify']);
}

interface TestCA {
  root: x509.X509Certificate;
  intermediate: x509.X509Certificate;
  intermediateKeys: CryptoKeyPair;
  intermediateSki: string;
}

async function makeCA(opts: { notBefore?: Date; notAfter?: Date; intermediateNotAfter?: Date; ski?: string } = {}): Promise<TestCA> {
  const notBefore = opts.notBefore ?? new Date('2025-01-01T00:00:00Z');
  const notAfter = opts.notAfter ?? new Date('2035-01-01T00:00:00Z');
  const rootKeys = await ecKeys();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'O=sigstore.test, CN=sigstore-test-root',
    notBefore,
    notAfter,
    keys: rootKeys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const intermediateKeys = await ecKeys();
  const ski = opts.ski ?? randomBytes(20).toString('hex');
  const intermediate = await x509.X509CertificateGenerator.create({
    serialNumber: '02',
    subject: 'O=sigstore.test, CN=sigstore-test-intermediate',
    issuer: root.subject,
    notBefore,
    notAfter: opts.intermediateNotAfter ?? notAfter,
    publicKey: intermediateKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.ExtendedKeyUsageExtension([OID_CODE_SIGNING]),
      new x509.SubjectKeyIdentifierExtension(ski),
      await x509.AuthorityKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  return { root, intermediate, intermediateKeys, intermediateSki: ski };
}

interface Leaf {
  cert: x509.X509Certificate;
  der: Buffer;
  keys: CryptoKeyPair;
  privateKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
}

interface LeafOptions {
  san?: { type: 'email' | 'url'; value: string };
  issuer?: string;
  issuerExtensions?: 'v1' | 'v2' | 'both' | 'none';
  key?: 'P-256' | 'P-384' | 'RSA';
  notBefore?: Date;
  eku?: string[];
  isCA?: boolean;
}

function utf8StringDer(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from([0x0c, b.length]), b]);
}

async function makeLeaf(ca: TestCA, opts: LeafOptions = {}): Promise<Leaf> {
  const keys =
    opts.key === 'RSA'
      ? await crypto.subtle.generateKey(
          { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
          true,
          ['sign', 'verify'],
        )
      : await ecKeys(opts.key ?? 'P-256');
  const notBefore = opts.notBefore ?? T0;
  const notAfter = new Date(notBefore.getTime() + 10 * 60_000);
  const issuer = opts.issuer ?? ISSUER;
  const which = opts.issuerExtensions ?? 'both';
  const extensions: x509.Extension[] = [
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(opts.eku ?? [OID_CODE_SIGNING]),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    new x509.AuthorityKeyIdentifierExtension(ca.intermediateSki),
    new x509.SubjectAlternativeNameExtension([opts.san ?? { type: 'email', value: SIGNER }], true),
  ];
  if (opts.isCA) extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
  if (which === 'v1' || which === 'both') extensions.push(new x509.Extension('1.3.6.1.4.1.57264.1.1', false, Buffer.from(issuer, 'utf8')));
  if (which === 'v2' || which === 'both') extensions.push(new x509.Extension('1.3.6.1.4.1.57264.1.8', false, utf8StringDer(issuer)));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '7' + randomBytes(15).toString('hex'),
    subject: '',
    issuer: ca.intermediate.subject,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.intermediateKeys.privateKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
    extensions,
  });
  return { cert, der: Buffer.from(cert.rawData), keys, privateKey: KeyObject.from(keys.privateKey), notBefore, notAfter };
}

// --- a Rekor-like log ---------------------------------------------------------------------------------------------

const leafHash = (data: Buffer) =>
  createHash('sha256')
    .update(Buffer.from([0]))
    .update(data)
    .digest();
const nodeHash = (l: Buffer, r: Buffer) =>
  createHash('sha256')
    .update(Buffer.from([1]))
    .update(l)
    .update(r)
    .digest();

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 1) return leaves[0]!;
  const k = largestPow2Below(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
function auditPath(m: number, leaves: Buffer[]): Buffer[] {
  if (leaves.length <= 1) return [];
  const k = largestPow2Below(leaves.length);
  return m < k
    ? [...auditPath(m, leaves.slice(0, k)), mth(leaves.slice(k))]
    : [...auditPath(m - k, leaves.slice(k)), mth(leaves.slice(0, k))];
}

interface LoggedEntry {
  uuid: string;
  body: Buffer;
  logIndex: number;
  treeIndex: number;
  integratedTime: number;
  set: Buffer;
  proof: { logIndex: bigint; rootHash: Buffer; treeSize: bigint; hashes: Buffer[]; checkpoint: string };
}

class TestLog {
  readonly privateKey: KeyObject;
  readonly spki: Buffer;
  readonly logId: Buffer;
  readonly leaves: Buffer[] = [];
  readonly entries = new Map<string, LoggedEntry>();
  // Like a sharded Rekor: the global log index is offset from the index inside the current tree.
  static readonly SHARD_OFFSET = 7_000_000;

  constructor(readonly name = 'rekor.sigstore.test') {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    this.privateKey = privateKey;
    this.spki = publicKey.export({ format: 'der', type: 'spki' });
    this.logId = createHash('sha256').update(this.spki).digest();
    for (let i = 0; i < 5; i++) this.leaves.push(leafHash(randomBytes(40)));
  }

  /** Logs `body` at `integratedTime` (seconds), with a few entries after it so its audit path has both sides. */
  add(body: Buffer, integratedTime: number): LoggedEntry {
    const treeIndex = this.leaves.length;
    this.leaves.push(leafHash(body));
    for (let i = 0; i < 3; i++) this.leaves.push(leafHash(randomBytes(40)));
    const logIndex = TestLog.SHARD_OFFSET + treeIndex;
    const entry: LoggedEntry = {
      uuid: leafHash(body).toString('hex'),
      body,
      logIndex,
      treeIndex,
      integratedTime,
      set: this.signSet(body, integratedTime, logIndex),
      proof: this.proofFor(treeIndex),
    };
    this.entries.set(entry.uuid, entry);
    return entry;
  }

  signSet(body: Buffer, integratedTime: number, logIndex: number, key: KeyObject = this.privateKey, logId: Buffer = this.logId): Buffer {
    const payload = sigstoreJson.canonicalize({ body: body.toString('base64'), integratedTime, logIndex, logID: logId.toString('hex') });
    return cryptoSign('sha256', Buffer.from(payload), key);
  }

  proofFor(treeIndex: number, key: KeyObject = this.privateKey): LoggedEntry['proof'] {
    const root = mth(this.leaves);
    return {
      logIndex: BigInt(treeIndex),
      rootHash: root,
      treeSize: BigInt(this.leaves.length),
      hashes: auditPath(treeIndex, this.leaves),
      checkpoint: this.checkpoint(this.leaves.length, root, key),
    };
  }

  checkpoint(size: number, root: Buffer, key: KeyObject = this.privateKey): string {
    const note = `${this.name} - 4242\n${size}\n${root.toString('base64')}\n`;
    const sig = cryptoSign('sha256', Buffer.from(note), key);
    return `${note}\n\u2014 ${this.name} ${Buffer.concat([this.logId.subarray(0, 4), sig]).toString('base64')}\n`;
  }

  /** The entry as Rekor's REST API returns it. */
  toApi(e: LoggedEntry): RekorLogEntry {
    return {
      uuid: e.uuid,
      body: e.body.toString('base64'),
      integratedTime: e.integratedTime,
      logID: this.logId.toString('hex'),
      logIndex: e.logIndex,
      verification: {
        signedEntryTimestamp: e.set.toString('base64'),
        inclusionProof: {
          logIndex: Number(e.proof.logIndex),
          rootHash: e.proof.rootHash.toString('hex'),
          treeSize: Number(e.proof.treeSize),
          hashes: e.proof.hashes.map((h) => h.toString('hex')),
          checkpoint: e.proof.checkpoint,
        },
      },
    };
  }

  trustedRootEntry(validFor: { start: string; end?: string } = { start: '2025-01-01T00:00:00Z' }): object {
    return {
      baseUrl: `https://${this.name}`,
      hashAlgorithm: 'SHA2_256',
      publicKey: { rawBytes: this.spki.toString('base64'), keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor },
      logId: { keyId: this.logId.toString('base64') },
    };
  }
}

function trustedRootJson(opts: {
  cas: Array<{ ca: TestCA; validFor?: { start: string; end?: string } }>;
  logs: Array<{ log: TestLog; validFor?: { start: string; end?: string } }>;
  ctlogs?: object[];
}): object {
  return {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: opts.logs.map(({ log, validFor }) => log.trustedRootEntry(validFor)),
    certificateAuthorities: opts.cas.map(({ ca, validFor }) => ({
      subject: { organization: 'sigstore.test', commonName: 'sigstore-test' },
      uri: 'https://fulcio.sigstore.test',
      certChain: { certificates: [ca.intermediate, ca.root].map((c) => ({ rawBytes: Buffer.from(c.rawData).toString('base64') })) },
      validFor: validFor ?? { start: '2025-01-01T00:00:00Z' },
    })),
    ctlogs: opts.ctlogs ?? [],
    timestampAuthorities: [],
  };
}

// --- gitsign-style signing ------------------------------------------------------------------------------------------

function pbVarint(n: bigint): Buffer {
  const out: number[] = [];
  do {
    let b = Number(n & 0x7fn);
    n >>= 7n;
    if (n > 0n) b |= 0x80;
    out.push(b);
  } while (n > 0n);
  return Buffer.from(out);
}
const pbInt = (field: number, v: bigint) => Buffer.concat([pbVarint(BigInt(field << 3)), pbVarint(v)]);
const pbBytes = (field: number, v: Buffer) => Buffer.concat([pbVarint(BigInt((field << 3) | 2)), pbVarint(BigInt(v.length)), v]);

interface EmbeddedEntry {
  logIndex: number;
  logId: Buffer;
  integratedTime: number;
  set?: Buffer;
  proof?: LoggedEntry['proof'];
  body?: Buffer;
  kind?: string;
}

/** dev.sigstore.rekor.v1.TransparencyLogEntry, the way gitsign serialises it (canonicalized body cleared). */
function encodeTlogEntry(e: EmbeddedEntry): Buffer {
  const parts = [
    pbInt(1, BigInt(e.logIndex)),
    pbBytes(2, pbBytes(1, e.logId)),
    pbBytes(3, Buffer.concat([pbBytes(1, Buffer.from(e.kind ?? 'hashedrekord')), pbBytes(2, Buffer.from('0.0.1'))])),
    pbInt(4, BigInt(e.integratedTime)),
  ];
  if (e.set) parts.push(pbBytes(5, pbBytes(1, e.set)));
  if (e.proof) {
    parts.push(
      pbBytes(
        6,
        Buffer.concat([
          pbInt(1, e.proof.logIndex),
          pbBytes(2, e.proof.rootHash),
          pbInt(3, e.proof.treeSize),
          ...e.proof.hashes.map((h) => pbBytes(4, h)),
          pbBytes(5, pbBytes(1, Buffer.from(e.proof.checkpoint, 'utf8'))),
        ]),
      ),
    );
  }
  if (e.body) parts.push(pbBytes(7, e.body));
  return Buffer.concat(parts);
}

interface CmsParts {
  signedData: pkijs.SignedData;
  der: Buffer;
  signedAttrsDer: Buffer;
  signature: Buffer;
}

async function cmsSign(payload: Buffer, leaf: Leaf, opts: { attached?: boolean } = {}): Promise<CmsParts> {
  const cert = pkijs.Certificate.fromBER(leaf.der);
  const signedData = new pkijs.SignedData({
    version: 1,
    encapContentInfo: new pkijs.EncapsulatedContentInfo({
      eContentType: '1.2.840.113549.1.7.1',
      ...(opts.attached ? { eContent: new asn1js.OctetString({ valueHex: payload }) } : {}),
    }),
    signerInfos: [
      new pkijs.SignerInfo({
        version: 1,
        sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
        signedAttrs: new pkijs.SignedAndUnsignedAttributes({
          type: 0,
          attributes: [
            new pkijs.Attribute({ type: '1.2.840.113549.1.9.3', values: [new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.7.1' })] }),
            new pkijs.Attribute({ type: '1.2.840.113549.1.9.5', values: [new asn1js.UTCTime({ valueDate: leaf.notBefore })] }),
            new pkijs.Attribute({ type: '1.2.840.113549.1.9.4', values: [new asn1js.OctetString({ valueHex: sha256(payload) })] }),
          ],
        }),
      }),
    ],
    certificates: [cert],
  });
  await signedData.sign(leaf.keys.privateKey, 0, 'SHA-256');
  const der = serialize(signedData);
  if (opts.attached) return { signedData, der, signedAttrsDer: Buffer.alloc(0), signature: Buffer.alloc(0) };
  const parsed = parseGitsignCms(der);
  return { signedData, der, signedAttrsDer: parsed.signedAttrsDer, signature: parsed.signature };
}

function serialize(signedData: pkijs.SignedData): Buffer {
  const contentInfo = new pkijs.ContentInfo({ contentType: '1.2.840.113549.1.7.2', content: signedData.toSchema(true) });
  return Buffer.from(contentInfo.toSchema().toBER());
}

function withUnsignedAttribute(parts: CmsParts, oid: string, value: asn1js.BaseBlock): Buffer {
  parts.signedData.signerInfos[0]!.unsignedAttrs = new pkijs.SignedAndUnsignedAttributes({
    type: 1,
    attributes: [new pkijs.Attribute({ type: oid, values: [value] })],
  });
  return serialize(parts.signedData);
}

function armor(der: Buffer): string {
  return ['-----BEGIN SIGNED MESSAGE-----', ...(der.toString('base64').match(/.{1,64}/g) ?? []), '-----END SIGNED MESSAGE-----', ''].join(
    '\n',
  );
}

let commitCounter = 0;
function commitPayload(): Buffer {
  const n = ++commitCounter;
  const ts = Math.floor(T0.getTime() / 1000);
  return Buffer.from(
    `tree ${createHash('sha1').update(`tree${n}`).digest('hex')}\n` +
      `parent ${createHash('sha1').update(`parent${n}`).digest('hex')}\n` +
      `author Dev <${SIGNER}> ${ts} +0000\ncommitter Dev <${SIGNER}> ${ts} +0000\n\ncommit number ${n}\n`,
  );
}

/** A raw commit object the way git writes a signed one, then split again by the production parser. */
function asCommit(payload: Buffer, pemText: string): { payload: Buffer; signature: string; raw: Buffer } {
  const end = payload.indexOf('\n\n');
  const header = `gpgsig ${pemText.trimEnd().split('\n').join('\n ')}\n`;
  const raw = Buffer.concat([payload.subarray(0, end + 1), Buffer.from(header), payload.subarray(end + 1)]);
  const parsed = parseCommit(raw);
  return { payload: parsed.payload, signature: parsed.signature!, raw };
}

interface SignedCommit {
  payload: Buffer;
  signature: string;
  raw: Buffer;
  logged?: LoggedEntry;
}

interface OfflineOptions {
  /** Seconds after the leaf's notBefore at which the log integrates the entry (default 30). */
  integratedAfter?: number;
  /** Change the entry before embedding it. */
  tamper?: (e: EmbeddedEntry, logged: LoggedEntry) => EmbeddedEntry;
  /** Log this body instead of the one for this signature (an entry about something else). */
  loggedBody?: (own: Buffer) => Buffer;
}

/** gitsign offline mode: log hashedrekord(sha256(signed attributes), signature, cert) and embed the entry. */
async function signOffline(leaf: Leaf, log: TestLog, opts: OfflineOptions = {}): Promise<SignedCommit> {
  const payload = commitPayload();
  const cms = await cmsSign(payload, leaf);
  const ownBody = hashedRekordBody(sha256(cms.signedAttrsDer), cms.signature, leaf.der);
  const integratedTime = Math.floor(leaf.notBefore.getTime() / 1000) + (opts.integratedAfter ?? 30);
  const logged = log.add(opts.loggedBody ? opts.loggedBody(ownBody) : ownBody, integratedTime);
  let entry: EmbeddedEntry = { logIndex: logged.logIndex, logId: log.logId, integratedTime, set: logged.set, proof: logged.proof };
  if (opts.tamper) entry = opts.tamper(entry, logged);
  const der = withUnsignedAttribute(cms, '1.3.6.1.4.1.57264.3.1', new asn1js.OctetString({ valueHex: encodeTlogEntry(entry) }));
  return { ...asCommit(payload, armor(der)), logged };
}

/**
 * gitsign online mode: the CMS carries no entry; a second signature over the commit id (with the same key) is logged
 * as hashedrekord(sha256(commit id)).
 */
async function signOnline(
  leaf: Leaf,
  log: TestLog,
  opts: { integratedAfter?: number; loggedSignature?: (commitId: string) => Buffer; loggedCert?: Buffer; publish?: boolean } = {},
): Promise<SignedCommit & { commitId: string }> {
  const payload = commitPayload();
  const cms = await cmsSign(payload, leaf);
  const commit = asCommit(payload, armor(cms.der));
  const commitId = createHash('sha1').update(`commit ${commit.raw.length}\0`).update(commit.raw).digest('hex');
  const idSignature = opts.loggedSignature ? opts.loggedSignature(commitId) : cryptoSign('sha256', Buffer.from(commitId), leaf.privateKey);
  const body = hashedRekordBody(sha256(Buffer.from(commitId)), idSignature, opts.loggedCert ?? leaf.der);
  const integratedTime = Math.floor(leaf.notBefore.getTime() / 1000) + (opts.integratedAfter ?? 30);
  const logged = opts.publish === false ? undefined : log.add(body, integratedTime);
  return { ...commit, commitId, ...(logged ? { logged } : {}) };
}

async function verify(
  c: { payload: Buffer; signature: string },
  trust: BundleTrust,
  extra: { rekor?: RekorLookup; identities?: GitsignIdentityRule[] } = {},
) {
  return verifyGitsignCommitSignature({
    payload: c.payload,
    signature: c.signature,
    trust,
    identities: extra.identities ?? policy,
    ...(extra.rekor ? { rekor: extra.rekor } : {}),
  });
}

function expectReject(result: MethodResult, code: string): void {
  expect(result, JSON.stringify(result)).toMatchObject({ ok: false, method: 'gitsign', code });
}

// --- a Rekor stand-in on loopback -----------------------------------------------------------------------------------

interface FakeRekor {
  url: string;
  requests: string[];
  mode: 'ok' | 'error';
  close(): Promise<void>;
}

async function startRekor(log: TestLog): Promise<FakeRekor> {
  const state: FakeRekor = { url: '', requests: [], mode: 'ok', close: async () => undefined };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests.push(`${req.method} ${req.url}`);
      const send = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (state.mode === 'error') return send(500, { message: 'down' });
      if (req.method === 'POST' && req.url === '/api/v1/index/retrieve') {
        const q = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          hash?: string;
          publicKey?: { content: string };
          operator?: string;
        };
        const hits = [...log.entries.values()].filter((e) => {
          const body = JSON.parse(e.body.toString('utf8'));
          const byHash = q.hash === undefined ? undefined : `sha256:${body.spec.data.hash.value}` === q.hash;
          const byKey = q.publicKey === undefined ? undefined : body.spec.signature.publicKey.content === q.publicKey.content;
          const tests = [byHash, byKey].filter((t) => t !== undefined);
          return q.operator === 'and' ? tests.every(Boolean) : tests.some(Boolean);
        });
        return send(
          200,
          hits.map((e) => e.uuid),
        );
      }
      const m = /^\/api\/v1\/log\/entries\/([0-9a-f]+)$/.exec(req.url ?? '');
      const e = m ? log.entries.get(m[1]!) : undefined;
      if (req.method === 'GET' && e) {
        const { uuid, ...rest } = log.toApi(e);
        return send(200, { [uuid]: rest });
      }
      send(404, { message: 'not found' });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  return state;
}

// --- the tests -----------------------------------------------------------------------------------------------------

describe('gitsign against a private Sigstore', () => {
  let ca: TestCA;
  let log: TestLog;
  let trust: BundleTrust;
  let leaf: Leaf;

  beforeAll(async () => {
    ca = await makeCA();
    log = new TestLog();
    trust = createBundleTrust(trustedRootJson({ cas: [{ ca }], logs: [{ log }] }));
    leaf = await makeLeaf(ca);
  });

  describe('embedded log entry (offline)', () => {
    it('accepts a valid commit and reports the log facts', async () => {
      const c = await signOffline(leaf, log);
      const result = await verify(c, trust);
      expect(result).toMatchObject({
        ok: true,
        method: 'gitsign',
        signer: {
          identity: SIGNER,
          issuer: ISSUER,
          logIndex: String(c.logged!.logIndex),
          signedAt: new Date(c.logged!.integratedTime * 1000).toISOString(),
        },
      });
      if (result.ok) {
        expect(result.evidence.join('\n')).toMatch(/inclusion proof verified/);
        expect(result.evidence.join('\n')).toMatch(/SCT not required/);
      }
    });

    it('accepts a certificate carrying only the deprecated issuer extension (1.1)', async () => {
      const v1 = await makeLeaf(ca, { issuerExtensions: 'v1' });
      expect(await verify(await signOffline(v1, log), trust)).toMatchObject({ ok: true, signer: { issuer: ISSUER } });
    });

    it('prefers the 1.8 issuer extension over 1.1', async () => {
      const v2 = await makeLeaf(ca, { issuerExtensions: 'v2', issuer: 'https://other-issuer.test' });
      expect(
        await verify(await signOffline(v2, log), trust, { identities: [{ identity: SIGNER, issuer: 'https://other-issuer.test' }] }),
      ).toMatchObject({
        ok: true,
        signer: { issuer: 'https://other-issuer.test' },
      });
    });

    it('rejects a certificate without any OIDC issuer extension', async () => {
      const none = await makeLeaf(ca, { issuerExtensions: 'none' });
      expectReject(await verify(await signOffline(none, log), trust), 'GITSIGN_CERTIFICATE_INVALID');
    });

    it('accepts a URI identity (workflow-style SAN) matched by an anchored regex', async () => {
      const uri = 'https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main';
      const wf = await makeLeaf(ca, { san: { type: 'url', value: uri } });
      const c = await signOffline(wf, log);
      expect(
        await verify(c, trust, {
          identities: [{ identityRegExp: 'https://github\\.com/org/repo/\\.github/workflows/.*', issuer: ISSUER }],
        }),
      ).toMatchObject({
        ok: true,
        signer: { identity: uri },
      });
      expectReject(
        await verify(c, trust, { identities: [{ identityRegExp: 'https://github\\.com/org/repo', issuer: ISSUER }] }),
        'GITSIGN_IDENTITY_MISMATCH',
      );
    });

    it('accepts P-384 and RSA signer keys', async () => {
      for (const key of ['P-384', 'RSA'] as const) {
        const k = await makeLeaf(ca, { key });
        expect((await verify(await signOffline(k, log), trust)).ok, key).toBe(true);
      }
    });

    it('rejects a certificate that had expired at the integrated time', async () => {
      expectReject(
        await verify(await signOffline(leaf, log, { integratedAfter: 11 * 60 }), trust),
        'GITSIGN_CERT_NOT_VALID_AT_INTEGRATED_TIME',
      );
    });

    it('rejects a certificate not yet valid at the integrated time', async () => {
      expectReject(
        await verify(await signOffline(leaf, log, { integratedAfter: -60 }), trust),
        'GITSIGN_CERT_NOT_VALID_AT_INTEGRATED_TIME',
      );
    });

    it('rejects a certificate from a CA outside the trust root, even one with the same names and key id', async () => {
      const evil = await makeCA({ ski: ca.intermediateSki });
      expect(evil.intermediate.subject).toBe(ca.intermediate.subject);
      const evilLeaf = await makeLeaf(evil);
      expectReject(await verify(await signOffline(evilLeaf, log), trust), 'GITSIGN_CERT_CHAIN_UNTRUSTED');
    });

    it('rejects when the CA is outside its trusted-root validity window at the integrated time', async () => {
      const closed = createBundleTrust(
        trustedRootJson({ cas: [{ ca, validFor: { start: '2025-01-01T00:00:00Z', end: '2025-12-31T00:00:00Z' } }], logs: [{ log }] }),
      );
      expectReject(await verify(await signOffline(leaf, log), closed), 'GITSIGN_CERT_CHAIN_UNTRUSTED');
    });

    it('rejects when the issuing intermediate certificate had expired at the integrated time', async () => {
      const old = await makeCA({ intermediateNotAfter: new Date('2025-12-01T00:00:00Z') });
      const oldTrust = createBundleTrust(trustedRootJson({ cas: [{ ca: old }], logs: [{ log }] }));
      expectReject(await verify(await signOffline(await makeLeaf(old), log), oldTrust), 'GITSIGN_CERT_CHAIN_UNTRUSTED');
    });

    it('rejects a bad inclusion proof', async () => {
      const flipHash = await signOffline(leaf, log, {
        tamper: (e) => ({
          ...e,
          proof: { ...e.proof!, hashes: e.proof!.hashes.map((h, i) => (i === 1 ? Buffer.from(h).fill(7, 0, 1) : h)) },
        }),
      });
      expectReject(await verify(flipHash, trust), 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID');
      const otherLeaf = await signOffline(leaf, log, { tamper: (e) => ({ ...e, proof: log.proofFor(0) }) });
      expectReject(await verify(otherLeaf, trust), 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID');
      const foreignCheckpoint = await signOffline(leaf, log, {
        tamper: (e, logged) => ({
          ...e,
          proof: log.proofFor(logged.treeIndex, generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey),
        }),
      });
      expectReject(await verify(foreignCheckpoint, trust), 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID');
      const shortProof = await signOffline(leaf, log, {
        tamper: (e) => ({ ...e, proof: { ...e.proof!, hashes: e.proof!.hashes.slice(1) } }),
      });
      expectReject(await verify(shortProof, trust), 'GITSIGN_TLOG_INCLUSION_PROOF_INVALID');
    });

    it('rejects a bad signed entry timestamp', async () => {
      const otherKey = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
      const foreign = await signOffline(leaf, log, {
        tamper: (e, logged) => ({ ...e, set: log.signSet(logged.body, e.integratedTime, e.logIndex, otherKey) }),
      });
      expectReject(await verify(foreign, trust), 'GITSIGN_TLOG_SET_INVALID');
      // A different integrated time than the log signed (e.g. moved into the certificate's window).
      const moved = await signOffline(leaf, log, {
        integratedAfter: 11 * 60,
        tamper: (e) => ({ ...e, integratedTime: e.integratedTime - 10 * 60 }),
      });
      expectReject(await verify(moved, trust), 'GITSIGN_TLOG_SET_INVALID');
      const otherIndex = await signOffline(leaf, log, { tamper: (e) => ({ ...e, logIndex: e.logIndex + 1 }) });
      expectReject(await verify(otherIndex, trust), 'GITSIGN_TLOG_SET_INVALID');
    });

    it('rejects an entry without a signed entry timestamp (its time would be unproven)', async () => {
      const noSet = await signOffline(leaf, log, { tamper: ({ set: _drop, ...e }) => e });
      expectReject(await verify(noSet, trust), 'GITSIGN_TLOG_NO_SIGNED_TIME');
    });

    it('rejects when the log key is outside its validity window at the integrated time', async () => {
      const expiredKey = createBundleTrust(
        trustedRootJson({ cas: [{ ca }], logs: [{ log, validFor: { start: '2025-01-01T00:00:00Z', end: '2025-06-01T00:00:00Z' } }] }),
      );
      expectReject(await verify(await signOffline(leaf, log), expiredKey), 'GITSIGN_TLOG_SET_INVALID');
    });

    it('rejects an entry from a log that is not in the trust root', async () => {
      const otherLog = new TestLog('rekor.elsewhere.test');
      expectReject(await verify(await signOffline(leaf, otherLog), trust), 'GITSIGN_TLOG_UNKNOWN_LOG');
    });

    it('rejects a valid log entry that binds another signature', async () => {
      // Same payload signed twice by the same key: ECDSA signatures differ, and the log holds the first one only.
      const payload = commitPayload();
      const first = await cmsSign(payload, leaf);
      const second = await cmsSign(payload, leaf);
      expect(first.signature.equals(second.signature)).toBe(false);
      const body = hashedRekordBody(sha256(first.signedAttrsDer), first.signature, leaf.der);
      const integratedTime = Math.floor(T0.getTime() / 1000) + 30;
      const logged = log.add(body, integratedTime);
      const entry: EmbeddedEntry = { logIndex: logged.logIndex, logId: log.logId, integratedTime, set: logged.set, proof: logged.proof };
      const der = withUnsignedAttribute(second, '1.3.6.1.4.1.57264.3.1', new asn1js.OctetString({ valueHex: encodeTlogEntry(entry) }));
      expectReject(await verify(asCommit(payload, armor(der)), trust), 'GITSIGN_TLOG_SET_INVALID');
      // Spelling the other body out in the entry does not help: it is not about this signature.
      const withBody = withUnsignedAttribute(
        second,
        '1.3.6.1.4.1.57264.3.1',
        new asn1js.OctetString({ valueHex: encodeTlogEntry({ ...entry, body }) }),
      );
      expectReject(await verify(asCommit(payload, armor(withBody)), trust), 'GITSIGN_TLOG_ENTRY_MISMATCH');
      // And the first signature, with its own entry, still verifies.
      const good = withUnsignedAttribute(first, '1.3.6.1.4.1.57264.3.1', new asn1js.OctetString({ valueHex: encodeTlogEntry(entry) }));
      expect((await verify(asCommit(payload, armor(good)), trust)).ok).toBe(true);
    });

    it('rejects a log entry about another certificate', async () => {
      const other = await makeLeaf(ca);
      const c = await signOffline(leaf, log, {
        loggedBody: (own) => {
          const b = JSON.parse(own.toString('utf8'));
          b.spec.signature.publicKey.content = Buffer.from(
            `-----BEGIN CERTIFICATE-----\n${other.der.toString('base64')}\n-----END CERTIFICATE-----\n`,
          ).toString('base64');
          return Buffer.from(sigstoreJson.canonicalize(b));
        },
      });
      expectReject(await verify(c, trust), 'GITSIGN_TLOG_SET_INVALID');
    });

    it('rejects entries of another kind', async () => {
      expectReject(
        await verify(await signOffline(leaf, log, { tamper: (e) => ({ ...e, kind: 'rekord' }) }), trust),
        'GITSIGN_TLOG_ENTRY_UNSUPPORTED',
      );
    });

    it('requires a verifiable SCT when the trust root lists CT logs', async () => {
      const ct = generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey.export({ format: 'der', type: 'spki' });
      const withCt = createBundleTrust({
        ...trustedRootJson({ cas: [{ ca }], logs: [{ log }] }),
        ctlogs: [
          {
            baseUrl: 'https://ctfe.sigstore.test',
            hashAlgorithm: 'SHA2_256',
            publicKey: {
              rawBytes: ct.toString('base64'),
              keyDetails: 'PKIX_ECDSA_P256_SHA_256',
              validFor: { start: '2025-01-01T00:00:00Z' },
            },
            logId: { keyId: createHash('sha256').update(ct).digest('base64') },
          },
        ],
      });
      expectReject(await verify(await signOffline(leaf, log), withCt), 'GITSIGN_CERT_SCT_INVALID');
    });

    it('rejects leaf certificates that are not for code signing, or are CAs', async () => {
      expectReject(
        await verify(await signOffline(await makeLeaf(ca, { eku: ['1.3.6.1.5.5.7.3.1'] }), log), trust),
        'GITSIGN_CERTIFICATE_INVALID',
      );
      expectReject(await verify(await signOffline(await makeLeaf(ca, { isCA: true }), log), trust), 'GITSIGN_CERTIFICATE_INVALID');
    });

    it('rejects CMS with attached content', async () => {
      const payload = commitPayload();
      const cms = await cmsSign(payload, leaf, { attached: true });
      expectReject(await verify(asCommit(payload, armor(cms.der)), trust), 'GITSIGN_CMS_UNSUPPORTED');
    });

    it('the public-good trust root does not accept the private CA or log', async () => {
      const c = await signOffline(leaf, log);
      const publicGood = createBundleTrust();
      expectReject(await verify(c, publicGood), 'GITSIGN_TLOG_UNKNOWN_LOG');
      // Even with the private log added, the private CA is not a public-good Fulcio CA.
      const pg = loadPublicGoodTrustedRoot() as { tlogs: object[] };
      const pgPlusLog = createBundleTrust({ ...pg, tlogs: [...pg.tlogs, log.trustedRootEntry()] });
      expectReject(await verify(c, pgPlusLog), 'GITSIGN_CERT_CHAIN_UNTRUSTED');
    });
  });

  describe('online lookup', () => {
    let rekor: FakeRekor;
    beforeAll(async () => {
      rekor = await startRekor(log);
    });
    afterAll(async () => {
      await rekor.close();
    });

    it('reconstructs the commit id that gitsign logs', async () => {
      const c = await signOnline(leaf, log);
      expect(commitObjectId(c.payload, c.signature)).toBe(c.commitId);
    });

    it('without a Rekor client: GITSIGN_NEEDS_ONLINE_LOOKUP', async () => {
      expectReject(await verify(await signOnline(leaf, log), trust), 'GITSIGN_NEEDS_ONLINE_LOOKUP');
    });

    it('accepts when Rekor holds a valid entry, and caches the lookup', async () => {
      const c = await signOnline(leaf, log);
      const client = createRekorClient({ url: rekor.url });
      const before = rekor.requests.length;
      const result = await verify(c, trust, { rekor: client });
      expect(result).toMatchObject({ ok: true, signer: { identity: SIGNER, issuer: ISSUER, logIndex: String(c.logged!.logIndex) } });
      if (result.ok) expect(result.evidence.join('\n')).toContain(`found online for commit ${c.commitId}`);
      expect(rekor.requests.slice(before)).toEqual(['POST /api/v1/index/retrieve', `GET /api/v1/log/entries/${c.logged!.uuid}`]);
      expect((await verify(c, trust, { rekor: client })).ok).toBe(true);
      expect(rekor.requests.length).toBe(before + 2);
    });

    it('rejects when Rekor has no entry for the commit', async () => {
      const c = await signOnline(leaf, log, { publish: false });
      expectReject(await verify(c, trust, { rekor: createRekorClient({ url: rekor.url }) }), 'GITSIGN_TLOG_ENTRY_NOT_FOUND');
    });

    it('ignores entries about the same commit id by another certificate', async () => {
      const other = await makeLeaf(ca);
      const c = await signOnline(leaf, log, {
        loggedCert: other.der,
        loggedSignature: (id) => cryptoSign('sha256', Buffer.from(id), other.privateKey),
      });
      expectReject(await verify(c, trust, { rekor: createRekorClient({ url: rekor.url }) }), 'GITSIGN_TLOG_ENTRY_NOT_FOUND');
    });

    it('rejects an entry by this certificate whose logged signature is not over this commit id', async () => {
      const c = await signOnline(leaf, log, {
        loggedSignature: () => cryptoSign('sha256', Buffer.from('some other commit'), leaf.privateKey),
      });
      expectReject(await verify(c, trust, { rekor: createRekorClient({ url: rekor.url }) }), 'GITSIGN_TLOG_ENTRY_MISMATCH');
    });

    it('rejects an online entry integrated after the certificate expired', async () => {
      const c = await signOnline(leaf, log, { integratedAfter: 20 * 60 });
      expectReject(await verify(c, trust, { rekor: createRekorClient({ url: rekor.url }) }), 'GITSIGN_CERT_NOT_VALID_AT_INTEGRATED_TIME');
    });

    it('rejects what a lying Rekor serves (bad SET, bad proof)', async () => {
      const c = await signOnline(leaf, log);
      const good = log.toApi(c.logged!);
      const lying = (mutate: (e: RekorLogEntry) => RekorLogEntry): RekorLookup => ({
        findEntries: async () => [mutate(structuredClone(good))],
      });
      expectReject(
        await verify(c, trust, { rekor: lying((e) => ({ ...e, integratedTime: e.integratedTime + 1 })) }),
        'GITSIGN_TLOG_SET_INVALID',
      );
      expectReject(
        await verify(c, trust, {
          rekor: lying((e) => {
            e.verification!.inclusionProof!.hashes[0] = '00'.repeat(32);
            return e;
          }),
        }),
        'GITSIGN_TLOG_INCLUSION_PROOF_INVALID',
      );
      expectReject(await verify(c, trust, { rekor: lying(({ verification: _v, ...e }) => e) }), 'GITSIGN_TLOG_NO_SIGNED_TIME');
      expectReject(await verify(c, trust, { rekor: { findEntries: async () => [] } }), 'GITSIGN_TLOG_ENTRY_NOT_FOUND');
      expectReject(
        await verify(c, trust, { rekor: { findEntries: async () => [null, 'x', {}] as unknown as RekorLogEntry[] } }),
        'GITSIGN_TLOG_ENTRY_NOT_FOUND',
      );
    });

    it('Rekor down or failing: REKOR_UNAVAILABLE (transient), never an accept', async () => {
      const c = await signOnline(leaf, log);
      rekor.mode = 'error';
      try {
        const failing = await verify(c, trust, { rekor: createRekorClient({ url: rekor.url }) });
        expectReject(failing, 'REKOR_UNAVAILABLE');
        if (!failing.ok) expect(failing.reason).toMatch(/HTTP 500/);
      } finally {
        rekor.mode = 'ok';
      }
      // A port nobody listens on.
      const closed = await startRekor(log);
      await closed.close();
      const down = await verify(c, trust, { rekor: createRekorClient({ url: closed.url }) });
      expectReject(down, 'REKOR_UNAVAILABLE');
      if (!down.ok) expect(down.reason).toMatch(/unreachable/);
      // A lookup of unknown make that throws: treated as unavailable (retried, deferred), never as an answer.
      const throwing: RekorLookup = {
        findEntries: async () => {
          throw new Error('boom');
        },
      };
      expectReject(await verify(c, trust, { rekor: throwing }), 'REKOR_UNAVAILABLE');
      // An answer that asking again will not change (a 4xx, a malformed response) is a final rejection.
      const refusing: RekorLookup = {
        findEntries: async () => {
          throw new RekorLookupError('Rekor /api/v1/index/retrieve answered HTTP 400');
        },
      };
      expectReject(await verify(c, trust, { rekor: refusing }), 'GITSIGN_REKOR_LOOKUP_FAILED');
    });

    it('an identity the policy does not allow is rejected before any Rekor traffic', async () => {
      const c = await signOnline(leaf, log);
      const before = rekor.requests.length;
      expectReject(
        await verify(c, trust, {
          rekor: createRekorClient({ url: rekor.url }),
          identities: [{ identity: 'other@sigstore.test', issuer: ISSUER }],
        }),
        'GITSIGN_IDENTITY_MISMATCH',
      );
      expect(rekor.requests.length).toBe(before);
    });
  });
});
