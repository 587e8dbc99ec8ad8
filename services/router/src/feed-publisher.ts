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
import type { Logger } from '@alert-hub/runtime';

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
 * After the reply subscription dies (the server refused it: a permissions change on reload) it
 * is made again after this long, then twice as long each time it dies again, up to
 * {@link RESUBSCRIBE_MAX_MS}.
 */
export const RESUBSCRIBE_MS = 250;
/** The longest wait between two attempts to make the reply subscription again. */
export const RESUBSCRIBE_MAX_MS = 5_000;

/** The reply subscription is down (being made again): nothing published could be acknowledged. */
export class FeedRepliesDownError extends JetStreamError {
  constructor(options?: ErrorOptions) {
    super('the feed publisher is re-subscribing to its replies', options);
    this.name = 'FeedRepliesDownError';
  }
}

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
 *
 * The reply subscription is made again whenever it dies while the connection is open (nats.js
 * closes a subscription the server refuses, e.g. after a reload that took the permission away,
 * and the router would otherwise time out every copy until restarted). While it is down, a
 * publish fails at once with {@link FeedRepliesDownError} (a `JetStreamError`, so retried like
 * any transient failure) instead of waiting out its timeout; publishes in flight when it died
 * fail with the error that killed it. On a closed connection a publish fails with nats.js's
 * `ClosedConnectionError`.
 */
export class FeedPublisher {
  readonly #nc: NatsConnection;
  readonly #prefix: string;
  readonly #log: Pick<Logger, 'error'> | undefined;
  #sub: Subscription | undefined;
  readonly #pending = new Map<string, Pending>();
  readonly #timeoutMs: number;
  #next = 0;
  #sweeper: NodeJS.Timeout | undefined;
  #resubscribe: NodeJS.Timeout | undefined;
  #backoffMs = RESUBSCRIBE_MS;
  #closed = false;
  /** How many times the reply subscription died and was made again. */
  #resubscribed = 0;

  /** `inboxPrefix` is the connection's own reply prefix (the only one its user may subscribe to). */
  constructor(
    nc: NatsConnection,
    options: {
      inboxPrefix?: string;
      timeoutMs: number;
      log?: Pick<Logger, 'error'>;
    },
  ) {
    this.#nc = nc;
    this.#timeoutMs = options.timeoutMs;
    this.#log = options.log;
    this.#prefix = createInbox(options.inboxPrefix);
    this.#subscribe();
  }

  /** Whether the reply subscription is up (false while it is being made again, or once closed). */
  get listening(): boolean {
    return this.#sub !== undefined && !this.#sub.isClosed();
  }

  /** How many times the reply subscription was made again after it died. */
  get resubscribed(): number {
    return this.#resubscribed;
  }

  #subscribe(): void {
    const sub = this.#nc.subscribe(`${this.#prefix}.*`, {
      callback: (err, m) => (err ? this.#died(sub, err) : this.#answer(m)),
    });
    this.#sub = sub;
    // nats.js reports a refused subscription through the callback only (its `closed` promise
    // then never settles); a connection that closes settles `closed`.
    void sub.closed.then(
      (err) => this.#died(sub, err),
      (err: unknown) => this.#died(sub, err as Error),
    );
  }

  #died(sub: Subscription, err: Error | void): void {
    if (this.#closed || this.#sub !== sub) return;
    this.#sub = undefined;
    this.#failAll(err instanceof Error ? err : new FeedRepliesDownError());
    if (this.#nc.isClosed()) {
      this.#log?.error('feed publisher: the connection is closed; copies cannot be published');
      return;
    }
    const wait = this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, RESUBSCRIBE_MAX_MS);
    this.#log?.error(
      { err: err instanceof Error ? err.message : undefined, retryInMs: wait },
      'feed publisher: its reply subscription died; subscribing again',
    );
    this.#resubscribe = setTimeout(() => {
      this.#resubscribe = undefined;
      if (this.#closed || this.#nc.isClosed()) return;
      try {
        this.#subscribe();
        this.#resubscribed++;
      } catch (e) {
        // A draining connection refuses new subscriptions: it is going away with the router.
        this.#log?.error({ err: (e as Error).message }, 'feed publisher: cannot subscribe again');
      }
    }, wait);
  }

  /** Publishes `data` on `subject` with message id `msgId`; resolves with JetStream's answer. */
  publish(subject: string, data: Uint8Array, msgId: string): Promise<CopyAck> {
    if (this.#closed) return Promise.reject(new JetStreamError('the feed publisher is closed'));
    if (!this.listening && !this.#nc.isClosed()) return Promise.reject(new FeedRepliesDownError());
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

  #answer(m: Msg): void {
    // An answer came: the subscription was accepted, so the next death starts the backoff afresh.
    this.#backoffMs = RESUBSCRIBE_MS;
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
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    clearTimeout(this.#resubscribe);
    this.#resubscribe = undefined;
    this.#sub?.unsubscribe();
    this.#failAll(new JetStreamError('the feed publisher is closed'));
  }
}
