import type { StructuralSchema } from './structural.js';

/** A column of the server-side `Table` view (what `kubectl get` prints), shaped like a CRD's additionalPrinterColumns. */
export interface PrinterColumn {
  name: string;
  /** 'string' | 'integer' | 'number' | 'boolean' | 'date' (a date cell is rendered as an age, like the real server does). */
  type: string;
  /** Simple dotted path such as `.status.sync.status` (no filters, no wildcards). */
  jsonPath: string;
  priority?: number;
  format?: string;
  description?: string;
}

/** A resource type the sandbox serves. Mirrors what a CustomResourceDefinition declares. */
export interface ResourceKind {
  /** API group; '' is the core group served under /api/v1. */
  group: string;
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Returns problems, each ideally `<field path>: <detail>` (e.g. `spec.destination: Required value`); empty = valid. */
  validate?: (obj: unknown) => string[];
  /** Columns for `kubectl get`; when absent an Age column is used, as for a CRD without printer columns. */
  printerColumns?: PrinterColumn[];
  /**
   * When true, `/status` is served and writes to the main resource ignore `.status` (and only `.spec`-ish changes bump
   * generation) — like a CRD with `subresources.status`. Argo CD's Application CRD has no status subresource.
   */
  statusSubresource?: boolean;
  /**
   * The CRD's structural schema (see kindFromCrd): undeclared fields are pruned (and refused or warned about per
   * `fieldValidation`), nulls dropped and defaults written on every write and read, as a real apiserver does.
   */
  schema?: StructuralSchema;
}

export interface SandboxOptions {
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Bearer token clients must present; default random. */
  token?: string;
  /** Default: [argoApplicationKind]. The core `namespaces` resource is always served. */
  kinds?: ResourceKind[];
  /** Objects present at start (with apiVersion/kind); namespaces they name are created implicitly. */
  seed?: object[];
  /**
   * Watch events kept for resuming (default 1000, like a small watch cache); a watch from an older resourceVersion
   * gets an ERROR event with a 410 Expired Status.
   */
  watchHistory?: number;
  /**
   * Events older than this are dropped from the resume history too (the apiserver's watch cache keeps about 75 s).
   * Default: unlimited (tests that resume after long pauses keep working); production-like: 75 000.
   */
  watchHistoryMs?: number;
  /**
   * The server closes every watch after a random time in [min, max] ms, as kube-apiserver does after 30–60 min
   * (`--min-request-timeout` 1800 s, randomised up to 2×); clients then resume or relist. A client's
   * `timeoutSeconds` still wins when shorter. Default: never (tests opt in, e.g. { minMs: 500, maxMs: 1000 }).
   */
  watchTimeout?: { minMs: number; maxMs: number };
  /** How often an open watch with allowWatchBookmarks=true gets a BOOKMARK event. Default 60 000 ms (about the real server's cadence). */
  bookmarkIntervalMs?: number;
  /** Namespaces that exist at start. Default: default, kube-system, kube-public, kube-node-lease, argocd. */
  namespaces?: string[];
  /**
   * Also answer TLS on the same port (default true) with a CA made at startup. kubectl (client-go) never sends a bearer
   * token over plain HTTP, so kubeconfigs point at the https:// URL unless asked otherwise.
   */
  tls?: boolean;
  /** User name shown in Forbidden messages (what RBAC would call the subject). Default `system:serviceaccount:argocd:gitops-gate`. */
  userName?: string;
}

export interface FaultSpec {
  method?: string;
  /** Matched against the request path including its query string. */
  pathIncludes?: string;
  status: number;
  /** How many matching requests fail; default 1; Infinity for "until clearFaults()". */
  count?: number;
  reason?: string;
}

export interface DenyRule {
  /** get | list | watch | create | update | patch | delete | deletecollection */
  verb?: string;
  namespace?: string;
  name?: string;
  /** Plural resource name, e.g. `applications`. */
  resource?: string;
}

export interface RequestRecord {
  method: string;
  /** URL path without the query string. */
  path: string;
  /** The query string without '?', '' when none. */
  query: string;
  status: number;
}

export interface KubeconfigOptions {
  /** Context/cluster/user name; default `gitops-gate-sandbox`. */
  context?: string;
  /** Default namespace of the context. */
  namespace?: string;
  /** 'https' (default when TLS is on) embeds the sandbox CA; 'http' points at the plain URL (kubectl then sends no token). */
  scheme?: 'http' | 'https';
}

export interface SandboxApiServer {
  /** Plain-HTTP base URL, e.g. http://127.0.0.1:41234 (the same port also speaks TLS, see httpsUrl). */
  url: string;
  /** https:// form of the same port, when TLS is on. */
  httpsUrl: string | undefined;
  /** PEM of the CA that signed the serving certificate, when TLS is on. */
  caPem: string | undefined;
  token: string;
  kubeconfigYaml(opts?: KubeconfigOptions): string;
  writeKubeconfig(path: string, opts?: KubeconfigOptions): Promise<void>;
  registerKind(kind: ResourceKind): void;
  /** The next `count` matching requests answer with a Status of that code (after authentication, before authorization). */
  injectFault(f: FaultSpec): void;
  /** Matching requests get a 403 Forbidden Status worded like RBAC's. Unset fields match anything. */
  deny(rule: DenyRule): void;
  /** Removes every pending fault and every deny rule. */
  clearFaults(): void;
  requests(): RequestRecord[];
  close(): Promise<void>;
}
