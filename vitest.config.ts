import { defineConfig } from 'vitest/config';

// Two projects: `unit` needs nothing running; `integration` (workflows + real stack) shares one
// local stack started (or reused) by the global setup. The Temporal native layer wants forks.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 240_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/workflows/**/*.test.ts'],
          // The canary rollout step machine in skipped time is slow (a Java test server per incident
          // test): `npm run test:rollouts` (vitest.rollouts.config.ts).
          exclude: ['test/workflows/rollout.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
        },
      },
    ],
  },
});
