/**
 * The receiver's HTTP app, without a listening socket: `main.ts` listens, tests use `inject()`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import { inSpan, injectTrace, opsRoutes, type Logger } from '@gitops-gate/telemetry';
import { interpretEvent } from './github-events.js';
import type { Intake } from './intake.js';

/** GitHub caps webhook payloads at 25 MB; anything larger is not from GitHub. */
export const MAX_BODY_BYTES = 25 * 1024 * 1024;

export interface ReceiverDeps {
  secrets: string[];
  intake: Intake;
  logger: Logger;
  registry: Registry;
  maxQueueDepth: number;
  now?: () => Date;
  /**
   * Whether the gate follows a repository (its published set; cached): false = answered `not followed`, nothing
   * queued. undefined (no set published yet, or Redis trouble) = queued: the verifier checks again before any fetch.
   */
  isFollowed?: (repoUrl: string) => Promise<boolean | undefined>;
  /**
   * Per-repository webhook secrets (`owner/name` → secrets): a delivery that no shared secret signed is accepted when
   * one of the secrets of the repository it names signed it (and only that repository's).
   */
  repoSecrets?: Record<string, string[]>;
  /**
   * Repository identity (GitHub configured): whether the delivery's `repository.id` / `installation.id` are those of
   * the repository it would be queued for. Refusals queue nothing and answer `status` with the reason.
   */
  checkIdentity?: (repoUrl: string, payload: unknown) => Promise<{ ok: true } | { ok: false; status: number; code: string; reason: string }>;
}

const DELIVERY_ID = /^[A-Za-z0-9-]{1,100}$/;
const EVENT_NAME = /^[a-z_]{1,64}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * HMAC over the raw bytes, compared in constant time against every configured secret (rotation). Done on the Buffer
 * rather than with @octokit/webhooks-methods' string API: GitHub signs bytes, and a string round-trip would alter
 * bodies that are not valid UTF-8.
 */
export function signatureMatches(secrets: string[], body: Buffer, header: string): boolean {
  if (!header.startsWith('sha256=')) return false;
  const given = Buffer.from(header.slice(7), 'hex');
  if (given.length !== 32) return false;
  let ok = false;
  for (const secret of secrets) {
    const expected = createHmac('sha256', secret).update(body).digest();
    // No early exit: the time taken does not reveal which secret matched.
    if (timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}

/** The delivery's JSON, from a JSON body or GitHub's form encoding (`payload=`). Throws on bad UTF-8 or JSON. */
function parseBody(raw: Buffer, contentType: string): unknown {
  let text = utf8.decode(raw);
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    const form = new URLSearchParams(text).get('payload');
    // A SyntaxError, like the JSON.parse below: the caller answers both as a malformed delivery.
    if (form === null) throw new SyntaxError('form body has no payload= field');
    text = form;
  }
  return JSON.parse(text);
}

/**
 * The repository (lower-case `owner/name`) whose own secret signed this body, or undefined. The body is read before
 * it is authenticated, but only to pick whose secrets to try: a holder of one repository's secret cannot sign for
 * another. The caller must still bind the job's clone URL to this name (the body carries both).
 */
function repoSecretSigner(repoSecrets: Record<string, string[]> | undefined, raw: Buffer, contentType: string, header: string): string | undefined {
  if (!repoSecrets || Object.keys(repoSecrets).length === 0) return undefined;
  let name: unknown;
  try {
    name = (parseBody(raw, contentType) as { repository?: { full_name?: unknown } } | null)?.repository?.full_name;
  } catch {
    return undefined;
  }
  if (typeof name !== 'string') return undefined;
  const wanted = name.toLowerCase();
  const entry = Object.entries(repoSecrets).find(([k]) => k.toLowerCase() === wanted);
  return entry !== undefined && signatureMatches(entry[1], raw, header) ? wanted : undefined;
}

/**
 * A job signed by a per-repository secret may only name that repository: the jobs are keyed by the clone URL, which
 * the same body carries next to `full_name`, so a holder of org/tool's secret could otherwise send
 * `full_name: org/tool` with org/app's clone URL. Compared on the URL's path (owner/name), whatever the host.
 */
export function jobMatchesSigner(repoUrl: string, signer: string): boolean {
  // normalizeRepoUrl gives `https://host/owner/name` for every remote form; anything else (file://) is not GitHub's.
  const m = /^https:\/\/[^/]+\/(.+)$/.exec(repoUrl);
  return m?.[1]?.toLowerCase() === signer;
}

export function createReceiverApp(deps: ReceiverDeps): FastifyInstance {
  const { logger, intake } = deps;
  const now = deps.now ?? (() => new Date());
  // Typed as Fastify's logger so the app is a plain FastifyInstance (not one generic over pino's Logger).
  const loggerInstance: FastifyBaseLogger = logger;
  const app = Fastify({
    loggerInstance,
    // Per-request access logs would double the CPU per delivery; decisions are logged explicitly below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: MAX_BODY_BYTES,
    // GitHub gives up after 10 s; answer or fail well before that. Node enforces these only as often as
    // connectionsCheckingInterval (30 s by default), so the server is built with a tighter check: slow or stalled
    // clients (slowloris) lose their connection after ~10 s instead of a minute or more.
    serverFactory: (handler) => createServer({ requestTimeout: 9_000, headersTimeout: 9_000, connectionsCheckingInterval: 1_000 }, handler),
    connectionTimeout: 10_000,
    return503OnClosing: true,
  });

  const deliveries = new Counter({
    name: 'gitops_gate_deliveries_total',
    help: 'Webhook deliveries by event and outcome',
    labelNames: ['event', 'outcome'] as const,
    registers: [deps.registry],
  });
  const enqueueSeconds = new Histogram({
    name: 'gitops_gate_enqueue_seconds',
    help: 'Time to durably enqueue a verify job',
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [deps.registry],
  });

  // Only JSON and GitHub's form encoding; Fastify answers 415 for anything else. Bodies stay raw Buffers because
  // the signature is over the exact bytes.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/json', 'application/x-www-form-urlencoded'], { parseAs: 'buffer' }, (_req, body, done) => {
    done(null, body);
  });

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err, code: err.code }, 'request failed');
    const messages: Record<string, string> = {
      FST_ERR_CTP_BODY_TOO_LARGE: `body exceeds GitHub's ${MAX_BODY_BYTES} byte limit`,
      FST_ERR_CTP_INVALID_MEDIA_TYPE: 'content type must be application/json or application/x-www-form-urlencoded',
    };
    void reply.code(status).send({ error: (err.code && messages[err.code]) ?? err.message, code: err.code ?? 'ERROR' });
  });

  const reject = (event: string, outcome: string) => deliveries.inc({ event, outcome });

  app.post('/webhooks/github', async (req, reply) => {
    const eventHeader = req.headers['x-github-event'];
    const deliveryHeader = req.headers['x-github-delivery'];
    const event = typeof eventHeader === 'string' ? eventHeader : '';
    if (!EVENT_NAME.test(event)) {
      reject('unknown', 'bad_request');
      return reply.code(400).send({ error: 'missing or malformed X-GitHub-Event header', code: 'MISSING_EVENT' });
    }
    const deliveryId = typeof deliveryHeader === 'string' ? deliveryHeader : '';
    if (!DELIVERY_ID.test(deliveryId)) {
      reject(event, 'bad_request');
      return reply.code(400).send({ error: 'missing or malformed X-GitHub-Delivery header', code: 'MISSING_DELIVERY' });
    }
    const sigHeader = req.headers['x-hub-signature-256'];
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const contentType = req.headers['content-type'] ?? '';
    const sharedSigned = typeof sigHeader === 'string' && signatureMatches(deps.secrets, raw, sigHeader);
    const repoSigner = typeof sigHeader === 'string' && !sharedSigned ? repoSecretSigner(deps.repoSecrets, raw, contentType, sigHeader) : undefined;
    if (typeof sigHeader !== 'string' || !(sharedSigned || repoSigner !== undefined)) {
      reject(event, 'bad_signature');
      req.log.warn({ deliveryId, event }, 'delivery signature rejected');
      return reply.code(401).send({
        error: typeof sigHeader === 'string' ? 'X-Hub-Signature-256 does not match any configured secret' : 'missing X-Hub-Signature-256 header',
        code: 'BAD_SIGNATURE',
      });
    }

    let payload: unknown;
    try {
      payload = parseBody(raw, contentType);
    } catch (err) {
      reject(event, 'bad_payload');
      const what = err instanceof TypeError ? 'body is not valid UTF-8' : `body is not valid JSON: ${(err as Error).message}`;
      return reply.code(400).send({ error: what, code: 'BAD_PAYLOAD' });
    }

    const outcome = interpretEvent(event, deliveryId, payload, now());
    switch (outcome.kind) {
      case 'ping':
        reject(event, 'ping');
        return reply.code(200).send({ ok: true });
      case 'invalid':
        reject(event, 'bad_payload');
        return reply.code(400).send({ error: outcome.message, code: 'BAD_PAYLOAD' });
      case 'ignore':
        reject(event, 'ignored');
        req.log.info({ deliveryId, event, reason: outcome.reason }, 'delivery ignored');
        return reply.code(202).send({ queued: false, reason: outcome.reason });
      case 'enqueue': {
        if (repoSigner !== undefined && !jobMatchesSigner(outcome.job.repoUrl, repoSigner)) {
          reject(event, 'bad_signature');
          req.log.warn({ deliveryId, event, repo: outcome.job.repoUrl, signer: repoSigner }, 'delivery refused: per-repository secret used for another repository');
          return reply.code(401).send({ error: `signed with the secret of ${repoSigner}, which does not cover ${outcome.job.repoUrl}`, code: 'SECRET_REPOSITORY_MISMATCH' });
        }
        // Only pushes name a repository to fetch; image jobs read the registry, and the gate joins them per Application.
        if (outcome.job.kind === 'commit' && deps.isFollowed) {
          const followed = await deps.isFollowed(outcome.job.repoUrl).catch(() => undefined);
          if (followed === false) {
            reject(event, 'not_followed');
            req.log.info({ deliveryId, event, repo: outcome.job.repoUrl }, 'delivery for a repository nobody follows');
            return reply.code(202).send({ queued: false, reason: 'not followed' });
          }
        }
        if (deps.checkIdentity) {
          const identity = await deps.checkIdentity(outcome.job.repoUrl, payload);
          if (!identity.ok) {
            reject(event, identity.status === 503 ? 'unavailable' : 'wrong_repository');
            req.log.warn({ deliveryId, event, repo: outcome.job.repoUrl, code: identity.code, reason: identity.reason }, 'delivery refused: repository identity');
            if (identity.status === 503) void reply.header('retry-after', '30');
            return reply.code(identity.status).send({ queued: false, reason: identity.reason, code: identity.code });
          }
        }
        let depth: number;
        try {
          depth = await intake.waiting();
        } catch (err) {
          reject(event, 'unavailable');
          req.log.error({ deliveryId, err }, 'queue unavailable');
          return reply.code(503).header('retry-after', '10').send({ error: 'queue unavailable', code: 'QUEUE_UNAVAILABLE' });
        }
        if (depth >= deps.maxQueueDepth) {
          reject(event, 'overloaded');
          req.log.warn({ deliveryId, depth }, 'queue over limit');
          return reply.code(503).header('retry-after', '30').send({ error: `queue depth ${depth} over limit`, code: 'QUEUE_FULL' });
        }
        const end = enqueueSeconds.startTimer();
        let added: 'queued' | 'duplicate';
        try {
          const job = outcome.job;
          // The trace starts here and travels in the job, so verification and the gate's patch join it.
          added = await inSpan('webhook.receive', { 'github.delivery': deliveryId, 'github.event': event, 'job.kind': job.kind }, () =>
            intake.add({ ...job, trace: injectTrace() }),
          );
        } catch (err) {
          reject(event, 'unavailable');
          req.log.error({ deliveryId, err }, 'queue unavailable');
          return reply.code(503).header('retry-after', '10').send({ error: 'queue unavailable', code: 'QUEUE_UNAVAILABLE' });
        } finally {
          end();
        }
        deliveries.inc({ event, outcome: added });
        if (added === 'duplicate') {
          req.log.info({ deliveryId, event }, 'delivery already received');
          return reply.code(202).send({ queued: false, duplicate: true });
        }
        req.log.info(
          { deliveryId, event, kind: outcome.job.kind, repo: outcome.job.repoFullName, ...(outcome.job.kind === 'commit' ? { branch: outcome.job.branch, sha: outcome.job.sha } : { image: outcome.job.image, digest: outcome.job.digest }) },
          'delivery queued',
        );
        return reply.code(202).send({ queued: true });
      }
    }
  });

  // Health and metrics: the same plugin as the workers' ops ports.
  void app.register(opsRoutes, {
    registry: deps.registry,
    ready: async () => {
      try {
        await intake.ping();
        return true;
      } catch (err) {
        return { ok: false, problems: [`redis: ${(err as Error).message}`] };
      }
    },
  });
  return app;
}
