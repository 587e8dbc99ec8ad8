import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { PrincipalRole, SchemaRegistry, SigningKey, TrustStore } from '@alert-hub/core';
import { loadSchemaRegistry } from './files.js';
import { createLogger, type Logger } from './logger.js';
import { loadTrustAndKey } from './signing-key.js';

/**
 * What the gateway and the router share at start, reload and stop, beside `runService` (their
 * main): the trust store and signing key they hold and reload, and the HTTP listener.
 */

/** Who a service is: the principal and role its signing key must be published under. */
export interface ServiceIdentity {
  readonly trustDir: string;
  readonly registry: SchemaRegistry;
  readonly signingKey: string;
  readonly principal: string;
  readonly role: PrincipalRole;
}

/** The trust store and signing key a service holds; `reload()` swaps both or neither. */
export interface HeldKeys {
  readonly trust: () => TrustStore;
  readonly key: () => SigningKey;
  /** Reloads both (SIGHUP); on failure logs it, keeps the old ones and returns false. */
  readonly reload: () => boolean;
}

/**
 * Loads the trust store and signing key at start (a failure is thrown: the service does not
 * start), warns when the key is not published for the service's principal, and reloads both on
 * demand, keeping the old ones when the new ones cannot be loaded.
 */
export function holdTrustAndKey(identity: ServiceIdentity, log: Logger): HeldKeys {
  const first = loadTrustAndKey(identity);
  if (first.warning) log.warn({ kid: first.key.kid }, first.warning);
  let trust = first.trust;
  let key = first.key;
  return {
    trust: () => trust,
    key: () => key,
    reload: () => {
      try {
        const next = loadTrustAndKey(identity);
        if (next.warning) log.warn({ kid: next.key.kid }, next.warning);
        trust = next.trust;
        key = next.key;
        log.info(
          { kid: key.kid, principals: trust.principals.length },
          'trust store and signing key reloaded',
        );
        return true;
      } catch (err) {
        log.error(
          { reason: (err as Error).message },
          'reload refused; the previous trust store and key stay in force',
        );
        return false;
      }
    },
  };
}

/** What a service opens first, before any connection: its logger, the schemas, its keys. */
export interface ServiceBasics {
  readonly log: Logger;
  readonly registry: SchemaRegistry;
  readonly keys: HeldKeys;
}

/**
 * The start both services share: the logger (unless one is given), the schema registry, and the
 * trust store and signing key for `principal` in `role`. Throws when the keys cannot be loaded.
 */
export function openServiceBasics(o: {
  readonly name: string;
  readonly logLevel: string;
  readonly log?: Logger | undefined;
  readonly schemasDir: string;
  readonly trustDir: string;
  readonly signingKey: string;
  readonly principal: string;
  readonly role: PrincipalRole;
}): ServiceBasics {
  const log = o.log ?? createLogger({ name: o.name, level: o.logLevel });
  const registry = loadSchemaRegistry(o.schemasDir);
  const keys = holdTrustAndKey(
    {
      trustDir: o.trustDir,
      registry,
      signingKey: o.signingKey,
      principal: o.principal,
      role: o.role,
    },
    log,
  );
  return { log, registry, keys };
}

/**
 * The base URL of a listening server, with an IPv6 address in brackets (`http://[::1]:8080`);
 * `https://` when it serves TLS.
 */
export function serverUrl(address: AddressInfo, secure = false): string {
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `${secure ? 'https' : 'http'}://${host}:${address.port}`;
}

/**
 * Binds `app` (with `listen: false` only readies it) and returns its base URL ('' when not bound):
 * `https://` when `tls` is set (the app was built with `httpsOptions(tls)`).
 */
export async function listenHttp(
  app: FastifyInstance,
  options: {
    readonly host: string;
    readonly port: number;
    readonly listen: boolean;
    readonly tls?: unknown;
  },
): Promise<string> {
  if (!options.listen) {
    await app.ready();
    return '';
  }
  await app.listen({ host: options.host, port: options.port });
  return serverUrl(app.server.address() as AddressInfo, options.tls !== undefined);
}

/**
 * What a service has started so far, stopped again if its start fails: a gateway or router that
 * does not start leaves nothing running (no connection retried for ever, no loop reading a
 * stream, no timer, no open database), which matters wherever it is started in-process and the
 * caller goes on (tests, an embedding program). Each part is registered as it starts; `run`
 * stops them latest first and rethrows the start's error, the one reported (a failure while
 * stopping is dropped: the service never ran).
 */
export class StartupScope {
  readonly #stops: (() => unknown)[] = [];

  /** Registers how to stop what has just started, should the start fail later on. */
  onFailure(stop: () => unknown): void {
    this.#stops.push(stop);
  }

  /** Runs `start` with a scope; if it throws, what it registered is stopped, latest first. */
  static async run<T>(start: (scope: StartupScope) => Promise<T>): Promise<T> {
    const scope = new StartupScope();
    try {
      return await start(scope);
    } catch (err) {
      for (const stop of scope.#stops.reverse()) {
        try {
          await stop();
        } catch {
          // the start's own error is the one reported
        }
      }
      throw err;
    }
  }
}
