/** Writing answers: JSON/YAML bodies with the apiserver's headers, Status errors, and the Table/metadata renderings. */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dump } from 'js-yaml';
import type { Rendering } from './http-util.js';
import { present } from './state.js';
import type { StatusError } from './status.js';
import type { Obj } from './store.js';
import { partialMetadata, toTable, type IncludeObject } from './table.js';
import type { ResourceKind } from './types.js';

export interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  method: string;
  path: string;
  query: URLSearchParams;
  /** `Warning` headers of the answer (299 warnings, e.g. unknown fields under fieldValidation=Warn). */
  warnings: string[];
  record(status: number): void;
}

export function send(
  ctx: Ctx,
  status: number,
  body: unknown,
  opts: { contentType?: string; yaml?: boolean; headers?: Record<string, string> } = {},
): void {
  const yaml = opts.yaml === true;
  const text = yaml ? dump(body) : `${JSON.stringify(body)}\n`;
  ctx.res.writeHead(status, {
    'Content-Type': opts.contentType ?? (yaml ? 'application/yaml' : 'application/json'),
    'Cache-Control': 'no-cache, private',
    'Audit-Id': randomUUID(),
    ...(ctx.warnings.length > 0 ? { Warning: ctx.warnings.map((w) => `299 - ${JSON.stringify(w)}`) } : {}),
    ...(opts.headers ?? {}),
  });
  ctx.res.end(text);
  ctx.record(status);
}

export function sendStatus(ctx: Ctx, err: StatusError): void {
  send(ctx, err.status.code, err.status, { headers: err.headers });
}

export function renderOne(kind: ResourceKind, obj: Obj, rendering: Rendering, query: URLSearchParams): { body: unknown; yaml: boolean } {
  switch (rendering.as) {
    case 'Table':
      return {
        body: tableOf(kind, [present(kind, obj)], rendering.version, query, { resourceVersion: obj.metadata.resourceVersion }),
        yaml: false,
      };
    case 'PartialObjectMetadata':
      return { body: partialMetadata(obj), yaml: false };
    default:
      return { body: present(kind, obj), yaml: rendering.as === 'plain' && rendering.yaml };
  }
}

export function tableOf(
  kind: ResourceKind,
  objs: Obj[],
  version: string,
  query: URLSearchParams,
  listMeta: Record<string, unknown>,
  noHeaders = false,
): object {
  const include = (query.get('includeObject') ?? 'Metadata') as IncludeObject;
  const t = toTable(kind, objs, {
    include: ['None', 'Metadata', 'Object'].includes(include) ? include : 'Metadata',
    listMeta,
    noHeaders,
  }) as Record<string, unknown>;
  if (version === 'v1beta1') t['apiVersion'] = 'meta.k8s.io/v1beta1';
  return t;
}

// ---------------------------------------------------------------- handlers
