import type { NatsConnection } from '@nats-io/transport-node';
import { JetStreamApiError, type JetStreamClient, type PubAck } from '@nats-io/jetstream';
import type { ConnectionWatch } from '@alert-hub/runtime';
import { InboundStreamFullError, NatsUnavailableError } from './errors.js';

/**
 * JetStream's error for a store that failed (nats-server 2.9 `JSStreamStoreFailedF`); with
 * "maximum bytes exceeded" or "maximum messages exceeded" the stream is at its limit.
 */
const STREAM_STORE_FAILED = 10077;
const STREAM_AT_LIMIT = /maximum (bytes|messages) exceeded/i;

/**
 * The gateway's side of NATS for publishing. nats.js buffers publishes while it reconnects and
 * sends them once back; a 503 to the client followed by the alert arriving later would be a
 * half-sent alert. So while the connection is down, `publish` refuses at once and sends nothing.
 */
export class NatsLink {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly #timeoutMs: number;
  readonly #watch: ConnectionWatch;

  constructor(
    nc: NatsConnection,
    js: JetStreamClient,
    watch: ConnectionWatch,
    options: { publishTimeoutMs: number },
  ) {
    this.nc = nc;
    this.js = js;
    this.#watch = watch;
    this.#timeoutMs = options.publishTimeoutMs;
  }

  /** True while the connection is up (not disconnected, reconnecting or closed). */
  get connected(): boolean {
    return this.#watch.state === 'connected' && !this.nc.isClosed();
  }

  /**
   * Publishes to JetStream and resolves with the server's acknowledgement. Throws
   * `NatsUnavailableError` if NATS is down, no stream answers, or no ack comes in time;
   * `InboundStreamFullError` when the stream is at its limit (nothing stored).
   * After a timeout the alert may or may not be stored: the client retries with the same id and
   * JetStream's de-duplication (and the router's) makes the retry safe.
   */
  async publish(subject: string, data: Uint8Array, msgID: string): Promise<PubAck> {
    if (!this.connected) throw new NatsUnavailableError('NATS is not connected; nothing was sent');
    try {
      return await this.js.publish(subject, data, { msgID, timeout: this.#timeoutMs });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (
        err instanceof JetStreamApiError &&
        err.code === STREAM_STORE_FAILED &&
        STREAM_AT_LIMIT.test(message)
      )
        throw new InboundStreamFullError(
          `the stream that stores this agency's alerts is full (${message}); nothing was stored. It takes new alerts again when its oldest age out or the hub's operator raises this agency's quota (streams.inboundMaxBytesFor); other agencies are not affected`,
          { cause: err },
        );
      throw new NatsUnavailableError(`JetStream did not accept the alert: ${message}`, {
        cause: err,
      });
    }
  }
}
