// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** A service package may be imported by nobody but its own main (which imports ./index.js). */
const NO_SERVICE = {
  group: ['@alert-hub/gateway', '@alert-hub/gateway/*', '@alert-hub/router', '@alert-hub/router/*'],
  message: 'nothing depends on a service: move what you need to core, audit or runtime',
};
/** The test kit is a development dependency: no package's or service's src/ may load it. */
const NO_TESTKIT = {
  group: ['@alert-hub/testkit', '@alert-hub/testkit/*'],
  message: 'testkit is for tests, the benchmark and the demo only',
};
/** Node modules that do I/O, which core may not import. */
const CORE_NO_IO = [
  'fs',
  'fs/promises',
  'net',
  'http',
  'https',
  'http2',
  'tls',
  'dgram',
  'dns',
  'child_process',
  'worker_threads',
  'cluster',
  'readline',
].flatMap((m) => [m, `node:${m}`]);

/** no-restricted-imports with the rules every file shares, plus `extra`. */
function restrictImports(extra = { paths: [], patterns: [] }) {
  return [
    'error',
    {
      paths: [...(extra.paths ?? [])],
      patterns: [
        {
          group: ['**/services/*/src/**', '**/packages/*/src/**'],
          message: 'import the package, not its src/',
        },
        {
          group: ['@alert-hub/*/src/*', '@alert-hub/*/dist/*'],
          message: 'use the package entry point',
        },
        ...(extra.patterns ?? []),
      ],
    },
  ];
}

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
      // Nobody reaches into another package's src/ or dist/.
      'no-restricted-imports': restrictImports(),
      // Configuration is read in one place per service (loadConfig); see README.md, Layout.
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through loadConfig()' },
      ],
    },
  },
  // The dependency direction (README, "Layout"): services and hubctl depend on core, audit and
  // runtime; nothing depends on a service; no src/ loads the test kit; core does no I/O.
  {
    files: ['packages/*/src/**', 'services/*/src/**'],
    ignores: ['packages/testkit/**'],
    rules: { 'no-restricted-imports': restrictImports({ patterns: [NO_SERVICE, NO_TESTKIT] }) },
  },
  {
    files: ['packages/testkit/src/**', 'bench/src/**', 'demo/src/**'],
    rules: { 'no-restricted-imports': restrictImports({ patterns: [NO_SERVICE] }) },
  },
  {
    files: ['packages/core/src/**'],
    rules: {
      'no-restricted-imports': restrictImports({
        paths: CORE_NO_IO.map((name) => ({
          name,
          message: 'core does no I/O: keys, schemas and agreements come in as arguments',
        })),
        patterns: [
          { group: ['@alert-hub/*'], message: 'core depends on no other workspace package' },
          {
            group: ['@nats-io/*', 'better-sqlite3', 'fastify', '@fastify/*', 'pino'],
            message: 'core does no I/O: connections, databases and logs belong to runtime',
          },
        ],
      }),
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
