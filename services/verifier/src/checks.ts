/**
 * The contracts between the verifier's job processor and its checkers, in one module that imports no checker, so
 * processor.ts, commit-checker.ts and image-checker.ts depend on it and not on each other (no import loop).
 */
import type { CompiledPolicy, PolicyEvaluation } from '@gitops-gate/policy';
import type { ImageVerdictJob, VerifyCommitJob, VerifyImageJob } from '@gitops-gate/contracts';

/** Verifies one commit object (raw bytes from the mirror) against the policies in force. */
export type CommitVerifierFn = (raw: Buffer, job: VerifyCommitJob) => Promise<PolicyEvaluation>;

/** Verifies one image; the processor adds the envelope fields (delivery, repo, time, trace). */
export type ImageCheckerFn = (
  job: VerifyImageJob,
) => Promise<
  Omit<ImageVerdictJob, 'v' | 'kind' | 'deliveryId' | 'repoUrl' | 'verifiedAt' | 'trace' | 'policies'> &
    Partial<Pick<ImageVerdictJob, 'policies'>>
>;

export interface PolicySource {
  /** The policies in force for the next job: GatePolicy objects published by the gate, plus file policies. */
  current(): Promise<CompiledPolicy[]>;
}
