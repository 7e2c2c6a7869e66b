/**
 * The one place that reads the environment. Every service calls `loadConfig(process.env)` once at start-up and passes
 * the typed result down; nothing else looks at `process.env`. A bad value stops start-up with a message naming the
 * variable, instead of surfacing later as a confusing runtime error.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { readFileSync } from 'node:fs';
import { z } from 'zod';

const csv = z.string().transform((s) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0),
);

const port = z.coerce.number().int().min(0).max(65535);

/** A variable holding a JSON object whose values match `value`; `what` names the expected shape in errors. */
function jsonRecord<T extends z.ZodType>(value: T, what: string) {
  return z
    .string()
    .default('{}')
    .transform((s, ctx) => {
      try {
        return z.record(z.string(), value).parse(JSON.parse(s));
      } catch {
        ctx.addIssue({ code: 'custom', message: `must be a JSON object of ${what}` });
        return z.NEVER;
      }
    });
}
const positiveInt = z.coerce.number().int().positive();

const envSchema = z.object({
  // --- common -------------------------------------------------------------------------------------------------
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Redis for queues, dedupe, locks and the audit trail. Production: `maxmemory-policy noeviction` and AOF on. */
  REDIS_URL: z
    .string()
    .url()
    .refine((u) => /^rediss?:\/\//.test(u), 'must be redis:// or rediss:// (TLS)')
    .default('redis://127.0.0.1:6379'),
  /** ACL user (Redis 6+); may also be given in REDIS_URL as `redis://user@host`. */
  REDIS_USERNAME: z.string().optional(),
  /** File holding the Redis (ACL user's) password, from a Secret mount: never in argv, env or logs. */
  REDIS_PASSWORD_FILE: z.string().optional(),
  /** CA bundle (PEM) that signs the server's certificate for `rediss://`; unset = the system's roots. */
  REDIS_TLS_CA_FILE: z.string().optional(),
  /** Client certificate (PEM) for mutual TLS; needs REDIS_TLS_KEY_FILE. */
  REDIS_TLS_CERT_FILE: z.string().optional(),
  /** Client key (PEM) for mutual TLS. */
  REDIS_TLS_KEY_FILE: z.string().optional(),
  /** Sentinels `host:port`, comma-separated: the master is found (and followed across failovers) through them. */
  REDIS_SENTINELS: csv.default([]),
  /** The master's name in Sentinel (`sentinel monitor <name> …`). */
  REDIS_SENTINEL_MASTER: z.string().default('mymaster'),
  /** File holding the Sentinels' own password (`requirepass` of the sentinels), when they have one. */
  REDIS_SENTINEL_PASSWORD_FILE: z.string().optional(),
  /** `true` = REDIS_URL is a seed node of a Redis Cluster; QUEUE_PREFIX must then be a hash tag like `{gg}`. */
  REDIS_CLUSTER: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /**
   * Replicas a write must reach before it is acknowledged (receiver 202, gate pin): `WAIT n`. `auto` = 1 when Redis
   * has replicas (Sentinel configured, or a replica ever seen in INFO replication), else 0.
   */
  REDIS_WAIT_REPLICAS: z.union([z.literal('auto'), z.coerce.number().int().min(0)]).default('auto'),
  /** How long a write waits for its replicas before the delivery is answered 503 + Retry-After. */
  REDIS_WAIT_TIMEOUT_MS: positiveInt.default(1_000),
  /** Prefix of every Redis key, so several installations can share one Redis; a `{hash-tag}` on Redis Cluster. */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.{}-]+$/)
    .default('gitops-gate'),
  /** OTLP/HTTP traces endpoint (e.g. http://otel-collector:4318). Unset = tracing off, at zero cost. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),

  /**
   * How long a worker's claim on a job lasts without renewal (renewed while it runs); a crashed worker's jobs go to
   * another worker after about this plus WORKER_STALLED_INTERVAL_MS.
   */
  WORKER_LOCK_DURATION_MS: positiveInt.default(30_000),
  /** How often workers look for jobs whose worker died (BullMQ stalled-job check). */
  WORKER_STALLED_INTERVAL_MS: positiveInt.default(15_000),
  /**
   * How long completed verify and gate jobs are kept for inspection (also never more than 10 000 per queue). What
   * de-duplicates is the delivery key (DELIVERY_RETENTION_SECONDS), not the job, so this only trades memory for history.
   */
  COMPLETED_JOB_RETENTION_SECONDS: positiveInt.default(3600),

  // --- GitHub ---------------------------------------------------------------------------------------------------
  /** GitHub App id: with GITHUB_APP_PRIVATE_KEY_FILE, gitops-gate authenticates as the App (installation tokens). */
  GITHUB_APP_ID: positiveInt.optional(),
  /** The App's private key (PEM, from a Kubernetes Secret mount). */
  GITHUB_APP_PRIVATE_KEY_FILE: z.string().optional(),
  /** Installation whose token git fetches use; unset = looked up per repository (API calls only). */
  GITHUB_APP_INSTALLATION_ID: positiveInt.optional(),
  /** REST API base: `https://api.github.com`, or `https://<ghes-host>/api/v3` for GitHub Enterprise Server. */
  GITHUB_API_URL: z.string().url().default('https://api.github.com'),
  /** Personal token for the API instead of an App: commit statuses instead of check runs. */
  GITHUB_TOKEN: z.string().optional(),
  /** Gap between check-run/status writes (GitHub asks for about a second to stay clear of secondary limits). */
  GITHUB_WRITE_INTERVAL_MS: z.coerce.number().int().min(0).default(1000),
  /**
   * Per-repository webhook secrets as JSON `{"owner/name": ["secret", …]}` (several = rotation), accepted for deliveries
   * naming that repository only, in addition to WEBHOOK_SECRETS (the App's secret).
   */
  WEBHOOK_REPO_SECRETS: jsonRecord(z.array(z.string().min(1)), 'repository full name to a list of secrets'),

  // --- receiver -----------------------------------------------------------------------------------------------
  /** Interface the receiver binds. */
  RECEIVER_HOST: z.string().default('0.0.0.0'),
  /** Port of POST /webhooks/github, /healthz, /readyz, /metrics. */
  RECEIVER_PORT: port.default(8080),
  /** Webhook secrets, comma-separated. Several at once = rotation without dropped deliveries (any one may match). */
  WEBHOOK_SECRETS: csv.default([]),
  /** File with one webhook secret per line (Kubernetes Secret mount); merged with WEBHOOK_SECRETS. */
  WEBHOOK_SECRETS_FILE: z.string().optional(),
  /** Above this many waiting verify jobs the receiver answers 503 + Retry-After (GitHub redelivers later). */
  MAX_QUEUE_DEPTH: positiveInt.default(10_000),
  /** How long a delivery id is remembered for de-duplication of GitHub redeliveries. */
  DELIVERY_RETENTION_SECONDS: positiveInt.default(7 * 24 * 3600),

  // --- verifier -----------------------------------------------------------------------------------------------
  /** Jobs one verifier process works on at once (verification is CPU-bound: about the number of cores). */
  VERIFIER_CONCURRENCY: positiveInt.default(2),
  /**
   * How many recent commits of a verified commit's history its verdict carries (0 = none): the gate finds the pinned
   * commit there and decides without fetching. ~41 bytes each in the gate queue.
   */
  VERDICT_HISTORY_DEPTH: z.coerce.number().int().min(0).max(1000).default(256),
  /** Port of the verifier's /healthz and /metrics. */
  VERIFIER_HTTP_PORT: port.default(9090),
  /** Where bare mirrors of watched repositories are cached (verifier and gate each keep their own). */
  GIT_CACHE_DIR: z.string().default('/var/cache/gitops-gate/git'),
  /**
   * URL rewrites like git's `url.<base>.insteadOf`, as JSON `{"<prefix in webhooks>": "<prefix to fetch from>"}`,
   * e.g. `{"https://github.com/": "file:///srv/mirrors/"}` for air-gapped mirrors and tests.
   */
  GIT_URL_REWRITES: jsonRecord(z.string(), 'string prefixes to string prefixes'),
  /** Token for fetching private repositories over https (sent as HTTP basic auth, never logged). */
  GIT_HTTP_TOKEN: z.string().optional(),
  /**
   * Where GIT_HTTP_TOKEN may go, comma-separated: hosts (`github.com` = `https://github.com/`) or URL prefixes. git
   * attaches it only to requests under these (after GIT_URL_REWRITES). Also the hosts whose repositories are fetched
   * at all unless GIT_OTHER_HOSTS=anonymous.
   */
  GIT_CREDENTIAL_HOSTS: csv.default(['github.com']),
  /** An opted-in Application whose repoURL is on a host outside GIT_CREDENTIAL_HOSTS: `refuse` it, or fetch it `anonymous`ly. */
  GIT_OTHER_HOSTS: z.enum(['refuse', 'anonymous']).default('refuse'),
  /** git's allowed_signers file: who may sign commits with SSH keys. */
  ALLOWED_SIGNERS_FILE: z.string().optional(),
  /** Signer policy file (YAML or JSON GatePolicy documents). Without it, ALLOWED_SIGNERS_FILE trusts SSH keys everywhere. */
  POLICY_FILE: z.string().optional(),
  /** Sigstore trusted_root.json for gitsign (private Sigstore); default: the public-good root shipped offline. */
  TRUSTED_ROOT_FILE: z.string().optional(),
  /** Rekor for gitsign commits without an embedded log entry (e.g. https://rekor.sigstore.dev); unset = offline. */
  REKOR_URL: z.string().url().optional(),

  /** Registry credentials as JSON `{"ghcr.io": {"username": "x", "password": "<PAT>"}}` or `{"host": {"token": "…"}}`. */
  REGISTRY_CREDENTIALS: jsonRecord(
    z.union([z.object({ username: z.string(), password: z.string() }), z.object({ token: z.string() })]),
    'registry host to {username,password} or {token}',
  ),
  /** Registry mirrors like git's insteadOf, JSON `{"ghcr.io": "registry.internal:5000"}`: where images are fetched from. */
  REGISTRY_MIRRORS: jsonRecord(z.string(), 'registry host to mirror host'),
  /** Registries spoken to over plain http (a registry on loopback in tests), comma-separated hosts. */
  REGISTRY_INSECURE_HOSTS: csv.default([]),
  /**
   * Token services on another origin that may receive a registry's credentials, JSON `{"registry.example":
   * ["https://auth.example"]}`; the registry's own origin (and Docker Hub's auth.docker.io) need no entry.
   */
  REGISTRY_TOKEN_REALMS: jsonRecord(z.array(z.string().url()), 'registry host to a list of token-service URLs'),
  /** Registry bytes one image job may read in all (manifests, referrer lists, signature blobs). */
  IMAGE_MATERIAL_BUDGET_BYTES: positiveInt.default(8 * 1024 * 1024),
  /** Largest single signature blob read (Sigstore bundles, cosign .sig/.att layers are kilobytes). */
  IMAGE_SIGNATURE_MAX_BYTES: positiveInt.default(1024 * 1024),
  /** Time one image job may take before it ends as IMAGE_VERIFY_DEADLINE. */
  IMAGE_VERIFY_DEADLINE_SECONDS: positiveInt.default(60),
  /** How long an IMAGE_MATERIAL_TOO_LARGE / IMAGE_VERIFY_DEADLINE rejection is remembered for that digest and policy. */
  IMAGE_REJECTION_CACHE_SECONDS: positiveInt.default(600),

  // --- gate ---------------------------------------------------------------------------------------------------
  /** Kubeconfig path; unset = in-cluster service account. */
  KUBECONFIG: z.string().optional(),
  /** Namespaces whose Applications the gate may pin, comma-separated; empty = all namespaces. */
  GATE_NAMESPACES: csv.default([]),
  /** Verdicts the gate applies at once (different Applications; one Application is always serialised). */
  GATE_CONCURRENCY: positiveInt.default(4),
  /**
   * Client-side pacing of the gate's Application patches (client-go's QPS/burst token bucket): sustained writes per
   * second, and how many may go at once after a pause (one push followed by hundreds of Applications).
   */
  GATE_KUBE_WRITE_QPS: z.coerce.number().positive().default(300),
  GATE_KUBE_WRITE_BURST: positiveInt.default(300),
  /** Port of the gate's /healthz, /metrics and audit endpoints. */
  GATE_HTTP_PORT: port.default(8081),
  /** Watch GatePolicy objects (needs the CRD installed); `false` = policies come only from the verifiers' files. */
  GATE_WATCH_POLICIES: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Lost-webhook recovery: how often the gate compares branch heads (git ls-remote) with its decisions. 0 = off. */
  GATE_RECONCILE_SECONDS: z.coerce.number().min(0).default(180),
  /** Browser-facing URL of the gate's /ui (e.g. https://gate.example.com/ui); when set, pinned Applications get an Argo CD link to their page. */
  GATE_UI_URL: z.string().url().optional(),
  /**
   * Ed25519 key that signs a checkpoint of each Application's audit chain after every record (PKCS#8 PEM, or the
   * signed-note `PRIVATE+KEY+…` format), mounted from a Kubernetes Secret. Unset = the hash chain alone, which whoever
   * can write Redis can recompute.
   */
  AUDIT_SIGNING_KEY_FILE: z.string().optional(),
  /** Audit retention: records older than this are trimmed (keeping a signed trim base per chain). 0 = no age limit. */
  AUDIT_RETENTION_SECONDS: z.coerce
    .number()
    .int()
    .min(0)
    .default(90 * 24 * 3600),
  /** Audit retention: at most this many records stay in the stream. 0 = no count limit. */
  AUDIT_RETENTION_RECORDS: z.coerce.number().int().min(0).default(1_000_000),
  /** How often one gate replica trims the audit stream (a batch of at most 10 000 records each time). */
  AUDIT_TRIM_INTERVAL_SECONDS: positiveInt.default(300),
  /** `true` = retention trims only records `gitops-gate audit export --mark` has written out (an unexported record stays). */
  AUDIT_TRIM_REQUIRES_EXPORT: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Cluster name in the checkpoints' origin line, `gitops-gate/<cluster>/<namespace>/<name>`. */
  GATE_CLUSTER_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, . _ - only')
    .default('default'),

  // --- admission webhook (services/admission) -------------------------------------------------------------------
  /** Port of the HTTPS admission endpoint (`POST /validate`) and `/healthz`. */
  ADMISSION_PORT: port.default(8443),
  /** Serving certificate and key (PEM; cert-manager or a Secret mounts them). Unset = plain HTTP (tests behind TLS). */
  ADMISSION_TLS_CERT_FILE: z.string().optional(),
  ADMISSION_TLS_KEY_FILE: z.string().optional(),
  /** A digest without a verdict: `deny` (say how to get it verified) or `verify` (queue it, wait ADMISSION_VERIFY_WAIT_MS). */
  ADMISSION_NO_VERDICT: z.enum(['deny', 'verify']).default('deny'),
  /** How long `verify` waits for a verdict; keep it under the webhook's timeoutSeconds. */
  ADMISSION_VERIFY_WAIT_MS: positiveInt.default(4_000),
  /**
   * Staleness bound of the in-process verdict cache: a review is answered from results read from Redis at most this
   * long before it, so a revoked verdict stops allowing within it. 0 = read Redis on every review.
   */
  ADMISSION_RESULT_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1_000),
});

type RedisVariables =
  | 'REDIS_USERNAME'
  | 'REDIS_PASSWORD_FILE'
  | 'REDIS_TLS_CA_FILE'
  | 'REDIS_TLS_CERT_FILE'
  | 'REDIS_TLS_KEY_FILE'
  | 'REDIS_SENTINELS'
  | 'REDIS_SENTINEL_MASTER'
  | 'REDIS_SENTINEL_PASSWORD_FILE'
  | 'REDIS_CLUSTER'
  | 'REDIS_WAIT_REPLICAS'
  | 'REDIS_WAIT_TIMEOUT_MS';

/**
 * How to reach Redis, with secrets already read from their files. Every service and the CLI build their clients from
 * this one object (shared/adapters/queue `createRedisConnection`), so TLS, ACLs and Sentinel behave the same everywhere.
 */
export interface RedisSettings {
  url: string;
  username?: string;
  /** Secret: never log this object. */
  password?: string;
  /** PEM contents, read at start-up; set for `rediss://`. */
  tls?: { ca?: string; cert?: string; key?: string };
  sentinels: { host: string; port: number }[];
  sentinelMaster: string;
  sentinelPassword?: string;
  cluster: boolean;
  waitReplicas: number | 'auto';
  waitTimeoutMs: number;
}

export type Config = Omit<z.infer<typeof envSchema>, 'WEBHOOK_SECRETS' | 'WEBHOOK_SECRETS_FILE' | RedisVariables> & {
  /** Secrets from WEBHOOK_SECRETS and WEBHOOK_SECRETS_FILE, in that order. */
  webhookSecrets: string[];
  redis: RedisSettings;
};

export const CONFIG_ERROR_CODES = ['CONFIG_INVALID'] as const;
export type ConfigErrorCode = (typeof CONFIG_ERROR_CODES)[number];
export class ConfigError extends BaseError<ConfigErrorCode> {
  constructor(message: string) {
    super('CONFIG_INVALID', message);
  }
}

/** Parses and validates the environment; throws ConfigError listing every bad variable by name. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  // Empty strings mean "unset" for every variable, as in most container platforms' env handling.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.join('; ')}`);
  }
  const { WEBHOOK_SECRETS, WEBHOOK_SECRETS_FILE, ...withRedis } = parsed.data;
  const { redis, rest } = redisSettings(withRedis);
  const secrets = [...WEBHOOK_SECRETS];
  if (WEBHOOK_SECRETS_FILE) {
    let text: string;
    try {
      text = readFileSync(WEBHOOK_SECRETS_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(`WEBHOOK_SECRETS_FILE: cannot read ${WEBHOOK_SECRETS_FILE}: ${(err as Error).message}`);
    }
    secrets.push(
      ...text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0),
    );
  }
  if ((rest.GITHUB_APP_ID === undefined) !== (rest.GITHUB_APP_PRIVATE_KEY_FILE === undefined)) {
    throw new ConfigError('GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY_FILE: set both (a GitHub App) or neither');
  }
  return { ...rest, webhookSecrets: secrets, redis };
}

/** Reads a secret file; the error names the variable and path, never the contents. */
function readSecretFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

function redisSettings<T extends Pick<z.infer<typeof envSchema>, RedisVariables | 'REDIS_URL' | 'QUEUE_PREFIX'>>(
  all: T,
): { redis: RedisSettings; rest: Omit<T, RedisVariables> } {
  const {
    REDIS_USERNAME,
    REDIS_PASSWORD_FILE,
    REDIS_TLS_CA_FILE,
    REDIS_TLS_CERT_FILE,
    REDIS_TLS_KEY_FILE,
    REDIS_SENTINELS,
    REDIS_SENTINEL_MASTER,
    REDIS_SENTINEL_PASSWORD_FILE,
    REDIS_CLUSTER,
    REDIS_WAIT_REPLICAS,
    REDIS_WAIT_TIMEOUT_MS,
    ...rest
  } = all;
  if ((REDIS_TLS_CERT_FILE === undefined) !== (REDIS_TLS_KEY_FILE === undefined)) {
    throw new ConfigError('REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE: set both (mutual TLS) or neither');
  }
  const tlsUrl = all.REDIS_URL.startsWith('rediss://');
  if (!tlsUrl && (REDIS_TLS_CA_FILE || REDIS_TLS_CERT_FILE)) {
    throw new ConfigError('REDIS_TLS_*: TLS files need a rediss:// REDIS_URL');
  }
  const sentinels = REDIS_SENTINELS.map((s) => {
    const m = /^([^:\s]+):(\d{1,5})$/.exec(s);
    if (!m?.[1] || !m[2]) throw new ConfigError(`REDIS_SENTINELS: "${s}" is not host:port`);
    return { host: m[1], port: Number(m[2]) };
  });
  if (REDIS_CLUSTER && sentinels.length > 0) throw new ConfigError('REDIS_CLUSTER and REDIS_SENTINELS: choose one');
  // On a Cluster every key must hash to one slot, or the multi-key scripts (BullMQ, audit, dedupe) fail with CROSSSLOT.
  if (REDIS_CLUSTER && !/^[^{]*\{[^{}]+\}/.test(all.QUEUE_PREFIX)) {
    throw new ConfigError('QUEUE_PREFIX: on Redis Cluster it must contain a hash tag, e.g. {gitops-gate}');
  }
  const redis: RedisSettings = {
    url: all.REDIS_URL,
    ...(REDIS_USERNAME ? { username: REDIS_USERNAME } : {}),
    ...(REDIS_PASSWORD_FILE ? { password: readSecretFile('REDIS_PASSWORD_FILE', REDIS_PASSWORD_FILE) } : {}),
    ...(tlsUrl
      ? {
          tls: {
            ...(REDIS_TLS_CA_FILE ? { ca: readSecretFile('REDIS_TLS_CA_FILE', REDIS_TLS_CA_FILE) } : {}),
            ...(REDIS_TLS_CERT_FILE ? { cert: readSecretFile('REDIS_TLS_CERT_FILE', REDIS_TLS_CERT_FILE) } : {}),
            ...(REDIS_TLS_KEY_FILE ? { key: readSecretFile('REDIS_TLS_KEY_FILE', REDIS_TLS_KEY_FILE) } : {}),
          },
        }
      : {}),
    sentinels,
    sentinelMaster: REDIS_SENTINEL_MASTER,
    ...(REDIS_SENTINEL_PASSWORD_FILE
      ? { sentinelPassword: readSecretFile('REDIS_SENTINEL_PASSWORD_FILE', REDIS_SENTINEL_PASSWORD_FILE) }
      : {}),
    cluster: REDIS_CLUSTER,
    waitReplicas: REDIS_WAIT_REPLICAS,
    waitTimeoutMs: REDIS_WAIT_TIMEOUT_MS,
  };
  return { redis, rest };
}

/** REDIS_URL for messages: any password in it replaced by `***`. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://(unparseable)';
  }
}

/** Fails start-up of the receiver when it could not check any signature. */
export function requireWebhookSecrets(config: Config): string[] {
  if (config.webhookSecrets.length === 0) {
    throw new ConfigError('WEBHOOK_SECRETS or WEBHOOK_SECRETS_FILE: at least one webhook secret is required');
  }
  return config.webhookSecrets;
}

/** The variables and their documentation, for the README table and `--help`. */
export const CONFIG_VARIABLES = Object.keys(envSchema.shape);
