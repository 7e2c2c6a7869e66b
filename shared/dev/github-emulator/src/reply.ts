// How every handler answers: a JSON body with GitHub's x-ratelimit-* headers; returns the status for the request log.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorState } from './state.js';

export type Reply = (status: number, body: unknown, extra?: Record<string, string>) => number;

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}

export function rateHeaders(s: EmulatorState): Record<string, string> {
  return {
    'x-ratelimit-limit': String(s.limit),
    'x-ratelimit-remaining': String(Math.max(0, s.remaining)),
    'x-ratelimit-reset': String(s.resetAt),
    'x-ratelimit-used': String(s.limit - Math.max(0, s.remaining)),
    'x-ratelimit-resource': 'core',
  };
}

/** The headers are read when the answer is sent, so they show the quota after this request took its share. */
export function replyTo(s: EmulatorState, res: ServerResponse): Reply {
  return (status, body, extra = {}) => {
    json(res, status, body, { ...rateHeaders(s), ...extra });
    return status;
  };
}

export async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  if (chunks.length === 0) return {};
  const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}
