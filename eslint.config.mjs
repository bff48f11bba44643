import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  // scripts/*.mjs: plain Node scripts (the test runner), outside the TypeScript project the type-aware rules need.
  {
    ignores: ['dist/', 'node_modules/', 'var/', 'fixtures/', 'coverage/', '*.mjs', '*.cjs', 'scripts/*.mjs'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // Type-aware, for the rules below: a promise nobody awaits is how a failure's bookkeeping got lost.
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // `void p` is not an excuse: handle the rejection (.catch) or await it.
          ignoreVoid: false,
          // node:test's test() and describe() return promises the runner itself awaits.
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
    },
  },
);
