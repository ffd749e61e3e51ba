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
          globalSetup: ['test/support/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
        },
      },
    ],
  },
});
