/**
 * What every service process does around its business logic, in one place: a BullMQ Worker with the project's
 * stall/lock settings and failure logging, and a shutdown that runs once on SIGTERM/SIGINT, closes things in the
 * order given (workers first, so jobs in hand finish; then queues, servers, Redis, tracing), logs a failing step
 * with its error and still runs the rest, and exits 0 only when every step closed cleanly.
 */
import { Worker, type Processor } from 'bullmq';
import type { Redis } from 'ioredis';

/** The part of a pino logger this module needs (kept structural so the queue package does not import telemetry). */
export interface LifecycleLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ServiceWorkerOptions {
  /** A connection of its own (BullMQ blocks it): createRedisConnection(url, 'worker'). */
  connection: Redis;
  prefix: string;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  logger: LifecycleLogger;
  /** Log message for a failed job, e.g. 'verify job failed'. */
  failedMessage: string;
}

const RESULT_STRING_MAX = 200;

/**
 * What a job's return value keeps in Redis: its top-level strings (cut to 200 characters), numbers and booleans.
 * BullMQ stores a return value twice, in the completed job's hash and in the queue's events stream, and nothing reads
 * it back (decisions live in the audit trail). A whole verdict with its history is 2–11 KB, so in the soak the events
 * streams were the largest key families; the summary (outcome, code, sha, …) still tells an operator what happened.
 */
export function compactResult(value: unknown): unknown {
  if (typeof value === 'string') return value.slice(0, RESULT_STRING_MAX);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return null;
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v === 'string') out[k] = v.slice(0, RESULT_STRING_MAX);
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** A Worker with the settings every service uses; what its jobs return is stored compacted (compactResult). */
export function createServiceWorker(queueName: string, processor: Processor, opts: ServiceWorkerOptions): Worker {
  const compacting: Processor = async (job, token, signal) => compactResult(await processor(job, token, signal));
  const worker = new Worker(queueName, compacting, {
    connection: opts.connection,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    // Long jobs (a large fetch) keep their lock: it is renewed while the job runs.
    lockDuration: opts.lockDurationMs,
    stalledInterval: opts.stalledIntervalMs,
    // A job whose worker died is retried by another; only a job that kills workers repeatedly is given up.
    maxStalledCount: 3,
  });
  worker.on('failed', (job, err) => opts.logger.warn({ jobId: job?.id, attempts: job?.attemptsMade, err }, opts.failedMessage));
  worker.on('error', (err) => opts.logger.warn({ err }, 'worker error'));
  return worker;
}

export interface ShutdownStep {
  name: string;
  close(): unknown;
}

/** The process surface shutdown uses: signals in, exit out (a fake in tests). */
export interface SignalSource {
  on(signal: 'SIGTERM' | 'SIGINT', listener: () => void): unknown;
}

export interface ShutdownOptions {
  service: string;
  logger: LifecycleLogger;
  /** Closed in this order. */
  steps: ShutdownStep[];
  signals?: SignalSource;
  exit?: (code: number) => void;
}

export interface Shutdown {
  /** Runs the steps once (later calls get the first run's result) and exits with 0, or 1 if a step failed. */
  run(signal: string): Promise<number>;
}

export function installShutdown(opts: ShutdownOptions): Shutdown {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let running: Promise<number> | undefined;
  async function closeAll(signal: string): Promise<number> {
    opts.logger.info({ signal }, 'service stopping');
    let code = 0;
    for (const step of opts.steps) {
      try {
        await step.close();
      } catch (err) {
        // Keep closing the rest: a queue that fails to close must not keep Redis or the HTTP port open.
        code = 1;
        opts.logger.error({ err, step: step.name }, 'shutdown step failed');
      }
    }
    exit(code);
    return code;
  }
  const run = (signal: string): Promise<number> => (running ??= closeAll(signal));
  const signals = opts.signals ?? process;
  for (const s of ['SIGTERM', 'SIGINT'] as const) signals.on(s, () => void run(s));
  return { run };
}
