/**
 * `gitops-gate audit`: why is this Application on this commit, and who signed it? Reads the audit trail from Redis.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig, redactRedisUrl } from '@gitops-gate/config';
import { CheckpointError, parseVerifierKey, type CheckpointVerifier, type DecisionRecord } from '@gitops-gate/gate-core';
import { createAuditTrail, exportAuditRecords } from '@gitops-gate/gate-store';
import { createRedisConnection } from '@gitops-gate/queue';
import { UsageError, type Io } from './io.js';

export const AUDIT_USAGE = `usage: gitops-gate audit [--app NAMESPACE/NAME] [--sha SHA] [--since ISO-DATE|DURATION] [--limit N] [--json] [--redis-url URL]
       gitops-gate audit --verify-chain [--public-key FILE]... [--checkpoint FILE]... [--app NAMESPACE/NAME] [--json] [--redis-url URL]
    --public-key FILE: the gate's checkpoint verifier key (name+hash+base64, as /ui shows it, or an Ed25519 PEM public
    key); repeat it during key rotation. Without it only the hash chain is checked, which whoever can write Redis
    can recompute.
    --checkpoint FILE: signed checkpoints kept outside Redis (the "checkpoint" field of the gate's "audit record"
    log lines, as signed notes or JSON strings, one per line or as JSON); the chains must still contain them.
       gitops-gate audit export [--output FILE] [--since-mark] [--mark] [--redis-url URL]
    Writes records, oldest first, as JSON lines to FILE (appended) or stdout. --since-mark: only records after the
    export mark. --mark: advance the mark to the last record written; with AUDIT_TRIM_REQUIRES_EXPORT=true retention
    trims only records up to the mark.`;

/** Each --public-key file: one or more keys, one per line (note format) or a PEM block. */
function readVerifierKeys(paths: string[]): CheckpointVerifier[] {
  const keys: CheckpointVerifier[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new UsageError(`--public-key: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const entries = text.includes('-----BEGIN')
      ? [text]
      : text
          .split('\n')
          .map((l) => l.trim())
          .filter((l) => l !== '' && !l.startsWith('#'));
    if (entries.length === 0) throw new UsageError(`--public-key: ${path} holds no key`);
    try {
      keys.push(...entries.map((e) => parseVerifierKey(e, `--public-key ${path}`)));
    } catch (err) {
      if (err instanceof CheckpointError) throw new UsageError(err.message);
      throw err;
    }
  }
  return keys;
}

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

/**
 * Signed notes from a file: raw notes (each ends with its signature lines, so they are separated by the next origin
 * line) or JSON strings as they appear in the logs (one per line, or a JSON array).
 */
function readCheckpointFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--checkpoint: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const trimmed = text.trim();
  if (trimmed.startsWith('[') || trimmed.startsWith('"')) {
    try {
      const parsed: unknown = trimmed.startsWith('[') ? JSON.parse(trimmed) : trimmed.split('\n').map((l) => JSON.parse(l) as unknown);
      if (Array.isArray(parsed) && parsed.every((n) => typeof n === 'string')) return parsed;
    } catch {
      // reported below
    }
    throw new UsageError(`--checkpoint: ${path} is neither signed notes nor JSON strings of them`);
  }
  // A note's signature block ends at the first line that is not a signature line: the next note's origin.
  const notes: string[] = [];
  let current = '';
  let inSignatures = false;
  for (const line of text.split('\n')) {
    if (inSignatures && !line.startsWith('\u2014 ')) {
      notes.push(current);
      current = '';
      inSignatures = false;
      if (line === '') continue;
    }
    if (line === '' && current !== '') inSignatures = true;
    current += `${line}\n`;
  }
  if (current.trim() !== '') notes.push(current);
  if (notes.length === 0) throw new UsageError(`--checkpoint: ${path} holds no checkpoint`);
  return notes;
}

async function exportCommand(argv: string[], io: Io): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { output: { type: 'string' }, 'since-mark': { type: 'boolean' }, mark: { type: 'boolean' }, 'redis-url': { type: 'string' } },
  });
  const config = loadConfig({ ...io.env, ...(values['redis-url'] ? { REDIS_URL: values['redis-url'] } : {}) });
  const redis = createRedisConnection(config.REDIS_URL, 'producer', { lazyConnect: true });
  const out = values.output ? createWriteStream(values.output, { flags: 'a' }) : undefined;
  try {
    await redis.connect().catch((err: Error) => {
      throw new UsageError(`cannot reach Redis at ${config.REDIS_URL}: ${err.message}`);
    });
    const write = out
      ? (l: string) => new Promise<void>((resolve, reject) => out.write(l, (err) => (err ? reject(err) : resolve())))
      : (l: string) => void io.stdout.write(l);
    // The mark advances only after every line reached the file (the write callbacks): a crash never marks unwritten records.
    const result = await exportAuditRecords(redis, config.QUEUE_PREFIX, write, {
      sinceMark: values['since-mark'] ?? false,
      mark: values.mark ?? false,
    });
    if (out)
      io.stderr.write(
        `exported ${result.exported} records to ${values.output}${values.mark && result.lastId ? ` (mark ${result.lastId})` : ''}\n`,
      );
    return 0;
  } finally {
    if (out) await new Promise<void>((resolve) => out.end(resolve));
    redis.disconnect();
  }
}

export async function auditCommand(argv: string[], io: Io): Promise<number> {
  if (argv[0] === 'export') return exportCommand(argv.slice(1), io);
  const { values } = parseArgs({
    args: argv,
    options: {
      app: { type: 'string' },
      sha: { type: 'string' },
      since: { type: 'string' },
      limit: { type: 'string' },
      'verify-chain': { type: 'boolean' },
      'public-key': { type: 'string', multiple: true },
      checkpoint: { type: 'string', multiple: true },
      json: { type: 'boolean' },
      'redis-url': { type: 'string' },
    },
  });
  if (values['public-key'] && !values['verify-chain']) throw new UsageError('--public-key needs --verify-chain');
  if (values.checkpoint && !values['public-key'])
    throw new UsageError('--checkpoint needs --public-key (a checkpoint counts only if its signature verifies)');
  const external = values.checkpoint ? values.checkpoint.flatMap(readCheckpointFile) : undefined;
  const verifiers = values['public-key'] ? readVerifierKeys(values['public-key']) : undefined;
  const config = loadConfig({ ...io.env, ...(values['redis-url'] ? { REDIS_URL: values['redis-url'] } : {}) });
  const limit = values.limit ? Number(values.limit) : 100;
  if (!Number.isInteger(limit) || limit <= 0) throw new UsageError('--limit must be a positive integer');
  const redis = createRedisConnection(config.redis, 'producer', { lazyConnect: true });
  try {
    await redis.connect().catch((err: Error) => {
      throw new UsageError(`cannot reach Redis at ${redactRedisUrl(config.REDIS_URL)}: ${err.message}`);
    });
    const audit = createAuditTrail(redis, config.QUEUE_PREFIX);
    if (values['verify-chain']) {
      const check = await audit.verifyChain(values.app, { verifiers, external });
      if (values.json) io.stdout.write(`${JSON.stringify(check, null, 2)}\n`);
      else if (check.ok && verifiers)
        io.stdout.write(`audit chain intact: ${check.checked} records checked, ${check.checkpoints ?? 0} signed checkpoints verified\n`);
      else if (check.ok)
        io.stdout.write(
          `audit chain intact: ${check.checked} records checked (hash chain only: add --public-key to check the signed checkpoints)\n`,
        );
      for (const p of check.problems) io.stderr.write(`tampered: ${p}\n`);
      return check.ok ? 0 : 1;
    }
    const records = await audit.query({
      app: values.app,
      sha: values.sha,
      since: values.since ? parseSince(values.since) : undefined,
      limit,
    });
    if (values.json) io.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
    else for (const r of records) io.stdout.write(`${line(r)}\n`);
    return 0;
  } finally {
    redis.disconnect();
  }
}
