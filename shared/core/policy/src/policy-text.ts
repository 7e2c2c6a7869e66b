/**
 * The user-facing meaning of the policy fields whose semantics the gate (not the schema) decides, in one place: the
 * CRD descriptions (deploy/base/crds/{gatepolicy,clustergatepolicy}.yaml) and the README say exactly this, and a CRD
 * generator should take these strings rather than paraphrase them.
 */
export const POLICY_FIELD_DESCRIPTIONS = {
  mode:
    'Enforce: an Application this policy selects is pinned only to commits (and images) this policy verifies; every ' +
    'selecting Enforce policy must pass. Audit: the policy is evaluated and its result recorded (audit-pin, with ' +
    'what Enforce would have done), but it does not block: when only Audit policies select an Application, the gate ' +
    'pins every pushed commit, verified or not (history rules still apply: forward only, no rewritten history), as ' +
    'Argo CD would without gitops-gate. Audit never overrides Enforce: if any Enforce policy selects the ' +
    'Application, even an invalid one, Audit policies do not affect the decision. An Enforce policy that becomes ' +
    'invalid keeps its last valid generation in force; one that was never valid refuses every Application it selects.',
  selector:
    'Which Applications this policy governs. Every listed criterion must match; an empty selector governs every ' +
    "Application of the repository in the policy's scope. A GatePolicy selects only Applications in its own " +
    'namespace (namespaces can only narrow within it); a ClusterGatePolicy selects across namespaces.',
  selectedApplications: 'Opted-in Applications this policy selects now: how many, and the first few as namespace/name.',
} as const;
