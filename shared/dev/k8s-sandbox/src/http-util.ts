import type { IncomingMessage } from 'node:http';
import { load } from 'js-yaml';
import { badRequest, notAcceptable, StatusError } from './status.js';

export interface MediaRange {
  type: string;
  params: Record<string, string>;
}

/** Splits an Accept header into media ranges with lower-cased parameter names, keeping the client's order. */
export function parseAccept(header: string | undefined): MediaRange[] {
  if (!header || header.trim() === '') return [];
  return header.split(',').map((part) => {
    const [type = '', ...rest] = part.split(';').map((s) => s.trim());
    const params: Record<string, string> = {};
    for (const p of rest) {
      const i = p.indexOf('=');
      if (i > 0) params[p.slice(0, i).trim().toLowerCase()] = p.slice(i + 1).trim();
    }
    return { type: type.toLowerCase(), params };
  });
}

export type Rendering =
  | { as: 'plain'; yaml: boolean }
  | { as: 'Table'; version: 'v1' | 'v1beta1' }
  | { as: 'PartialObjectMetadata' }
  | { as: 'PartialObjectMetadataList' };

const SERVED = ['application/json', 'application/yaml'];

/**
 * Picks the representation for a read, walking the Accept list in order like the apiserver: meta.k8s.io Table and
 * PartialObjectMetadata(List) transforms, plain JSON or YAML. Unknown ranges are skipped; nothing usable -> 406.
 */
export function negotiate(header: string | undefined, list: boolean): Rendering {
  const ranges = parseAccept(header);
  if (ranges.length === 0) return { as: 'plain', yaml: false };
  for (const r of ranges) {
    const jsonish = r.type === 'application/json' || r.type === 'application/yaml';
    if (r.params['as']) {
      if (!jsonish || r.params['g'] !== 'meta.k8s.io') continue;
      const v = r.params['v'];
      if (r.params['as'] === 'Table' && (v === 'v1' || v === 'v1beta1')) return { as: 'Table', version: v };
      if (v !== 'v1') continue;
      if (r.params['as'] === 'PartialObjectMetadata' && !list) return { as: 'PartialObjectMetadata' };
      if (r.params['as'] === 'PartialObjectMetadataList' && list) return { as: 'PartialObjectMetadataList' };
      continue;
    }
    if (r.type === 'application/json' || r.type === '*/*' || r.type === 'application/*') return { as: 'plain', yaml: false };
    if (r.type === 'application/yaml') return { as: 'plain', yaml: true };
  }
  throw notAcceptable(SERVED);
}

const MAX_BODY = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY) {
      throw new StatusError({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'Request entity too large: limit is 3145728',
        reason: 'RequestEntityTooLarge',
        code: 413,
      });
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

/** The media type of a request body, without parameters such as charset. */
export function contentTypeOf(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

/** Decodes a JSON or YAML request body into an object, answering malformed input with 400 like the decoder does. */
export function decodeObject(body: Buffer, yaml: boolean): Record<string, unknown> {
  const text = body.toString('utf8');
  let value: unknown;
  try {
    value = yaml ? load(text) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest(
      `couldn't get version/kind; json parse error: cannot unmarshal ${Array.isArray(value) ? 'array' : typeof value} into Go value of type struct`,
    );
  }
  return value as Record<string, unknown>;
}

/**
 * Paths of keys that appear twice in one JSON object (`spec.mode`, `spec.images[0].repository`): JSON.parse keeps the
 * last silently, but the apiserver's strict decoder reports them under `fieldValidation=Strict` (and warns under Warn).
 * Assumes `text` already parsed as JSON.
 */
export function duplicateJsonFields(text: string): string[] {
  const out: string[] = [];
  type Frame = { obj: boolean; path: string; keys: Set<string>; index: number; key?: string };
  const stack: Frame[] = [];
  const pathOf = (f: Frame | undefined): string => {
    if (!f) return '';
    if (f.obj) return f.key === undefined ? f.path : f.path ? `${f.path}.${f.key}` : f.key;
    return `${f.path}[${f.index}]`;
  };
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top?.obj) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) out.push(top.path ? `${top.path}.${key}` : key);
        top.keys.add(key);
        top.key = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const parent = stack[stack.length - 1];
      stack.push({ obj: c === '{', path: pathOf(parent), keys: new Set(), index: 0 });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
      expectKey = false;
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top?.obj) expectKey = true;
      else if (top) top.index += 1;
    }
  }
  return out;
}
