import { Counter, Gauge, type Registry } from 'prom-client';

export interface VerifierMetrics {
  /** A verdict cache lookup (commit verdicts, image results): hit or miss. */
  cacheLookup: (kind: 'commit' | 'image', hit: boolean) => void;
  /** Reports verifications run here vs verdicts taken from another replica's in-flight one, read at scrape time. */
  watchCoalescing: (read: () => { verified: number; coalesced: number }) => void;
}

/** The verifier's own metrics (bench: duplicate verifications coalesced; cache hit ratio). */
export function createVerifierMetrics(registry: Registry): VerifierMetrics {
  const lookups = new Counter({
    name: 'gitops_gate_verdict_cache_lookups_total',
    help: 'Verdict cache lookups by kind and result',
    labelNames: ['kind', 'result'] as const,
    registers: [registry],
  });
  return {
    cacheLookup: (kind, hit) => lookups.inc({ kind, result: hit ? 'hit' : 'miss' }),
    watchCoalescing(read) {
      new Gauge({
        name: 'gitops_gate_commit_verifications',
        help: 'Commit signature verifications run by this process, and verdicts coalesced from another in-flight verification',
        labelNames: ['result'] as const,
        registers: [registry],
        collect() {
          const c = read();
          this.set({ result: 'verified' }, c.verified);
          this.set({ result: 'coalesced' }, c.coalesced);
        },
      });
    },
  };
}
