/**
 * The policies in force, published in Redis (`<prefix>:policies`) for the verifiers and the admission webhook, which
 * have no Kubernetes access; read back by the gate at start-up so an Enforce policy that is invalid now keeps its
 * earlier valid generation.
 */
import type { Redis } from 'ioredis';
import { policySnapshotKey, policySnapshotSchema, type PolicySnapshot } from '@gitops-gate/contracts';
import type { PolicySet } from '@gitops-gate/gate-core';

export async function publishPolicySnapshot(redis: Redis, prefix: string, set: PolicySet): Promise<void> {
  const snapshot: PolicySnapshot = { revision: set.revision, policies: set.objects as Record<string, unknown>[] };
  await redis.set(policySnapshotKey(prefix), JSON.stringify(snapshot));
}

/** The policy objects last published (none before the first publication); throws when the snapshot is unreadable. */
export async function readPolicySnapshot(redis: Redis, prefix: string): Promise<object[]> {
  return policySnapshotSchema.parse(JSON.parse((await redis.get(policySnapshotKey(prefix))) ?? '{"revision":"","policies":[]}')).policies;
}
