/**
 * Applying one commit verdict to every Application that follows its branch: under the Application's lock, re-read it,
 * decide, and write a JSON patch of only what the gate owns, guarded by the resourceVersion and by `test` ops on what
 * the decision read; on 409 (or 422 from a failed `test`) re-read and decide again. Fail-closed: anything
 * the gate cannot establish (ancestry, a fresh read) leaves the Application where it is.
 */
import type { CommitVerdictJob, ImageVerdictJob } from '@gitops-gate/contracts';
import type { GateLogger } from './logger.js';
import {
  ANNOTATION_PREFIX,
  appKey,
  findTrackingApps,
  pinPatch,
  pinTestsHold,
  readRevision,
  type Application,
  type SourceRef,
} from './applications.js';
import type { AuditTrail, DecisionInput, DecisionRecord } from './audit.js';
import { createAncestryMemo, createCoalescer, YIELDED, type AncestryMemo } from './coalesce.js';
import { decide, type DecisionAction } from './decide.js';
import { KubeError, type ApplicationStore } from './application-store.js';
import type { KeyedLock } from './lock.js';
import { evaluateForApp, type LivePolicy } from '@gitops-gate/policy';
import { requiredImages, type ImageState } from './images.js';
import { checkImageRequirement, imagePoliciesFor } from './image-policies.js';

/**
 * Runs fn inside a tracing span (telemetry's inSpan in the gate process): the Kubernetes write shows in the
 * delivery's trace under `gate.apply`. A port, so the decisions load no tracing SDK.
 */
export type SpanRunner = <T>(
  name: string,
  attributes: Record<string, string | number | boolean | undefined>,
  fn: () => Promise<T>,
) => Promise<T>;

export interface GateDeps {
  store: ApplicationStore;
  lock: KeyedLock;
  audit: AuditTrail;
  logger: GateLogger;
  /** Namespaces to look in; empty = all. */
  namespaces: string[];
  isAncestor: (cloneUrl: string, ancestor: string, descendant: string) => Promise<boolean>;
  now?: () => Date;
  maxConflictRetries?: number;
  onDecision?: (action: GateAction | 'error', app: string) => void;
  /**
   * GatePolicy/ClusterGatePolicy objects in force now (from the watch): a verdict's result counts only under its live
   * generation. Undefined = no watch (file policies only). May throw while the watch has not synced (job retried).
   */
  livePolicies?: () => LivePolicy[];
  /** Revision of the live policy set: a verdict re-verified for it and still stale is not re-requested (no loop). */
  livePolicyRevision?: () => string;
  /** Asks for the commit to be verified again (policies changed since the verdict). */
  requestReverify?: (verdict: CommitVerdictJob, reason: string) => Promise<void>;
  /** Image verdicts and commits waiting for them (Applications with gitops-gate.io/require-images). */
  images?: ImageState;
  /** Asks for an image to be verified again (its stored results predate a live policy generation). */
  requestImageReverify?: (build: { image: string; digest: string; repoUrl: string }, reason: string) => Promise<void>;
  /** Evidence annotations beyond the gate's own (e.g. the Argo CD external link to the audit page). */
  extraAnnotations?: (app: Application) => Record<string, string>;
  onConflict?: () => void;
  /** Traces the Application write (`kube.patch`); unset = no span. */
  span?: SpanRunner;
  /** Applications of one verdict decided at once (each still under its own lock); default 32. */
  fanOutConcurrency?: number;
}

/** Every action the gate records: the history rules' and the policy rules' (default deny, audit mode, staleness). */
export type GateAction =
  | DecisionAction
  | 'audit-pin'
  | 'refuse-no-policy'
  | 'refuse-invalid-policy'
  | 'refuse-not-on-branch'
  | 'deferred-stale-policy'
  | 'deferred-transient'
  | 'wait-images';

/**
 * Why a verdict proves no branch membership, naming both SHAs. The webhook's `ref` is a claim (anyone with the
 * webhook secret, or a replayed delivery, can name any branch); the verifier's reading of the remote is the proof.
 */
export function notOnBranchReason(v: CommitVerdictJob): string | undefined {
  if (v.onBranch === true) return undefined;
  const where = `refs/heads/${v.branch} of ${v.repoUrl}`;
  if (v.onBranch === undefined) return `commit ${v.sha}: the verdict carries no proof that it is on ${where} (fail closed)`;
  if (v.branchHead === null) return `commit ${v.sha} is not on ${where}: the branch does not exist on the remote`;
  return `commit ${v.sha} is not on ${where}: the branch head ${v.branchHead ?? 'unknown'} does not contain it`;
}

export interface AppOutcome {
  app: string;
  action: GateAction | 'not-found' | 'forbidden' | 'invalid';
  reason: string;
  record?: DecisionRecord;
}

export interface Gate {
  applyVerdict(verdict: CommitVerdictJob): Promise<AppOutcome[]>;
  /** Records an image verdict; commits that were waiting for it are decided again. */
  applyImageVerdict(verdict: ImageVerdictJob): Promise<AppOutcome[]>;
  /** Decides every commit waiting for images again (the live policies changed: what they wait for may have too). */
  reevaluatePending(): Promise<AppOutcome[]>;
}

/**
 * A deferred verdict still carries the policy results that are final. They settle an Application only when they allow
 * it (its Enforce policies all passed, or Audit would pass) or when a policy refuses it whatever the verifier says
 * (invalid). Anything else may rest on the result that could not be had: decided later, never refused for it.
 */
function settledDespiteDeferral(policy: ReturnType<typeof evaluateForApp>): boolean {
  return policy.kind === 'enforce-pass' || policy.kind === 'invalid-policy' || (policy.kind === 'audit' && policy.wouldPass);
}

/** What one decision rests on: the action, and the audit record's fields. */
interface AppDecision {
  decision: { action: GateAction; reason: string };
  imageEvidence: string[];
  recordInput: DecisionInput;
}

interface GateCtx {
  deps: GateDeps;
  now: () => Date;
  maxRetries: number;
  /** Ancestry learnt from verdicts seen by this process (sha → its recent ancestors): no git call to prove it again. */
  ancestry: AncestryMemo;
}

function evidence(ctx: GateCtx, verdict: CommitVerdictJob, decisionId: string): Record<string, string> {
  return {
    [`${ANNOTATION_PREFIX}verified-sha`]: verdict.sha,
    [`${ANNOTATION_PREFIX}signer`]: verdict.signer?.identity ?? '',
    [`${ANNOTATION_PREFIX}method`]: verdict.method,
    [`${ANNOTATION_PREFIX}verified-at`]: verdict.verifiedAt,
    [`${ANNOTATION_PREFIX}pinned-at`]: ctx.now().toISOString(),
    [`${ANNOTATION_PREFIX}decision-id`]: decisionId,
    [`${ANNOTATION_PREFIX}delivery-id`]: verdict.deliveryId,
  };
}

/** After a 422: true when a `test` precondition of the patch fails on a fresh read (or the Application is gone). */
async function changedUnderUs(ctx: GateCtx, ns: string, name: string, patch: ReturnType<typeof pinPatch>): Promise<boolean> {
  try {
    return !pinTestsHold(await ctx.deps.store.get(ns, name), patch);
  } catch (err) {
    if (err instanceof KubeError && err.code === 'NOT_FOUND') return true;
    throw err;
  }
}

/** The history and policy rules for one Application as read (before images). */
async function decideRules(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  current: (string | undefined)[],
  policy: ReturnType<typeof evaluateForApp>,
  tentative: boolean,
): Promise<{ action: GateAction; reason: string }> {
  const { deps } = ctx;
  const offBranch = notOnBranchReason(verdict);
  if (verdict.outcome === 'deferred' && !settledDespiteDeferral(policy)) {
    // Transient trouble outlasted the verifier's retries: one record with the real cause, no re-verification
    // (that would be a second fetch of a commit that is not there yet); reconcile queues the head again.
    return { action: 'deferred-transient', reason: `${verdict.code}: ${verdict.reasons.join('; ')}` };
  }
  // Before every policy rule: no mode (Audit included) pins a commit the branch does not contain.
  if (offBranch) return { action: 'refuse-not-on-branch', reason: offBranch };
  if (policy.kind === 'stale') {
    const revision = deps.livePolicyRevision?.();
    if (revision !== undefined && verdict.reverify === revision) {
      // Not final: the verifier may have read an older snapshot (another gate replica published last). Reconcile
      // queues the head again later; nothing moves meanwhile (fail closed), and nothing is lost.
      return {
        action: 'deferred-stale-policy',
        reason: `${policy.reason}: re-verification for policy revision ${revision} did not cover it`,
      };
    }
    if (!tentative) await deps.requestReverify?.(verdict, policy.reason);
    return { action: 'deferred-stale-policy', reason: policy.reason };
  }
  if (policy.kind === 'no-policy') return { action: 'refuse-no-policy', reason: policy.reason };
  if (policy.kind === 'invalid-policy') return { action: 'refuse-invalid-policy', reason: policy.reason };
  const d = await decide({
    current,
    sha: verdict.sha,
    // Audit mode pins as the Application would without the gate (history rules still hold).
    verified: policy.kind === 'enforce-pass' || policy.kind === 'audit',
    verdictReason: policy.kind === 'enforce-fail' ? policy.reason : `${verdict.code}: ${verdict.reasons.join('; ')}`,
    // The verdict carries the commit's recent history, and so did the verdicts before it: ancestry found there needs
    // no fetch. Only a proof is taken from it; anything it cannot prove goes to git.
    isAncestor: (a, d) => {
      const known = ctx.ancestry.known(a, d);
      return known !== undefined ? Promise.resolve(known) : deps.isAncestor(verdict.cloneUrl, a, d);
    },
  });
  return policy.kind === 'audit' ? { action: d.action === 'pin' ? 'audit-pin' : d.action, reason: `${d.reason}; ${policy.reason}` } : d;
}

/** A pin that needs images: pending first, then look (an image verdict landing in between sees this commit). */
async function checkImages(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  app: Application,
  decision: { action: GateAction; reason: string },
  tentative: boolean,
): Promise<{ decision: { action: GateAction; reason: string }; imageEvidence: string[] }> {
  const { deps } = ctx;
  const required = requiredImages(app);
  if ((decision.action !== 'pin' && decision.action !== 'audit-pin') || required.length === 0) return { decision, imageEvidence: [] };
  if (!deps.images)
    return {
      decision: { action: 'wait-images', reason: 'Application requires images but image verification is not configured' },
      imageEvidence: [],
    };
  await deps.images.addPending(verdict);
  const auditOnly = decision.action === 'audit-pin';
  // Enforce: the live Enforce policies selecting this Application decide; an Audit policy never does.
  const check = checkImageRequirement({
    images: required,
    sha: verdict.sha,
    repoUrl: verdict.repoUrl,
    policies: imagePoliciesFor(app, verdict, deps.livePolicies?.(), auditOnly ? 'Audit' : 'Enforce'),
    builds: await deps.images.buildsFor(verdict.sha),
  });
  if (check.complete) return { decision, imageEvidence: check.satisfiedBy };
  if (!auditOnly && !tentative)
    for (const build of check.reverify) await deps.requestImageReverify?.(build, 'image verdict predates a live policy generation');
  return {
    decision: auditOnly
      ? { action: 'audit-pin', reason: `${decision.reason}; audit: images would block: ${check.missing.join('; ')}` }
      : { action: 'wait-images', reason: `waiting for images: ${check.missing.join('; ')}` },
    imageEvidence: check.satisfiedBy,
  };
}

/**
 * Everything the gate decides about one Application as read, with the audit record it would write. `tentative`: read
 * from the cache; only a pin is acted on, anything else is decided again on a fresh read, so no re-verification is
 * requested from this one.
 */
async function decideOnApp(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  app: Application,
  refs: SourceRef[],
  tentative: boolean,
): Promise<AppDecision> {
  const current = refs.map((r) => readRevision(app, r));
  const policy = evaluateForApp(app, verdict, ctx.deps.livePolicies?.());
  const rules = await decideRules(ctx, verdict, current, policy, tentative);
  const { decision, imageEvidence } = await checkImages(ctx, verdict, app, rules, tentative);
  const policyNames = 'policies' in policy ? policy.policies : [];
  const recordInput: DecisionInput = {
    deliveryId: verdict.deliveryId,
    repo: verdict.repoUrl,
    branch: verdict.branch,
    sha: verdict.sha,
    app: appKey(app),
    action: decision.action,
    reason: decision.reason,
    verdict: {
      outcome: verdict.outcome,
      method: verdict.method,
      code: verdict.code,
      signer: verdict.signer?.identity,
      issuer: verdict.signer?.issuer,
      logIndex: verdict.signer?.logIndex,
      reasons: verdict.reasons,
    },
    policy:
      policyNames.length > 0
        ? policyNames.map((n) => `${n}@${verdict.policies.find((p) => p.name === n)?.generation ?? '-'}`).join(',')
        : verdict.rule,
    previousRevision: current.join(','),
  };
  return { decision, imageEvidence, recordInput };
}

/**
 * A gate that died between its PATCH and its audit write left a pin without a record: write it now, with the decision
 * id the Application carries, so the trail and the evidence agree again. Undefined when there is nothing to recover.
 */
async function recoverOrphanPin(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  app: Application,
  recordInput: DecisionInput,
): Promise<AppOutcome | undefined> {
  const ann = app.metadata.annotations ?? {};
  const orphan = ann[`${ANNOTATION_PREFIX}decision-id`];
  if (!orphan || ann[`${ANNOTATION_PREFIX}verified-sha`] !== verdict.sha || (await ctx.deps.audit.has(orphan))) return undefined;
  const key = appKey(app);
  const record = await ctx.deps.audit.record({
    ...recordInput,
    id: orphan,
    action: ann[`${ANNOTATION_PREFIX}mode`] === 'audit' ? 'audit-pin' : 'pin',
    reason: 'pinned by a gate that stopped before recording it; recorded on retry',
    previousRevision: undefined,
    newRevision: verdict.sha,
  });
  ctx.deps.onDecision?.('pin', key);
  ctx.deps.logger.warn({ app: key, sha: verdict.sha, decisionId: orphan }, 'unrecorded pin recovered');
  return { app: key, action: 'pin', reason: record.reason, record };
}

/**
 * The guarded JSON patch of a pin decision, then its record. 'retry' = the Application changed under us (409, or
 * 422 from a `test` that no longer holds): read it again and decide again.
 */
async function writePin(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  app: Application,
  refs: SourceRef[],
  d: AppDecision,
  canRetry: boolean,
): Promise<AppOutcome | 'retry'> {
  const { deps } = ctx;
  const key = appKey(app);
  const ns = app.metadata.namespace ?? 'default';
  const name = app.metadata.name;
  const decisionId = crypto.randomUUID();
  const patch = pinPatch(
    app,
    refs,
    verdict.sha,
    {
      ...evidence(ctx, verdict, decisionId),
      [`${ANNOTATION_PREFIX}mode`]: d.decision.action === 'audit-pin' ? 'audit' : 'enforce',
      ...(d.imageEvidence.length > 0 ? { [`${ANNOTATION_PREFIX}images`]: d.imageEvidence.join(',') } : {}),
      ...deps.extraAnnotations?.(app),
    },
    verdict.branch,
  );
  try {
    const write = () => deps.store.patch(ns, name, patch);
    await (deps.span ? deps.span('kube.patch', { 'k8s.application': key, 'git.sha': verdict.sha }, write) : write());
  } catch (err) {
    // 409: the resourceVersion moved. 422 with a precondition that no longer holds: a field the decision rests
    // on moved (a real API server answers a failed JSON-patch `test` with 422). Both: re-read, decide again.
    if (
      err instanceof KubeError &&
      canRetry &&
      (err.code === 'CONFLICT' || (err.code === 'INVALID' && (await changedUnderUs(ctx, ns, name, patch))))
    ) {
      deps.onConflict?.();
      deps.logger.debug({ app: key, status: err.status }, 'application changed under us, re-reading');
      return 'retry';
    }
    if (err instanceof KubeError && (err.code === 'FORBIDDEN' || err.code === 'INVALID' || err.code === 'NOT_FOUND')) {
      const action = err.code === 'FORBIDDEN' ? 'forbidden' : err.code === 'INVALID' ? 'invalid' : 'not-found';
      const record = await deps.audit.record({ ...d.recordInput, action: `error-${action}`, reason: err.message });
      deps.onDecision?.('error', key);
      deps.logger.error(
        { app: key, sha: verdict.sha, status: err.status, err, decisionId: record.id },
        'gate patch refused by the API server',
      );
      return { app: key, action, reason: err.message, record };
    }
    throw err;
  }
  const record = await deps.audit.record({ ...d.recordInput, id: decisionId, newRevision: verdict.sha });
  deps.onDecision?.(d.decision.action, key);
  deps.logger.info(
    {
      app: key,
      sha: verdict.sha,
      signer: verdict.signer?.identity,
      method: verdict.method,
      previous: d.recordInput.previousRevision,
      decisionId: record.id,
    },
    'application pinned',
  );
  return { app: key, action: d.decision.action, reason: d.decision.reason, record };
}

/**
 * One verdict for one Application, under its lock. The first attempt decides on the watch cache's copy (no GET): a pin is written with that copy's resourceVersion and `test` ops, so if the copy was stale
 * the API server refuses it (409/422) and the next attempt reads afresh — never a write on a stale read. Any other
 * decision (a refusal or a skip writes nothing, but would keep a pin from happening) is made again on a fresh read
 * before it is recorded, so a lagging cache cannot lose a pin either.
 */
async function applyToApp(
  ctx: GateCtx,
  verdict: CommitVerdictJob,
  first: Application,
  shouldYield: () => boolean = () => false,
): Promise<AppOutcome | typeof YIELDED> {
  const { deps } = ctx;
  const key = appKey(first);
  const ns = first.metadata.namespace ?? 'default';
  const name = first.metadata.name;
  return deps.lock.withLock(key, async () => {
    // A newer verdict of this branch arrived while we queued for the lock: it goes first (coalesce.ts).
    if (shouldYield()) return YIELDED;
    // The watch cache's copy as it is now that we hold the lock (not the one that found the Application).
    const peeked = deps.store.peek?.(ns, name);
    let cached: Application | undefined = peeked?.metadata.resourceVersion ? peeked : undefined;
    // Retries after a fresh read; the attempt on the cached copy is not one of them.
    let attempt = 0;
    for (;;) {
      let app: Application;
      if (cached) {
        app = cached;
      } else {
        try {
          app = await deps.store.get(ns, name);
        } catch (err) {
          if (err instanceof KubeError && err.code === 'NOT_FOUND') return { app: key, action: 'not-found', reason: err.message };
          throw err;
        }
      }
      const fromCache = cached !== undefined;
      cached = undefined;
      // The Application may have changed its mind about tracking since it was listed.
      const still = findTrackingApps([app], verdict.repoUrl, verdict.branch)[0];
      if (!still) {
        if (fromCache) continue;
        return { app: key, action: 'not-found', reason: 'Application no longer tracks this branch' };
      }
      const d = await decideOnApp(ctx, verdict, app, still.refs, fromCache);
      const pins = d.decision.action === 'pin' || d.decision.action === 'audit-pin';
      if (!pins && fromCache) continue;
      if (d.decision.action === 'skip-same') {
        const recovered = await recoverOrphanPin(ctx, verdict, app, d.recordInput);
        if (recovered) return recovered;
      }
      if (!pins) {
        const record = await deps.audit.record(d.recordInput);
        deps.onDecision?.(d.decision.action, key);
        deps.logger.info(
          { app: key, sha: verdict.sha, action: d.decision.action, reason: d.decision.reason, decisionId: record.id },
          'gate decision',
        );
        return { app: key, action: d.decision.action, reason: d.decision.reason, record };
      }
      // A write refused for a stale cached copy is not one of the conflicts the retry budget is for.
      const out = await writePin(ctx, verdict, app, still.refs, d, fromCache || attempt < ctx.maxRetries);
      if (out !== 'retry') return out;
      if (!fromCache) attempt += 1;
    }
  });
}

/** Runs `fn` over `items`, at most `limit` at a time; every item runs, errors are collected per item. */
async function eachLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<PromiseSettledResult<R>[]> {
  const out = new Array<PromiseSettledResult<R>>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { status: 'fulfilled', value: await fn(items[i] as T) };
      } catch (reason) {
        out[i] = { status: 'rejected', reason };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export function createGate(deps: GateDeps): Gate {
  const ctx: GateCtx = {
    deps,
    now: deps.now ?? (() => new Date()),
    maxRetries: deps.maxConflictRetries ?? 8,
    ancestry: createAncestryMemo(),
  };
  const coalescer = createCoalescer();
  const fanOut = deps.fanOutConcurrency ?? 32;

  /** Per Application: a verdict waits while a newer one of the same branch is in flight here (see coalesce.ts). */
  function applyCoalesced(verdict: CommitVerdictJob, app: Application): Promise<AppOutcome> {
    return coalescer.run(appKey(app), verdict, (shouldYield) => applyToApp(ctx, verdict, app, shouldYield));
  }

  async function applyImageVerdict(v: ImageVerdictJob): Promise<AppOutcome[]> {
    const images = deps.images;
    if (!images) return [];
    const key = `image:${v.image}`;
    if (v.deferred) {
      // Registry trouble outlasted the retries: no verdict about the image, so nothing stored that could revoke an
      // earlier pass or count as a rejection; one record with the cause.
      await deps.lock.withLock(key, () =>
        deps.audit.record({
          deliveryId: v.deliveryId,
          repo: v.repoUrl,
          branch: '-',
          sha: v.sourceCommit ?? '-',
          app: key,
          action: 'deferred-image',
          reason: `${v.code}: ${v.reason ?? ''}`,
          verdict: { outcome: 'deferred', method: 'image', code: v.code, reasons: v.reason ? [v.reason] : [] },
          newRevision: v.digest,
        }),
      );
      deps.logger.warn({ image: v.image, digest: v.digest, code: v.code }, 'image verification deferred');
      return [];
    }
    const policies = v.policies.map((p) => `${p.name}@${p.generation ?? '-'}:${p.ok ? 'ok' : p.code}`).join(',');
    // Recorded under the image's lock: a stored result is replaced only by a newer one (images.ts supersedesImageResult), read-compare-write.
    await deps.lock.withLock(key, async () => {
      await images.recordImage(v);
      await deps.audit.record({
        deliveryId: v.deliveryId,
        repo: v.repoUrl,
        branch: '-',
        sha: v.sourceCommit ?? '-',
        app: key,
        action: v.ok ? 'image-verified' : 'image-rejected',
        reason: v.ok ? `built from ${v.sourceCommit ?? 'unknown'} by ${v.builder ?? v.signer ?? '?'}` : `${v.code}: ${v.reason ?? ''}`,
        verdict: {
          outcome: v.ok ? 'verified' : 'rejected',
          method: 'image',
          code: v.code,
          signer: v.signer,
          reasons: v.reason ? [v.reason] : [],
        },
        policy: policies || v.policy,
        newRevision: v.digest,
      });
    });
    deps.logger.info(
      { image: v.image, digest: v.digest, ok: v.ok, code: v.code, sourceCommit: v.sourceCommit, policies },
      'image verdict recorded',
    );
    if (!v.sourceCommit) return [];
    const out: AppOutcome[] = [];
    for (const pending of await images.pendingFor(v.sourceCommit)) out.push(...(await gate.applyVerdict(pending)));
    return out;
  }

  async function reevaluatePending(): Promise<AppOutcome[]> {
    if (!deps.images) return [];
    const out: AppOutcome[] = [];
    for (const sha of await deps.images.pendingShas()) {
      for (const pending of await deps.images.pendingFor(sha)) {
        try {
          out.push(...(await gate.applyVerdict(pending)));
        } catch (err) {
          // The next image verdict or policy change decides it again; the others must not wait for this one.
          deps.logger.warn({ sha, err }, 'pending image wait not re-evaluated');
        }
      }
    }
    return out;
  }

  const gate: Gate = {
    applyImageVerdict,
    reevaluatePending,
    async applyVerdict(verdict) {
      ctx.ancestry.learn(verdict);
      const apps = await deps.store.list(deps.namespaces);
      const tracking = findTrackingApps(apps, verdict.repoUrl, verdict.branch);
      if (tracking.length === 0) {
        deps.logger.info({ repo: verdict.repoUrl, branch: verdict.branch, sha: verdict.sha }, 'no application tracks this branch');
        return [];
      }
      // Fan-out: the Applications are independent (each under its own lock); the writes are paced by the store's
      // token bucket, not by deciding one Application after another. One Application's trouble must not keep the
      // others from their pin; a transient error is rethrown after the rest (the job is retried; pins are idempotent).
      const settled = await eachLimited(tracking, fanOut, (t) => applyCoalesced(verdict, t.app));
      const results: AppOutcome[] = [];
      let transient: Error | undefined;
      settled.forEach((s, i) => {
        if (s.status === 'fulfilled') return void results.push(s.value);
        transient ??= s.reason instanceof Error ? s.reason : new Error(String(s.reason));
        deps.logger.warn({ app: appKey(tracking[i]!.app), sha: verdict.sha, err: s.reason as Error }, 'gate decision deferred');
      });
      if (transient) throw transient;
      // Only a verdict still waiting stays pending: re-deciding a decided one on every image or policy change is noise.
      if (
        deps.images &&
        tracking.some((t) => requiredImages(t.app).length > 0) &&
        !results.some((r) => r.action === 'wait-images' || r.action === 'deferred-stale-policy')
      ) {
        await deps.images.removePending(verdict);
      }
      return results;
    },
  };
  return gate;
}
