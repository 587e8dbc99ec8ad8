import { afterAll, beforeAll } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import { connectNats } from '@alert-hub/runtime';
import { startNatsServer, type NatsServer, type NatsServerOptions } from './nats-server.js';

/**
 * Starts one real nats-server (JetStream, random loopback port, temporary directory) for the
 * test file, and kills it and removes its directory afterwards. Connections made through
 * `connect()` are closed before the server stops.
 */
export function useNatsServer(
  options: Omit<NatsServerOptions, 'env' | 'config'> & {
    config?: string | (() => string | Promise<string>);
  } = {},
) {
  let server: NatsServer | undefined;
  const connections: NatsConnection[] = [];
  beforeAll(async () => {
    const config = typeof options.config === 'function' ? await options.config() : options.config;
    const { config: _config, ...rest } = options;
    server = await startNatsServer({
      ...rest,
      ...(config === undefined ? {} : { config }),
      env: process.env,
    });
  });
  afterAll(async () => {
    await Promise.allSettled(connections.map((c) => c.close()));
    await server?.stop();
  });
  return {
    get server(): NatsServer {
      if (!server) throw new Error('nats-server is not started yet (use it inside a test or hook)');
      return server;
    },
    get url(): string {
      return this.server.url;
    },
    /** A client connection that the harness closes after the file. */
    async connect(
      opts: { name?: string; user?: string; pass?: string; inboxPrefix?: string } = {},
    ) {
      const nc = await connectNats({
        servers: this.server.url,
        name: opts.name ?? 'test',
        ...opts,
      });
      connections.push(nc);
      return nc;
    },
  };
}

export const testEnv: Readonly<Record<string, string | undefined>> = process.env;
