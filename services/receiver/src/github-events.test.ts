/** Deliveries become jobs only through the one builder: a hostile repository name is an invalid delivery, never a job. */
import { describe, expect, it } from 'vitest';
import { interpretEvent } from './github-events.js';

const SHA = 'c'.repeat(40);
const now = new Date('2026-01-02T03:04:05Z');
const push = (fullName: string, cloneUrl = 'https://github.com/org/app.git') => ({
  ref: 'refs/heads/main',
  before: '0'.repeat(40),
  after: SHA,
  repository: { full_name: fullName, clone_url: cloneUrl },
});

describe('interpretEvent: repository names', () => {
  it('a GitHub push becomes a schema-valid commit job', () => {
    const out = interpretEvent('push', 'd-1', push('Org/App'), now);
    expect(out).toMatchObject({
      kind: 'enqueue',
      job: { kind: 'commit', repoUrl: 'https://github.com/org/app', repoFullName: 'Org/App', receivedAt: now.toISOString() },
    });
  });
  it.each(['a/b/c', '../x', 'org/ap p', 'оrg/app', '', 'org/..'])('attacker: full_name %j is refused as invalid', (name) => {
    const out = interpretEvent('push', 'd-1', push(name), now);
    expect(out.kind).toBe('invalid');
  });
  it('attacker: a delivery id the job schema refuses is invalid, not a crash', () => {
    expect(interpretEvent('push', 'bad:id', push('org/app'), now).kind).toBe('invalid');
  });
});
