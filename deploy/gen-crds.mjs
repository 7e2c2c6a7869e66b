#!/usr/bin/env node
// Writes the policy CRDs from the policy model: `npm run gen:crds` (builds the policy package first).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { POLICY_CRD_FILES, renderPolicyCrdYaml } from '@gitops-gate/policy';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const [scope, file] of Object.entries(POLICY_CRD_FILES)) {
  writeFileSync(`${root}${file}`, renderPolicyCrdYaml(scope));
  console.log(`wrote ${file}`);
}
