import { describe, expect, it } from 'vitest';
import { commitVerdictJob, imageVerdictJobId, normalizeRepoUrl, verdictJobId, verifyCommitJob, verifyJob, verifyJobId } from './index.js';

describe('normalizeRepoUrl', () => {
  it.each([
    'https://github.com/Org/Repo',
    'https://github.com/org/repo.git',
    'https://github.com/org/repo/',
    'git@github.com:org/repo.git',
    'ssh://git@github.com/org/repo',
    'git://github.com/org/repo.git',
    'HTTPS://GitHub.com/org/repo',
  ])('%s → https://github.com/org/repo', (u) => {
    expect(normalizeRepoUrl(u)).toBe('https://github.com/org/repo');
  });
  it('keeps other hosts distinct, ports and path case', () => {
    expect(normalizeRepoUrl('https://git.example.com:8443/Team/App.git')).toBe('https://git.example.com:8443/Team/App');
    expect(normalizeRepoUrl('https://gitlab.com/org/repo')).not.toBe(normalizeRepoUrl('https://github.com/org/repo'));
  });
  it('does not merge different repositories', () => {
    expect(normalizeRepoUrl('https://github.com/org/repo')).not.toBe(normalizeRepoUrl('https://github.com/org/repo2'));
    expect(normalizeRepoUrl('https://github.com/org/repo')).not.toBe(normalizeRepoUrl('https://github.com/other/repo'));
  });
  it('normalises file URLs (tests, mirrors)', () => {
    expect(normalizeRepoUrl('file:///tmp/x/repo.git/')).toBe('file:///tmp/x/repo');
  });
});

describe('job schemas', () => {
  const base = {
    v: 1,
    kind: 'commit',
    deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
    repoUrl: 'https://github.com/org/repo',
    cloneUrl: 'https://github.com/org/repo.git',
    repoFullName: 'org/repo',
    branch: 'main',
    sha: 'a'.repeat(40),
    receivedAt: new Date().toISOString(),
  };
  it('accepts a valid commit job and defaults forced', () => {
    expect(verifyCommitJob.parse(base).forced).toBe(false);
    expect(verifyJob.parse(base).kind).toBe('commit');
  });
  it('rejects short shas, unknown versions and bad delivery ids', () => {
    expect(verifyCommitJob.safeParse({ ...base, sha: 'abc' }).success).toBe(false);
    expect(verifyCommitJob.safeParse({ ...base, v: 2 }).success).toBe(false);
    expect(verifyCommitJob.safeParse({ ...base, deliveryId: 'a:b' }).success).toBe(false);
  });
  it('verdicts need an outcome', () => {
    expect(commitVerdictJob.safeParse({ ...base, kind: 'commit-verdict', outcome: 'maybe' }).success).toBe(false);
  });
  it('job ids carry no colon (BullMQ forbids it)', () => {
    expect(verifyJobId('x-1')).toBe('gh-x-1');
    expect(verifyJobId('x-1')).not.toContain(':');
    expect(
      verdictJobId({ deliveryId: 'x-1', sha: 'a'.repeat(40), repoUrl: 'https://github.com/org/app', branch: 'main', reverify: 'r1' }),
    ).not.toContain(':');
    expect(imageVerdictJobId('x-1', `sha256:${'b'.repeat(64)}`, 'https://github.com/org/app')).not.toContain(':');
  });
  it('attacker: a delivery id reused for another repository (same commit, same digest) never shares a verdict job id', () => {
    // BullMQ drops an add whose job id exists: a shared id would let one repository's verdict stand in for another's.
    const sha = 'a'.repeat(40);
    const v = { deliveryId: 'x-1', sha, repoUrl: 'https://github.com/org/app', branch: 'main' };
    expect(verdictJobId(v)).not.toBe(verdictJobId({ ...v, repoUrl: 'https://github.com/evil/app' }));
    expect(verdictJobId(v)).not.toBe(verdictJobId({ ...v, branch: 'feature' }));
    const digest = `sha256:${'b'.repeat(64)}`;
    expect(imageVerdictJobId('x-1', digest, 'https://github.com/org/app')).not.toBe(
      imageVerdictJobId('x-1', digest, 'https://github.com/evil/app'),
    );
  });
});
