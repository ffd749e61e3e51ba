// Flat config: typescript-eslint strict + stylistic, with workflow files restricted to
// deterministic, sandbox-safe imports (the Temporal workflow sandbox rejects Node APIs).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', '.state/**', 'dashboards/dist/**', 'workers/platform-bin.js', 'infra/wasm/assembly/**'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  ...tseslint.configs.stylistic,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false },
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['node:*', 'fs', 'path', 'os', 'crypto', 'http', 'https', 'child_process', 'net'], message: 'Workflow code must not use Node APIs (sandbox, determinism).' },
          { group: ['kafkajs', '@clickhouse/*', 'chdb', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'], message: 'Workflow code may import only @temporalio/workflow, schemas and pure helpers; use activities for I/O.' },
          { group: ['**/activities/*', '**/activities/**', '**/workers/**', '**/infra/**'], message: 'Workflows import activity *types* only (import type).', allowTypeImports: true },
        ],
      }],
    },
  },
);
