/**
 * `npm start` (keeps running) and `npm run demo` (exits after the demo). Ctrl-C stops every process it started.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDemoFixture, demoAdmission, DEMO_APP, DEMO_REPO_URL, runDemo } from './demo.js';
import { redisStateBanner } from './redis.js';
import { REPO_ROOT, startStack, type Stack } from './stack.js';

const args = new Set(process.argv.slice(2));
const exitAfterDemo = args.has('--exit-after-demo');
const runTheDemo = !args.has('--no-demo');
// Fresh Redis state by default: decisions and retrying jobs of earlier runs would otherwise carry over silently.
const keepState = args.has('--keep-state');
const workDir = join(REPO_ROOT, '.gitops-gate');
const print = (line: string) => process.stdout.write(`${line}\n`);
// Handed to the services as set: a real GitHub webhook (its secret) or App can be pointed at `npm start`.
const PASSED_THROUGH = [
  'GITHUB_APP_ID',
  'GITHUB_APP_PRIVATE_KEY_FILE',
  'GITHUB_APP_INSTALLATION_ID',
  'GITHUB_API_URL',
  'GITHUB_TOKEN',
  'GITHUB_WRITE_INTERVAL_MS',
  'WEBHOOK_REPO_SECRETS',
  'GIT_HTTP_TOKEN',
];
const passedEnv = Object.fromEntries(PASSED_THROUGH.flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])));
const envSecrets = (process.env.WEBHOOK_SECRETS ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean);
const githubBanner = process.env.GITHUB_APP_ID
  ? `GitHub App ${process.env.GITHUB_APP_ID} at ${process.env.GITHUB_API_URL || 'https://api.github.com'}: decisions reported as check runs`
  : process.env.GITHUB_TOKEN
    ? `personal token at ${process.env.GITHUB_API_URL || 'https://api.github.com'}: decisions reported as commit statuses`
    : 'off (no GITHUB_APP_ID + GITHUB_APP_PRIVATE_KEY_FILE or GITHUB_TOKEN): decisions are not reported on commits; see README "Connect to GitHub"';

function formatLog(service: string, line: string): void {
  try {
    const rec = JSON.parse(line) as Record<string, unknown>;
    const { level, time: _t, pid: _p, hostname: _h, service: _s, msg, ...rest } = rec;
    const fields = Object.entries(rest)
      .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
      .join(' ');
    const lvl = typeof level === 'number' && level >= 50 ? 'ERROR ' : typeof level === 'number' && level >= 40 ? 'WARN ' : '';
    process.stdout.write(`  [${service}] ${lvl}${String(msg)} ${fields}\n`);
  } catch {
    process.stdout.write(`  [${service}] ${line}\n`);
  }
}

/** The exact `gitops-gate webhook push` for the demo repository's main branch. */
function webhookCommand(s: Stack, repoDir: string): string {
  return `npx gitops-gate webhook push --repo ${repoDir} --branch main --url ${s.receiverUrl}/webhooks/github --secret ${s.secrets[0] ?? ''} --clone-url ${DEMO_REPO_URL}${
    // An App's receiver checks the ids (README "Connect to GitHub"): the repository's and its installation's.
    process.env.GITHUB_APP_ID ? ' --repository-id <repository id> --installation-id <installation id>' : ''
  }`;
}

let stack: Stack | undefined;
let stopping = false;
async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    print('\nStopping…');
    await stack?.stop();
    print('Stopped: no process left running.');
  }
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

try {
  const fx = createDemoFixture(workDir);
  print('Starting gitops-gate locally…');
  stack = await startStack({
    workDir,
    redisUrl: process.env.REDIS_URL || undefined,
    freshRedisState: !keepState,
    kubeconfig: process.env.KUBECONFIG || undefined,
    seed: [fx.application, fx.policy],
    allowedSignersFile: process.env.ALLOWED_SIGNERS_FILE || undefined,
    urlRewrites: fx.urlRewrites,
    ...(envSecrets.length > 0 ? { secrets: envSecrets } : {}),
    env: passedEnv,
    receiverPort: Number(process.env.RECEIVER_PORT || 8080),
    onLog: formatLog,
    // The admission backstop against the sandbox (a real cluster registers deploy/optional/admission instead).
    admission: !process.env.KUBECONFIG,
    namespaces: [DEMO_APP.name],
  });
  const gate = stack.processes.find((p) => p.service === 'gate');
  print('');
  print(`Redis:        ${stack.redisUrl}${process.env.REDIS_URL ? '' : ' (local redis-server, AOF on, noeviction)'}`);
  print(`State:        ${redisStateBanner(Boolean(process.env.REDIS_URL), keepState)}`);
  print(`Kubernetes:   ${stack.sandbox ? `sandbox API server ${stack.sandbox.url}` : 'from KUBECONFIG'}`);
  print(`Receiver:     POST ${stack.receiverUrl}/webhooks/github`);
  print(`Secret:       ${stack.secrets[0]}${envSecrets.length > 0 ? ' (from WEBHOOK_SECRETS)' : ''}`);
  print(`GitHub:       ${githubBanner}`);
  print(`Send a push:  ${webhookCommand(stack, fx.repo.workDir)}`);
  print(`Audit page:   http://127.0.0.1:${gate?.port}/ui   (JSON: /api/decisions)`);
  print(`Audit check:  npx gitops-gate audit --verify-chain --public-key ${stack.auditPublicKeyFile} --redis-url ${stack.redisUrl}`);
  print(`Watch it:     kubectl --kubeconfig ${stack.kubeconfig} get applications -A -w`);
  print(
    `              kubectl --kubeconfig ${stack.kubeconfig} get application ${DEMO_APP.name} -n ${DEMO_APP.namespace} -o jsonpath='{.spec.source.targetRevision}'`,
  );
  print(
    `Policies:     kubectl --kubeconfig ${stack.kubeconfig} get gatepolicies -A   (edit them live: kubectl edit gatepolicy demo-signers -n ${DEMO_APP.namespace})`,
  );
  if (stack.admissionUrl) {
    // The demo Application deploys into its own namespace, which its GatePolicy therefore guards at admission.
    const podFile = join(workDir, 'unverified-pod.yaml');
    writeFileSync(
      podFile,
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: unverified\n  namespace: ${DEMO_APP.name}\nspec:\n  containers:\n    - name: web\n      image: nginx:1.27\n`,
    );
    print(
      `Admission:    kubectl --kubeconfig ${stack.kubeconfig} apply -f ${podFile}   (denied: not by digest, no verdict; webhook ${stack.admissionUrl})`,
    );
  }
  print('');
  if (runTheDemo) {
    print('Demo:');
    const result = await runDemo(stack, fx, (l) => print(`  ${l}`));
    const refused = await demoAdmission(stack, (l) => print(`  ${l}`));
    print('');
    print(`Demo repository: ${fx.repo.workDir} (commit there, then run the "Send a push" command above).`);
    if (exitAfterDemo) await stop(result && refused ? 0 : 1);
  }
  print('Running. Ctrl-C stops everything.');
} catch (err) {
  process.stderr.write(`gitops-gate: ${(err as Error).message}\n`);
  await stop(1);
}
