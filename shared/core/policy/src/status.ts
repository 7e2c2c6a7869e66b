/** The status gitops-gate writes on each policy object (the gate's status writer fills it in). */
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export interface PolicyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  /** Which opted-in Applications the policy in force selects (count, and the first few by name). */
  selectedApplications?: { count: number; names: string[] };
}
