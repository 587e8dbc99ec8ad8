import { setTimeout as delay } from 'node:timers/promises';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Gauge, type Registry } from 'prom-client';
import { inboxPrefix } from '@alert-hub/core';
import { NatsUnreachableError } from './errors.js';
import type { Logger } from './logger.js';
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

/** How {@link connectService} waits between attempts, and what may stop it. */
export interface ConnectServiceOptions {
  /** Waits `ms` between attempts (a test passes its own clock). */
  readonly sleep?: (ms: number) => Promise<void>;
  /**
   * Abandons the attempts: no new one starts, the wait between two ends at once, and a
   * connection that an attempt under way makes after all is closed. It then rejects with an
   * `AbortError`.
   */
  readonly signal?: AbortSignal;
  /** Told of each failed attempt, with its cause in words (readiness shows the last). */
  readonly onFailure?: (cause: string, attempt: number) => void;
}

/** Failed attempts are each logged for this long after the first. */
const LOG_EVERY_ATTEMPT_MS = 30_000;
/** After that, one line at most this often while the cause stays the same. */
const LOG_QUIET_MS = 60_000;

/**
 * Connects a service from its `nats` configuration section, with the principal's own reply
 * prefix unless the section names another. Failed attempts are logged (warn) with the servers,
 * the attempt and the cause: each of them for the first 30 s, then one a minute for each cause
 * (the same cause from another server of a cluster is the same cause; a new one is logged at
 * once) (a gateway trying its hub in the background for hours logs ~60 lines an hour, not
 * one per attempt), and always the last. After `connectAttempts` failures (0: never give up) it
 * throws `NatsUnreachableError`, which the service shell turns into exit code 1.
 */
export async function connectService(
  nats: NatsSection,
  name: string,
  principal: string,
  log?: Logger,
  options: ConnectServiceOptions = {},
): Promise<NatsConnection> {
  const { signal, onFailure } = options;
  const sleep = options.sleep ?? ((ms: number) => delay(ms, undefined, { signal }));
  const cfg: NatsConnectionConfig = {
    servers: nats.servers,
    name,
    inboxPrefix: nats.inboxPrefix ?? inboxPrefix(principal),
    ...(nats.user === undefined ? {} : { user: nats.user }),
    ...(nats.pass === undefined ? {} : { pass: nats.pass }),
    ...(nats.tls === undefined ? {} : { tls: nats.tls }),
  };
  const firstAt = Date.now();
  // when each cause (without the server's address) was last logged
  const logged = new Map<string, number>();
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    let nc: NatsConnection;
    try {
      nc = await connectNats(cfg);
    } catch (err) {
      const cause = describeCause(err);
      onFailure?.(cause, attempt);
      const last = nats.connectAttempts > 0 && attempt >= nats.connectAttempts;
      const now = Date.now();
      const kind = causeKind(cause);
      const quiet =
        !last &&
        now - firstAt > LOG_EVERY_ATTEMPT_MS &&
        now - (logged.get(kind) ?? -Infinity) < LOG_QUIET_MS;
      if (!quiet) {
        logged.set(kind, now);
        log?.warn(
          {
            connection: name,
            servers: nats.servers,
            attempt,
            ...(nats.connectAttempts > 0 ? { of: nats.connectAttempts } : {}),
            cause,
            ...(last ? {} : { retryInMs: nats.connectRetryMs }),
          },
          last ? 'NATS unreachable; giving up' : 'NATS unreachable; retrying',
        );
      }
      if (last) throw new NatsUnreachableError(nats.servers, attempt, cause, { cause: err });
      await sleep(nats.connectRetryMs);
      continue;
    }
    if (signal?.aborted) {
      // Made after it was abandoned: nobody will use or close it.
      await nc.close();
      signal.throwIfAborted();
    }
    log?.info({ servers: nats.servers, server: nc.getServer(), attempt }, 'NATS connected');
    return nc;
  }
}

/** The cause of a failed connection in words, with the system error code when there is one. */
/**
 * A cause without the server's address: nats.js tries a cluster's servers in turn, and the
 * same refusal from each is one cause for the log's throttling.
 */
function causeKind(cause: string): string {
  return cause.replace(/\[[0-9A-Fa-f:.]+\]:\d{1,5}|[\w.-]+:\d{1,5}\b/g, '<server>');
}

function describeCause(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: unknown };
  const inner = e.cause as { message?: string; code?: string } | undefined;
  const parts = [e.message ?? String(err)];
  if (inner?.message && !parts[0]!.includes(inner.message)) parts.push(inner.message);
  return parts.join(': ');
}

/** Where a service's NATS connection stands, as readiness reports it. */
export type NatsState = 'connected' | 'reconnecting' | 'closed';

/** A live view of a connection's state, kept from its status events. */
export interface ConnectionWatch {
  readonly state: NatsState;
}

/**
 * Follows a connection's status: logs each disconnect (warn) and reconnect (info) with the
 * server, and keeps `state` current. `isClosed()` alone stays false while nats.js reconnects,
 * so readiness must use this instead.
 */
export function watchConnection(nc: NatsConnection, log: Logger): ConnectionWatch {
  const watch = { state: (nc.isClosed() ? 'closed' : 'connected') as NatsState };
  void (async () => {
    for await (const s of nc.status()) {
      switch (s.type) {
        case 'disconnect':
          if (watch.state !== 'closed') watch.state = 'reconnecting';
          log.warn({ server: s.server }, 'NATS disconnected; reconnecting');
          break;
        case 'reconnect':
          if (watch.state !== 'closed') watch.state = 'connected';
          log.info({ server: s.server }, 'NATS reconnected');
          break;
        case 'close':
          watch.state = 'closed';
          break;
        case 'error':
          log.warn({ cause: s.error.message }, 'NATS error');
          break;
        default:
          break;
      }
    }
  })();
  void nc.closed().then((err) => {
    watch.state = 'closed';
    if (err) log.error({ cause: err.message }, 'NATS connection closed');
  });
  return watch;
}

/**
 * Exports `<prefix>nats_connected` (1 connected, 0 reconnecting or closed) on `registry`: what
 * the "NATS down" alert rule watches.
 */
export function registerNatsGauge(
  registry: Registry,
  prefix: string,
  watch: ConnectionWatch,
): void {
  new Gauge({
    name: `${prefix}nats_connected`,
    help: '1 while the NATS connection is up, 0 while it is reconnecting or closed',
    registers: [registry],
    collect() {
      this.set(watch.state === 'connected' ? 1 : 0);
    },
  });
}

/**
 * What a JetStream consumer has not handled yet, from its info: the messages it has still to
 * deliver (`num_pending`) plus those delivered and not acknowledged (`num_ack_pending`). Zero means
 * nothing pending and nothing unacknowledged.
 */
export function unhandled(info: {
  readonly num_pending: number;
  readonly num_ack_pending: number;
}): number {
  return info.num_pending + info.num_ack_pending;
}

/**
 * Exports `name`: the messages a JetStream consumer has yet to deliver or to see acknowledged,
 * read from the server at each scrape (the "backlog growing" and "undelivered alerts" rules).
 * When the server does not answer, the gauge is absent from that scrape rather than wrong.
 */
export function registerConsumerBacklogGauge(
  registry: Registry,
  name: string,
  help: string,
  info: () => Promise<{ num_pending: number; num_ack_pending: number }>,
): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    async collect() {
      try {
        this.set(unhandled(await info()));
      } catch {
        this.reset();
      }
    },
  });
}

/**
 * A gauge `name{stream}` of how full each stream is, its bytes over its `max_bytes` (0 to 1), read
 * from the stream's info at each scrape; `streams` may be a function, asked at each scrape (the
 * agencies' inbound streams follow the trust store). A stream missing has no sample. A full
 * agency inbound stream refuses that agency's new alerts; a full feed stream has copies held.
 */
export function registerStreamFillGauge(
  registry: Registry,
  name: string,
  streams: readonly string[] | (() => readonly string[]),
  info: (stream: string) => Promise<{ config: { max_bytes: number }; state: { bytes: number } }>,
): void {
  new Gauge({
    name,
    help: "How full each of the hub's streams is: its bytes over its max_bytes",
    labelNames: ['stream'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all(
        (typeof streams === 'function' ? streams() : streams).map(async (stream) => {
          try {
            const s = await info(stream);
            if (s.config.max_bytes > 0) this.set({ stream }, s.state.bytes / s.config.max_bytes);
          } catch {
            // unknown now (NATS down, stream missing): no sample rather than a stale one
          }
        }),
      );
    },
  });
}
