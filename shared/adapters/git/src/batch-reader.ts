/**
 * One long-lived `git cat-file --batch` per mirror: reading an object costs a line on a pipe (~0.2 ms) instead of a
 * process (~8 ms, half of it CPU in the parent). Requests are answered in order, so a FIFO of pending reads is the
 * whole protocol. A dead or misbehaving process is dropped; the next read starts a new one.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface GitObject {
  type: string;
  data: Buffer;
}

interface Pending {
  sha: string;
  resolve: (o: GitObject | null) => void;
  reject: (e: Error) => void;
}

export interface BatchReader {
  /** The object, or null when the repository does not have it. */
  read(sha: string): Promise<GitObject | null>;
  close(): void;
}

export interface BatchReaderOptions {
  /** Reads waiting at once; one more is refused rather than queued without bound (default 10,000). */
  maxPending?: number;
  /** A read not answered in this time kills the process (hung git, full disk); the next read starts a new one. */
  timeoutMs?: number;
  /** Called for every process started (tests and metrics count them). */
  onSpawn?: () => void;
}

export function createBatchReader(dir: string, env: NodeJS.ProcessEnv, opts: BatchReaderOptions = {}): BatchReader {
  const maxPending = opts.maxPending ?? 10_000;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  let proc: ChildProcessWithoutNullStreams | undefined;
  let buf: Buffer = Buffer.alloc(0);
  let queue: Pending[] = [];

  // One timer for the oldest read: re-armed whenever the head of the queue changes.
  function arm(): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (queue.length === 0) return;
    timer = setTimeout(() => fail(new Error(`git cat-file --batch did not answer in ${timeoutMs} ms`)), timeoutMs);
    timer.unref();
  }

  function fail(err: Error): void {
    if (timer) clearTimeout(timer);
    timer = undefined;
    const q = queue;
    queue = [];
    proc?.kill('SIGKILL');
    proc = undefined;
    buf = Buffer.alloc(0);
    for (const p of q) p.reject(err);
  }

  function drain(): void {
    const before = queue.length;
    drainQueue();
    if (queue.length !== before) arm();
  }

  function drainQueue(): void {
    for (;;) {
      const head = queue[0];
      if (!head) return;
      const nl = buf.indexOf(0x0a);
      if (nl < 0) return;
      const header = buf.subarray(0, nl).toString('latin1');
      if (header.endsWith(' missing')) {
        buf = buf.subarray(nl + 1);
        queue.shift();
        head.resolve(null);
        continue;
      }
      const m = /^([0-9a-f]{40,64}) (\S+) (\d+)$/.exec(header);
      if (!m || m[1] !== head.sha) {
        fail(new Error(`git cat-file --batch answered ${JSON.stringify(header.slice(0, 100))} for ${head.sha}`));
        return;
      }
      const size = Number(m[3]);
      if (buf.length < nl + 1 + size + 1) return;
      const data = Buffer.from(buf.subarray(nl + 1, nl + 1 + size));
      buf = buf.subarray(nl + 1 + size + 1);
      queue.shift();
      head.resolve({ type: m[2]!, data });
    }
  }

  function start(): ChildProcessWithoutNullStreams {
    opts.onSpawn?.();
    const p = spawn('git', ['cat-file', '--batch'], { cwd: dir, env, stdio: ['pipe', 'pipe', 'pipe'] });
    p.stdout.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      drain();
    });
    p.stderr.resume();
    p.on('error', (err) => fail(err));
    p.on('exit', () => {
      if (proc === p) fail(new Error('git cat-file --batch exited'));
    });
    p.stdin.on('error', () => undefined);
    // Idle readers must not keep the process alive at shutdown.
    p.unref();
    (p.stdout as unknown as { unref?: () => void }).unref?.();
    (p.stderr as unknown as { unref?: () => void }).unref?.();
    (p.stdin as unknown as { unref?: () => void }).unref?.();
    return p;
  }

  return {
    read(sha) {
      if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(sha)) return Promise.reject(new Error(`not a sha: ${sha}`));
      if (queue.length >= maxPending) return Promise.reject(new Error(`git cat-file --batch: ${maxPending} reads already waiting`));
      proc ??= start();
      const p = proc;
      return new Promise((resolve, reject) => {
        queue.push({ sha, resolve, reject });
        if (queue.length === 1) arm();
        p.stdin.write(`${sha}\n`);
      });
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      const p = proc;
      proc = undefined;
      p?.stdin.end();
      p?.kill();
    },
  };
}
