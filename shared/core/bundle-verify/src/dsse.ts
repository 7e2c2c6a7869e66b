// DSSE pre-authentication encoding and the in-toto statement carried in the payload.
import { isObject } from './encoding.js';
import { reject } from './errors.js';

export function preAuthEncoding(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `, 'utf8'), type, Buffer.from(` ${payload.length} `, 'utf8'), payload]);
}

export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

const STATEMENT_TYPES = new Set(['https://in-toto.io/Statement/v1', 'https://in-toto.io/Statement/v0.1']);

export interface Statement {
  predicateType: string;
  subject: Array<{ name: string; digest: Record<string, string> }>;
  predicate: unknown;
}

export function parseStatement(payload: Uint8Array): Statement {
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return reject('STATEMENT_INVALID', 'DSSE payload is not JSON');
  }
  if (!isObject(doc)) reject('STATEMENT_INVALID', 'in-toto statement is not a JSON object');
  if (typeof doc['_type'] !== 'string' || !STATEMENT_TYPES.has(doc['_type'])) {
    reject('STATEMENT_INVALID', 'unsupported in-toto statement _type');
  }
  if (typeof doc['predicateType'] !== 'string') reject('STATEMENT_INVALID', 'in-toto statement has no predicateType');
  const subjects = doc['subject'];
  if (!Array.isArray(subjects) || subjects.length === 0) reject('STATEMENT_INVALID', 'in-toto statement has no subject');
  const subject = subjects.map((s) => {
    if (!isObject(s) || !isObject(s['digest'])) reject('STATEMENT_INVALID', 'in-toto subject without a digest map');
    const digest: Record<string, string> = {};
    for (const [alg, v] of Object.entries(s['digest'])) {
      if (typeof v !== 'string') reject('STATEMENT_INVALID', 'in-toto subject digest is not a string');
      digest[alg] = v;
    }
    return { name: typeof s['name'] === 'string' ? s['name'] : '', digest };
  });
  return { predicateType: doc['predicateType'], subject, predicate: doc['predicate'] };
}

/** True when some subject names the artifact by its SHA-256 (hex compared case-insensitively, exact length). */
export function statementCoversSha256(statement: Statement, sha256Hex: string): boolean {
  return statement.subject.some((s) => {
    const d = s.digest['sha256'];
    return typeof d === 'string' && /^[0-9a-fA-F]{64}$/.test(d) && d.toLowerCase() === sha256Hex;
  });
}
