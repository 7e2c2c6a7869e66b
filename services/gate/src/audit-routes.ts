import type { AuditTrail } from '@gitops-gate/gate-core';
import type { ExtraRoute } from '@gitops-gate/telemetry';

/** GET /api/decisions?app=ns/name&sha=abc&since=ISO&limit=N — the audit trail, newest first. */
export function createAuditRoutes(audit: AuditTrail): ExtraRoute {
  return async (req, res, url) => {
    if (req.method !== 'GET' || url.pathname !== '/api/decisions') return false;
    const since = url.searchParams.get('since');
    const limit = Number(url.searchParams.get('limit') ?? '100');
    if (since && Number.isNaN(Date.parse(since))) {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'since must be an ISO date' }));
      return true;
    }
    const records = await audit.query({
      app: url.searchParams.get('app') ?? undefined,
      sha: url.searchParams.get('sha') ?? undefined,
      since: since ? new Date(since) : undefined,
      limit: Number.isFinite(limit) && limit > 0 ? Math.min(limit, 1000) : 100,
    });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ decisions: records }));
    return true;
  };
}
