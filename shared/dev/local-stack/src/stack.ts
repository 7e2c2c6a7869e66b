/**
 * The whole pipeline on one machine: Redis (local unless REDIS_URL is set), the Kubernetes API (the sandbox unless a
 * kubeconfig is given), and receiver, verifier(s) and gate(s) as separate processes, exactly as they run in a cluster.
 * Used by `npm start`, `npm run demo` and the end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as httpsRequest } from 'node:https';
import {
  argoApplicationKind,
  clusterGatePolicyKind,
  createSandboxApiServer,
  createServingCertificate,
  gatePolicyKind,
  PRODUCTION_WATCHES,
  validatingWebhookConfigurationKind,
  workloadKinds,
  type SandboxApiServer,
} from '@gitops-gate/k8s-sandbox';
import { freePort } from '@gitops-gate/testing';
import { ensureRedisServer, startLocalRedis, StackError } from './redis.js';
import { startArgoWriter, type ArgoWriter, type ArgoWriterOptions } from './argo-writer.js';

export const REPO_ROOT = new URL('../../../../', import.meta.url).pathname;

export type ServiceName = 'receiver' | 'verifier' | 'gate' | 'admission';

export interface StackOptions {
  workDir: string;
  /** Existing Redis; otherwise a local redis-server is started in workDir. */
  redisUrl?: string;
  /** The local redis-server (not an existing `redisUrl`) starts without the data of earlier runs. */
  freshRedisState?: boolean;
  /** Existing cluster; otherwise the sandbox API server is started (seeded with `seed`). */
  kubeconfig?: string;
  seed?: object[];
  secrets?: string[];
  /** Optional file policy; the usual source of policies is GatePolicy objects (seed them). */
  allowedSignersFile?: string;
  urlRewrites?: Record<string, string>;
  receiverPort?: number;
  verifiers?: number;
  gates?: number;
  queuePrefix?: string;
  logLevel?: string;
  /** Where service log lines go (prefixed with the process name). */
  onLog?: (service: string, line: string) => void;
  /** Extra environment for every service. */
  env?: Record<string, string>;
  /** A background "Argo CD" writing the same Applications (status patches, sync bursts, whole-object PUTs). */
  argoWriter?: Omit<ArgoWriterOptions, 'kubeconfig'>;
  /**
   * Also run the admission webhook (HTTPS, its own serving certificate) and, with the sandbox, serve Pods and
   * workloads and register it as a ValidatingWebhookConfiguration: `kubectl apply -f pod.yaml` goes through it.
   */
  admission?: boolean;
  /** Namespaces the sandbox starts with, besides its defaults (e.g. the demo Application's destination). */
  namespaces?: string[];
}

export interface ServiceProcess {
  name: string;
  service: ServiceName;
  child: ChildProcess;
  port: number;
}

export interface Stack {
  receiverUrl: string;
  redisUrl: string;
  kubeconfig: string;
  sandbox?: SandboxApiServer;
  secrets: string[];
  /** Public key of the audit checkpoints (PEM), for `gitops-gate audit --verify-chain --public-key`. */
  auditPublicKeyFile: string;
  processes: ServiceProcess[];
  env: Record<string, string>;
  argoWriter?: ArgoWriter;
  /** https URL of the admission webhook's /validate, when `admission` is on. */
  admissionUrl?: string;
  /** Starts one more service process (e.g. a second verifier, or a replacement after a kill). */
  spawnService(service: ServiceName): Promise<ServiceProcess>;
  stop(): Promise<void>;
}

async function waitForHttp(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new StackError('SERVICE_EXITED', `${url}: process exited with code ${child.exitCode}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new StackError('SERVICE_TIMEOUT', `${url} did not become healthy in ${timeoutMs} ms`);
}

function admissionTls(workDir: string): { certFile: string; keyFile: string; caPem: string } {
  // A fresh serving certificate per start (the sandbox's webhook registration carries its CA).
  const cert = createServingCertificate({ dns: ['localhost'], ips: ['127.0.0.1'] });
  const certFile = join(workDir, 'admission-tls.crt');
  const keyFile = join(workDir, 'admission-tls.key');
  writeFileSync(certFile, cert.certPem);
  writeFileSync(keyFile, cert.keyPem, { mode: 0o600 });
  return { certFile, keyFile, caPem: cert.caPem };
}

async function waitForHttps(port: number, caPem: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new StackError('SERVICE_EXITED', `admission: process exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const req = httpsRequest({ host: '127.0.0.1', port, path: '/healthz', ca: caPem, servername: 'localhost' }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      });
      req.on('error', () => resolve(false));
      req.end();
    });
    if (ok) return;
    await sleep(50);
  }
  throw new StackError('SERVICE_TIMEOUT', `admission webhook on ${port} did not become healthy in ${timeoutMs} ms`);
}

/** The deploy/optional/admission registration, pointed at the local webhook by URL (the sandbox has no Services). */
async function registerWebhook(sandbox: SandboxApiServer, url: string, caPem: string): Promise<void> {
  const rule = (apiGroups: string[], resources: string[]) => ({
    apiGroups,
    apiVersions: ['v1'],
    operations: ['CREATE', 'UPDATE'],
    resources,
    scope: 'Namespaced',
  });
  const body = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingWebhookConfiguration',
    metadata: { name: 'gitops-gate-admission' },
    webhooks: [
      {
        name: 'images.admission.gitops-gate.io',
        admissionReviewVersions: ['v1'],
        sideEffects: 'None',
        failurePolicy: 'Fail',
        timeoutSeconds: 5,
        clientConfig: { url, caBundle: Buffer.from(caPem).toString('base64') },
        namespaceSelector: {
          matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: ['gitops-gate', 'kube-system'] }],
        },
        rules: [
          rule([''], ['pods']),
          rule(['apps'], ['deployments', 'statefulsets', 'daemonsets', 'replicasets']),
          rule(['batch'], ['jobs', 'cronjobs']),
        ],
      },
    ],
  };
  const res = await fetch(`${sandbox.url}/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${sandbox.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new StackError('SERVICE_EXITED', `registering the admission webhook: HTTP ${res.status} ${await res.text()}`);
}

/**
 * The gate's audit signing key, made once per work directory and kept: checkpoints signed by an earlier run must
 * still verify against the same Redis. Production mounts it from a Secret instead (deploy/README.md).
 */
function ensureAuditKey(workDir: string): { keyFile: string; publicKeyFile: string } {
  const keyFile = join(workDir, 'audit-signing-key.pem');
  const publicKeyFile = join(workDir, 'audit-signing-key.pub');
  if (!existsSync(keyFile)) {
    const { privateKey } = generateKeyPairSync('ed25519');
    writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  }
  const publicKey = createPublicKey(createPrivateKey(readFileSync(keyFile)));
  writeFileSync(publicKeyFile, publicKey.export({ format: 'pem', type: 'spki' }));
  return { keyFile, publicKeyFile };
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  mkdirSync(opts.workDir, { recursive: true });
  const onLog = opts.onLog ?? (() => undefined);
  const cleanups: (() => Promise<void>)[] = [];
  const processes: ServiceProcess[] = [];
  try {
    let redisUrl = opts.redisUrl;
    if (!redisUrl) {
      ensureRedisServer((l) => onLog('stack', l));
      const redis = await startLocalRedis(join(opts.workDir, 'redis'), opts.freshRedisState ?? false);
      redisUrl = redis.url;
      cleanups.push(() => redis.stop());
    }
    let kubeconfig = opts.kubeconfig;
    let sandbox: SandboxApiServer | undefined;
    if (!kubeconfig) {
      // Watches as on a real cluster (75 s resume history, watches ended after 30–60 min): the gate must relist.
      const extra = opts.admission ? [validatingWebhookConfigurationKind, ...workloadKinds] : [];
      const namespaces = opts.namespaces
        ? ['default', 'kube-system', 'kube-public', 'kube-node-lease', 'argocd', ...opts.namespaces]
        : undefined;
      sandbox = await createSandboxApiServer({
        kinds: [argoApplicationKind, gatePolicyKind, clusterGatePolicyKind, ...extra],
        seed: opts.seed ?? [],
        ...(namespaces ? { namespaces } : {}),
        ...PRODUCTION_WATCHES,
      });
      kubeconfig = join(opts.workDir, 'kubeconfig');
      await sandbox.writeKubeconfig(kubeconfig);
      const s = sandbox;
      cleanups.push(() => s.close());
    }
    const secrets = opts.secrets ?? [randomBytes(24).toString('hex')];
    const receiverPort = opts.receiverPort ?? (await freePort());
    const auditKey = ensureAuditKey(opts.workDir);
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      LOG_LEVEL: opts.logLevel ?? 'info',
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: opts.queuePrefix ?? 'gitops-gate',
      WEBHOOK_SECRETS: secrets.join(','),
      RECEIVER_HOST: '127.0.0.1',
      ...(opts.allowedSignersFile ? { ALLOWED_SIGNERS_FILE: opts.allowedSignersFile } : {}),
      GIT_URL_REWRITES: JSON.stringify(opts.urlRewrites ?? {}),
      KUBECONFIG: kubeconfig,
      AUDIT_SIGNING_KEY_FILE: auditKey.keyFile,
      ...opts.env,
    };
    const counters: Record<ServiceName, number> = { receiver: 0, verifier: 0, gate: 0, admission: 0 };
    const tls = opts.admission ? admissionTls(opts.workDir) : undefined;

    async function spawnService(service: ServiceName): Promise<ServiceProcess> {
      counters[service] += 1;
      const name = `${service}-${counters[service]}`;
      const port = service === 'receiver' && counters.receiver === 1 ? receiverPort : await freePort();
      const portVar = { receiver: 'RECEIVER_PORT', verifier: 'VERIFIER_HTTP_PORT', gate: 'GATE_HTTP_PORT', admission: 'ADMISSION_PORT' }[
        service
      ];
      const child = spawn(process.execPath, [join(REPO_ROOT, 'services', service, 'dist', 'main.js')], {
        env: {
          ...env,
          [portVar]: String(port),
          GIT_CACHE_DIR: join(opts.workDir, 'git-cache', name),
          // Pinned Applications link to this gate's page (Argo CD external link).
          ...(service === 'gate' ? { GATE_UI_URL: `http://127.0.0.1:${port}/ui` } : {}),
          ...(service === 'admission' && tls ? { ADMISSION_TLS_CERT_FILE: tls.certFile, ADMISSION_TLS_KEY_FILE: tls.keyFile } : {}),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      for (const stream of [child.stdout, child.stderr]) {
        if (stream) createInterface({ input: stream }).on('line', (line) => onLog(name, line));
      }
      const proc = { name, service, child, port };
      processes.push(proc);
      if (service === 'admission' && tls) await waitForHttps(port, tls.caPem, child);
      else await waitForHttp(`http://127.0.0.1:${port}/healthz`, child);
      return proc;
    }

    await spawnService('receiver');
    for (let i = 0; i < (opts.verifiers ?? 1); i++) await spawnService('verifier');
    for (let i = 0; i < (opts.gates ?? 1); i++) await spawnService('gate');
    let admissionUrl: string | undefined;
    if (opts.admission && tls) {
      const adm = await spawnService('admission');
      admissionUrl = `https://localhost:${adm.port}/validate`;
      if (sandbox) await registerWebhook(sandbox, admissionUrl, tls.caPem);
    }
    const argoWriter = opts.argoWriter ? await startArgoWriter({ ...opts.argoWriter, kubeconfig }) : undefined;
    if (argoWriter) cleanups.push(() => argoWriter.stop());

    let stopped = false;
    return {
      receiverUrl: `http://127.0.0.1:${receiverPort}`,
      redisUrl,
      kubeconfig,
      sandbox,
      secrets,
      auditPublicKeyFile: auditKey.publicKeyFile,
      processes,
      argoWriter,
      admissionUrl,
      env,
      spawnService,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopProcesses(processes);
        for (const c of cleanups.reverse()) await c().catch(() => undefined);
      },
    };
  } catch (err) {
    await stopProcesses(processes);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    throw err;
  }
}

/** SIGTERM (graceful), then SIGKILL after `graceMs`; resolves once the process has exited. The benchmarks use it too. */
export async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** SIGTERM (graceful: jobs in hand finish), then SIGKILL after 10 s: nothing is left running. */
export async function stopProcesses(processes: ServiceProcess[]): Promise<void> {
  await Promise.all(processes.map(({ child }) => stopChild(child, 10_000)));
}
