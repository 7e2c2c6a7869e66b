import type { AuditTrail } from './audit.js';

/**
 * The audit trail whose `record` resolves only once the record reached the required Redis replicas (`wait` is the
 * replication WAIT on the trail's connection). A rejection fails the gate job before the pin is acknowledged; the
 * retry finds the pin by its decision id and records it again ("unrecorded pin recovered"), so a failover that takes
 * the unreplicated record back cannot leave a pin without its record.
 */
export function withReplicatedRecords(audit: AuditTrail, wait: () => Promise<void>): AuditTrail {
  return {
    ...audit,
    async record(input) {
      const rec = await audit.record(input);
      await wait();
      return rec;
    },
  };
}
