import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:cluster`: the opt-in suite against the cluster named by KUBECONFIG. (mergeConfig would concatenate
// the include lists; this suite must run alone.) Verbose, so every skipped part shows the reason in its name; one
// file at a time with generous timeouts, since a real API server and Argo CD's controller are slower than the sandbox.
export default defineConfig({
  ...base,
  test: { ...base.test, include: ['test/cluster/**/*.test.ts'], reporters: ['verbose'], testTimeout: 120_000, hookTimeout: 120_000 },
});
