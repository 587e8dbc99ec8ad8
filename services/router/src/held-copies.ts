import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Streams, feedConsumerName } from '@alert-hub/core';
import {
  createDrainer,
  isStreamFull,
  type BatchWriter,
  type Drainer,
  type Logger,
} from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import type { HeldRow, Outcome, RouterStore } from './store.js';

export interface HeldCopiesDeps {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly store: RouterStore;
  readonly writer: BatchWriter<Outcome>;
  readonly metrics: RouterMetrics;
  readonly log: Logger;
  readonly publishTimeoutMs: number;
  /** Copies one recipient may have waiting in the feed stream (`streams.recipientMaxCopies`). */
  readonly recipientMaxCopies: number;
  /** How often held copies are tried again (`streams.heldRetryMs`). */
  readonly retryMs: number;
  /** How long a recipient's count of waiting copies is trusted before it is asked again. */
  readonly refreshMs?: number;
}

/** What the router knows of one recipient's feed. */
interface FeedCount {
  /** Copies in the feed its gateway has not taken, as last asked, plus those published since. */
  count: number;
  /** When it was last asked (ms). */
  at: number;
  /** Copies published so far (to add those published while a question was out). */
  published: number;
  /** Publishes sent and not yet acknowledged. */
  inFlight: number;
}

/** Copies published at once when a held recipient has room again. */
const RELEASE_BATCH = 64;

/**
 * A full feed is one recipient's problem, never everybody's. Before a copy is published, the
 * router asks {@link HeldCopies.send}: a recipient whose feed already holds `recipientMaxCopies` copies its
 * gateway has not taken (the feed consumer's pending plus unacknowledged count, asked at most
 * once a second per recipient), or that has copies held already (so that copies keep their
 * order), gets its copy held: written to the router's database with the routing decision, and
 * the inbound alert is acknowledged as for any other. A copy the stream itself refuses for want
 * of room is held the same way. Held copies are published again, oldest first and with the
 * same message id and bytes, as soon as the recipient has room; each then becomes an ordinary
 * forward in the audit log.
 */
export class HeldCopies {
  readonly #d: HeldCopiesDeps;
  readonly #drainer: Drainer;
  /** Per recipient: copies waiting in its feed, as last asked plus published since; publishes under way. */
  readonly #feeds = new Map<string, FeedCount>();
  readonly #asking = new Map<string, Promise<boolean>>();
  /** Held copies per recipient (from the database, plus those held since it was read). */
  #held = new Map<string, { count: number; since: string }>();
  #timer: NodeJS.Timeout | undefined;

  constructor(deps: HeldCopiesDeps) {
    this.#d = deps;
    this.#drainer = createDrainer(() => this.#drain(), {
      log: deps.log,
      what: 'forwarding held copies',
      retryMs: deps.retryMs,
    });
    this.#held = deps.store.heldCounts();
    deps.metrics.heldSource.held = () => this.#held;
  }

  /** Retries held copies every `retryMs` while there are any. */
  start(): void {
    this.#timer = setInterval(() => {
      if (this.#held.size > 0) this.#drainer.kick();
    }, this.#d.retryMs);
    this.#timer.unref();
    if (this.#held.size > 0) this.#drainer.kick();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    await this.#drainer.stop();
  }

  /** Held copies per recipient now. */
  get held(): ReadonlyMap<string, { readonly count: number; readonly since: string }> {
    return this.#held;
  }

  /**
   * Publishes a copy for `recipient` unless it must be held: when the recipient has copies held
   * already (they go first), when its feed holds its quota, or when the stream refuses the copy
   * for want of room. Any other failure is thrown (the alert is retried).
   */
  async send<T>(
    recipient: string,
    publish: () => Promise<T>,
  ): Promise<{ readonly ack: T } | { readonly held: string }> {
    let reason: string | undefined;
    if ((this.#held.get(recipient)?.count ?? 0) > 0)
      reason = `earlier copies for ${recipient} are held: this one waits behind them`;
    else if (await this.#ask(recipient)) {
      const f = this.#feed(recipient);
      const quota = this.#d.recipientMaxCopies;
      // At the quota by the count kept since the last question: ask again before holding (the
      // gateway may have taken them since).
      if (f.count + f.inFlight >= quota) await this.#ask(recipient, true);
      // Checked and counted in one synchronous step: concurrent copies never overshoot.
      if (f.count + f.inFlight >= quota)
        reason = `${recipient}'s feed holds ${f.count + f.inFlight} copies its gateway has not taken (streams.recipientMaxCopies ${quota})`;
    }
    if (reason === undefined) {
      try {
        return { ack: await this.#publish(recipient, publish) };
      } catch (err) {
        if (!isStreamFull(err)) throw err;
        reason = `the feed stream had no room: ${(err as Error).message}`;
      }
    }
    this.hold(recipient);
    return { held: reason };
  }

  /** Counts a copy for `recipient` as held (the routing decision holding it is being committed). */
  hold(recipient: string, at = new Date().toISOString()): void {
    const h = this.#held.get(recipient);
    this.#held.set(recipient, { count: (h?.count ?? 0) + 1, since: h?.since ?? at });
    this.#d.metrics.held.inc();
  }

  #feed(recipient: string): FeedCount {
    let f = this.#feeds.get(recipient);
    if (!f) this.#feeds.set(recipient, (f = { count: 0, at: 0, published: 0, inFlight: 0 }));
    return f;
  }

  async #publish<T>(recipient: string, publish: () => Promise<T>): Promise<T> {
    const f = this.#feed(recipient);
    f.inFlight++;
    try {
      const ack = await publish();
      f.count++;
      f.published++;
      return ack;
    } finally {
      f.inFlight--;
    }
  }

  /**
   * Brings `recipient`'s count of waiting copies up to date if it is older than `refreshMs`
   * (or `fresh`); false if its feed consumer cannot be read (its quota is then not checked).
   * Copies published while the question was out are added: counted twice at worst, never missed.
   */
  async #ask(recipient: string, fresh = false): Promise<boolean> {
    const f = this.#feed(recipient);
    if (!fresh && Date.now() - f.at < (this.#d.refreshMs ?? 1000)) return true;
    let asking = this.#asking.get(recipient);
    if (!asking) {
      const before = f.published;
      asking = this.#d.jsm.consumers
        .info(Streams.Feeds, feedConsumerName(recipient))
        .then(
          (c) => {
            f.count = c.num_pending + c.num_ack_pending + (f.published - before);
            f.at = Date.now();
            return true;
          },
          (err: unknown) => {
            this.#d.log.warn(
              { err: (err as Error).message, recipient },
              'feed consumer not readable; its quota is not checked',
            );
            return false;
          },
        )
        .finally(() => this.#asking.delete(recipient));
      this.#asking.set(recipient, asking);
    }
    return asking;
  }

  /** Publishes held copies of every recipient with room, oldest first. */
  async #drain(): Promise<void> {
    const { store } = this.#d;
    for (const recipient of store.heldCounts().keys()) await this.#release(recipient);
    this.#held = store.heldCounts();
  }

  async #release(recipient: string): Promise<void> {
    const { store, js, writer, metrics, log } = this.#d;
    let released = 0;
    for (;;) {
      const f = this.#feed(recipient);
      const readable = await this.#ask(recipient, true);
      const room = Math.min(
        RELEASE_BATCH,
        readable ? this.#d.recipientMaxCopies - f.count - f.inFlight : RELEASE_BATCH,
      );
      if (room <= 0) break;
      const rows = store.heldFor(recipient, room);
      if (rows.length === 0) break;
      // Sent in order on one connection, so the stream stores them in order.
      const results = await Promise.allSettled(
        rows.map((r: HeldRow) =>
          this.#publish(recipient, () =>
            js.publish(r.subject, r.envelope, {
              msgID: r.msgId,
              timeout: this.#d.publishTimeoutMs,
            }),
          ),
        ),
      );
      // Every copy the stream stored is recorded, whatever happened to the others.
      let full = false;
      let failure: Error | undefined;
      const records: Promise<void>[] = [];
      const byOrigin = new Map<string, number>();
      for (const [i, result] of results.entries()) {
        if (result.status === 'rejected') {
          if (isStreamFull(result.reason)) full = true;
          else
            failure ??=
              result.reason instanceof Error ? result.reason : new Error(String(result.reason));
          continue;
        }
        const { origin } = rows[i]!;
        byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + 1);
        records.push(
          writer.enqueue({
            kind: 'released',
            id: rows[i]!.id,
            feedSeq: result.value.seq,
            forwardedAt: new Date().toISOString(),
          }),
        );
      }
      await Promise.all(records);
      released += records.length;
      for (const [origin, n] of byOrigin) metrics.forwards.inc({ origin }, n);
      if (failure !== undefined) throw failure;
      if (full || rows.length < room) break;
    }
    if (released > 0) {
      const left = store.heldCounts().get(recipient)?.count ?? 0;
      log.info({ recipient, released, left }, 'held copies forwarded');
    }
  }
}
