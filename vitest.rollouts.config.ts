import { defineConfig } from 'vitest/config';

// `npm run test:rollouts`: the canary rollout step machine on Temporal's time-skipping Java test
// server, against the shared stack's ClickHouse (same global setup as the integration project).
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/workflows/rollout.test.ts', 'test/integration/rollout-pipeline.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 300_000,
  },
});
