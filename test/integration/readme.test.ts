import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES } from '@gitops-gate/config';

const README = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('README', () => {
  it('documents every configuration variable', () => {
    for (const v of CONFIG_VARIABLES) expect(README, v).toContain(`| \`${v}\` |`);
  });
  it('keeps the two-command quickstart', () => {
    expect(README).toContain('npm install && npm start');
    expect(README).toMatch(/^npm test\b/m);
  });
});
