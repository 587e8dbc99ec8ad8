#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createLogger } from '@alert-hub/runtime';
import { loadConfig } from './config.js';
import { startRouter } from './router.js';

/**
 * The router process: reads the configuration, wires everything, and stops cleanly on
 * SIGTERM/SIGINT (in-flight messages finish, the audit is committed and checkpointed).
 * SIGHUP reloads the trust store, the key and the agreements.
 */
const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
let config;
try {
  config = loadConfig(undefined, values.config);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
const log = createLogger({ name: `router-${config.instance}`, level: config.log.level });
let router;
try {
  router = await startRouter(config, { log });
} catch (err) {
  log.fatal(
    { reason: (err as Error).message, issues: (err as { issues?: unknown }).issues },
    'router could not start',
  );
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(1);
}
let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  router.close().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGHUP', () => void router.reload());
