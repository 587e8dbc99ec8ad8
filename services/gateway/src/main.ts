#!/usr/bin/env node
import { runService } from '@alert-hub/runtime';
import { loadConfig, type GatewayConfig } from './config.js';
import { startGateway } from './gateway.js';

/**
 * The gateway process: SIGTERM stops it cleanly, SIGHUP reloads the trust store, the signing key
 * and the API clients (`clients:`) from the configuration file.
 */
await runService<GatewayConfig>({
  name: (config) => `gateway-${config.agency}`,
  loadConfig: (file) => loadConfig(undefined, file),
  reloadConfig: (file) => loadConfig(undefined, file, { reload: true }),
  start: (config, log) => startGateway(config, { log }),
});
