// Redis memory by key family, for the soak: every key under the prefix is put in a family (a BullMQ queue's lists
// and job hashes apart, the rest by the README's "Redis keys" table), and each family's key count, items (stream,
// sorted set, list, set and hash lengths) and MEMORY USAGE are summed. Read-only; a few hundred ms for 50 000 keys.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './util.js';

const QUEUES = ['verify', 'gate', 'report'];
/** BullMQ's fixed per-queue keys (lists, sets, streams, counters), named as themselves. */
const BULL_KEYS = new Set([
  'wait',
  'active',
  'paused',
  'delayed',
  'prioritized',
  'completed',
  'failed',
  'events',
  'meta',
  'id',
  'stalled',
  'stalled-check',
  'marker',
  'pc',
  'limiter',
  'repeat',
  'metrics:completed',
  'metrics:completed:data',
  'metrics:failed',
  'metrics:failed:data',
]);

/** The README's key table rows as [family, RegExp over the key without the prefix]. */
function readmeRows() {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const rows = [];
  for (const line of readme.slice(readme.indexOf('### Redis keys')).split('\n')) {
    const m = /^\| `<prefix>(:[^`]+)` \|/.exec(line);
    if (!m || m[1].endsWith(':*')) continue;
    const body = m[1]
      .split(/(<[^>]+>)/)
      .map((part) => (part.startsWith('<') ? '.+' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
      .join('');
    rows.push([`<prefix>${m[1]}`, new RegExp(`^${body}$`)]);
  }
  return rows;
}

let rows;
/** The family of one key (the prefix already removed, starting with ':'). */
export function familyOf(rest) {
  rows ??= readmeRows();
  for (const q of QUEUES) {
    if (!rest.startsWith(`:${q}:`)) continue;
    const tail = rest.slice(q.length + 2);
    if (tail.startsWith('de:')) return `${q}:de:<delivery id>`;
    if (BULL_KEYS.has(tail)) return `${q}:${tail}`;
    const sub = /:(logs|lock|dependencies|processed|failed|unsuccessful)$/.exec(tail);
    return sub ? `${q}:<job>:${sub[1]}` : `${q}:<job>`;
  }
  for (const [family, re] of rows) if (re.test(rest)) return family;
  return `undocumented ${rest.replace(/[0-9a-f-]{16,}/g, '<id>')}`;
}

const LENGTH = { stream: 'xlen', zset: 'zcard', list: 'llen', set: 'scard', hash: 'hlen' };

/** { family: { keys, items, bytes } } for every key under `prefix:`. */
export async function keyFamilies(redis, prefix) {
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const out = {};
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const p = redis.pipeline();
    // SAMPLES 0: exact. The default samples 5 fields or entries and extrapolates, which misjudges job hashes (one large
    // `data` field among small ones).
    for (const k of batch) p.type(k).memory('USAGE', k, 'SAMPLES', '0');
    const res = await p.exec();
    const lengths = redis.pipeline();
    const counted = [];
    batch.forEach((k, j) => {
      const type = res[2 * j][1];
      const fam = familyOf(k.slice(prefix.length));
      const f = (out[fam] ??= { keys: 0, items: 0, bytes: 0 });
      f.keys += 1;
      f.bytes += Number(res[2 * j + 1][1] ?? 0);
      // Job hashes' field counts say nothing; a stream's or sorted set's length is what a bound caps.
      if (LENGTH[type] && !fam.endsWith('<job>')) {
        lengths[LENGTH[type]](k);
        counted.push(f);
      }
    });
    const lens = await lengths.exec();
    counted.forEach((f, j) => (f.items += Number(lens[j][1] ?? 0)));
  }
  return out;
}
