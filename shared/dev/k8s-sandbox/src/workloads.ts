/**
 * Built-in kinds that carry pods (core Pod; apps Deployment, StatefulSet, DaemonSet, ReplicaSet; batch Job, CronJob),
 * served without schemas (stored as sent) so admission webhooks can be exercised against them. No controllers run:
 * a Deployment creates no ReplicaSet or Pods here.
 */
import type { ResourceKind } from './types.js';

const age = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' } as const;

function kind(group: string, k: string, plural: string, shortNames?: string[]): ResourceKind {
  return {
    group,
    version: 'v1',
    kind: k,
    plural,
    singular: k.toLowerCase(),
    namespaced: true,
    ...(shortNames ? { shortNames } : {}),
    printerColumns: [age],
  };
}

export const podKind = kind('', 'Pod', 'pods', ['po']);
export const workloadKinds: ResourceKind[] = [
  podKind,
  kind('apps', 'Deployment', 'deployments', ['deploy']),
  kind('apps', 'StatefulSet', 'statefulsets', ['sts']),
  kind('apps', 'DaemonSet', 'daemonsets', ['ds']),
  kind('apps', 'ReplicaSet', 'replicasets', ['rs']),
  kind('batch', 'Job', 'jobs'),
  kind('batch', 'CronJob', 'cronjobs', ['cj']),
];
