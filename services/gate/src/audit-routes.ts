import type { FastifyPluginAsync } from 'fastify';
import type { AuditTrail } from '@gitops-gate/gate-core';

/** GET /api/decisions?app=ns/name&sha=abc&since=ISO&limit=N — the audit trail, newest first. */
export function createAuditRoutes(audit: AuditTrail): FastifyPluginAsync {
  return (app) => {
    app.get('/api/decisions', async (req, reply) => {
      const params = new URL(req.raw.url ?? '/', 'http://localhost').searchParams;
      const since = params.get('since');
      const limit = Number(params.get('limit') ?? '100');
      if (since && Number.isNaN(Date.parse(since))) return reply.code(400).send({ error: 'since must be an ISO date' });
      const records = await audit.query({
        app: params.get('app') ?? undefined,
        sha: params.get('sha') ?? undefined,
        since: since ? new Date(since) : undefined,
        limit: Number.isFinite(limit) && limit > 0 ? Math.min(limit, 1000) : 100,
      });
      return reply.send({ decisions: records });
    });
    return Promise.resolve();
  };
}
