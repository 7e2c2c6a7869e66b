/**
 * The pin guard: the ValidatingAdmissionPolicy in deploy/base/cluster and its Kyverno variant in
 * deploy/optional/kyverno, evaluated with a CEL implementation on sample AdmissionRequests for Argo CD Applications.
 */
import { join } from 'node:path';
import { Application } from '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application';
import { beforeAll, describe, expect, it } from 'vitest';
import { admitKyverno, admitVap, create, update, type AdmissionRequest, type Verdict } from './lib/admission.js';
import { DEPLOY, loadYamlFile, NAMESPACE, one, renderOverlay, renderWithComponents, type K8sObject } from './lib/render.js';

const GATE = `system:serviceaccount:${NAMESPACE}:gitops-gate-gate`;
const HUMAN = 'alice@example.com';
const ARGOCD_SERVER = 'system:serviceaccount:argocd:argocd-server';
const CONTROLLER = 'system:serviceaccount:argocd:argocd-application-controller';
const PINNED = '1111111111111111111111111111111111111111';
const NEXT = '2222222222222222222222222222222222222222';
const ROGUE = '3333333333333333333333333333333333333333';
const ANNOTATION = 'gitops-gate.io/branch';
const REQUIRE_IMAGES = 'gitops-gate.io/require-images';
const ADMINS = ['gitops-gate:admins', 'system:authenticated'];

type App = K8sObject;

/** Every Application used below, checked against the Argo CD Application schema at the end. */
const samples: App[] = [];

function track<T extends App | null>(a: T): T {
  if (a) samples.push(a);
  return a;
}

function singleSource(): App {
  return track({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'shop', namespace: 'argocd', annotations: { [ANNOTATION]: 'main' }, labels: { team: 'payments' } },
    spec: {
      project: 'default',
      source: { repoURL: 'https://github.com/example-org/shop-deploy', path: 'overlays/prod', targetRevision: PINNED },
      destination: { server: 'https://kubernetes.default.svc', namespace: 'shop' },
      syncPolicy: { automated: { prune: true, selfHeal: true } },
    },
  });
}

function multiSource(): App {
  return track({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name: 'shop-multi', namespace: 'argocd', annotations: { [ANNOTATION]: 'main' } },
    spec: {
      project: 'default',
      sources: [
        { repoURL: 'https://github.com/example-org/shop-deploy', path: 'base', targetRevision: PINNED },
        { repoURL: 'https://github.com/example-org/shop-values', targetRevision: PINNED, ref: 'values' },
      ],
      destination: { server: 'https://kubernetes.default.svc', namespace: 'shop' },
    },
  });
}

/** A copy of `a` changed by `f`, tracked for the schema check. */
function edit(a: App, f: (x: App) => void): App {
  const copy = structuredClone(a);
  f(copy);
  return track(copy);
}

type Engine = { name: string; admit: (req: AdmissionRequest, object: unknown, oldObject: unknown) => Verdict };

let vap: K8sObject;
let kyverno: K8sObject;
const engines: Engine[] = [
  { name: 'ValidatingAdmissionPolicy', admit: (r, o, old) => admitVap(vap, r, o, old) },
  { name: 'Kyverno ClusterPolicy', admit: (r, o, old) => admitKyverno(kyverno, r, o, old) },
];

beforeAll(() => {
  vap = one(renderOverlay('production'), 'ValidatingAdmissionPolicy', 'gitops-gate-pin-guard');
  kyverno = one(renderWithComponents('production', ['kyverno']), 'ClusterPolicy', 'gitops-gate-pin-guard');
});

describe.each(engines)('pin guard ($name)', (engine) => {
  const allowed = (user: string, object: App, old: App | null, groups: string[] = []) => {
    const v = engine.admit(old ? update(user, groups) : create(user, groups), object, old);
    expect(v.messages).toEqual([]);
    expect(v.allowed).toBe(true);
    return v;
  };
  const denied = (user: string, object: App, old: App | null, messagePart: string, groups: string[] = []) => {
    const v = engine.admit(old ? update(user, groups) : create(user, groups), object, old);
    expect(v.allowed).toBe(false);
    expect(v.messages.join('\n')).toContain(messagePart);
    expect(v.messages.join('\n')).toContain(user);
    return v;
  };

  it('lets the gate change spec.source.targetRevision', () => {
    const old = singleSource();
    allowed(GATE, edit(old, (a) => (a.spec.source.targetRevision = NEXT)), old);
  });

  it('denies a person changing spec.source.targetRevision', () => {
    const old = singleSource();
    denied(HUMAN, edit(old, (a) => (a.spec.source.targetRevision = ROGUE)), old, 'only the gate may change');
  });

  it('denies other service accounts too (CI, app-of-apps parents, the ApplicationSet controller)', () => {
    const old = singleSource();
    const changed = edit(old, (a) => (a.spec.source.targetRevision = 'main'));
    denied(CONTROLLER, changed, old, 'only the gate may change');
    denied('system:serviceaccount:gitops-gate:gitops-gate-verifier', changed, old, 'only the gate may change');
  });

  it('denies dropping targetRevision (falling back to HEAD)', () => {
    const old = singleSource();
    denied(HUMAN, edit(old, (a) => delete a.spec.source.targetRevision), old, 'only the gate may change');
  });

  it('lets a person change every other field', () => {
    const old = singleSource();
    const changed = edit(old, (a) => {
      a.metadata.annotations['notifications.argoproj.io/subscribe.on-sync-failed.slack'] = 'shop';
      a.spec.source.path = 'overlays/staging';
      a.spec.destination.namespace = 'shop-2';
      a.spec.syncPolicy = { automated: { prune: false, selfHeal: false }, syncOptions: ['CreateNamespace=true'] };
    });
    allowed(HUMAN, changed, old);
  });

  it('denies a person removing the annotation, alone or with a revision change', () => {
    const old = singleSource();
    denied(HUMAN, edit(old, (a) => delete a.metadata.annotations[ANNOTATION]), old, 'may not be removed');
    denied(HUMAN, edit(old, (a) => delete a.metadata.annotations), old, 'may not be removed');
    const both = engine.admit(
      update(HUMAN),
      edit(old, (a) => {
        delete a.metadata.annotations;
        a.spec.source.targetRevision = ROGUE;
      }),
      old,
    );
    expect(both.allowed).toBe(false);
    // The revision, the annotation's removal, and a gitops-gate.io/* annotation changed.
    expect(both.messages).toHaveLength(3);
  });

  it('denies emptying the annotation, even to admins; only admins may point it at another branch', () => {
    const old = singleSource();
    denied(HUMAN, edit(old, (a) => (a.metadata.annotations[ANNOTATION] = '')), old, 'may not be removed or emptied');
    denied(HUMAN, edit(old, (a) => (a.metadata.annotations[ANNOTATION] = '')), old, 'may not be removed or emptied', ADMINS);
    denied(HUMAN, edit(old, (a) => (a.metadata.annotations[ANNOTATION] = 'release')), old, 'only gitops-gate admins may change its gitops-gate.io/* annotations');
    allowed(HUMAN, edit(old, (a) => (a.metadata.annotations[ANNOTATION] = 'release')), old, ADMINS);
  });

  describe('what selects the policy and where the code comes from (attacker: an Application editor)', () => {
    const withImages = () => edit(singleSource(), (a) => (a.metadata.annotations[REQUIRE_IMAGES] = 'ghcr.io/example-org/shop'));

    it('denies relabelling into another policy\'s selector, adding or dropping a label; admins may', () => {
      const old = singleSource();
      const relabel = edit(old, (a) => (a.metadata.labels.team = 'sandbox'));
      denied(HUMAN, relabel, old, 'only gitops-gate admins may change its labels');
      denied(HUMAN, edit(old, (a) => (a.metadata.labels.env = 'dev')), old, 'its labels');
      denied(HUMAN, edit(old, (a) => delete a.metadata.labels), old, 'its labels');
      denied(CONTROLLER, relabel, old, 'its labels');
      allowed(HUMAN, relabel, old, ADMINS);
      allowed(GATE, relabel, old);
    });

    it('denies dropping or changing gitops-gate.io/require-images, or adding it; admins may', () => {
      const old = withImages();
      denied(HUMAN, edit(old, (a) => delete a.metadata.annotations[REQUIRE_IMAGES]), old, 'gitops-gate.io/* annotations');
      denied(HUMAN, edit(old, (a) => (a.metadata.annotations[REQUIRE_IMAGES] = 'ghcr.io/example-org/other')), old, 'gitops-gate.io/* annotations');
      denied(HUMAN, withImages(), singleSource(), 'gitops-gate.io/* annotations');
      allowed(HUMAN, edit(old, (a) => delete a.metadata.annotations[REQUIRE_IMAGES]), old, ADMINS);
    });

    it("denies forging the gate's evidence annotations", () => {
      const old = edit(singleSource(), (a) => (a.metadata.annotations['gitops-gate.io/verified-sha'] = PINNED));
      denied(HUMAN, edit(old, (a) => (a.metadata.annotations['gitops-gate.io/signer'] = 'alice@example.com')), old, 'gitops-gate.io/* annotations');
      denied(HUMAN, edit(old, (a) => (a.metadata.annotations['gitops-gate.io/verified-sha'] = ROGUE)), old, 'gitops-gate.io/* annotations');
    });

    it('denies repointing repoURL (or a Helm chart) of any source; admins may', () => {
      const old = singleSource();
      const fork = edit(old, (a) => (a.spec.source.repoURL = 'https://github.com/evil/shop-deploy'));
      denied(HUMAN, fork, old, 'only gitops-gate admins may change the repoURL or chart');
      allowed(HUMAN, fork, old, ADMINS);
      const multi = multiSource();
      denied(HUMAN, edit(multi, (a) => (a.spec.sources[1].repoURL = 'https://github.com/evil/values')), multi, 'repoURL or chart');
      const helm = edit(multi, (a) => (a.spec.sources[1] = { repoURL: 'https://charts.example.com', chart: 'shop', targetRevision: '1.2.3' }));
      denied(HUMAN, edit(helm, (a) => (a.spec.sources[1].chart = 'evil')), helm, 'repoURL or chart');
    });

    it('admins still cannot change a revision', () => {
      const old = singleSource();
      denied(HUMAN, edit(old, (a) => (a.spec.source.targetRevision = ROGUE)), old, 'only the gate may change', ADMINS);
    });

    it('a non-gated edit of an opted-in Application still passes (path, sync policy, other annotations)', () => {
      const old = withImages();
      allowed(HUMAN, edit(old, (a) => {
        a.spec.source.path = 'overlays/canary';
        a.metadata.annotations['argocd.argoproj.io/refresh'] = 'hard';
      }), old);
    });
  });

  describe('opting in (attacker: makes an opted-in Application follow a branch until the first pin)', () => {
    const unpinned = () => edit(singleSource(), (a) => (a.spec.source.targetRevision = 'main'));

    it('denies creating an opted-in Application whose targetRevision is a branch, a tag, a short SHA or empty', () => {
      for (const rev of ['main', 'v1.2.3', PINNED.slice(0, 12), 'HEAD', 'AB'.repeat(20)]) {
        denied(HUMAN, edit(singleSource(), (a) => (a.spec.source.targetRevision = rev)), null, 'every targetRevision must be a full commit SHA');
      }
      denied(HUMAN, edit(singleSource(), (a) => delete a.spec.source.targetRevision), null, 'full commit SHA');
    });

    it('allows creating one pinned to a full SHA (SHA-1 or SHA-256), and ignores Applications that do not opt in', () => {
      allowed(HUMAN, singleSource(), null);
      allowed(HUMAN, edit(singleSource(), (a) => (a.spec.source.targetRevision = 'a'.repeat(64))), null);
      const plain = edit(unpinned(), (a) => delete a.metadata.annotations);
      expect(engine.admit(create(HUMAN), plain, null)).toEqual({ matched: false, allowed: true, messages: [] });
    });

    it('multi-source: every source must be a full SHA', () => {
      denied(HUMAN, edit(multiSource(), (a) => (a.spec.sources[1].targetRevision = 'main')), null, 'full commit SHA');
      allowed(HUMAN, multiSource(), null);
    });

    it('denies adding the annotation to an Application that follows a branch', () => {
      const plain = edit(unpinned(), (a) => delete a.metadata.annotations);
      denied(HUMAN, edit(plain, (a) => (a.metadata.annotations = { [ANNOTATION]: 'main' })), plain, 'full commit SHA');
    });

    it('denies a sourceHydrator whose dry source follows a branch', () => {
      const hydrated = edit(singleSource(), (a) => {
        a.spec.sourceHydrator = { drySource: { repoURL: 'https://github.com/example-org/dry', targetRevision: 'main', path: '.' }, syncSource: { targetBranch: 'env/prod', path: 'prod' } };
      });
      denied(HUMAN, hydrated, null, 'full commit SHA');
    });

    it('denies creating an opted-in Application with a sync operation to another revision', () => {
      const withSync = edit(singleSource(), (a) => (a.operation = { sync: { revision: ROGUE }, initiatedBy: { username: HUMAN } }));
      denied(HUMAN, withSync, null, 'a sync or rollback may only use');
    });

    it('the shipped example Application opts in as it is', () => {
      const [example] = loadYamlFile(join(DEPLOY, 'examples/application.yaml')) as [App];
      allowed(HUMAN, track(example), null);
    });

    it('admins may opt in an Application whose other sources follow a branch; the gate is not checked', () => {
      const partly = edit(multiSource(), (a) => (a.spec.sources[1].targetRevision = 'main'));
      allowed(HUMAN, partly, null, ADMINS);
      allowed(GATE, unpinned(), null);
    });
  });

  it('lets the gate remove its own annotation', () => {
    const old = singleSource();
    allowed(GATE, edit(old, (a) => delete a.metadata.annotations[ANNOTATION]), old);
  });

  it('ignores Applications without the annotation, and lets a person opt one in', () => {
    const plain = edit(singleSource(), (a) => delete a.metadata.annotations);
    allowed(HUMAN, edit(plain, (a) => (a.spec.source.targetRevision = ROGUE)), plain);
    const optIn = edit(plain, (a) => {
      a.metadata.annotations = { [ANNOTATION]: 'main' };
      a.spec.source.targetRevision = NEXT;
    });
    allowed(HUMAN, optIn, plain);
  });


  describe('multi-source Applications', () => {
    it('denies a person changing any spec.sources[*].targetRevision', () => {
      const old = multiSource();
      denied(HUMAN, edit(old, (a) => (a.spec.sources[1].targetRevision = ROGUE)), old, 'spec.sources[*].targetRevision');
      denied(HUMAN, edit(old, (a) => (a.spec.sources[0].targetRevision = 'main')), old, 'only the gate may change');
    });

    it('lets the gate change them', () => {
      const old = multiSource();
      const changed = edit(old, (a) => {
        a.spec.sources[0].targetRevision = NEXT;
        a.spec.sources[1].targetRevision = NEXT;
      });
      allowed(GATE, changed, old);
    });

    it('lets a person change other fields of a source', () => {
      const old = multiSource();
      allowed(HUMAN, edit(old, (a) => (a.spec.sources[0].path = 'overlays/prod')), old);
    });

    it('denies adding, dropping or reordering sources, and switching between source and sources', () => {
      const old = multiSource();
      const add = edit(old, (a) =>
        a.spec.sources.push({ repoURL: 'https://github.com/evil/chart', path: '.', targetRevision: ROGUE }),
      );
      denied(HUMAN, add, old, 'only the gate may change');
      denied(HUMAN, edit(old, (a) => a.spec.sources.pop()), old, 'only the gate may change');
      const reordered = edit(old, (a) => {
        a.spec.sources[1].targetRevision = NEXT;
        a.spec.sources.reverse();
      });
      denied(HUMAN, reordered, edit(old, (a) => (a.spec.sources[1].targetRevision = NEXT)), 'only the gate may change');
      const single = singleSource();
      const toMulti = edit(single, (a) => {
        a.spec.sources = [{ ...a.spec.source, targetRevision: ROGUE }];
        delete a.spec.source;
      });
      denied(HUMAN, toMulti, single, 'only the gate may change');
    });
  });

  it('denies a person adding or changing spec.sourceHydrator', () => {
    const old = singleSource();
    const hydrated = edit(old, (a) => {
      a.spec.sourceHydrator = {
        drySource: { repoURL: 'https://github.com/evil/dry', targetRevision: 'main', path: '.' },
        syncSource: { targetBranch: 'env/prod', path: 'prod' },
      };
    });
    denied(HUMAN, hydrated, old, 'spec.sourceHydrator');
    denied(HUMAN, edit(hydrated, (a) => (a.spec.sourceHydrator.drySource.targetRevision = ROGUE)), hydrated, 'spec.sourceHydrator');
    allowed(GATE, edit(hydrated, (a) => (a.spec.sourceHydrator.drySource.targetRevision = NEXT)), hydrated);
  });

  describe('sync operations (argocd app sync --revision, rollbacks)', () => {
    const withOp = (a: App, sync: Record<string, unknown>) =>
      edit(a, (x) => (x.operation = { sync, initiatedBy: { username: HUMAN } }));

    it('denies syncing a pinned Application to another revision', () => {
      const old = singleSource();
      denied(ARGOCD_SERVER, withOp(old, { revision: ROGUE }), old, 'a sync or rollback may only use');
    });

    it('allows syncing to the pinned revision or without one', () => {
      const old = singleSource();
      allowed(ARGOCD_SERVER, withOp(old, { revision: PINNED }), old);
      allowed(ARGOCD_SERVER, withOp(old, { prune: true }), old);
    });

    it('denies a rollback (a source override)', () => {
      const old = singleSource();
      const rollback = withOp(old, { revision: PINNED, source: { ...old.spec.source, targetRevision: ROGUE } });
      denied(ARGOCD_SERVER, rollback, old, 'a sync or rollback may only use');
    });

    it('leaves an operation already in flight alone while the controller updates the Application', () => {
      // The gate pinned NEXT while a sync to PINNED was running; the controller keeps writing status.
      const running = edit(withOp(singleSource(), { revision: PINNED }), (a) => (a.spec.source.targetRevision = NEXT));
      const statusUpdate = edit(running, (a) => (a.status = { sync: { status: 'OutOfSync' } }));
      allowed(CONTROLLER, statusUpdate, running);
      // Finishing the operation removes it.
      allowed(CONTROLLER, edit(running, (a) => delete a.operation), running);
    });

    it('does not get in the way of auto-sync before the gate has pinned a commit', () => {
      const unpinned = edit(singleSource(), (a) => (a.spec.source.targetRevision = 'main'));
      allowed(CONTROLLER, withOp(unpinned, { revision: ROGUE }), unpinned);
    });

    it('checks every revision of a multi-source sync', () => {
      const old = multiSource();
      allowed(CONTROLLER, withOp(old, { revisions: [PINNED, PINNED] }), old);
      denied(ARGOCD_SERVER, withOp(old, { revisions: [PINNED, ROGUE] }), old, 'a sync or rollback may only use');
      // Partly pinned: the values source follows a branch, whose head the controller resolves to some SHA.
      const partly = edit(old, (a) => (a.spec.sources[1].targetRevision = 'main'));
      allowed(CONTROLLER, withOp(partly, { revisions: [PINNED, NEXT] }), partly);
      denied(ARGOCD_SERVER, withOp(partly, { revisions: [ROGUE, NEXT] }), partly, 'a sync or rollback may only use');
    });

    it('lets the gate start any sync', () => {
      const old = singleSource();
      allowed(GATE, withOp(old, { revision: NEXT }), old);
    });
  });
});

describe('pin guard wiring', () => {
  it("exempts exactly the gate's ServiceAccount as rendered", () => {
    const docs = renderOverlay('production');
    const sa = one(docs, 'ServiceAccount', 'gitops-gate-gate');
    const username = `system:serviceaccount:${sa.metadata.namespace}:${sa.metadata.name}`;
    expect(username).toBe(GATE);
    const conditions: { name: string; expression: string }[] = vap.spec.matchConditions;
    const notGate = conditions.find((c) => c.name === 'not-the-gate');
    expect(notGate?.expression).toContain(`'${username}'`);
    // The gate Deployment runs as that account.
    expect(one(docs, 'Deployment', 'gitops-gate-gate').spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    // Kyverno excludes the same subject.
    expect(kyverno.spec.rules[0].exclude.any).toEqual([
      { subjects: [{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }] },
    ]);
  });

  it('is bound, denies, fails closed and only matches Application creates and updates', () => {
    const docs = renderOverlay('production');
    const binding = one(docs, 'ValidatingAdmissionPolicyBinding', 'gitops-gate-pin-guard');
    expect(binding.spec.policyName).toBe(vap.metadata.name);
    expect(binding.spec.validationActions).toContain('Deny');
    expect(vap.spec.failurePolicy).toBe('Fail');
    expect(vap.spec.matchConstraints.resourceRules).toEqual([
      { apiGroups: ['argoproj.io'], apiVersions: ['*'], operations: ['CREATE', 'UPDATE'], resources: ['applications'] },
    ]);
  });

  it('keeps the Kyverno variant in step with the ValidatingAdmissionPolicy', () => {
    const rule = kyverno.spec.rules[0];
    expect(kyverno.spec.validationFailureAction).toBe('Enforce');
    expect(rule.match.any[0].resources.operations).toEqual(['CREATE', 'UPDATE']);
    expect(rule.celPreconditions).toEqual(vap.spec.matchConditions.filter((c: { name: string }) => c.name !== 'not-the-gate'));
    expect(rule.validate.cel.variables).toEqual(vap.spec.variables);
    expect(rule.validate.cel.expressions).toEqual(vap.spec.validations);
  });

  it('replaces the ValidatingAdmissionPolicy when the Kyverno component is used', () => {
    const docs = renderWithComponents('production', ['kyverno']);
    expect(docs.filter((d) => d.kind.startsWith('ValidatingAdmissionPolicy'))).toEqual([]);
    expect(one(docs, 'ClusterPolicy', 'gitops-gate-pin-guard').metadata.namespace).toBeUndefined();
  });
});

describe('sample Applications', () => {
  it('are valid Argo CD Applications', () => {
    expect(samples.length).toBeGreaterThan(20);
    for (const s of samples) expect(() => new Application(s as never).validate(), s.metadata.name).not.toThrow();
  });

  // The policy reads these fields; the Argo CD schema must know them (a wrongly typed value must be rejected).
  it.each([
    ['spec.source.targetRevision', (a: App) => (a.spec.source.targetRevision = 42)],
    ['spec.sources[].targetRevision', (a: App) => (a.spec.sources = [{ repoURL: 'x', targetRevision: 42 }])],
    ['spec.sourceHydrator', (a: App) => (a.spec.sourceHydrator = 'x')],
    ['operation.sync', (a: App) => (a.operation = { sync: 'x' })],
    ['operation.sync.revision', (a: App) => (a.operation = { sync: { revision: 42 } })],
    ['operation.sync.revisions', (a: App) => (a.operation = { sync: { revisions: 'x' } })],
    ['operation.sync.source', (a: App) => (a.operation = { sync: { source: 'x' } })],
    ['operation.sync.sources', (a: App) => (a.operation = { sync: { sources: 'x' } })],
  ])('Argo CD schema knows %s', (_path, mutate) => {
    const a = structuredClone(singleSource());
    samples.pop();
    mutate(a);
    expect(() => new Application(a as never).validate()).toThrow();
  });
});
