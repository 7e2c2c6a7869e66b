import type { Redis } from 'ioredis';
import type { Config } from '@gitops-gate/config';
import {
  FINAL_INDEX_TTL_SECONDS,
  readSigningKeyFile,
  withReplicatedRecords,
  type AuditSigning,
  type AuditTrail,
} from '@gitops-gate/gate-core';
import { createAuditTrail, trimAuditTrail } from '@gitops-gate/gate-store';
import { createReplicationWait } from '@gitops-gate/queue';
import type { Logger } from '@gitops-gate/telemetry';
import { createAuditTrimmer, type AuditTrimmer } from './audit-trimmer.js';

/** The coverage index lives as long as the records (30 days without an age limit). */
export const auditIndexSeconds = (retentionSeconds: number): number => (retentionSeconds > 0 ? retentionSeconds : FINAL_INDEX_TTL_SECONDS);

type AuditConfig = Pick<Config, 'AUDIT_SIGNING_KEY_FILE' | 'GATE_CLUSTER_NAME' | 'AUDIT_RETENTION_SECONDS' | 'QUEUE_PREFIX' | 'redis'>;

/**
 * The audit trail lives in a Redis stream (durable with AOF, shared by replicas, ordered) and every record is also
 * logged in full with a constant message, for SIEM pipelines. With a key, each record's MULTI also stores a signed
 * checkpoint of the chain, logged with the record so a copy outside Redis survives a Redis writer who rolls the trail
 * back; an unreadable key file throws (the gate stops rather than run unsigned by mistake). A pin is acknowledged
 * (its job completes) only once its record reached the replicas: see withReplicatedRecords.
 */
export function createGateAudit(
  config: AuditConfig,
  redis: Redis,
  logger: Logger,
): { audit: AuditTrail; signing: AuditSigning | undefined; auditKey: string | undefined } {
  const signer = config.AUDIT_SIGNING_KEY_FILE ? readSigningKeyFile(config.AUDIT_SIGNING_KEY_FILE, 'AUDIT_SIGNING_KEY_FILE') : undefined;
  if (signer) logger.info({ auditKey: signer.verifier.text }, 'audit checkpoints signed');
  else logger.warn('audit checkpoints unsigned (AUDIT_SIGNING_KEY_FILE unset): a Redis writer could rewrite the trail undetected');
  const signing = signer ? { signer, cluster: config.GATE_CLUSTER_NAME } : undefined;
  const replication = createReplicationWait(redis, {
    replicas: config.redis.waitReplicas,
    timeoutMs: config.redis.waitTimeoutMs,
    sentinel: config.redis.sentinels.length > 0,
    ...(config.redis.cluster ? { hashTag: config.QUEUE_PREFIX } : {}),
  });
  const trail = createAuditTrail(
    redis,
    config.QUEUE_PREFIX,
    undefined,
    (record, checkpoint) => logger.info({ audit: record, checkpoint }, 'audit record'),
    signing,
    auditIndexSeconds(config.AUDIT_RETENTION_SECONDS),
  );
  return { audit: withReplicatedRecords(trail, replication.wait), signing, auditKey: signer?.verifier.text };
}

/** The audit retention job as configured (AUDIT_RETENTION_*, AUDIT_TRIM_*): see createAuditTrimmer; not started. */
export function auditTrimmerFromConfig(
  config: Pick<
    Config,
    'AUDIT_RETENTION_SECONDS' | 'AUDIT_RETENTION_RECORDS' | 'AUDIT_TRIM_REQUIRES_EXPORT' | 'AUDIT_TRIM_INTERVAL_SECONDS' | 'QUEUE_PREFIX'
  >,
  redis: Redis,
  signing: AuditSigning | undefined,
  logger: Logger,
): AuditTrimmer {
  const retention = {
    maxAgeSeconds: config.AUDIT_RETENTION_SECONDS,
    maxRecords: config.AUDIT_RETENTION_RECORDS,
    requireExport: config.AUDIT_TRIM_REQUIRES_EXPORT,
  };
  return createAuditTrimmer({
    redis,
    prefix: config.QUEUE_PREFIX,
    retention,
    intervalSeconds: config.AUDIT_TRIM_INTERVAL_SECONDS,
    holder: String(process.pid),
    trim: (now) => trimAuditTrail(redis, config.QUEUE_PREFIX, retention, now, signing),
    logger,
  });
}
