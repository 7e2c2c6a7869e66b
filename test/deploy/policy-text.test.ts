/**
 * The CRDs say exactly what the gate does with mode and selector (one text, shared/core/policy/src/policy-text.ts).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICY_FIELD_DESCRIPTIONS } from '@gitops-gate/policy';
import { DEPLOY, parseDocs } from './lib/render.js';

describe.each(['gatepolicy.yaml', 'clustergatepolicy.yaml'])('%s descriptions', (file) => {
  const crd = parseDocs(readFileSync(join(DEPLOY, 'base/crds', file), 'utf8'))[0]!;
  const schema = crd.spec.versions[0].schema.openAPIV3Schema.properties;
  it('mode and selector say what the gate does (Audit pins unverified commits; never overrides Enforce)', () => {
    expect(schema.spec.properties.mode.description).toBe(POLICY_FIELD_DESCRIPTIONS.mode);
    expect(schema.spec.properties.selector.description).toBe(POLICY_FIELD_DESCRIPTIONS.selector);
    expect(schema.spec.properties.mode.description).not.toMatch(/pins nothing it would reject/);
  });
  it('status has room for selectedApplications', () => {
    expect(schema.status.properties.selectedApplications.description).toBe(POLICY_FIELD_DESCRIPTIONS.selectedApplications);
    expect(schema.status.properties.selectedApplications.properties.names.maxItems).toBe(10);
  });
});
