/**
 * Review (wt-review) attacker test: 704e301 shows signers and issuers in code spans, made safe by dropping backticks
 * and line breaks from the value. Dropping changes the identity shown: a signer that is not alice@corp.example (it has
 * a backtick) is shown on the commit page exactly as alice@corp.example. A code span can hold any value unchanged when
 * its fence is longer than the longest backtick run inside it (CommonMark 6.1); this test fails until it does.
 */
import { describe, expect, it } from 'vitest';
import { checkRunFor, type ReportJob } from './index.js';

const job = (signer: string): ReportJob => ({
  v: 1,
  decisionId: 'd-1',
  time: new Date(1_800_000_000_000).toISOString(),
  repoUrl: 'https://github.com/org/app',
  sha: 'a'.repeat(40),
  app: 'argocd/web',
  action: 'refuse-unverified',
  reason: 'signer not allowed',
  code: 'SIGNER_NOT_ALLOWED',
  signer,
});

describe('attacker: the check run shows the signer that signed, not a look-alike', () => {
  it('two different signers never render the same summary', () => {
    const real = checkRunFor(job('alice@corp.example'))!;
    const lookAlike = checkRunFor(job('alice`@corp.example'))!;
    expect(lookAlike.summary).not.toBe(real.summary);
  });
});
