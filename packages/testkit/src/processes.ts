import {
  spawnService,
  type ServiceKind,
  type ServiceProcess,
  type SpawnServiceOptions,
} from './service-process.js';

/** Starts a service process from its config file, as in production (see spawnService). */
export function startService(
  kind: ServiceKind,
  configFile: string,
  options: SpawnServiceOptions = {},
): Promise<ServiceProcess> {
  return spawnService(kind, configFile, {
    ...options,
    env: { PATH: process.env['PATH'], ...options.env },
  });
}
