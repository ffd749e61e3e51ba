import { defineConfig } from 'vitest/config';

// `npm run test:faults`: fault tests that kill processes and measure recovery (minutes each), on
// the shared stack's servers or servers they start themselves; not part of `npm test`.
export default defineConfig({
  test: {
    pool: 'forks',
    include: ['test/faults/**/*.test.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    fileParallelism: false,
    testTimeout: 420_000,
    hookTimeout: 300_000,
  },
});
