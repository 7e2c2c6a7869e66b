/**
 * `gitops-gate audit`: why is this Application on this commit, and who signed it? Reads the audit trail from Redis.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '@gitops-gate/config';
import { createAuditTrail, type DecisionRecord } from '@gitops-gate/gate-core';
import { createRedisConnection } from '@gitops-gate/queue';
import { UsageError, type Io } from './io.js';

export const AUDIT_USAGE = 'usage: gitops-gate audit [--app NAMESPACE/NAME] [--sha SHA] [--since ISO-DATE|DURATION] [--limit N] [--verify-chain] [--json] [--redis-url URL]';

function parseSince(s: string): Date {
  const rel = /^(\d+)([smhd])$/.exec(s);
  if (rel) return new Date(Date.now() - Number(rel[1]) * { s: 1e3, m: 6e4, h: 3.6e6, d: 8.64e7 }[rel[2] as 's' | 'm' | 'h' | 'd']);
  const t = Date.parse(s);
  if (Number.isNaN(t)) throw new UsageError(`--since: ${s} is neither an ISO date nor a duration like 30m, 24h, 7d`);
  return new Date(t);
}

function line(r: DecisionRecord): string {
  const who = r.verdict.signer ? ` signer=${r.verdict.signer} method=${r.verdict.method}` : '';
  return `${r.time} ${r.app} ${r.action} ${r.sha.slice(0, 12)}${who} prev=${r.previousRevision ?? '-'} delivery=${r.deliveryId} — ${r.reason}`;
}

export async function auditCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      app: { type: 'string' },
      sha: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      'verify-chain': { type: 'boolean' },
      json: { type: 'boolean' },
      'redis-url': { type: 'string' },
    },
  });
  const config = loadConfig({ ...io.env, ...(values['redis-url'] ? { REDIS_URL: values['redis-url'] } : {}) });
  const limit = values.limit ? Number(values.limit) : 100;
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  const redis = createRedisConnection(config.REDIS_URL, 'producer', { lazyConnect: true });
  try {
    await redis.connect().catch((err: Error) => {
      throw new UsageError(`cannot reach Redis at ${config.REDIS_URL}: ${err.message}`);
    });
    const audit = createAuditTrail(redis, config.QUEUE_PREFIX);
    if (values['verify-chain']) {
      const check = await audit.verifyChain(values.app);
      if (values.json) io.stdout.write(`${JSON.stringify(check, null, 2)}\n`);
      else if (check.ok) io.stdout.write(`audit chain intact: ${check.checked} records checked\n`);
      for (const p of check.problems) io.stderr.write(`tampered: ${p}\n`);
      return check.ok ? 0 : 1;
    }
    const records = await audit.query({ app: values.app, sha: values.sha, since: values.since ? parseSince(values.since) : undefined, limit });
    if (values.json) io.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    else for (const r of records) io.stdout.write(`${line(r)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}
