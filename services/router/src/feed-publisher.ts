import { JetStreamApiError, JetStreamError, type ApiError } from '@nats-io/jetstream';
import {
  NoRespondersError,
  TimeoutError,
  createInbox,
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';

/** What JetStream answered for one stored copy. */
export interface CopyAck {
  readonly stream: string;
  readonly seq: number;
  /** The stream already held a message with this `Nats-Msg-Id` (a copy forwarded before). */
  readonly duplicate: boolean;
}

interface Pending {
  readonly subject: string;
  readonly deadline: number;
  readonly resolve: (ack: CopyAck) => void;
  readonly reject: (err: Error) => void;
}

/** How often unanswered publishes are checked against their deadline. */
const SWEEP_MS = 100;

/**
 * Publishes copies to JetStream and collects their acknowledgements on one reply subscription,
 * rather than through a nats.js request per copy (a timer, a backoff, a mux entry and a promise
 * chain each). It keeps what `js.publish` guarantees, and fails the same way:
 *
 * - a copy counts as stored only on a PubAck naming a stream and a sequence; an error answer is
 *   thrown as nats.js's `JetStreamApiError` (a full stream, a wrong subject), no stream for the
 *   subject as `NoRespondersError`, no answer within the timeout as `TimeoutError`;
 * - each copy carries its `Nats-Msg-Id`, so JetStream de-duplicates a copy published again
 *   (the answer then says `duplicate`).
 */
export class FeedPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #sub: Subscription;
  readonly #pending = new Map<string, Pending>();
  readonly #timeoutMs: number;
  #next = 0;
  #sweeper: NodeJS.Timeout | undefined;

  /** `inboxPrefix` is the connection's own reply prefix (the only one its user may subscribe to). */
  constructor(nc: NatsConnection, options: { inboxPrefix?: string; timeoutMs: number }) {
    this.#nc = nc;
    this.#timeoutMs = options.timeoutMs;
    this.#prefix = createInbox(options.inboxPrefix);
    this.#sub = nc.subscribe(`${this.#prefix}.*`, { callback: (err, m) => this.#answer(err, m) });
  }

  /** Publishes `data` on `subject` with message id `msgId`; resolves with JetStream's answer. */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<CopyAck> {
    const token = (this.#next++).toString(36);
    const h = natsHeaders();
    h.set('Nats-Msg-Id', msgId);
    const answered = new Promise<CopyAck>((resolve, reject) => {
      this.#pending.set(token, {
        subject,
        deadline: Date.now() + this.#timeoutMs,
        resolve,
        reject,
      });
      try {
        this.#nc.publish(subject, data, { reply: `${this.#prefix}.${token}`, headers: h });
      } catch (err) {
        // A closed connection, a payload over the server's limit: the promise rejects with it.
        this.#pending.delete(token);
        throw err;
      }
    });
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_MS);
    return answered;
  }

  #answer(err: Error | null, m: Msg): void {
    if (err) return this.#failAll(err);
    const token = m.subject.slice(this.#prefix.length + 1);
    const p = this.#pending.get(token);
    if (!p) return; // answered after its deadline
    this.#pending.delete(token);
    if (m.headers?.hasError) {
      p.reject(
        m.headers.code === 503
          ? new NoRespondersError(p.subject)
          : new JetStreamError(
              `publish to ${p.subject}: ${m.headers.code} ${m.headers.description}`,
            ),
      );
      return;
    }
    let body: { stream?: unknown; seq?: unknown; duplicate?: unknown; error?: ApiError };
    try {
      body = m.json();
    } catch {
      p.reject(new JetStreamError('invalid ack response'));
      return;
    }
    if (body.error) p.reject(new JetStreamApiError(body.error));
    else if (typeof body.stream !== 'string' || body.stream === '' || typeof body.seq !== 'number')
      p.reject(new JetStreamError('invalid ack response'));
    else p.resolve({ stream: body.stream, seq: body.seq, duplicate: body.duplicate === true });
  }

  #sweep(): void {
    const now = Date.now();
    for (const [token, p] of this.#pending) {
      if (p.deadline > now) continue;
      this.#pending.delete(token);
      p.reject(new TimeoutError());
    }
    if (this.#pending.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }

  #failAll(err: Error): void {
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
  }

  /** Stops listening; publishes still unanswered fail. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#sub.unsubscribe();
    this.#failAll(new JetStreamError('the feed publisher is closed'));
  }
}
