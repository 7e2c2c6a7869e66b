/**
 * A kubeconfig for the sandbox. Strings are emitted as JSON-quoted scalars, which YAML reads verbatim, so no YAML
 * library is needed and odd characters in a token cannot break the document.
 */
export function renderKubeconfig(opts: { server: string; token: string; caPem?: string; context?: string; namespace?: string }): string {
  const name = opts.context ?? 'gitops-gate-sandbox';
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    `- name: ${q(name)}`,
    '  cluster:',
    `    server: ${q(opts.server)}`,
    ...(opts.caPem ? [`    certificate-authority-data: ${q(Buffer.from(opts.caPem).toString('base64'))}`] : []),
    // The sandbox speaks plain HTTP on loopback; @kubernetes/client-node refuses http:// unless this is set.
    ...(opts.server.startsWith('http://') ? ['    insecure-skip-tls-verify: true'] : []),
    'users:',
    `- name: ${q(name)}`,
    '  user:',
    `    token: ${q(opts.token)}`,
    'contexts:',
    `- name: ${q(name)}`,
    '  context:',
    `    cluster: ${q(name)}`,
    `    user: ${q(name)}`,
  ];
  if (opts.namespace) lines.push(`    namespace: ${q(opts.namespace)}`);
  lines.push(`current-context: ${q(name)}`, 'preferences: {}', '');
  return lines.join('\n');
}
