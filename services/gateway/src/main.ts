#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { createLogger } from '@alert-hub/runtime';
import { loadConfig } from './config.js';
import { startGateway } from './gateway.js';

/**
 * The gateway process: the one place that reads the configuration, wires everything, and
 * shuts it down on SIGTERM/SIGINT. SIGHUP reloads the trust store and signing key.
 */
const { values } = parseArgs({ options: { config: { type: 'string', short: 'c' } }, strict: true });
let config;
try {
  config = loadConfig(undefined, values.config);
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n`);
  process.exit(2);
}
const log = createLogger({ name: `gateway-${config.agency}`, level: config.log.level });
let gateway;
try {
  gateway = await startGateway(config, { log });
} catch (err) {
  const code = (err as { code?: string }).code;
  log.fatal({ reason: (err as Error).message, code }, 'gateway could not start');
  process.stderr.write(`${(err as Error).message}${code ? ` [${code}]` : ''}\n`);
  process.exit(1);
}
let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down');
  gateway.close().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'shutdown failed');
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGHUP', () => gateway.reload());
