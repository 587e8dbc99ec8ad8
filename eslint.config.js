// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'coverage/**', 'test/vectors/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      // Fastify route handlers are async by convention, awaiting or not.
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Services never import each other, and nobody reaches into another package's src/.
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/services/*/src/**', '**/packages/*/src/**'],
              message: 'import the package, not its src/',
            },
            {
              group: ['@alert-hub/*/src/*', '@alert-hub/*/dist/*'],
              message: 'use the package entry point',
            },
          ],
        },
      ],
      // Configuration is read in one place per service (loadConfig); see STYLE.md.
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through loadConfig()' },
      ],
    },
  },
  {
    files: ['services/gateway/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ group: ['@alert-hub/router'], message: 'services never import each other' }],
        },
      ],
    },
  },
  {
    files: ['services/router/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@alert-hub/gateway'], message: 'services never import each other' },
          ],
        },
      ],
    },
  },
  {
    files: ['packages/core/src/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            'node:fs',
            'node:fs/promises',
            'node:net',
            'node:http',
            'node:child_process',
            'fs',
            'net',
          ].map((name) => ({
            name,
            message: 'core does no I/O: keys, schemas and agreements come in as arguments',
          })),
          patterns: [
            { group: ['@alert-hub/*'], message: 'core depends on no other workspace package' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: {
        process: 'readonly',
        console: 'readonly',
        performance: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  {
    // The web consoles are browser code, type-checked with the DOM (tsconfig.web.json).
    files: ['packages/web/src/**', 'services/gateway/console/**', 'services/router/dashboard/**'],
    ignores: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      parserOptions: { project: './tsconfig.web.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    // Tests, the test kit, benchmarks and the demo read the environment directly (NATS_SERVER_BIN, FC_SEED).
    files: ['test/**', '**/test/**', 'packages/testkit/**', 'bench/**', 'demo/**', 'scripts/**'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
