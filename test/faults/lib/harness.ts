/**
 * The fault-test harness: the real pipeline (receiver, verifiers and gates as separate Node processes from their
 * built dist/, a real redis-server with AOF that the test can kill and restart, the sandbox Kubernetes API server) plus
 * the instruments the fault tests read: the audit stream straight from Redis, the sandbox's request log, BullMQ
 * queue counts, the Application's revision sampled over time, and a smart-HTTP git server that can park a
 * process's fetch so a test kills it mid-job, not before or after.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { QUEUE_GATE, QUEUE_VERIFY } from '@gitops-gate/contracts';
import {
  createAppReader,
  createDemoFixture,
  DEMO_APP,
  DEMO_REPO_URL,
  startStack,
  type DemoFixture,
  type ServiceName,
  type ServiceProcess,
  type Stack,
} from '@gitops-gate/local-stack';
import { deliveryHeaders, pushPayload, startTestRedis, type SentinelTopology, type TestRedis } from '@gitops-gate/testing';
import { startGitHttpServer, type GitHttpServer } from './git-http.js';

export const APP_KEY = `${DEMO_APP.namespace}/${DEMO_APP.name}`;
export const APP_PATH = `/apis/argoproj.io/v1alpha1/namespaces/${DEMO_APP.namespace}/applications/${DEMO_APP.name}`;

/** What the gate stores per decision (gate-core's DecisionRecord, the fields the tests read). */
export interface AuditRecord {
  id: string;
  time: string;
  deliveryId: string;
  sha: string;
  app: string;
  action: string;
  reason: string;
  previousRevision?: string;
  newRevision?: string;
  verdict: { outcome: string; code: string; signer?: string };
}

export interface Harness {
  workDir: string;
  redis: TestRedis;
  stack: Stack;
  fx: DemoFixture;
  git: GitHttpServer;
  prefix: string;
  /** Plain client for inspection (its own connection; not used by the services). */
  client: Redis;
  verifyQueue: Queue;
  gateQueue: Queue;
  logs: string[];
  readApp: () => Promise<{ revision: string | undefined; annotations: Record<string, string>; resourceVersion: string | undefined }>;
  /** Starts one more service process; its git fetches go through `/<tag>/` of the git server (default: its name). */
  spawn(service: ServiceName, tag?: string): Promise<ServiceProcess & { tag: string }>;
  /** SIGKILL the process and every process it started (as a container crash does), and wait until it is gone. */
  kill9(proc: ServiceProcess): Promise<void>;
  /** Every decision in the audit stream, oldest first (read from Redis: the API pages newest-first and caps at 1000). */
  audit(): Promise<AuditRecord[]>;
  /** PATCH requests the sandbox answered for the demo Application. */
  patches(): { status: number }[];
  gateUrl(): string;
  /** Commits `n` signed (or unsigned) commits on main, pushes once, and returns their shas oldest first. */
  commits(n: number, opts?: { signed?: boolean; label?: string }): string[];
  /** Position of a sha in the linear history made by commits(); -1 for anything else (e.g. the branch name). */
  order(sha: string | undefined): number;
  close(): Promise<void>;
}

export interface HarnessOptions {
  verifiers?: number;
  gates?: number;
  logLevel?: string;
  env?: Record<string, string>;
  /** Keep service log lines matching this (default: everything). */
  keepLog?: (line: string) => boolean;
  appendfsync?: 'always' | 'everysec' | 'no';
  /**
   * Run on a Sentinel topology instead of one redis-server: the services get REDIS_SENTINELS, `redis` is the initial
   * master's process (the test can kill it), and the harness's own clients follow failovers through the sentinels.
   */
  sentinel?: SentinelTopology;
}

/** `redis` of the harness for a Sentinel topology: the initial master's process. */
function masterAsTestRedis(t: SentinelTopology): TestRedis {
  return {
    url: `redis://127.0.0.1:${t.master.port}`,
    port: t.master.port,
    dir: t.master.dir,
    stop: t.master.stop,
    start: t.master.start,
    close: t.close,
  };
}

/** The pipeline most fault tests run: the harness's receiver, two verifiers (they share the queue) and one gate. */
export async function startPipelineHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const h = await startHarness(opts);
  await h.spawn('verifier');
  await h.spawn('verifier');
  await h.spawn('gate');
  return h;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const workDir = mkdtempSync(join(tmpdir(), 'gg-faults-'));
  const fx = createDemoFixture(workDir);
  const redis = opts.sentinel ? masterAsTestRedis(opts.sentinel) : await startTestRedis({ appendfsync: opts.appendfsync });
  const sentinelEnv: Record<string, string> = opts.sentinel
    ? { REDIS_SENTINELS: opts.sentinel.sentinelList, REDIS_SENTINEL_MASTER: opts.sentinel.masterName }
    : {};
  const clientOptions = opts.sentinel
    ? {
        sentinels: opts.sentinel.sentinels.map((n) => ({ host: '127.0.0.1', port: n.port })),
        name: opts.sentinel.masterName,
        sentinelRetryStrategy: () => 200,
        reconnectOnError: () => true,
      }
    : {};
  // The fixture's bare remote is <workDir>/demo/repo/remote.git: serve <workDir>/demo/repo.
  const git = await startGitHttpServer(join(workDir, 'demo', 'repo'));
  const prefix = `faults-${randomUUID().slice(0, 8)}`;
  const logs: string[] = [];
  const keep = opts.keepLog ?? (() => true);
  const stack = await startStack({
    workDir,
    redisUrl: redis.url,
    seed: [fx.application],
    allowedSignersFile: fx.allowedSignersFile,
    urlRewrites: { [DEMO_REPO_URL]: `${git.urlFor('receiver')}/remote.git` },
    verifiers: 0,
    gates: 0,
    queuePrefix: prefix,
    logLevel: opts.logLevel ?? 'info',
    // The reconciler (lost-webhook backstop, every 180 s by default) is off: these tests check that the delivery path
    // itself loses nothing, and its ls-remote would also pass through the parked git server.
    // Short worker locks: a killed worker's jobs move on in ~15 s instead of ~45 s (the defaults), keeping the suite short.
    // Verdicts carry no history, so the gate fetches for its ancestry check — that fetch is where the git server parks
    // a gate mid-decision.
    env: {
      GATE_RECONCILE_SECONDS: '0',
      WORKER_LOCK_DURATION_MS: '10000',
      WORKER_STALLED_INTERVAL_MS: '5000',
      VERDICT_HISTORY_DEPTH: '0',
      ...sentinelEnv,
      ...opts.env,
    },
    onLog: (service, line) => {
      if (keep(line)) logs.push(`${service} ${line}`);
    },
  });
  const client = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 1_000), ...clientOptions });
  client.on('error', () => undefined);
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null, retryStrategy: (n) => Math.min(n * 100, 1_000), ...clientOptions });
  connection.on('error', () => undefined);
  const verifyQueue = new Queue(QUEUE_VERIFY, { connection, prefix });
  const gateQueue = new Queue(QUEUE_GATE, { connection, prefix });
  verifyQueue.on('error', () => undefined);
  gateQueue.on('error', () => undefined);
  const readAppRaw = createAppReader(stack.kubeconfig);
  const orderOf = new Map<string, number>();
  let made = 0;

  const h: Harness = {
    workDir,
    redis,
    stack,
    fx,
    git,
    prefix,
    client,
    verifyQueue,
    gateQueue,
    logs,
    readApp: () => readAppRaw(DEMO_APP.namespace, DEMO_APP.name),
    async spawn(service, tag) {
      const n = stack.processes.filter((p) => p.service === service).length + 1;
      const t = tag ?? `${service}-${n}`;
      // spawnService copies stack.env at spawn time: each process gets its own path on the git server.
      stack.env.GIT_URL_REWRITES = JSON.stringify({ [DEMO_REPO_URL]: `${git.urlFor(t)}/remote.git` });
      const p = await stack.spawnService(service);
      // Tests find a process by the tag its fetches carry: by default the two are the same name.
      if (tag === undefined && p.name !== t) throw new Error(`spawned ${p.name}, expected ${t}`);
      return Object.assign(p, { tag: t });
    },
    async kill9(proc) {
      const pid = proc.child.pid;
      if (pid === undefined || proc.child.exitCode !== null || proc.child.signalCode !== null) return;
      const family = descendants(pid);
      const exited = new Promise((r) => proc.child.once('exit', r));
      proc.child.kill('SIGKILL');
      for (const p of family) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await exited;
    },
    async audit() {
      const out: AuditRecord[] = [];
      let start = '-';
      for (;;) {
        const page = await client.xrange(`${prefix}:audit`, start, '+', 'COUNT', 1000);
        for (const [id, fields] of page) {
          start = `(${id}`;
          const json = fields[fields.indexOf('record') + 1];
          if (json) out.push(JSON.parse(json) as AuditRecord);
        }
        if (page.length < 1000) return out;
      }
    },
    patches: () =>
      (stack.sandbox?.requests() ?? []).filter((r) => r.method === 'PATCH' && r.path === APP_PATH).map((r) => ({ status: r.status })),
    gateUrl() {
      const gate = stack.processes.find((p) => p.service === 'gate' && p.child.exitCode === null && p.child.signalCode === null);
      if (!gate) throw new Error('no live gate process');
      return `http://127.0.0.1:${gate.port}`;
    },
    commits(n, o = {}) {
      const shas: string[] = [];
      for (let i = 0; i < n; i++) {
        made += 1;
        const sha = fx.repo.commit(`${o.label ?? 'c'} ${made}`, o.signed === false ? {} : { signWith: fx.key });
        orderOf.set(sha, made);
        shas.push(sha);
      }
      fx.repo.push();
      return shas;
    },
    order: (sha) => (sha === undefined ? -1 : (orderOf.get(sha) ?? -1)),
    async close() {
      await stack.stop().catch(() => undefined);
      await verifyQueue.close().catch(() => undefined);
      await gateQueue.close().catch(() => undefined);
      connection.disconnect();
      client.disconnect();
      await git.close().catch(() => undefined);
      await redis.close().catch(() => undefined);
      rmSync(workDir, { recursive: true, force: true });
    },
  };
  return h;
}

/** Every process started by pid, transitively (from /proc/<pid>/task/<tid>/children). */
export function descendants(pid: number): number[] {
  const out: number[] = [];
  const walk = (p: number): void => {
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${p}/task`);
    } catch {
      return;
    }
    for (const tid of tids) {
      let children: string;
      try {
        children = readFileSync(`/proc/${p}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const c of children.split(/\s+/).filter(Boolean).map(Number)) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}

/** Resident set size of a process in KiB (VmRSS of /proc/<pid>/status). */
export function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Local TCP ports of the sockets a process holds open (to find its connections in Redis's CLIENT LIST). */
export function tcpLocalPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 9 && inodes.has(cols[9]!)) ports.add(Number.parseInt(cols[1]!.split(':')[1]!, 16));
    }
  }
  return ports;
}

/** Polls `check` until it returns a value other than undefined/false; throws naming `what` after timeoutMs. */
export async function waitFor<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(everyMs);
  }
}

/**
 * Samples the Application's targetRevision every `everyMs` until stopped: the revisions it was seen on, in order,
 * without repeats. A revision is never skipped backwards if each entry is a descendant of the one before.
 */
export function sampleRevisions(h: Harness, everyMs = 20): { stop(): Promise<string[]> } {
  const seen: string[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      try {
        const r = (await h.readApp()).revision ?? '';
        if (seen[seen.length - 1] !== r) seen.push(r);
      } catch {
        // the sandbox is in this process: a read fails only while the test is tearing down
      }
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

/** True when every entry comes after the one before in the harness's linear history (branch names count as -1). */
export function neverBackwards(h: Harness, revisions: (string | undefined)[]): boolean {
  const idx = revisions.map((r) => h.order(r));
  return idx.every((v, i) => i === 0 || v > idx[i - 1]!);
}

/** Count of records per sha with the given action. */
export function countBy(records: AuditRecord[], action: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of records) if (r.action === action) m.set(r.sha, (m.get(r.sha) ?? 0) + 1);
  return m;
}

export interface Answer {
  status: number;
  body: string;
  retryAfter: string | null;
  ms: number;
}

/**
 * Delivers a signed `push` for sha as GitHub does (same delivery id and bytes on every redelivery). A refused
 * connection or reset is status 0: GitHub counts it as failed and redelivers.
 */
export async function deliverPush(h: Harness, d: { sha: string; before?: string; delivery: string }): Promise<Answer> {
  const body = JSON.stringify(pushPayload({ repoUrl: DEMO_REPO_URL, fullName: 'demo/app', after: d.sha, before: d.before }));
  const headers = deliveryHeaders(h.stack.secrets[0]!, 'push', body, d.delivery);
  const t0 = performance.now();
  try {
    const res = await fetch(`${h.stack.receiverUrl}/webhooks/github`, {
      method: 'POST',
      headers,
      body,
      signal: AbortSignal.timeout(15_000),
    });
    return { status: res.status, body: await res.text(), retryAfter: res.headers.get('retry-after'), ms: performance.now() - t0 };
  } catch (err) {
    return { status: 0, body: String((err as Error).message), retryAfter: null, ms: performance.now() - t0 };
  }
}

/** Runs fn over items with at most `concurrency` in flight; resolves when all are done. */
export async function pool<T>(items: T[], concurrency: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}
