/**
 * The sandbox's state and the small pure helpers every handler uses: the served kinds, the object store, the
 * operator-injected faults and denials, and the request log. Handlers are module functions that take this state as
 * their first argument, so each concern (routing, object lifecycle, reads, writes) lives in a file of its own.
 */
import { randomBytes } from 'node:crypto';
import { namespaceKind } from './kinds.js';
import type { FieldError } from './status.js';
import type { Obj, Store } from './store.js';
import type { DenyRule, FaultSpec, RequestRecord, ResourceKind, SandboxOptions } from './types.js';

export interface SandboxState {
  readonly store: Store;
  /** Served kinds; registerKind may add or replace one while the server runs. */
  readonly kinds: ResourceKind[];
  readonly faults: Array<FaultSpec & { remaining: number }>;
  readonly denies: DenyRule[];
  readonly log: RequestRecord[];
  /** Stop functions of the open watch streams (close ends them all). */
  readonly openWatches: Set<() => void>;
  readonly userName: string;
  readonly bookmarkIntervalMs: number;
  readonly watchTimeout: SandboxOptions['watchTimeout'];
  /** The plain-HTTP URL, known once the listener is bound. */
  url: string;
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export function timestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function truthy(v: string | null): boolean {
  return v === 'true' || v === '1';
}

export function apiVersionOf(kind: ResourceKind): string {
  return kind.group ? `${kind.group}/${kind.version}` : kind.version;
}

export function resourceKey(kind: ResourceKind): string {
  return `${kind.group}/${kind.plural}`;
}

/** The order LIST returns items in (namespace, then name — etcd key order); continue tokens resume after one. */
export function listKey(o: Obj): string {
  return `${o.metadata.namespace ?? ''}\u0000${o.metadata.name}`;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `a.b: Required value` -> a FieldError with the cause type the real validators use for that wording. */
export function problemToFieldError(p: string): FieldError {
  const m = /^([A-Za-z0-9_.[\]\-<>/]+): ([\s\S]*)$/.exec(p);
  const field = m ? (m[1] ?? '') : '';
  const body = m ? (m[2] ?? '') : p;
  let type = 'FieldValueInvalid';
  if (body.startsWith('Required value')) type = 'FieldValueRequired';
  else if (body.startsWith('Unsupported value')) type = 'FieldValueNotSupported';
  else if (body.startsWith('Forbidden')) type = 'FieldValueForbidden';
  else if (body.startsWith('Duplicate value')) type = 'FieldValueDuplicate';
  else if (body.startsWith('Too long')) type = 'FieldValueTooLong';
  else if (body.startsWith('Too many')) type = 'FieldValueTooMany';
  else if (body.includes('must be of type')) type = 'FieldValueTypeInvalid';
  return { type, field, body };
}

export function nameProblems(kind: ResourceKind, name: string): FieldError[] {
  const label = kind === namespaceKind || (kind.group === '' && kind.plural === 'namespaces');
  const max = label ? 63 : 253;
  const errs: FieldError[] = [];
  if (name.length > max) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'metadata.name',
      body: `Invalid value: "${name}": must be no more than ${max} characters`,
    });
  }
  if (!(label ? DNS1123_LABEL : DNS1123_SUBDOMAIN).test(name)) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'metadata.name',
      body: `Invalid value: "${name}": ${label ? LABEL_MSG : SUBDOMAIN_MSG}`,
    });
  }
  return errs;
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';
export function randomSuffix(): string {
  const bytes = randomBytes(5);
  return [...bytes].map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
}

export const findKind = (s: SandboxState, group: string, version: string, plural: string): ResourceKind | undefined =>
  s.kinds.find((k) => k.group === group && k.version === version && k.plural === plural);

export const namespaceExists = (s: SandboxState, ns: string): boolean => s.store.get(resourceKey(namespaceKind), '', ns) !== undefined;

/** Objects are stored in the version they were written in; hand them out in the version the client addressed. */
export function present(kind: ResourceKind, obj: Obj): Obj {
  // Defaults apply on read too (a default added to the CRD later shows on old objects); idempotent, so in place.
  kind.schema?.applyDefaults(obj);
  const apiVersion = apiVersionOf(kind);
  return obj['apiVersion'] === apiVersion ? obj : { ...obj, apiVersion };
}
