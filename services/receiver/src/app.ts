/**
 * The receiver's HTTP app, without a listening socket: `main.ts` listens, tests use `inject()`.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { Counter, Histogram, type Registry } from 'prom-client';
import { inSpan, injectTrace, opsRoutes, type Logger } from '@gitops-gate/telemetry';
import type { VerifyJob } from '@gitops-gate/contracts';
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
  checkIdentity?: (
    repoUrl: string,
    payload: unknown,
  ) => Promise<{ ok: true } | { ok: false; status: number; code: string; reason: string }>;
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
function repoSecretSigner(
  repoSecrets: Record<string, string[]> | undefined,
  raw: Buffer,
  contentType: string,
  header: string,
): string | undefined {
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

type Reply = FastifyReply;
type Metrics = { deliveries: Counter<'event' | 'outcome'>; enqueueSeconds: Histogram };
/** A refusal to send: status, body, and optionally a Retry-After in seconds. */
type Answer = { status: number; body: Record<string, unknown>; retryAfter?: string };

function createMetrics(registry: Registry): Metrics {
  return {
    deliveries: new Counter({
      name: 'gitops_gate_deliveries_total',
      help: 'Webhook deliveries by event and outcome',
      labelNames: ['event', 'outcome'] as const,
      registers: [registry],
    }),
    enqueueSeconds: new Histogram({
      name: 'gitops_gate_enqueue_seconds',
      help: 'Time to durably enqueue a verify job',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
  };
}

function createFastify(logger: Logger): FastifyInstance {
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
  return app;
}

function send(reply: Reply, a: Answer): Reply {
  if (a.retryAfter !== undefined) void reply.header('retry-after', a.retryAfter);
  return reply.code(a.status).send(a.body);
}

/**
 * Headers, signature and body: the delivery's event, id and JSON, or the answer refusing it (with its outcome label).
 */
function authenticate(
  deps: ReceiverDeps,
  req: FastifyRequest,
):
  | { ok: true; event: string; deliveryId: string; payload: unknown; repoSigner?: string }
  | { ok: false; event: string; outcome: string; answer: Answer } {
  const eventHeader = req.headers['x-github-event'];
  const deliveryHeader = req.headers['x-github-delivery'];
  const event = typeof eventHeader === 'string' ? eventHeader : '';
  if (!EVENT_NAME.test(event)) {
    return {
      ok: false,
      event: 'unknown',
      outcome: 'bad_request',
      answer: { status: 400, body: { error: 'missing or malformed X-GitHub-Event header', code: 'MISSING_EVENT' } },
    };
  }
  const deliveryId = typeof deliveryHeader === 'string' ? deliveryHeader : '';
  if (!DELIVERY_ID.test(deliveryId)) {
    return {
      ok: false,
      event,
      outcome: 'bad_request',
      answer: { status: 400, body: { error: 'missing or malformed X-GitHub-Delivery header', code: 'MISSING_DELIVERY' } },
    };
  }
  const sigHeader = req.headers['x-hub-signature-256'];
  const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  const contentType = req.headers['content-type'] ?? '';
  const sharedSigned = typeof sigHeader === 'string' && signatureMatches(deps.secrets, raw, sigHeader);
  const repoSigner =
    typeof sigHeader === 'string' && !sharedSigned ? repoSecretSigner(deps.repoSecrets, raw, contentType, sigHeader) : undefined;
  if (typeof sigHeader !== 'string' || !(sharedSigned || repoSigner !== undefined)) {
    req.log.warn({ deliveryId, event }, 'delivery signature rejected');
    const error =
      typeof sigHeader === 'string' ? 'X-Hub-Signature-256 does not match any configured secret' : 'missing X-Hub-Signature-256 header';
    return { ok: false, event, outcome: 'bad_signature', answer: { status: 401, body: { error, code: 'BAD_SIGNATURE' } } };
  }
  try {
    return { ok: true, event, deliveryId, payload: parseBody(raw, contentType), ...(repoSigner !== undefined ? { repoSigner } : {}) };
  } catch (err) {
    const what = err instanceof TypeError ? 'body is not valid UTF-8' : `body is not valid JSON: ${(err as Error).message}`;
    return { ok: false, event, outcome: 'bad_payload', answer: { status: 400, body: { error: what, code: 'BAD_PAYLOAD' } } };
  }
}

/** Followed set, repository identity and queue depth: the reason not to queue this job, or undefined to queue it. */
async function admit(
  deps: ReceiverDeps,
  req: FastifyRequest,
  event: string,
  deliveryId: string,
  job: VerifyJob,
  payload: unknown,
): Promise<{ outcome: string; answer: Answer } | undefined> {
  // Only pushes name a repository to fetch; image jobs read the registry, and the gate joins them per Application.
  if (job.kind === 'commit' && deps.isFollowed) {
    const followed = await deps.isFollowed(job.repoUrl).catch(() => undefined);
    if (followed === false) {
      req.log.info({ deliveryId, event, repo: job.repoUrl }, 'delivery for a repository nobody follows');
      return { outcome: 'not_followed', answer: { status: 202, body: { queued: false, reason: 'not followed' } } };
    }
  }
  if (deps.checkIdentity) {
    const identity = await deps.checkIdentity(job.repoUrl, payload);
    if (!identity.ok) {
      req.log.warn(
        { deliveryId, event, repo: job.repoUrl, code: identity.code, reason: identity.reason },
        'delivery refused: repository identity',
      );
      return {
        outcome: identity.status === 503 ? 'unavailable' : 'wrong_repository',
        answer: {
          status: identity.status,
          body: { queued: false, reason: identity.reason, code: identity.code },
          ...(identity.status === 503 ? { retryAfter: '30' } : {}),
        },
      };
    }
  }
  let depth: number;
  try {
    depth = await deps.intake.waiting();
  } catch (err) {
    req.log.error({ deliveryId, err }, 'queue unavailable');
    return { outcome: 'unavailable', answer: QUEUE_UNAVAILABLE };
  }
  if (depth >= deps.maxQueueDepth) {
    req.log.warn({ deliveryId, depth }, 'queue over limit');
    return {
      outcome: 'overloaded',
      answer: { status: 503, retryAfter: '30', body: { error: `queue depth ${depth} over limit`, code: 'QUEUE_FULL' } },
    };
  }
  return undefined;
}

const QUEUE_UNAVAILABLE: Answer = { status: 503, retryAfter: '10', body: { error: 'queue unavailable', code: 'QUEUE_UNAVAILABLE' } };

/** The durable write (one Redis round trip, see intake.ts), timed; the trace starts here and travels in the job. */
async function enqueue(
  deps: ReceiverDeps,
  metrics: Metrics,
  req: FastifyRequest,
  event: string,
  deliveryId: string,
  job: VerifyJob,
  signer: string | undefined,
): Promise<Answer> {
  const end = metrics.enqueueSeconds.startTimer();
  let added: 'queued' | 'duplicate';
  try {
    added = await inSpan('webhook.receive', { 'github.delivery': deliveryId, 'github.event': event, 'job.kind': job.kind }, () =>
      deps.intake.add({ ...job, trace: injectTrace() }, signer),
    );
  } catch (err) {
    metrics.deliveries.inc({ event, outcome: 'unavailable' });
    req.log.error({ deliveryId, err }, 'queue unavailable');
    return QUEUE_UNAVAILABLE;
  } finally {
    end();
  }
  metrics.deliveries.inc({ event, outcome: added });
  if (added === 'duplicate') {
    req.log.info({ deliveryId, event }, 'delivery already received');
    return { status: 202, body: { queued: false, duplicate: true } };
  }
  req.log.info(
    {
      deliveryId,
      event,
      kind: job.kind,
      repo: job.repoFullName,
      ...(job.kind === 'commit' ? { branch: job.branch, sha: job.sha } : { image: job.image, digest: job.digest }),
    },
    'delivery queued',
  );
  return { status: 202, body: { queued: true } };
}

/** One webhook delivery, start to answer. */
async function handleDelivery(deps: ReceiverDeps, metrics: Metrics, now: () => Date, req: FastifyRequest, reply: Reply): Promise<Reply> {
  const reject = (event: string, outcome: string) => metrics.deliveries.inc({ event, outcome });
  const auth = authenticate(deps, req);
  if (!auth.ok) {
    reject(auth.event, auth.outcome);
    return send(reply, auth.answer);
  }
  const { event, deliveryId, payload } = auth;
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
      if (auth.repoSigner !== undefined && !jobMatchesSigner(outcome.job.repoUrl, auth.repoSigner)) {
        reject(event, 'bad_signature');
        req.log.warn(
          { deliveryId, event, repo: outcome.job.repoUrl, signer: auth.repoSigner },
          'delivery refused: per-repository secret used for another repository',
        );
        return reply.code(401).send({
          error: `signed with the secret of ${auth.repoSigner}, which does not cover ${outcome.job.repoUrl}`,
          code: 'SECRET_REPOSITORY_MISMATCH',
        });
      }
      const refused = await admit(deps, req, event, deliveryId, outcome.job, payload);
      if (refused) {
        reject(event, refused.outcome);
        return send(reply, refused.answer);
      }
      return send(reply, await enqueue(deps, metrics, req, event, deliveryId, outcome.job, auth.repoSigner));
    }
  }
}

export function createReceiverApp(deps: ReceiverDeps): FastifyInstance {
  const now = deps.now ?? (() => new Date());
  const app = createFastify(deps.logger);
  const metrics = createMetrics(deps.registry);
  app.post('/webhooks/github', (req, reply) => handleDelivery(deps, metrics, now, req, reply));
  // Health and metrics: the same plugin as the workers' ops ports.
  void app.register(opsRoutes, {
    registry: deps.registry,
    ready: async () => {
      try {
        await deps.intake.ping();
        return true;
      } catch (err) {
        return { ok: false, problems: [`redis: ${(err as Error).message}`] };
      }
    },
  });
  return app;
}
