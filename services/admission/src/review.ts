/**
 * admission.k8s.io/v1 AdmissionReview in and out: which kind the request carries, the pod spec in it (a Pod, or the
 * pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob), its images and labels. Pure.
 */
import { AdmissionError, EXEMPT_LABEL, type AdmissionDecision, type ContainerImage } from './decide.js';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  namespace?: string;
  operation: string;
  userInfo?: { username?: string; groups?: string[] };
  object?: unknown;
}

export interface ReviewedWorkload {
  uid: string;
  namespace: string;
  kind: string;
  name: string;
  user: string;
  images: ContainerImage[];
  exempt: boolean;
  operation: string;
  /** UPDATE: the images of oldObject (undefined when it has none or cannot be read). */
  oldImages?: ContainerImage[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where the pod spec sits in each supported kind. */
const POD_PATHS: Record<string, string[]> = {
  Pod: [],
  Deployment: ['spec', 'template'],
  StatefulSet: ['spec', 'template'],
  DaemonSet: ['spec', 'template'],
  ReplicaSet: ['spec', 'template'],
  Job: ['spec', 'template'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template'],
};

function podTemplate(kind: string, obj: Obj): Obj {
  const path = POD_PATHS[kind];
  if (!path) throw new AdmissionError('KIND_UNSUPPORTED', `kind ${kind} is not reviewed`);
  let at: unknown = obj;
  for (const k of path) at = isObj(at) ? at[k] : undefined;
  if (!isObj(at)) throw new AdmissionError('REVIEW_MALFORMED', `${kind} has no pod template`);
  return at;
}

function containersIn(spec: Obj, field: string): ContainerImage[] {
  const list = spec[field];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new AdmissionError('REVIEW_MALFORMED', `${field} is not a list`);
  return list.map((c, i) => {
    if (!isObj(c) || typeof c.image !== 'string') throw new AdmissionError('REVIEW_MALFORMED', `${field}[${i}] has no image`);
    return { container: `${field === 'containers' ? '' : `${field}/`}${typeof c.name === 'string' ? c.name : String(i)}`, image: c.image };
  });
}

/** Parses a review body; throws REVIEW_MALFORMED (answered 400) for anything that is not one. */
export function readReview(body: unknown): ReviewedWorkload {
  if (!isObj(body) || body.apiVersion !== 'admission.k8s.io/v1' || body.kind !== 'AdmissionReview' || !isObj(body.request)) {
    throw new AdmissionError('REVIEW_MALFORMED', 'not an admission.k8s.io/v1 AdmissionReview with a request');
  }
  const r = body.request;
  if (typeof r.uid !== 'string' || r.uid.length === 0 || !isObj(r.kind) || typeof r.kind.kind !== 'string' || !isObj(r.object)) {
    throw new AdmissionError('REVIEW_MALFORMED', 'request needs uid, kind and object');
  }
  const kind = r.kind.kind;
  const obj = r.object;
  const template = podTemplate(kind, obj);
  const spec = template.spec;
  if (!isObj(spec)) throw new AdmissionError('REVIEW_MALFORMED', `${kind} has no pod spec`);
  const images = [
    ...containersIn(spec, 'initContainers'),
    ...containersIn(spec, 'containers'),
    ...containersIn(spec, 'ephemeralContainers'),
  ];
  const meta = isObj(obj.metadata) ? obj.metadata : {};
  const labels = isObj(template.metadata) && isObj(template.metadata.labels) ? template.metadata.labels : {};
  const ownLabels = isObj(meta.labels) ? meta.labels : {};
  const ns = typeof r.namespace === 'string' && r.namespace ? r.namespace : typeof meta.namespace === 'string' ? meta.namespace : 'default';
  let oldImages: ContainerImage[] | undefined;
  if (r.operation === 'UPDATE' && isObj(r.oldObject)) {
    try {
      const oldSpec = podTemplate(kind, r.oldObject).spec;
      if (isObj(oldSpec))
        oldImages = [
          ...containersIn(oldSpec, 'initContainers'),
          ...containersIn(oldSpec, 'containers'),
          ...containersIn(oldSpec, 'ephemeralContainers'),
        ];
    } catch {
      // An unreadable oldObject only means the update is checked in full.
    }
  }
  const user = isObj(r.userInfo) && typeof r.userInfo.username === 'string' ? r.userInfo.username : '';
  return {
    uid: r.uid,
    namespace: ns,
    kind,
    name: typeof meta.name === 'string' ? meta.name : typeof meta.generateName === 'string' ? `${meta.generateName}*` : '',
    user,
    images,
    exempt: labels[EXEMPT_LABEL] === 'true' || ownLabels[EXEMPT_LABEL] === 'true',
    operation: typeof r.operation === 'string' ? r.operation : '',
    oldImages,
  };
}

/**
 * An UPDATE that adds no image (every image of the object was already in oldObject: a scale, a label, a status-free
 * edit) starts nothing new: it is not re-checked, so a policy change never blocks scaling down or relabelling what
 * already runs. New Pods are checked on their own CREATE.
 */
export function addsNoImage(w: ReviewedWorkload): boolean {
  if (w.operation !== 'UPDATE' || !w.oldImages) return false;
  const before = new Set(w.oldImages.map((c) => c.image));
  return w.images.every((c) => before.has(c.image));
}

export function reviewResponse(uid: string, d: Pick<AdmissionDecision, 'allowed' | 'warnings' | 'message' | 'problems'>): object {
  const response: Obj = { uid, allowed: d.allowed };
  if (!d.allowed) {
    response.status = {
      code: 403,
      reason: 'Forbidden',
      message: d.message,
      details: { causes: d.problems.map((p) => ({ reason: p.code, field: p.container, message: p.message })) },
    };
  }
  // The API server shows at most a few short warnings: keep each line short and their number bounded.
  if (d.warnings.length > 0) response.warnings = d.warnings.slice(0, 16).map((w) => w.slice(0, 400));
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}
