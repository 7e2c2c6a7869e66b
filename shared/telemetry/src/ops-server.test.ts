import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createOpsServer, type Readiness } from './ops-server.js';

let close: (() => void) | undefined;
afterEach(() => close?.());

async function readyz(ready: () => Promise<Readiness>): Promise<{ status: number; body: unknown }> {
  const server = createOpsServer({ registry: new Registry(), ready });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  close = () => server.close();
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`);
  return { status: res.status, body: await res.json() };
}

describe('/readyz', () => {
  it('answers 200/503 from a boolean, and names the problems when given', async () => {
    expect(await readyz(async () => true)).toEqual({ status: 200, body: { ok: true } });
    expect(await readyz(async () => ({ ok: false, problems: ['ClusterGatePolicy CRD not installed'] }))).toEqual({
      status: 503,
      body: { ok: false, problems: ['ClusterGatePolicy CRD not installed'] },
    });
    expect(await readyz(() => Promise.reject(new Error('x')))).toEqual({ status: 503, body: { ok: false } });
  });
});
