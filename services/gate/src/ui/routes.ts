/**
 * The gate's read-only web page, served by its ops server next to /api/decisions:
 *   GET <base>                     opted-in Applications and recent decisions (?app=ns/name&sha=prefix&limit=N)
 *   GET <base>/app/<ns>/<name>     one Application: current pin, evidence, decision history (?sha=prefix&limit=N)
 * Read-only and script-free: the CSP forbids everything except inline styles, so even a value that escaped escaping
 * could not run.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { BRANCH_ANNOTATION, KubeError, type ApplicationStore, type AuditTrail, type DecisionRecord } from '@gitops-gate/gate-core';
import { summarizeApplication, type AppSummary } from './model.js';
import { renderAppPage, renderMessage, renderOverview, type Filter, type Loaded } from './render.js';

export interface UiDeps {
  audit: AuditTrail;
  store: ApplicationStore;
  /** Namespaces the gate watches; empty = all. Applications outside them are not shown. */
  namespaces: string[];
  /** The audit checkpoint verifier key (`name+hash+base64`), shown for auditors; unset = checkpoints unsigned. */
  auditKey?: string;
  /** Where the pages live on the ops server; default '/ui'. */
  basePath?: string;
  now?: () => Date;
}

export const UI_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  // No script, no images, no fonts, no frames, no fetches: the pages are HTML and inline CSS only. form-action and
  // frame-ancestors do not fall back to default-src, so they are named.
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  // The page answers "what is deployed now": a cached copy would answer with the past.
  'cache-control': 'no-store',
};

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** DNS-1123 subdomain, what Kubernetes allows for namespace and Application names. */
const K8S_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

function send(res: FastifyReply, method: string, status: number, body: string, extra: Record<string, string> = {}): FastifyReply {
  const buf = Buffer.from(body, 'utf8');
  res.code(status).headers({ ...UI_SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8', ...extra });
  // HEAD: the headers (length included) GET would send, no body.
  if (method === 'HEAD') return res.header('content-length', String(buf.length)).send();
  return res.send(buf);
}

function parseFilter(params: URLSearchParams): { filter: Filter; error?: string } {
  const app = params.get('app')?.trim() || undefined;
  const rawSha = params.get('sha')?.trim() || undefined;
  const rawLimit = params.get('limit');
  const limitNum = rawLimit === null ? DEFAULT_LIMIT : Number(rawLimit);
  const limit = Number.isInteger(limitNum) && limitNum > 0 ? Math.min(limitNum, MAX_LIMIT) : DEFAULT_LIMIT;
  const errors: string[] = [];
  let sha: string | undefined;
  if (rawSha !== undefined) {
    if (/^[0-9a-fA-F]{1,64}$/.test(rawSha)) sha = rawSha.toLowerCase();
    else errors.push(`"${rawSha.slice(0, 80)}" is not a commit SHA prefix (1 to 64 hex digits).`);
  }
  if (app !== undefined && app.length > 507) errors.push('The application filter is too long.');
  if (rawLimit !== null && limit !== limitNum) errors.push(`limit must be a whole number from 1 to ${MAX_LIMIT}; showing ${limit}.`);
  return {
    filter: { app: app && app.length <= 507 ? app : undefined, sha, limit },
    error: errors.length > 0 ? errors.join(' ') : undefined,
  };
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function load<T>(p: Promise<T>): Promise<Loaded<T>> {
  try {
    return await p;
  } catch (err) {
    return { error: message(err) };
  }
}

function normalizeBasePath(basePath: string | undefined): string {
  const b = (basePath ?? '/ui').replace(/\/+$/, '');
  if (!b.startsWith('/')) throw new RangeError(`basePath must start with "/": ${basePath}`);
  return b;
}

export function createUiRoutes(deps: UiDeps): FastifyPluginAsync {
  const base = normalizeBasePath(deps.basePath);
  const now = deps.now ?? (() => new Date());
  const inScope = (ns: string): boolean => deps.namespaces.length === 0 || deps.namespaces.includes(ns);

  async function overview(method: string, res: FastifyReply, params: URLSearchParams): Promise<FastifyReply> {
    const { filter, error } = parseFilter(params);
    // A bad SHA prefix matches nothing rather than being silently dropped: the page must not suggest an answer.
    const bad = error !== undefined && params.get('sha') !== null && filter.sha === undefined;
    const [apps, decisions] = await Promise.all([
      load(deps.store.list(deps.namespaces)),
      bad ? Promise.resolve<DecisionRecord[]>([]) : load(deps.audit.query({ app: filter.app, sha: filter.sha, limit: filter.limit })),
    ]);
    let shown: Loaded<AppSummary[]>;
    let appKeys: string[] = [];
    if (!Array.isArray(apps)) shown = apps;
    else {
      const optedIn = apps
        .filter((a) => a.metadata.annotations?.[BRANCH_ANNOTATION] !== undefined)
        .map(summarizeApplication)
        .filter((a) => inScope(a.namespace))
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      appKeys = optedIn.map((a) => a.key);
      shown = bad
        ? []
        : optedIn.filter(
            (a) =>
              (!filter.app || a.key === filter.app) &&
              (!filter.sha ||
                (a.evidence.verifiedSha ?? '').startsWith(filter.sha) ||
                a.sources.some((s) => s.targetRevision.startsWith(filter.sha ?? ''))),
          );
    }
    const body = renderOverview({
      basePath: base,
      now: now(),
      filter,
      filterError: error,
      apps: shown,
      appKeys,
      decisions,
      namespaces: deps.namespaces,
      auditKey: deps.auditKey,
    });
    return send(res, method, error ? 400 : 200, body);
  }

  async function appPage(method: string, res: FastifyReply, rest: string, params: URLSearchParams): Promise<FastifyReply> {
    const parts = rest.split('/');
    let ns: string;
    let name: string;
    try {
      // A path with more or fewer segments falls into the same "not found" answer as a malformed escape.
      if (parts.length !== 2) throw new URIError('not <namespace>/<name>');
      ns = decodeURIComponent(parts[0] ?? '');
      name = decodeURIComponent(parts[1] ?? '');
    } catch {
      return send(res, method, 404, renderMessage(base, 'Not found', `Application pages are ${base}/app/<namespace>/<name>.`));
    }
    if (!K8S_NAME.test(ns) || !K8S_NAME.test(name)) {
      return send(res, method, 404, renderMessage(base, 'Not found', `"${ns}/${name}" is not a valid Application name.`));
    }
    if (!inScope(ns)) {
      return send(
        res,
        method,
        404,
        renderMessage(base, 'Not found', `Namespace ${ns} is not one the gate watches (${deps.namespaces.join(', ')}).`),
      );
    }
    const key = `${ns}/${name}`;
    const { filter, error } = parseFilter(params);
    const bad = error !== undefined && params.get('sha') !== null && filter.sha === undefined;
    const [app, decisions] = await Promise.all([
      deps.store.get(ns, name).then(
        (a): Loaded<AppSummary | undefined> => summarizeApplication(a),
        (err: unknown): Loaded<AppSummary | undefined> =>
          err instanceof KubeError && err.code === 'NOT_FOUND' ? undefined : { error: message(err) },
      ),
      bad ? Promise.resolve<DecisionRecord[]>([]) : load(deps.audit.query({ app: key, sha: filter.sha, limit: filter.limit })),
    ]);
    if (app === undefined && Array.isArray(decisions) && decisions.length === 0 && !filter.sha) {
      return send(res, method, 404, renderMessage(base, 'Not found', `There is no Application ${key} and no decision about it.`));
    }
    return send(
      res,
      method,
      error ? 400 : 200,
      renderAppPage({ basePath: base, now: now(), key, filter, filterError: error, app, decisions }),
    );
  }

  // Every method reaches one handler, so anything but GET/HEAD under the base path gets the page-styled 405 with
  // Allow (not Fastify's JSON 404), and paths are read raw (percent-encoded) exactly as the checks below expect.
  return (app) => {
    const handler = async (req: { method: string; raw: { url?: string } }, res: FastifyReply): Promise<FastifyReply> => {
      const url = new URL(req.raw.url ?? '/', 'http://localhost');
      const path = url.pathname;
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') {
        return send(res, method, 405, renderMessage(base, 'Method not allowed', 'These pages are read-only.'), { allow: 'GET, HEAD' });
      }
      if (path === base || path === `${base}/`) return overview(method, res, url.searchParams);
      if (path.startsWith(`${base}/app/`))
        return appPage(method, res, path.slice(`${base}/app/`.length).replace(/\/$/, ''), url.searchParams);
      return send(res, method, 404, renderMessage(base, 'Not found', 'No such page.'));
    };
    const methods = [...app.supportedMethods];
    app.route({ method: methods, url: base, handler, exposeHeadRoute: false });
    app.route({ method: methods, url: `${base}/*`, handler, exposeHeadRoute: false });
    return Promise.resolve();
  };
}

/** Argo CD shows `link.argocd.argoproj.io/<id>` annotations of an Application as links on its page. */
export const EXTERNAL_LINK_ANNOTATION = 'link.argocd.argoproj.io/gitops-gate';

/**
 * The annotation that puts a link to this Application's gate page on its Argo CD page. `baseUrl` is where the pages
 * are reachable from people's browsers, including the base path, e.g. `https://gitops-gate.example.com/ui`.
 */
export function externalLinkAnnotation(baseUrl: string, app: { namespace: string; name: string }): Record<string, string> {
  const u = new URL(baseUrl);
  // The value becomes a clickable link in Argo CD: only web URLs, never javascript: or data:.
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new RangeError(`UI base URL must be http(s): ${baseUrl}`);
  u.search = '';
  u.hash = '';
  // Argo CD reads "title|url" values, so a literal | in the URL would be taken for a title separator.
  const root = u.toString().replace(/\/+$/, '').replaceAll('|', '%7C');
  return { [EXTERNAL_LINK_ANNOTATION]: `${root}/app/${encodeURIComponent(app.namespace)}/${encodeURIComponent(app.name)}` };
}
