/**
 * Applying one commit verdict to every Application that follows its branch: under the Application's lock, re-read it,
 * decide, and write a JSON patch of only what the gate owns, guarded by the resourceVersion and by `test` ops on what
 * the decision read; on 409 (or 422 from a failed `test`) re-read and decide again. Fail-closed: anything
 * the gate cannot establish (ancestry, a fresh read) leaves the Application where it is.
 */
import type { CommitVerdictJob, ImageVerdictJob } from '@gitops-gate/contracts';
import { inSpan, type Logger } from '@gitops-gate/telemetry';
import { ANNOTATION_PREFIX, appKey, findTrackingApps, pinPatch, pinTestsHold, readRevision, type Application } from './applications.js';
import type { AuditTrail, DecisionRecord } from './audit.js';
import { decide, type DecisionAction } from './decide.js';
import { KubeError, type ApplicationStore } from './kube.js';
import type { KeyedLock } from './lock.js';
import { evaluateForApp, type LivePolicy } from '@gitops-gate/policy';
import { requiredImages, type ImageState } from './images.js';
import { checkImageRequirement, imagePoliciesFor } from './image-policies.js';

export interface GateDeps {
  store: ApplicationStore;
  lock: KeyedLock;
  audit: AuditTrail;
  logger: Logger;
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
}

/** Every action the gate records: the history rules' and the policy rules' (default deny, audit mode, staleness). */
export type GateAction = DecisionAction | 'audit-pin' | 'refuse-no-policy' | 'refuse-invalid-policy' | 'refuse-not-on-branch' | 'deferred-stale-policy' | 'deferred-transient' | 'wait-images';

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

export function createGate(deps: GateDeps): Gate {
  const now = deps.now ?? (() => new Date());
  const maxRetries = deps.maxConflictRetries ?? 8;

  function evidence(verdict: CommitVerdictJob, decisionId: string): Record<string, string> {
    return {
      [`${ANNOTATION_PREFIX}verified-sha`]: verdict.sha,
      [`${ANNOTATION_PREFIX}signer`]: verdict.signer?.identity ?? '',
      [`${ANNOTATION_PREFIX}method`]: verdict.method,
      [`${ANNOTATION_PREFIX}verified-at`]: verdict.verifiedAt,
      [`${ANNOTATION_PREFIX}pinned-at`]: now().toISOString(),
      [`${ANNOTATION_PREFIX}decision-id`]: decisionId,
      [`${ANNOTATION_PREFIX}delivery-id`]: verdict.deliveryId,
    };
  }

  /** After a 422: true when a `test` precondition of the patch fails on a fresh read (or the Application is gone). */
  async function changedUnderUs(ns: string, name: string, patch: ReturnType<typeof pinPatch>): Promise<boolean> {
    try {
      return !pinTestsHold(await deps.store.get(ns, name), patch);
    } catch (err) {
      if (err instanceof KubeError && err.code === 'NOT_FOUND') return true;
      throw err;
    }
  }

  async function applyToApp(verdict: CommitVerdictJob, first: Application): Promise<AppOutcome> {
    const key = appKey(first);
    const ns = first.metadata.namespace ?? 'default';
    const name = first.metadata.name;
    return deps.lock.withLock(key, async () => {
      for (let attempt = 0; ; attempt++) {
        let app: Application;
        try {
          // Always decide on a fresh read under the lock, never on the list that found the Application.
          app = await deps.store.get(ns, name);
        } catch (err) {
          if (err instanceof KubeError && err.code === 'NOT_FOUND') return { app: key, action: 'not-found', reason: err.message };
          throw err;
        }
        // The Application may have changed its mind about tracking since it was listed.
        const still = findTrackingApps([app], verdict.repoUrl, verdict.branch)[0];
        if (!still) return { app: key, action: 'not-found', reason: 'Application no longer tracks this branch' };
        const current = still.refs.map((r) => readRevision(app, r));
        const policy = evaluateForApp(app, verdict, deps.livePolicies?.());
        const offBranch = notOnBranchReason(verdict);
        let decision: { action: GateAction; reason: string };
        if (verdict.outcome === 'deferred' && !settledDespiteDeferral(policy)) {
          // Transient trouble outlasted the verifier's retries: one record with the real cause, no re-verification
          // (that would be a second fetch of a commit that is not there yet); reconcile queues the head again.
          decision = { action: 'deferred-transient', reason: `${verdict.code}: ${verdict.reasons.join('; ')}` };
        } else if (offBranch) {
          // Before every policy rule: no mode (Audit included) pins a commit the branch does not contain.
          decision = { action: 'refuse-not-on-branch', reason: offBranch };
        } else if (policy.kind === 'stale') {
          const revision = deps.livePolicyRevision?.();
          if (revision !== undefined && verdict.reverify === revision) {
            // Not final: the verifier may have read an older snapshot (another gate replica published last). Reconcile
            // queues the head again later; nothing moves meanwhile (fail closed), and nothing is lost.
            decision = { action: 'deferred-stale-policy', reason: `${policy.reason}: re-verification for policy revision ${revision} did not cover it` };
          } else {
            await deps.requestReverify?.(verdict, policy.reason);
            decision = { action: 'deferred-stale-policy', reason: policy.reason };
          }
        } else if (policy.kind === 'no-policy') {
          decision = { action: 'refuse-no-policy', reason: policy.reason };
        } else if (policy.kind === 'invalid-policy') {
          decision = { action: 'refuse-invalid-policy', reason: policy.reason };
        } else {
          const d = await decide({
            current,
            sha: verdict.sha,
            // Audit mode pins as the Application would without the gate (history rules still hold).
            verified: policy.kind === 'enforce-pass' || policy.kind === 'audit',
            verdictReason: policy.kind === 'enforce-fail' ? policy.reason : `${verdict.code}: ${verdict.reasons.join('; ')}`,
            // The verdict carries the commit's recent history: a pinned commit found there is an ancestor, no fetch.
            isAncestor: (a, d) => (d === verdict.sha && (verdict.ancestors ?? []).includes(a) ? Promise.resolve(true) : deps.isAncestor(verdict.cloneUrl, a, d)),
          });
          decision = policy.kind === 'audit' ? { action: d.action === 'pin' ? 'audit-pin' : d.action, reason: `${d.reason}; ${policy.reason}` } : d;
        }
        const policyNames = 'policies' in policy ? policy.policies : [];
        let imageEvidence: string[] = [];
        const required = requiredImages(app);
        if ((decision.action === 'pin' || decision.action === 'audit-pin') && required.length > 0) {
          if (!deps.images) {
            decision = { action: 'wait-images', reason: 'Application requires images but image verification is not configured' };
          } else {
            // Pending first, then look: an image verdict landing in between will see this commit (see images.ts).
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
            imageEvidence = check.satisfiedBy;
            if (!check.complete) {
              if (!auditOnly) for (const build of check.reverify) await deps.requestImageReverify?.(build, 'image verdict predates a live policy generation');
              decision = auditOnly
                ? { action: 'audit-pin', reason: `${decision.reason}; audit: images would block: ${check.missing.join('; ')}` }
                : { action: 'wait-images', reason: `waiting for images: ${check.missing.join('; ')}` };
            }
          }
        }
        const recordInput = {
          deliveryId: verdict.deliveryId,
          repo: verdict.repoUrl,
          branch: verdict.branch,
          sha: verdict.sha,
          app: key,
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
          policy: policyNames.length > 0 ? policyNames.map((n) => `${n}@${verdict.policies.find((p) => p.name === n)?.generation ?? '-'}`).join(',') : verdict.rule,
          previousRevision: current.join(','),
        };
        if (decision.action === 'skip-same') {
          // A gate that died between its PATCH and its audit write left a pin without a record: write it now,
          // with the decision id the Application carries, so the trail and the evidence agree again.
          const ann = app.metadata.annotations ?? {};
          const orphan = ann[`${ANNOTATION_PREFIX}decision-id`];
          if (orphan && ann[`${ANNOTATION_PREFIX}verified-sha`] === verdict.sha && !(await deps.audit.has(orphan))) {
            const record = await deps.audit.record({
              ...recordInput,
              id: orphan,
              action: ann[`${ANNOTATION_PREFIX}mode`] === 'audit' ? 'audit-pin' : 'pin',
              reason: 'pinned by a gate that stopped before recording it; recorded on retry',
              previousRevision: undefined,
              newRevision: verdict.sha,
            });
            deps.onDecision?.('pin', key);
            deps.logger.warn({ app: key, sha: verdict.sha, decisionId: orphan }, 'unrecorded pin recovered');
            return { app: key, action: 'pin', reason: record.reason, record };
          }
        }
        if (decision.action !== 'pin' && decision.action !== 'audit-pin') {
          const record = await deps.audit.record(recordInput);
          deps.onDecision?.(decision.action, key);
          deps.logger.info({ app: key, sha: verdict.sha, action: decision.action, reason: decision.reason, decisionId: record.id }, 'gate decision');
          return { app: key, action: decision.action, reason: decision.reason, record };
        }
        const decisionId = crypto.randomUUID();
        const patch = pinPatch(
          app,
          still.refs,
          verdict.sha,
          {
            ...evidence(verdict, decisionId),
            [`${ANNOTATION_PREFIX}mode`]: decision.action === 'audit-pin' ? 'audit' : 'enforce',
            ...(imageEvidence.length > 0 ? { [`${ANNOTATION_PREFIX}images`]: imageEvidence.join(',') } : {}),
            ...deps.extraAnnotations?.(app),
          },
          verdict.branch,
        );
        try {
          await inSpan('kube.patch', { 'k8s.application': key, 'git.sha': verdict.sha }, () => deps.store.patch(ns, name, patch));
        } catch (err) {
          // 409: the resourceVersion moved. 422 with a precondition that no longer holds: a field the decision rests
          // on moved (a real API server answers a failed JSON-patch `test` with 422). Both: re-read, decide again.
          if (err instanceof KubeError && attempt < maxRetries && (err.code === 'CONFLICT' || (err.code === 'INVALID' && (await changedUnderUs(ns, name, patch))))) {
            deps.onConflict?.();
            deps.logger.debug({ app: key, attempt, status: err.status }, 'application changed under us, re-reading');
            continue;
          }
          if (err instanceof KubeError && (err.code === 'FORBIDDEN' || err.code === 'INVALID' || err.code === 'NOT_FOUND')) {
            const action = err.code === 'FORBIDDEN' ? 'forbidden' : err.code === 'INVALID' ? 'invalid' : 'not-found';
            const record = await deps.audit.record({ ...recordInput, action: `error-${action}`, reason: err.message });
            deps.onDecision?.('error', key);
            deps.logger.error({ app: key, sha: verdict.sha, status: err.status, err, decisionId: record.id }, 'gate patch refused by the API server');
            return { app: key, action, reason: err.message, record };
          }
          throw err;
        }
        const record = await deps.audit.record({ ...recordInput, id: decisionId, newRevision: verdict.sha });
        deps.onDecision?.(decision.action, key);
        deps.logger.info({ app: key, sha: verdict.sha, signer: verdict.signer?.identity, method: verdict.method, previous: recordInput.previousRevision, decisionId: record.id }, 'application pinned');
        return { app: key, action: decision.action, reason: decision.reason, record };
      }
    });
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
          deliveryId: v.deliveryId, repo: v.repoUrl, branch: '-', sha: v.sourceCommit ?? '-', app: key, action: 'deferred-image',
          reason: `${v.code}: ${v.reason ?? ''}`, verdict: { outcome: 'deferred', method: 'image', code: v.code, reasons: v.reason ? [v.reason] : [] }, newRevision: v.digest,
        }),
      );
      deps.logger.warn({ image: v.image, digest: v.digest, code: v.code }, 'image verification deferred');
      return [];
    }
    const policies = v.policies.map((p) => `${p.name}@${p.generation ?? '-'}:${p.ok ? 'ok' : p.code}`).join(',');
    // Recorded under the image's lock: a stored result is replaced only by a newer one (images.ts), read-compare-write.
    await deps.lock.withLock(key, async () => {
      await images.recordImage(v);
      await deps.audit.record({
        deliveryId: v.deliveryId, repo: v.repoUrl, branch: '-', sha: v.sourceCommit ?? '-', app: key,
        action: v.ok ? 'image-verified' : 'image-rejected', reason: v.ok ? `built from ${v.sourceCommit ?? 'unknown'} by ${v.builder ?? v.signer ?? '?'}` : `${v.code}: ${v.reason ?? ''}`,
        verdict: { outcome: v.ok ? 'verified' : 'rejected', method: 'image', code: v.code, signer: v.signer, reasons: v.reason ? [v.reason] : [] },
        policy: policies || v.policy, newRevision: v.digest,
      });
    });
    deps.logger.info({ image: v.image, digest: v.digest, ok: v.ok, code: v.code, sourceCommit: v.sourceCommit, policies }, 'image verdict recorded');
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
      const apps = await deps.store.list(deps.namespaces);
      const tracking = findTrackingApps(apps, verdict.repoUrl, verdict.branch);
      if (tracking.length === 0) {
        deps.logger.info({ repo: verdict.repoUrl, branch: verdict.branch, sha: verdict.sha }, 'no application tracks this branch');
        return [];
      }
      const results: AppOutcome[] = [];
      // One Application's trouble must not keep the others from their pin; transient errors rethrow after the rest.
      let transient: Error | undefined;
      for (const t of tracking) {
        try {
          results.push(await applyToApp(verdict, t.app));
        } catch (err) {
          transient ??= err instanceof Error ? err : new Error(String(err));
          deps.logger.warn({ app: appKey(t.app), sha: verdict.sha, err }, 'gate decision deferred');
        }
      }
      if (transient) throw transient;
      // Only a verdict still waiting stays pending: re-deciding a decided one on every image or policy change is noise.
      if (deps.images && tracking.some((t) => requiredImages(t.app).length > 0) && !results.some((r) => r.action === 'wait-images' || r.action === 'deferred-stale-policy')) {
        await deps.images.removePending(verdict);
      }
      return results;
    },
  };
  return gate;
}
