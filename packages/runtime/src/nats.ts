import { connect, type NatsConnection } from '@nats-io/transport-node';
import { inboxPrefix } from '@alert-hub/core';
import type { NatsSection } from './service-config.js';

/** How a service reaches NATS. One of user/password or a TLS client certificate authenticates it. */
export interface NatsConnectionConfig {
  readonly servers: string | readonly string[];
  /** Shown in the server's connection list (`alert-hub gateway SG-NPARKS`). */
  readonly name: string;
  readonly user?: string;
  readonly pass?: string;
  readonly tls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
  /** Private reply prefix; agencies must use their own (`_INBOX.<agency>`). */
  readonly inboxPrefix?: string;
}

/**
 * Connects with the hub's defaults: reconnect forever, and fail fast on the first connect
 * unless `waitOnFirstConnect` (services at start-up keep retrying until NATS is there).
 */
export async function connectNats(
  cfg: NatsConnectionConfig,
  options: { waitOnFirstConnect?: boolean; timeoutMs?: number } = {},
): Promise<NatsConnection> {
  return connect({
    servers: typeof cfg.servers === 'string' ? cfg.servers : [...cfg.servers],
    name: cfg.name,
    ...(cfg.user === undefined ? {} : { user: cfg.user }),
    ...(cfg.pass === undefined ? {} : { pass: cfg.pass }),
    ...(cfg.inboxPrefix === undefined ? {} : { inboxPrefix: cfg.inboxPrefix }),
    ...(cfg.tls === undefined
      ? {}
      : {
          tls: {
            caFile: cfg.tls.caFile,
            ...(cfg.tls.certFile === undefined ? {} : { certFile: cfg.tls.certFile }),
            ...(cfg.tls.keyFile === undefined ? {} : { keyFile: cfg.tls.keyFile }),
          },
        }),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    pingInterval: 10_000,
    timeout: options.timeoutMs ?? 5_000,
    waitOnFirstConnect: options.waitOnFirstConnect ?? false,
    // nats.js otherwise builds three Error objects (with stack traces) per request, for context
    // in case it fails: a measurable share of the router's CPU per forward. Failures still carry
    // their message; only the originating stack is lost.
    noAsyncTraces: true,
  });
}

/**
 * Connects a service from its `nats` configuration section, with the principal's own reply
 * prefix unless the section names another; keeps retrying until NATS is there.
 */
export function connectService(
  nats: NatsSection,
  name: string,
  principal: string,
): Promise<NatsConnection> {
  return connectNats(
    {
      servers: nats.servers,
      name,
      inboxPrefix: nats.inboxPrefix ?? inboxPrefix(principal),
      ...(nats.user === undefined ? {} : { user: nats.user }),
      ...(nats.pass === undefined ? {} : { pass: nats.pass }),
      ...(nats.tls === undefined ? {} : { tls: nats.tls }),
    },
    { waitOnFirstConnect: true },
  );
}
