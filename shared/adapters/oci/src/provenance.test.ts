import { describe, expect, it } from 'vitest';
import type { Statement } from '@gitops-gate/bundle-verify';
import { ProvenanceError, builderMatchesSigner, readProvenance, repositoryFromUri } from './provenance.js';
import { slsaV02Statement, slsaV1Statement } from './testing/private-sigstore.js';
import { refNameMatches } from './verify-image.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);

const st = (o: object): Statement => o as Statement;

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof ProvenanceError) return e.code;
    throw e;
  }
  return undefined;
}

describe('SLSA provenance content', () => {
  it('v1: builder id and the gitCommit of the resolved source dependency', () => {
    expect(readProvenance(st(slsaV1Statement({ digest: DIGEST, commit: C1.toUpperCase() })))).toEqual({
      predicateType: 'https://slsa.dev/provenance/v1',
      builderId: 'https://github.com/actions/runner/github-hosted',
      sourceRepository: 'https://github.com/org/app',
      sourceCommit: C1,
      sourceRef: 'refs/heads/main',
    });
  });

  it('v1 without a git dependency has no source commit', () => {
    expect(readProvenance(st(slsaV1Statement({ digest: DIGEST }))).sourceCommit).toBeUndefined();
  });

  it('v1 with several git commits picks the workflow repository, else refuses to guess', () => {
    const extra = [{ uri: 'git+https://github.com/org/lib@refs/heads/main', digest: { gitCommit: C2 } }];
    expect(readProvenance(st(slsaV1Statement({ digest: DIGEST, commit: C1, extraDependencies: extra }))).sourceCommit).toBe(C1);
    const s = slsaV1Statement({ digest: DIGEST, commit: C1, extraDependencies: extra, repository: 'https://github.com/org/app' }) as {
      predicate: { buildDefinition: { externalParameters: { workflow: { repository: string } } } };
    };
    s.predicate.buildDefinition.externalParameters.workflow.repository = 'https://github.com/org/elsewhere';
    expect(code(() => readProvenance(st(s)))).toBe('PROVENANCE_SOURCE_AMBIGUOUS');
  });

  it('v0.2: builder id and invocation.configSource.digest.sha1', () => {
    const builderId =
      'https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0';
    expect(readProvenance(st(slsaV02Statement({ digest: DIGEST, builderId, commit: C2 })))).toEqual({
      predicateType: 'https://slsa.dev/provenance/v0.2',
      builderId,
      sourceRepository: 'https://github.com/org/app',
      sourceCommit: C2,
      sourceRef: 'refs/heads/main',
    });
  });

  it('malformed provenance is PROVENANCE_INVALID', () => {
    const noBuilder = slsaV1Statement({ digest: DIGEST, commit: C1 }) as { predicate: { runDetails: { builder: { id?: string } } } };
    delete noBuilder.predicate.runDetails.builder.id;
    expect(code(() => readProvenance(st(noBuilder)))).toBe('PROVENANCE_INVALID');
    expect(code(() => readProvenance(st(slsaV1Statement({ digest: DIGEST, commit: 'abc' }))))).toBe('PROVENANCE_INVALID');
    expect(code(() => readProvenance(st({ predicateType: 'https://slsa.dev/provenance/v1', subject: [], predicate: 'x' })))).toBe(
      'PROVENANCE_INVALID',
    );
    expect(code(() => readProvenance(st({ predicateType: 'https://example.com/other', subject: [], predicate: {} })))).toBe(
      'PROVENANCE_INVALID',
    );
    const badDeps = slsaV1Statement({ digest: DIGEST }) as { predicate: { buildDefinition: { resolvedDependencies: unknown } } };
    badDeps.predicate.buildDefinition.resolvedDependencies = 'nope';
    expect(code(() => readProvenance(st(badDeps)))).toBe('PROVENANCE_INVALID');
  });

  it('repository URIs lose git+, the ref and .git', () => {
    expect(repositoryFromUri('git+https://github.com/org/app@refs/heads/main')).toBe('https://github.com/org/app');
    expect(repositoryFromUri('git+https://github.com/org/app.git@refs/tags/v1')).toBe('https://github.com/org/app');
    expect(repositoryFromUri('https://user@host.example/org/app')).toBe('https://user@host.example/org/app');
    expect(repositoryFromUri('')).toBeUndefined();
  });

  it('a workflow builder id must be the signing workflow; a hosted-runner builder id defers to the certificate', () => {
    const wf = 'https://github.com/org/app/.github/workflows/release.yml@refs/heads/main';
    expect(builderMatchesSigner(wf, { identity: wf })).toBe(true);
    expect(
      builderMatchesSigner(wf, { identity: 'https://github.com/org/app/.github/workflows/other.yml@refs/heads/main', buildSignerURI: wf }),
    ).toBe(true);
    expect(builderMatchesSigner(wf, { identity: `${wf}x` })).toBe(false);
    expect(builderMatchesSigner('https://github.com/actions/runner/github-hosted', { identity: wf })).toBe(true);
  });
});

describe('policy branch globs for the provenance source ref', () => {
  it('`*` and `?` stay inside one path segment; everything else is literal', () => {
    const yes: Array<[string, string]> = [
      ['main', 'main'],
      ['release/*', 'release/1.2'],
      ['release/*', 'release/'],
      ['v?.*', 'v1.0'],
      ['*', 'feature'],
      ['a*b*c', 'aXbYc'],
    ];
    const no: Array<[string, string]> = [
      ['main', 'mainx'],
      ['main', 'xmain'],
      ['release/*', 'release/1.2/evil'],
      ['release/*', 'release'],
      ['*', 'feature/x'],
      ['v?.*', 'v/.0'],
      ['ma.n', 'main'],
      ['a*b*c', 'aXbY/c'],
    ];
    for (const [p, n] of yes) expect(refNameMatches(p, n), `${p} ~ ${n}`).toBe(true);
    for (const [p, n] of no) expect(refNameMatches(p, n), `${p} !~ ${n}`).toBe(false);
  });
});
