/**
 * Dynamic admission, as kube-apiserver runs it for validating webhooks: on every create and update, each webhook of
 * each stored ValidatingWebhookConfiguration whose rules, namespaceSelector and objectSelector match is called with
 * an admission.k8s.io/v1 AdmissionReview (uid, kind, resource, namespace, operation, userInfo, object, oldObject,
 * dryRun) over HTTPS, trusting its caBundle, within timeoutSeconds (default 10). A denial answers the client with
 * the webhook's status (`admission webhook "<name>" denied the request: …`); a call that fails (unreachable, timeout,
 * TLS, bad answer) denies under failurePolicy Fail (the default) and is skipped under Ignore. Warnings reach the
 * client as `Warning` headers. Only `clientConfig.url` is callable here (no Services to resolve).
 */
import { randomUUID } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { namespaceKind } from './kinds.js';
import { matchesLabels, type LabelRequirement } from './selectors.js';
import { apiVersionOf, isObject, resourceKey, type SandboxState } from './state.js';
import { internalError, StatusError, type Status } from './status.js';
import type { Obj } from './store.js';
import type { ResourceKind } from './types.js';

/** admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration (cluster-scoped), stored as given. */
export const validatingWebhookConfigurationKind: ResourceKind = {
  group: 'admissionregistration.k8s.io',
  version: 'v1',
  kind: 'ValidatingWebhookConfiguration',
  plural: 'validatingwebhookconfigurations',
  singular: 'validatingwebhookconfiguration',
  namespaced: false,
  printerColumns: [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
};

interface Rule {
  apiGroups?: string[];
  apiVersions?: string[];
  operations?: string[];
  resources?: string[];
  scope?: string;
}
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}
interface Webhook {
  name: string;
  clientConfig?: { url?: string; caBundle?: string; service?: unknown };
  rules?: Rule[];
  failurePolicy?: 'Fail' | 'Ignore';
  timeoutSeconds?: number;
  namespaceSelector?: Selector;
  objectSelector?: Selector;
}

const OPS: Record<string, LabelRequirement['op']> = { In: 'in', NotIn: 'notin', Exists: 'exists', DoesNotExist: '!' };

function selectorMatches(sel: Selector | undefined, labels: Record<string, string>): boolean {
  if (!sel) return true;
  const reqs: LabelRequirement[] = Object.entries(sel.matchLabels ?? {}).map(([key, v]) => ({ key, op: '=', values: [v] }));
  for (const e of sel.matchExpressions ?? []) {
    const op = OPS[e.operator];
    // An operator the sandbox does not know matches nothing rather than everything.
    if (!op) return false;
    reqs.push({ key: e.key, op, values: e.values ?? [] });
  }
  return matchesLabels(reqs, labels);
}

const has = (list: string[] | undefined, v: string) => (list ?? []).some((x) => x === '*' || x === v);

function ruleMatches(rule: Rule, kind: ResourceKind, operation: string, sub: string | undefined): boolean {
  const resource = sub ? `${kind.plural}/${sub}` : kind.plural;
  const resources = rule.resources ?? [];
  const resOk = resources.some((r) => r === '*' || r === resource || (r === `${kind.plural}/*` && sub !== undefined) || r === '*/*');
  const scope = rule.scope ?? '*';
  const scopeOk = scope === '*' || (scope === 'Namespaced') === kind.namespaced;
  return (
    has(rule.apiGroups, kind.group) &&
    has(rule.apiVersions, kind.version) &&
    (has(rule.operations, operation) || has(rule.operations, 'ALL')) &&
    resOk &&
    scopeOk
  );
}

function namespaceLabels(s: SandboxState, ns: string): Record<string, string> {
  const nsObj = s.store.get(resourceKey(namespaceKind), '', ns);
  // The apiserver sets this label on every namespace; selectors commonly use it to exclude namespaces by name.
  return { ...(nsObj?.metadata.labels ?? {}), 'kubernetes.io/metadata.name': ns };
}

function call(hook: Webhook, review: object): Promise<Record<string, unknown>> {
  const url = hook.clientConfig?.url;
  if (!url) return Promise.reject(new Error('the sandbox calls clientConfig.url webhooks only'));
  const u = new URL(url);
  if (u.protocol !== 'https:') return Promise.reject(new Error(`webhook URL must use https: ${url}`));
  const ca = hook.clientConfig?.caBundle ? Buffer.from(hook.clientConfig.caBundle, 'base64').toString('utf8') : undefined;
  const timeoutMs = (hook.timeoutSeconds ?? 10) * 1000;
  const body = JSON.stringify(review);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      u,
      {
        method: 'POST',
        ca,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`expected response code 200, got ${res.statusCode}`));
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>);
          } catch (err) {
            reject(err instanceof Error ? err : new Error(String(err)));
          }
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`context deadline exceeded (timeout ${hook.timeoutSeconds ?? 10}s)`)), timeoutMs);
    req.on('close', () => clearTimeout(timer));
    req.on('error', reject);
    req.end(body);
  });
}

export interface AdmissionAttributes {
  kind: ResourceKind;
  operation: 'CREATE' | 'UPDATE';
  object: Obj;
  oldObject?: Obj;
  sub?: string;
  dryRun: boolean;
  /** The client's Warning headers; webhook warnings are appended. */
  warnings: string[];
}

/** Runs every matching validating webhook; throws the StatusError the client gets when one denies or fails closed. */
export async function runValidatingWebhooks(s: SandboxState, a: AdmissionAttributes): Promise<void> {
  if (!s.kinds.some((k) => k.plural === validatingWebhookConfigurationKind.plural && k.group === validatingWebhookConfigurationKind.group))
    return;
  const configs = s.store.list(resourceKey(validatingWebhookConfigurationKind));
  if (configs.length === 0) return;
  const ns = a.object.metadata.namespace;
  const nsLabels = ns ? namespaceLabels(s, ns) : {};
  const objLabels = a.object.metadata.labels ?? {};
  for (const cfg of configs) {
    const hooks = Array.isArray((cfg as Record<string, unknown>)['webhooks'])
      ? ((cfg as Record<string, unknown>)['webhooks'] as Webhook[])
      : [];
    for (const hook of hooks) {
      if (!(hook.rules ?? []).some((r) => ruleMatches(r, a.kind, a.operation, a.sub))) continue;
      if (ns && !selectorMatches(hook.namespaceSelector, nsLabels)) continue;
      if (!selectorMatches(hook.objectSelector, objLabels)) continue;
      await callOne(s, a, hook);
    }
  }
}

async function callOne(s: SandboxState, a: AdmissionAttributes, hook: Webhook): Promise<void> {
  const uid = randomUUID();
  const gvk = { group: a.kind.group, version: a.kind.version, kind: a.kind.kind };
  const gvr = { group: a.kind.group, version: a.kind.version, resource: a.kind.plural };
  const request: Record<string, unknown> = {
    uid,
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    name: a.object.metadata.name,
    namespace: a.object.metadata.namespace,
    operation: a.operation,
    userInfo: { username: s.userName, groups: ['system:authenticated'] },
    object: { apiVersion: apiVersionOf(a.kind), kind: a.kind.kind, ...a.object },
    oldObject: a.oldObject ? { apiVersion: apiVersionOf(a.kind), kind: a.kind.kind, ...a.oldObject } : null,
    dryRun: a.dryRun,
    options: { apiVersion: 'meta.k8s.io/v1', kind: a.operation === 'CREATE' ? 'CreateOptions' : 'UpdateOptions' },
  };
  if (a.sub) request['subResource'] = a.sub;
  let response: Record<string, unknown>;
  try {
    const answer = await call(hook, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request });
    if (answer['apiVersion'] !== 'admission.k8s.io/v1' || answer['kind'] !== 'AdmissionReview' || !isObject(answer['response']))
      throw new Error('expected an admission.k8s.io/v1 AdmissionReview response');
    response = answer['response'];
    if (response['uid'] !== uid) throw new Error(`expected response.uid="${uid}", got "${String(response['uid'])}"`);
    if (typeof response['allowed'] !== 'boolean') throw new Error('response.allowed is not a bool');
  } catch (err) {
    if (hook.failurePolicy === 'Ignore') return;
    throw internalError(`failed calling webhook "${hook.name}": ${(err as Error).message}`);
  }
  for (const w of Array.isArray(response['warnings']) ? response['warnings'] : []) if (typeof w === 'string') a.warnings.push(w);
  if (response['allowed'] === true) return;
  const st = isObject(response['status']) ? response['status'] : {};
  const code = typeof st['code'] === 'number' ? st['code'] : 403;
  const status: Status = {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    code,
    reason: typeof st['reason'] === 'string' ? st['reason'] : 'Forbidden',
    message: `admission webhook "${hook.name}" denied the request${typeof st['message'] === 'string' ? `: ${st['message']}` : ' without explanation'}`,
  };
  if (isObject(st['details'])) status.details = st['details'];
  throw new StatusError(status);
}
