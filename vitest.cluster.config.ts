import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// `npm run test:cluster`: the opt-in suite against the cluster named by KUBECONFIG. (mergeConfig would concatenate
// the include lists; this suite must run alone.)
export default defineConfig({ ...base, test: { ...base.test, include: ['test/cluster/**/*.test.ts'] } });
