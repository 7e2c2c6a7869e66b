/**
 * A throwaway CA and serving certificate, made at startup. kubectl (client-go) only sends credentials over TLS, so a
 * token-protected sandbox has to speak HTTPS for kubectl to authenticate at all.
 *
 * The certificates are DER-encoded by hand (a few ASN.1 primitives) and signed with node:crypto, which keeps the
 * package free of X.509 libraries and their global polyfills.
 */
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export interface ServingCertificate {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const octets = (b: Buffer) => tlv(0x04, b);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const bitString = (b: Buffer, unused = 0) => tlv(0x03, Buffer.from([unused]), b);
const explicit = (n: number, c: Buffer) => tlv(0xa0 | n, c);

function integer(b: Buffer): Buffer {
  // Positive INTEGER: strip leading zeros, then add one back if the high bit is set.
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  let v = b.subarray(i);
  if ((v[0] ?? 0) & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
  return tlv(0x02, v);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const out: number[] = [(parts[0] ?? 0) * 40 + (parts[1] ?? 0)];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = p >> 7; v > 0; v >>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const p = (n: number) => String(n).padStart(2, '0');
  const body = `${p(d.getUTCFullYear() % 100)}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  return tlv(0x17, Buffer.from(body, 'ascii')); // UTCTime: fine until 2050
}

const name = (cn: string) => seq(set(seq(oid('2.5.4.3'), tlv(0x0c, Buffer.from(cn, 'utf8')))));
const ECDSA_SHA256 = seq(oid('1.2.840.10045.4.3.2'));

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) return Buffer.from(ip.split('.').map(Number));
  // Expand `::` then pack eight 16-bit groups.
  const [head = '', tail] = ip.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function certificate(opts: {
  subject: string;
  issuer: string;
  publicKey: KeyObject;
  signingKey: KeyObject;
  ca: boolean;
  dns?: string[];
  ips?: string[];
}): Buffer {
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + 365 * 24 * 60 * 60 * 1000);
  const extensions: Buffer[] = [
    extension('2.5.29.19', true, opts.ca ? seq(bool(true)) : seq()),
    // keyUsage: CA = keyCertSign|cRLSign|digitalSignature (0x86), leaf = digitalSignature (0x80).
    extension('2.5.29.15', true, opts.ca ? bitString(Buffer.from([0x86]), 1) : bitString(Buffer.from([0x80]), 7)),
  ];
  if (!opts.ca) {
    extensions.push(extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.1'))));
    const names = [
      ...(opts.dns ?? []).map((d) => tlv(0x82, Buffer.from(d, 'ascii'))),
      ...(opts.ips ?? []).filter((ip) => isIPv4(ip) || isIPv6(ip)).map((ip) => tlv(0x87, ipBytes(ip))),
    ];
    extensions.push(extension('2.5.29.17', false, seq(...names)));
  }
  const tbs = seq(
    explicit(0, integer(Buffer.from([2]))),
    integer(Buffer.concat([Buffer.from([0x01]), randomBytes(15)])),
    ECDSA_SHA256,
    name(opts.issuer),
    seq(time(notBefore), time(notAfter)),
    name(opts.subject),
    opts.publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign('sha256', tbs, opts.signingKey);
  return seq(tbs, ECDSA_SHA256, bitString(signature));
}

function pem(label: string, der: Buffer): string {
  const b64 = der
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .trim();
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

export function createServingCertificate(hosts: { dns: string[]; ips: string[] }): ServingCertificate {
  const caKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const keys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const caName = 'gitops-gate-sandbox-ca';
  const ca = certificate({ subject: caName, issuer: caName, publicKey: caKeys.publicKey, signingKey: caKeys.privateKey, ca: true });
  const leaf = certificate({
    subject: 'gitops-gate-sandbox-apiserver',
    issuer: caName,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    ca: false,
    dns: hosts.dns,
    ips: hosts.ips,
  });
  return {
    caPem: pem('CERTIFICATE', ca),
    certPem: pem('CERTIFICATE', leaf),
    keyPem: keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}
