/**
 * metav1.Status bodies worded exactly like k8s.io/apimachinery/pkg/api/errors, because clients (client-go, kubectl,
 * @kubernetes/client-node, our own gate) branch on `reason`, `code` and sometimes on the message text.
 */
import { BaseError } from '@gitops-gate/contracts/errors';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A Status the request handlers throw; the server turns it into the HTTP response. */
export class StatusError extends BaseError<'K8S_STATUS'> {
  constructor(
    readonly status: Status,
    readonly headers: Record<string, string> = {},
  ) {
    super('K8S_STATUS', status.message ?? status.reason ?? `status ${status.code}`);
  }
}

/** group/resource as GroupResource.String() prints it: `applications.argoproj.io`, or just `namespaces` for core. */
export function qualified(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

function failure(code: number, reason: string, message: string, details?: StatusDetails): Status {
  // Go's encoder drops empty strings and nil pointers (omitempty), so mirror that for byte-level similarity.
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) s.details = compactDetails(details);
  return s;
}

function compactDetails(d: StatusDetails): StatusDetails {
  const out: StatusDetails = {};
  if (d.name) out.name = d.name;
  if (d.group) out.group = d.group;
  if (d.kind) out.kind = d.kind;
  if (d.uid) out.uid = d.uid;
  if (d.causes && d.causes.length > 0) out.causes = d.causes;
  if (d.retryAfterSeconds) out.retryAfterSeconds = d.retryAfterSeconds;
  return out;
}

export function notFound(group: string, resource: string, name: string): StatusError {
  return new StatusError(failure(404, 'NotFound', `${qualified(group, resource)} "${name}" not found`, { name, group, kind: resource }));
}

/** What the mux answers for a path no handler serves. */
export function pathNotFound(): StatusError {
  return new StatusError(failure(404, 'NotFound', 'the server could not find the requested resource', {}));
}

export function alreadyExists(group: string, resource: string, name: string): StatusError {
  return new StatusError(
    failure(409, 'AlreadyExists', `${qualified(group, resource)} "${name}" already exists`, {
      name,
      group,
      kind: resource,
    }),
  );
}

export const OPTIMISTIC_LOCK_MESSAGE = 'the object has been modified; please apply your changes to the latest version and try again';

export function conflict(group: string, resource: string, name: string, why = OPTIMISTIC_LOCK_MESSAGE): StatusError {
  return new StatusError(
    failure(409, 'Conflict', `Operation cannot be fulfilled on ${qualified(group, resource)} "${name}": ${why}`, {
      name,
      group,
      kind: resource,
    }),
  );
}

export interface FieldError {
  /** metav1.CauseType, e.g. FieldValueRequired. */
  type: string;
  field: string;
  /** What field.Error.ErrorBody() prints, e.g. `Required value` or `Invalid value: "x": must be ...`. */
  body: string;
}

/** errors.NewInvalid: `Kind.group "name" is invalid: <field>: <body>` (several errors are listed in brackets). */
export function invalid(group: string, kindOrResource: string, name: string, errs: FieldError[]): StatusError {
  const gk = group ? `${kindOrResource}.${group}` : kindOrResource;
  const parts = errs.map((e) => (e.field ? `${e.field}: ${e.body}` : e.body));
  let message = `${gk} "${name}" is invalid`;
  if (parts.length === 1) message += `: ${parts[0]}`;
  else if (parts.length > 1) message += `: [${parts.join(', ')}]`;
  return new StatusError(
    failure(422, 'Invalid', message, {
      name,
      group,
      kind: kindOrResource,
      causes: errs.map((e) => ({ reason: e.type, message: e.body, field: e.field })),
    }),
  );
}

/** What a failed RFC 6902 patch (a failing `test`, a missing path) gets: the generic 422, no causes. */
export function genericInvalid(): StatusError {
  return new StatusError(failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {}));
}

export function badRequest(message: string): StatusError {
  return new StatusError(failure(400, 'BadRequest', message));
}

export function unauthorized(): StatusError {
  return new StatusError(failure(401, 'Unauthorized', 'Unauthorized'));
}

export function forbidden(group: string, resource: string, name: string, why: string): StatusError {
  const q = qualified(group, resource);
  const message = name ? `${q} "${name}" is forbidden: ${why}` : `${q} is forbidden: ${why}`;
  return new StatusError(failure(403, 'Forbidden', message, { name, group, kind: resource }));
}

export function methodNotAllowed(group: string, resource: string, action: string): StatusError {
  return new StatusError(
    failure(405, 'MethodNotAllowed', `${action} is not supported on resources of kind "${qualified(group, resource)}"`, {
      group,
      kind: resource,
    }),
  );
}

export function unsupportedMediaType(accepted: string[]): StatusError {
  return new StatusError(
    failure(
      415,
      'UnsupportedMediaType',
      `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
    ),
  );
}

export function notAcceptable(accepted: string[]): StatusError {
  return new StatusError(failure(406, 'NotAcceptable', `only the following media types are accepted: ${accepted.join(', ')}`));
}

/** errors.NewResourceExpired — what a watch from a compacted resourceVersion gets (inside an ERROR event). */
export function expired(message: string): Status {
  return failure(410, 'Expired', message);
}

export function internalError(message: string): StatusError {
  return new StatusError(failure(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ message }] }));
}

/** A non-API error the apiserver did not map: 500 with reason Unknown (ErrorToAPIStatus). */
export function unknownError(message: string): StatusError {
  return new StatusError(failure(500, 'Unknown', message));
}

/**
 * The Status an injected fault answers with, shaped like what the real server sends for that code (NewConflict,
 * NewServiceUnavailable, NewTooManyRequests, NewInternalError, ...). `reason` overrides the reason only.
 */
export function faultStatus(
  code: number,
  ctx: { group: string; resource: string; name: string; watch: boolean },
  reasonOverride?: string,
): StatusError {
  let err: StatusError;
  const headers: Record<string, string> = {};
  switch (code) {
    case 400:
      err = badRequest('injected fault: bad request');
      break;
    case 401:
      err = unauthorized();
      break;
    case 403:
      err = forbidden(ctx.group, ctx.resource, ctx.name, 'injected fault');
      break;
    case 404:
      err = ctx.name ? notFound(ctx.group, ctx.resource, ctx.name) : pathNotFound();
      break;
    case 409:
      err = conflict(ctx.group, ctx.resource, ctx.name || '');
      break;
    case 410:
      err = new StatusError(expired('too old resource version: injected fault'));
      break;
    case 422:
      err = genericInvalid();
      break;
    case 429:
      headers['retry-after'] = '1';
      err = new StatusError(
        failure(429, 'TooManyRequests', 'Too many requests: injected fault, please try again later', {
          retryAfterSeconds: 1,
        }),
      );
      break;
    case 500:
      err = internalError('injected fault');
      break;
    case 503:
      err = new StatusError(failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request'));
      break;
    case 504:
      err = new StatusError(failure(504, 'Timeout', 'Timeout: injected fault', {}));
      break;
    default:
      err = new StatusError(
        failure(
          code,
          code >= 500 ? 'InternalError' : 'Unknown',
          `the server responded with the status code ${code} but did not return more information`,
        ),
      );
  }
  if (reasonOverride) err.status.reason = reasonOverride;
  return new StatusError(err.status, { ...err.headers, ...headers });
}

/** The `Success` Status a custom resource DELETE answers with (store.finalizeDelete: Kind carries the resource). */
export function deleteSuccess(group: string, resource: string, name: string, uid: string): Record<string, unknown> {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Success',
    details: compactDetails({ name, group, kind: resource, uid }),
  };
}
