/**
 * The end-to-end tests' usual start: a temporary work directory with the demo repository and policy, a fresh
 * redis-server on a free port, and the stack seeded with the demo Application and policy. One place, so every test
 * file starts the pipeline the same way and stops everything it started.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRedis, type TestRedis } from '@gitops-gate/testing';
import { createAppReader, createDemoFixture, gateUrlOf, type DemoFixture } from './demo.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

export interface DemoStackOptions extends Partial<Omit<StackOptions, 'workDir' | 'redisUrl'>> {
  /** Names the temporary directory (`gg-<name>-…`) and the queue prefix (`<name>-<8 hex>`, unless `queuePrefix`). */
  name: string;
  /** Stack options that need the fixture (a seed without the policy, extra Applications…); applied last. */
  withFixture?: (fx: DemoFixture, workDir: string) => Partial<StackOptions>;
}

export interface DemoStack {
  workDir: string;
  fx: DemoFixture;
  redis: TestRedis;
  stack: Stack;
  readApp: ReturnType<typeof createAppReader>;
  gateUrl: string;
  /** Stops the stack, then Redis. */
  stop(): Promise<void>;
}

export async function startDemoStack(opts: DemoStackOptions): Promise<DemoStack> {
  const { name, withFixture, ...options } = opts;
  const workDir = mkdtempSync(join(tmpdir(), `gg-${name}-`));
  const fx = createDemoFixture(workDir);
  const redis = await startTestRedis();
  let stack: Stack;
  try {
    stack = await startStack({
      workDir,
      redisUrl: redis.url,
      seed: [fx.application, fx.policy],
      urlRewrites: fx.urlRewrites,
      queuePrefix: `${name}-${randomUUID().slice(0, 8)}`,
      ...options,
      ...withFixture?.(fx, workDir),
    });
  } catch (err) {
    await redis.close();
    throw err;
  }
  return {
    workDir,
    fx,
    redis,
    stack,
    readApp: createAppReader(stack.kubeconfig),
    gateUrl: gateUrlOf(stack),
    stop: async () => {
      await stack.stop();
      await redis.close();
    },
  };
}
