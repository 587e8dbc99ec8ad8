#!/usr/bin/env node
import { runService } from '@alert-hub/runtime';
import { loadConfig, type RouterConfig } from './config.js';
import { startRouter } from './router.js';

/**
 * The router process: SIGTERM stops it cleanly (in-flight messages finish, the audit is committed
 * and checkpointed); SIGHUP reloads the trust store, the key, the agreements and the
 * coordinators' and operators' tokens from the configuration file.
 */
await runService<RouterConfig>({
  name: (config) => `router-${config.instance}`,
  loadConfig: (file) => loadConfig(undefined, file),
  reloadConfig: (file) => loadConfig(undefined, file, { reload: true }),
  start: (config, log) => startRouter(config, { log }),
});
