/**
 * The webhook's HTTP surface: POST /validate takes an AdmissionReview and answers one (200 with allowed true/false),
 * 400 for anything that is not a review of a supported kind, 413 over the body limit. The decision's inputs are
 * passed in (in-memory policies and pins, verdicts through the bounded cache), so this file does no I/O itself.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { StoredImageResult } from '@gitops-gate/gate-core';
import { hasCode } from '@gitops-gate/contracts/errors';
import { ADMISSION_ERROR_CODES, buildsToLookUp, decideAdmission, type AdmissionDecision, type AdmissionPolicy } from './decide.js';
import { addsNoImage, readReview, reviewResponse, type ReviewedWorkload } from './review.js';

export interface AdmissionDeps {
  /** The policies guarding a namespace (see policiesForNamespace; createNamespaceIndex memoises them). */
  policiesFor(namespace: string): AdmissionPolicy[];
  pinned(namespace: string): ReadonlySet<string>;
  /**
   * Stored results for `repository@digest` keys: main.ts passes the cached lookup (result-cache.ts), so a review
   * usually makes no Redis round trip; results are never older than ADMISSION_RESULT_CACHE_MS.
   */
  lookup(builds: string[]): Promise<Map<string, StoredImageResult[]>>;
  /**
   * `verify` mode only: called with the builds that have no verdict; resolves when they may have one (bounded by the
   * webhook timeout); the review is then decided again from the store.
   */
  verifyNow?: (builds: string[], w: ReviewedWorkload) => Promise<void>;
  record(w: ReviewedWorkload, d: AdmissionDecision | { allowed: true; exempt: true }): void;
  /**
   * False until the policies and Applications have been read once: until then every review gets 503 (the API server
   * applies failurePolicy Fail) — an empty policy set would otherwise admit everything as "no policy guards this".
   */
  ready?: () => boolean;
}

export function createAdmissionApp(
  deps: AdmissionDeps,
  opts: { https?: { key: string; cert: string }; bodyLimit?: number; logger?: boolean } = {},
): FastifyInstance {
  const app = Fastify({
    // Pods are small; a review carries object and oldObject. Above the limit: 413 (the API server caps at 3 MiB).
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    logger: opts.logger ?? false,
    ...(opts.https ? { https: opts.https } : {}),
    // Keep-alive: the API server reuses connections; a TLS handshake per review would dominate the latency.
    keepAliveTimeout: 65_000,
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance;

  const ready = deps.ready ?? (() => true);
  app.get('/healthz', async (_req, reply) =>
    ready() ? { ok: true } : reply.code(503).send({ ok: false, problem: 'policies or Applications not read yet' }),
  );
  app.post('/validate', async (req, reply) => {
    if (!ready()) return reply.code(503).send({ error: 'NOT_READY', message: 'policies or Applications not read yet' });
    let w: ReviewedWorkload;
    try {
      w = readReview(req.body);
    } catch (err) {
      if (hasCode(err, ADMISSION_ERROR_CODES)) return reply.code(400).send({ error: err.code, message: err.message });
      throw err;
    }
    if (w.exempt) {
      deps.record(w, { allowed: true, exempt: true });
      return reviewResponse(w.uid, {
        allowed: true,
        message: 'exempt',
        problems: [],
        warnings: [`gitops-gate: admitted under the break-glass label by ${w.user || 'unknown'}; audited`],
      });
    }
    if (addsNoImage(w)) {
      const d: AdmissionDecision = { allowed: true, mode: 'none', problems: [], warnings: [], message: 'update adds no image' };
      deps.record(w, d);
      return reviewResponse(w.uid, d);
    }
    const policies = deps.policiesFor(w.namespace);
    const builds = policies.length > 0 ? buildsToLookUp(w.images) : [];
    let results = builds.length > 0 ? await deps.lookup(builds) : new Map<string, StoredImageResult[]>();
    let d = decideAdmission({ images: w.images, policies, results, pinned: deps.pinned(w.namespace) });
    if (!d.allowed && deps.verifyNow && d.problems.some((p) => p.code === 'NO_VERDICT')) {
      const missing = [
        ...new Set(
          d.problems
            .filter((p) => p.code === 'NO_VERDICT' && p.digest)
            .map((p) => builds.find((b) => b.endsWith(`@${p.digest}`)))
            .filter((b): b is string => b !== undefined),
        ),
      ];
      await deps.verifyNow(missing, w);
      results = await deps.lookup(builds);
      d = decideAdmission({ images: w.images, policies, results, pinned: deps.pinned(w.namespace) });
    }
    deps.record(w, d);
    return reviewResponse(w.uid, d);
  });
  return app;
}
