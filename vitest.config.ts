import { defineConfig } from 'vitest/config';

// Tests import the workspace packages' TypeScript sources through the "@alert-hub/source"
// export condition, so a unit test never runs stale build output. Processes that tests spawn
// (router, gateway, hubctl) run the compiled dist/, which `npm test` builds first.
export default defineConfig({
  resolve: { conditions: ['@alert-hub/source'] },
  ssr: { resolve: { conditions: ['@alert-hub/source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'services/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['test/setup/fast-check.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Every NATS-backed test file starts its own nats-server; two cores are all CI has.
    pool: 'forks',
    maxWorkers: 2,
    reporters: ['default'],
  },
});
