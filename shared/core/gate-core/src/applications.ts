/**
 * Which Argo CD Applications follow a pushed branch, and where in each one the revision lives. Pure functions.
 */
import { BaseError } from '@gitops-gate/contracts/errors';
import { normalizeRepoUrl } from '@gitops-gate/contracts';
import { appKey } from '@gitops-gate/policy';

/** The opt-in: an Application names the branch whose verified commits it may be pinned to. */
export const BRANCH_ANNOTATION = 'gitops-gate.io/branch';
export const ANNOTATION_PREFIX = 'gitops-gate.io/';

export interface AppSource {
  repoURL?: string;
  targetRevision?: string;
  [key: string]: unknown;
}

export interface Application {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    annotations?: Record<string, string>;
    labels?: Record<string, string>;
    [key: string]: unknown;
  };
  spec?: { source?: AppSource; sources?: AppSource[]; [key: string]: unknown };
  [key: string]: unknown;
}

/** A place in an Application that tracks the repository: the single `source`, or `sources[index]`. */
export type SourceRef = { kind: 'source' } | { kind: 'sources'; index: number };

export interface TrackingApp {
  app: Application;
  refs: SourceRef[];
}

// One definition of an Application's `namespace/name`, shared with policy selection.
export { appKey };

export function readRevision(app: Application, ref: SourceRef): string | undefined {
  return ref.kind === 'source' ? app.spec?.source?.targetRevision : app.spec?.sources?.[ref.index]?.targetRevision;
}

function sameRepo(a: string | undefined, repoUrl: string): boolean {
  return a !== undefined && normalizeRepoUrl(a) === repoUrl;
}

/** Applications that opted in for `branch` and have at least one source pointing at `repoUrl` (normalised). */
export function findTrackingApps(apps: Application[], repoUrl: string, branch: string): TrackingApp[] {
  const want = normalizeRepoUrl(repoUrl);
  const out: TrackingApp[] = [];
  for (const app of apps) {
    if (app.metadata.annotations?.[BRANCH_ANNOTATION] !== branch) continue;
    const refs: SourceRef[] = [];
    // Argo CD ignores `source` when `sources` is set, so only one of the two counts.
    const sources = app.spec?.sources;
    if (Array.isArray(sources) && sources.length > 0) {
      sources.forEach((s, index) => {
        if (sameRepo(s.repoURL, want)) refs.push({ kind: 'sources', index });
      });
    } else if (sameRepo(app.spec?.source?.repoURL, want)) {
      refs.push({ kind: 'source' });
    }
    if (refs.length > 0) out.push({ app, refs });
  }
  return out;
}

/** One RFC 6902 operation, as far as the gate writes them. */
export type JsonPatchOp = { op: 'test'; path: string; value: string } | { op: 'add' | 'replace'; path: string; value: string };

export class PinPatchError extends BaseError<'NO_RESOURCE_VERSION'> {
  constructor(message: string) {
    super('NO_RESOURCE_VERSION', message);
  }
}

/** RFC 6901: `~` and `/` inside a key (annotation names have a `/`). */
export function pointerToken(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

function sourcePath(ref: SourceRef): string {
  return ref.kind === 'source' ? '/spec/source' : `/spec/sources/${ref.index}`;
}

/**
 * The pin as a JSON patch that touches only what the gate owns: `targetRevision` of the gated sources and its own
 * annotations. Arrays are addressed by index, so the rest of a multi-source `spec.sources[]` is never re-sent (a merge
 * patch would have to send the whole array as read, undoing a concurrent edit of a sibling source if anything let it
 * through).
 *
 * Preconditions, all evaluated by the API server against the live object:
 * - `test` ops on what the decision was made on: the opt-in annotation and, per gated source, `repoURL` and the
 *   current `targetRevision` (the ancestry check's base). A failed test is 422 on a real API server, not 409: the
 *   gate then re-reads and decides again (see gate.ts).
 * - `replace /metadata/resourceVersion` with the version read: the patched object then carries that version, and the
 *   API server refuses the update with 409 if the object changed at all since (labels that select policies,
 *   require-images, …) — the same optimistic lock as controller-runtime's MergeFromWithOptimisticLock.
 * Without a resourceVersion there is no precondition to write, so nothing is written (fail closed).
 */
export function pinPatch(
  app: Application,
  refs: SourceRef[],
  sha: string,
  annotations: Record<string, string>,
  branch: string,
): JsonPatchOp[] {
  const rv = app.metadata.resourceVersion;
  if (!rv) throw new PinPatchError(`Application ${appKey(app)} was read without metadata.resourceVersion: refusing an unconditional write`);
  const ops: JsonPatchOp[] = [{ op: 'test', path: `/metadata/annotations/${pointerToken(BRANCH_ANNOTATION)}`, value: branch }];
  for (const ref of refs) {
    const source = ref.kind === 'source' ? app.spec?.source : app.spec?.sources?.[ref.index];
    if (typeof source?.repoURL === 'string') ops.push({ op: 'test', path: `${sourcePath(ref)}/repoURL`, value: source.repoURL });
    // An absent targetRevision (Argo CD's HEAD) has no value to test; the resourceVersion still guards it.
    if (typeof source?.targetRevision === 'string')
      ops.push({ op: 'test', path: `${sourcePath(ref)}/targetRevision`, value: source.targetRevision });
  }
  ops.push({ op: 'replace', path: '/metadata/resourceVersion', value: rv });
  // `add` on an object member sets it whether or not it exists (RFC 6902 §4.1).
  for (const ref of refs) ops.push({ op: 'add', path: `${sourcePath(ref)}/targetRevision`, value: sha });
  for (const [k, v] of Object.entries(annotations)) ops.push({ op: 'add', path: `/metadata/annotations/${pointerToken(k)}`, value: v });
  return ops;
}

function valueAt(doc: unknown, path: string): unknown {
  let cur: unknown = doc;
  for (const raw of path.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) cur = /^(0|[1-9][0-9]*)$/.test(key) ? cur[Number(key)] : undefined;
    else if (typeof cur === 'object' && cur !== null && Object.prototype.hasOwnProperty.call(cur, key))
      cur = (cur as Record<string, unknown>)[key];
    else return undefined;
  }
  return cur;
}

/** Whether every `test` op of a pin patch still holds on `app` (a 422 after they stopped holding = changed under us). */
export function pinTestsHold(app: Application, ops: JsonPatchOp[]): boolean {
  return ops.every((o) => o.op !== 'test' || valueAt(app, o.path) === o.value);
}
