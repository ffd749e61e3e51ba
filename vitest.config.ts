import { defineConfig } from 'vitest/config';

// Projects: `unit` needs nothing running; `alertmanager` and `conformance` compare with reference
// implementations (the real Alertmanager, the documented ClickHouse HTTP interface); `integration`
// (workflows + real stack) shares one local stack started (or reused) by the global setup. The
// Temporal native layer wants forks.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 240_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        // Differential conformance with the real Alertmanager v0.35.0 (built once, cached in
        // ~/.cache/streamwarden). `npm test` runs the fast slice; `npm run test:alertmanager`
        // (ALERTMANAGER_SUITE=full) adds the timing timelines and more generated alerts.
        extends: true,
        test: {
          name: 'alertmanager',
          include: process.env.ALERTMANAGER_SUITE === 'full' ? ['test/alertmanager/**/*.test.ts'] : ['test/alertmanager/*.test.ts'],
          globalSetup: ['test/alertmanager/global-setup.ts', ...(process.env.ALERTMANAGER_SUITE === 'full' ? ['test/support/global-setup.ts'] : [])],
          testTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        // The ClickHouse HTTP conformance suite: the embedded endpoint, or CLICKHOUSE_CONFORMANCE_URL.
        extends: true,
        test: {
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          globalSetup: ['test/conformance/clickhouse-http/global-setup.ts'],
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/workflows/**/*.test.ts'],
          // The canary rollout step machine in skipped time is slow (a Java test server per incident
          // test): `npm run test:rollouts` (vitest.rollouts.config.ts).
          exclude: ['test/workflows/rollout.test.ts', 'test/integration/rollout-pipeline.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
        },
      },
    ],
  },
});
