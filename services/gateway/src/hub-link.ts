import type { NatsConnection } from '@nats-io/transport-node';
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { AGENCY_JS_API_PREFIX } from '@alert-hub/core';
import {
  connectService,
  watchConnection,
  type ConnectionWatch,
  type Logger,
  type NatsSection,
  type NatsState,
} from '@alert-hub/runtime';
import { NatsUnavailableError } from './errors.js';

/** The gateway's connection to the hub, once made, with its JetStream handles. */
export interface Hub {
  readonly nc: NatsConnection;
  readonly watch: ConnectionWatch;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
}

/**
 * The gateway's connection to the hub (`nats.servers`): its feed, witness, proofs and readiness.
 *
 * Without a leaf node the gateway connects first and fails at start when the hub stays out of
 * reach (`nats.connectAttempts`, then `ERR_NATS_UNREACHABLE`): `open()`. Behind a leaf node its
 * intake needs only the leaf, so the hub is reached in the background, attempt after attempt
 * until it answers or the gateway closes: `connectInBackground()`. Until then `state` is
 * `reconnecting` (the `ahub_gateway_nats_connected` gauge reads 0) and `require()` throws
 * `NatsUnavailableError` (503). What needs the hub starts in `onConnected`.
 */
export class HubLink implements ConnectionWatch {
  #hub: Hub | undefined;
  #lastFailure: string | undefined;
  #abandoned = false;
  readonly #abort = new AbortController();
  readonly #waiting: ((hub: Hub) => void)[] = [];
  #connecting: Promise<unknown> = Promise.resolve();

  readonly #agency: string;
  readonly #log: Logger;

  private constructor(agency: string, log: Logger) {
    this.#agency = agency;
    this.#log = log;
  }

  /** Connects now; rejects (`ERR_NATS_UNREACHABLE`) as `connectService` does. */
  static async open(nats: NatsSection, agency: string, log: Logger): Promise<HubLink> {
    const link = new HubLink(agency, log);
    await link.#connect(nats);
    return link;
  }

  /**
   * Connects in the background, with no limit on the attempts (logged as at start: each for the
   * first 30 s, then once a minute for each cause; the last is shown by `describe()`).
   */
  static connectInBackground(nats: NatsSection, agency: string, log: Logger): HubLink {
    const link = new HubLink(agency, log);
    link.#connecting = link.#connect({ ...nats, connectAttempts: 0 }).then(
      (hub) => {
        if (link.#abandoned) return;
        log.info({ servers: nats.servers }, 'hub connected: feed, witness and proofs start');
        for (const start of link.#waiting.splice(0)) start(hub);
      },
      (err: unknown) => {
        // Abandoned by close(); with no limit on the attempts, nothing else ends them.
        if (!link.#abandoned) log.error({ err }, 'the connection to the hub failed');
      },
    );
    return link;
  }

  async #connect(nats: NatsSection): Promise<Hub> {
    const nc = await connectService(
      nats,
      `alert-hub gateway ${this.#agency}`,
      this.#agency,
      this.#log,
      {
        signal: this.#abort.signal,
        onFailure: (cause, attempt) => (this.#lastFailure = `attempt ${attempt}: ${cause}`),
      },
    );
    const apiPrefix = nats.jsApiPrefix ?? AGENCY_JS_API_PREFIX;
    this.#hub = {
      nc,
      watch: watchConnection(nc, this.#log),
      js: jetstream(nc, { timeout: nats.publishTimeoutMs, apiPrefix }),
      // No account-info call: an agency's NATS user may not read account information.
      jsm: await jetstreamManager(nc, { checkAPI: false, timeout: 2000, apiPrefix }),
    };
    return this.#hub;
  }

  /** Runs `start` with the connection: now if it is made, else once it is (never after close). */
  onConnected(start: (hub: Hub) => void): void {
    if (this.#abandoned) return;
    if (this.#hub) start(this.#hub);
    else this.#waiting.push(start);
  }

  /** The connection's state; `reconnecting` until it is first made. */
  get state(): NatsState {
    if (this.#hub) return this.#hub.watch.state;
    return this.#abandoned ? 'closed' : 'reconnecting';
  }

  /** The connection's state in words, for readiness. */
  describe(): string {
    if (this.#hub) return this.#hub.watch.state;
    if (this.#abandoned) return 'closed';
    return `not connected yet, connecting in the background${this.#lastFailure ? ` (${this.#lastFailure})` : ''}`;
  }

  /** The connection; throws `NatsUnavailableError` (503) until it is made. */
  require(what: string): Hub {
    if (this.#hub) return this.#hub;
    throw new NatsUnavailableError(
      `${what} needs the hub, and this gateway is not connected to it yet (behind its leaf node it takes alerts without the hub and keeps connecting); retry later`,
    );
  }

  /** Stops connecting: no attempt starts after this, and `onConnected` runs nothing more. */
  abandon(): void {
    this.#abandoned = true;
    this.#waiting.length = 0;
    this.#abort.abort();
  }

  /** Abandons an attempt under way (waiting for it to end) and drains the connection if made. */
  async close(): Promise<void> {
    this.abandon();
    await this.#connecting;
    const nc = this.#hub?.nc;
    await nc?.drain().catch(() => nc.close());
  }
}
