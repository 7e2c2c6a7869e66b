/** The one verify-job builder: strict repository names (attacker inputs), canonical URLs, schema-checked jobs. */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CONTRACT_ERROR_CODES,
  ContractError,
  buildCommitVerifyJob,
  buildImageVerifyJob,
  parseRepoFullName,
  repoFullNameOf,
  reverifyCommitJob,
  reverifyImageJob,
} from './verify-jobs.js';
import { repoTag } from './index.js';

const SHA = 'a'.repeat(40);
const DIGEST = `sha256:${'b'.repeat(64)}`;
const now = new Date('2026-01-02T03:04:05Z');

describe('parseRepoFullName', () => {
  it('accepts GitHub owner/name shapes', () => {
    expect(parseRepoFullName('org/app')).toEqual({ owner: 'org', name: 'app', fullName: 'org/app' });
    expect(parseRepoFullName('Org-1/my.repo_x-2').fullName).toBe('Org-1/my.repo_x-2');
    expect(parseRepoFullName(`${'a'.repeat(39)}/${'b'.repeat(100)}`).owner).toHaveLength(39);
  });
  it.each([
    ['a/b/c'],
    ['../x'],
    ['org/..'],
    ['org/.'],
    ['./x'],
    ['org'],
    [''],
    ['/'],
    ['org/'],
    ['/app'],
    ['org /app'],
    ['org/ap p'],
    [' org/app'],
    ['org/app\n'],
    ['org/app\u0000'],
    ['оrg/app'], // Cyrillic 'о'
    ['org/appé'],
    ['org/app\u200b'],
    ['-org/app'],
    ['org-/app'],
    [`${'a'.repeat(40)}/app`],
    [`org/${'b'.repeat(101)}`],
    ['org\\app'],
    ['org/app?x=1'],
    ['org/app#x'],
    ['org:app'],
  ])('attacker: refuses %j', (input) => {
    const err: unknown = (() => {
      try {
        parseRepoFullName(input);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(ContractError);
    expect(CONTRACT_ERROR_CODES).toContain((err as ContractError).code);
  });
});

describe('repoFullNameOf', () => {
  it('reads owner/name from any spelling of a repository URL', () => {
    expect(repoFullNameOf('https://github.com/Org/App.git').fullName).toBe('org/app');
    expect(repoFullNameOf('git@github.com:org/app.git').fullName).toBe('org/app');
    expect(repoFullNameOf('https://git.example.com:8443/team/svc').fullName).toBe('team/svc');
  });
  it('attacker: refuses nested paths, traversal and non-https URLs', () => {
    for (const url of [
      'https://gitlab.com/a/b/c',
      'https://github.com/../x',
      'file:///srv/git/app',
      'https://github.com/org',
      'not a url',
    ]) {
      expect(() => repoFullNameOf(url), url).toThrow(ContractError);
    }
  });
});

describe('buildCommitVerifyJob', () => {
  it('builds a schema-valid job with the canonical URL and the delivery job id', () => {
    const { data, jobId } = buildCommitVerifyJob({
      deliveryId: 'd-1',
      cloneUrl: 'https://github.com/Org/App.git',
      repoFullName: 'Org/App',
      branch: 'main',
      sha: SHA,
      receivedAt: now,
    });
    expect(data).toMatchObject({
      v: 1,
      kind: 'commit',
      repoUrl: 'https://github.com/org/app',
      cloneUrl: 'https://github.com/Org/App.git',
      repoFullName: 'Org/App',
      forced: false,
      receivedAt: now.toISOString(),
    });
    expect(jobId).toBe('gh-d-1');
  });
  it('derives the name from the URL when the caller has none (reconcile)', () => {
    expect(
      buildCommitVerifyJob({ deliveryId: 'r-1', cloneUrl: 'https://github.com/org/shop', branch: 'main', sha: SHA, receivedAt: now }).data
        .repoFullName,
    ).toBe('org/shop');
  });
  it('attacker: a hostile name, sha or delivery id never becomes a job', () => {
    const base = { deliveryId: 'd-1', cloneUrl: 'https://github.com/org/app', branch: 'main', sha: SHA, receivedAt: now };
    expect(() => buildCommitVerifyJob({ ...base, repoFullName: 'org/app/../../x' })).toThrow(ContractError);
    expect(() => buildCommitVerifyJob({ ...base, cloneUrl: 'https://gitlab.com/a/b/c' })).toThrow(ContractError);
    expect(() => buildCommitVerifyJob({ ...base, sha: 'HEAD' })).toThrow();
    expect(() => buildCommitVerifyJob({ ...base, deliveryId: 'a:b' })).toThrow();
  });
});

describe('re-verification jobs', () => {
  it('a commit re-verification carries the revision and a job id per (delivery, repository, sha, revision)', () => {
    const verdict = {
      deliveryId: 'd-1',
      repoUrl: 'https://github.com/org/app',
      cloneUrl: 'https://github.com/org/app.git',
      repoFullName: 'org/app',
      branch: 'main',
      sha: SHA,
      trace: { traceparent: 'x' },
    };
    const { data, jobId } = reverifyCommitJob(verdict, 'rev1', now);
    expect(data).toMatchObject({ reverify: 'rev1', trace: { traceparent: 'x' }, repoUrl: 'https://github.com/org/app' });
    expect(jobId).toBe(`reverify-d-1-${repoTag('https://github.com/org/app')}-${SHA}-rev1`);
  });
  it('an image re-verification is one job per (repository, image, digest, revision), named from the repository URL', () => {
    const { data, jobId } = reverifyImageJob(
      { repoUrl: 'https://github.com/org/app', image: 'ghcr.io/org/app', digest: DIGEST },
      'rev1',
      now,
    );
    const name = createHash('sha256').update('ghcr.io/org/app').digest('hex').slice(0, 12);
    const id = `${repoTag('https://github.com/org/app')}-${name}-${'b'.repeat(16)}-rev1`;
    expect(data).toMatchObject({ kind: 'image', repoFullName: 'org/app', deliveryId: `reverify-${id}` });
    expect(jobId).toBe(`reverify-image-${id}`);
  });
  it('image jobs go through the same strict parser', () => {
    expect(() =>
      buildImageVerifyJob({
        deliveryId: 'd',
        repoUrl: 'https://github.com/org/app',
        repoFullName: 'a/b/c',
        image: 'ghcr.io/a/b',
        digest: DIGEST,
        receivedAt: now,
      }),
    ).toThrow(ContractError);
  });
});
