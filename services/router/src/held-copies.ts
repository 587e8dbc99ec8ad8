import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Streams, feedConsumerName } from '@alert-hub/core';
import {
  createDrainer,
  isStreamFull,
  unhandled,
  type BatchWriter,
  type Drainer,
  type Logger,
} from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import type { OriginBudget } from './origin-budget.js';
import type { HeldFrom, HeldRow, Outcome, RouterStore } from './store.js';

/** What {@link OriginBudget.charge} returns: handed back to refund a message not stored. */
type OriginCharged = ReturnType<OriginBudget['charge']>;

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
  /**
   * Bytes one recipient may have waiting in the feed stream, copies and notices together (see
   * `recipientQuotaBytes` in the runtime): asked on every check, since it follows the number of
   * agencies, which a reload may change.
   */
  readonly recipientMaxBytes: () => number;
  /** How often held copies are tried again (`streams.heldRetryMs`). */
  readonly retryMs: number;
  /** How long a recipient's count of waiting copies is trusted before it is asked again. */
  readonly refreshMs?: number;
  /**
   * The per-agency byte budget over the feed stream's max age (limits retention): a copy is
   * charged to its origin, a notice to its addressee; beyond the budget the copy is held and the
   * notice waits, as beyond a recipient's quota.
   */
  readonly budget?: OriginBudget;
}

/**
 * Messages this router stored on one feed, in blocks of consecutive publishes: a block leaves once
 * the recipient's ack floor passes its highest sequence (so a block is counted a little longer
 * than its first messages stay, never shorter).
 */
interface KnownBlock {
  lastSeq: number;
  bytes: number;
  n: number;
  /** The largest of its messages. */
  max: number;
}

/**
 * Blocks kept per recipient at most: beyond, neighbours are merged (a merged block leaves later,
 * when the floor passes the later of the two, and counts at the larger of their largest messages).
 * The floor may stay put for ever (a message the gateway never acknowledges), so without this the
 * list would grow with every message stored.
 */
const MAX_BLOCKS = 512;

/**
 * The most bytes any `count` of the messages in `blocks` may weigh: the largest messages first
 * (in a block, no message weighs more than its largest, and all together weigh its bytes). An
 * agency decides which of its messages it acknowledges; counting whichever it leaves waiting at
 * their largest possible weight keeps it within its quota whatever it chooses.
 */
function heaviest(blocks: readonly KnownBlock[], count: number): number {
  let left = count;
  let total = 0;
  for (const b of [...blocks].sort((x, y) => y.max - x.max)) {
    if (left <= 0) break;
    const take = Math.min(b.n, left, Math.ceil(b.bytes / Math.max(1, b.max)));
    total += Math.min(b.bytes, take * b.max);
    left -= take;
  }
  return total;
}

/** Neighbouring blocks merged two by two (see {@link MAX_BLOCKS}). */
function mergeNeighbours(blocks: readonly KnownBlock[]): KnownBlock[] {
  const out: KnownBlock[] = [];
  for (let i = 0; i < blocks.length; i += 2) {
    const a = blocks[i]!;
    const b = blocks[i + 1];
    out.push(
      b
        ? {
            lastSeq: Math.max(a.lastSeq, b.lastSeq),
            bytes: a.bytes + b.bytes,
            n: a.n + b.n,
            max: Math.max(a.max, b.max),
          }
        : a,
    );
  }
  return out;
}

/** Publishes grouped in one {@link KnownBlock} at most (the memory per waiting message is 1/64th of a block). */
const BLOCK_MESSAGES = 64;

/** What the router knows of one recipient's feed. */
interface FeedCount {
  /** Copies in the feed its gateway has not taken, as last asked, plus those published since. */
  count: number;
  /** When it was last asked (ms). */
  at: number;
  /** Copies published so far (to add those published while a question was out). */
  published: number;
  /** Messages (copies and notices) stored so far. */
  stored: number;
  /** Publishes sent and not yet acknowledged. */
  inFlight: number;
  /** Their bytes. */
  inFlightBytes: number;
  /** What this router stored on the feed past the recipient's ack floor, oldest first. */
  known: KnownBlock[];
  /**
   * What of `known` may still wait, in bytes: at the last answer, the heaviest of as many known
   * messages as the consumer said still wait (plus those stored since the question); plus every
   * message stored since.
   */
  knownWaiting: number;
  /**
   * Messages past the ack floor this router did not store (before its restart, or by another
   * router of the hub): counted at the feed stream's average message size.
   */
  unknown: number;
}

/** Copies published at once when a held recipient has room again. */
const RELEASE_BATCH = 64;

/** How long the feed stream's average message size is trusted (it sizes messages the router did not store). */
const AVERAGE_REFRESH_MS = 10_000;

/**
 * The bytes a message takes in the feed stream, as the router counts them against a recipient's
 * quota: its data, subject and message id, and the stream's own record (a file-store record is
 * about 30 bytes besides; the rest is the header's framing).
 */
export function feedMessageBytes(subject: string, data: Uint8Array, msgId: string): number {
  return data.byteLength + subject.length + msgId.length + 64;
}

/**
 * A full feed is one recipient's problem, never everybody's. Before a copy is published, the
 * router asks {@link HeldCopies.send}: a recipient whose feed already holds `recipientMaxCopies` copies its
 * gateway has not taken (the feed consumer's pending plus unacknowledged count, asked at most
 * once a second per recipient) or `recipientMaxBytes` bytes of copies and notices, or that has
 * copies held already (so that copies keep their order), gets its copy held: written to the
 * router's database with the routing decision, and the inbound alert is acknowledged as for any
 * other. A copy the stream itself refuses for want of room is held the same way. Held copies are
 * published again, oldest first and with the same message id and bytes, as soon as the recipient
 * has room; each then becomes an ordinary forward in the audit log. The hub's notices to an
 * agency count against the same quota ({@link HeldCopies.admit}): beyond it they wait in the
 * outbox.
 *
 * The byte quota is the one that keeps the feed stream from filling: every recipient's quota,
 * plus one message, fits the stream at once (`recipientQuotaBytes`). Bytes are counted by the
 * router: what it stored on the feed since it started, until the recipient's ack floor passes it,
 * and whatever else the consumer still has to deliver at the stream's average message size.
 */
export class HeldCopies {
  readonly #d: HeldCopiesDeps;
  readonly #drainer: Drainer;
  /** Per recipient: copies waiting in its feed, as last asked plus published since; publishes under way. */
  readonly #feeds = new Map<string, FeedCount>();
  readonly #asking = new Map<string, Promise<void>>();
  /** Held copies per recipient (from the database, plus those held since it was read). */
  #held = new Map<string, { count: number; since: string }>();
  /**
   * The same per recipient and origin, with how many of them are held for their origin's spent
   * budget: a copy waits behind those of its own origin, and behind any held for want of room on
   * the recipient's side, never behind another origin's held for its budget.
   */
  #heldFrom = new Map<string, Map<string, HeldFrom>>();
  #timer: NodeJS.Timeout | undefined;
  /** The feed stream's average message size, and when it was read. */
  #average = { bytes: 0, at: 0 };
  #averaging: Promise<void> | undefined;

  constructor(deps: HeldCopiesDeps) {
    this.#d = deps;
    this.#drainer = createDrainer(() => this.#drain(), {
      log: deps.log,
      what: 'forwarding held copies',
      retryMs: deps.retryMs,
    });
    this.#held = deps.store.heldCounts();
    this.#heldFrom = deps.store.heldOrigins();
    deps.metrics.heldSource.held = () => this.#held;
    deps.metrics.feedBytesSource.bytes = () =>
      new Map([...this.#feeds].map(([r, f]) => [r, this.#bytes(f)]));
    deps.metrics.feedBytesSource.quota = () => deps.recipientMaxBytes();
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
   * Publishes a copy of `bytes` (see {@link feedMessageBytes}) of `origin`'s alert for `recipient`
   * unless it must be held: when the recipient has copies held already (they go first; only
   * those of its own origin when the others are held for their origin's spent budget), when its
   * feed holds its quota, when its origin's budget is spent, or when the stream refuses the copy
   * for want of room. Any other failure is thrown (the alert is retried).
   */
  async send<T extends { readonly seq: number }>(
    recipient: string,
    bytes: number,
    publish: () => Promise<T>,
    origin?: string,
  ): Promise<{ readonly ack: T } | { readonly held: string; readonly forBudget?: true }> {
    const behind = this.#behindHeld(recipient, origin);
    const r = behind
      ? {
          full:
            behind === 'own'
              ? `earlier copies of ${origin}'s for ${recipient} are held: this one waits behind them`
              : `earlier copies for ${recipient} are held for want of room in its feed: this one waits behind them`,
          // Behind its own origin's copies held for its budget: held for the same reason.
          ...(behind === 'own' && this.#heldForOwnBudget(recipient, origin)
            ? { budget: true as const }
            : {}),
        }
      : await this.admit(recipient, bytes, publish, {
          copy: true,
          ...(origin === undefined
            ? {}
            : { charge: origin, chargeBytes: this.#d.budget?.copyCharge(bytes) ?? bytes }),
        });
    if ('ack' in r) return r;
    const forBudget = 'budget' in r && r.budget === true;
    this.hold(recipient, undefined, origin, forBudget);
    return { held: r.full, ...(forBudget ? { forBudget: true as const } : {}) };
  }

  /**
   * Whether a copy of `origin`'s for `recipient` must wait behind held ones: those of its own
   * origin (they keep their order), and any held for want of room on the recipient's side. Never
   * behind another origin's copies held for that origin's budget, whether or not it is spent
   * still: an agency's budget never holds up another agency's copies.
   */
  #behindHeld(recipient: string, origin: string | undefined): 'own' | 'room' | undefined {
    const total = this.#held.get(recipient)?.count ?? 0;
    if (total === 0) return undefined;
    const from = this.#heldFrom.get(recipient);
    if (origin !== undefined && (from?.get(origin)?.n ?? 0) > 0) return 'own';
    if (!from || origin === undefined) return 'room';
    // Held since the counts were read from the database: of no origin known yet, so waited behind.
    let known = 0;
    let blocking = 0;
    for (const [o, h] of from) {
      known += h.n;
      // An origin whose budget is spent now holds up nobody, whatever its rows were held for
      // (some were held behind its own earlier ones before it was spent).
      if (!this.#d.budget?.spent(o)) blocking += h.n - h.forBudget;
    }
    return blocking > 0 || total > known ? 'room' : undefined;
  }

  /**
   * Whether a copy of `origin`'s held behind its own held copies is held for its budget: its
   * budget is spent now, or its copies it waits behind were held for it.
   */
  #heldForOwnBudget(recipient: string, origin: string | undefined): boolean {
    if (origin === undefined) return false;
    return (
      this.#d.budget?.spent(origin) === true ||
      (this.#heldFrom.get(recipient)?.get(origin)?.forBudget ?? 0) > 0
    );
  }

  /** Starts a round of releasing held copies now (an agency's budget has room again). */
  releaseNow(): void {
    if (this.#held.size > 0) this.#drainer.kick();
  }

  /**
   * Publishes a message of `bytes` on `recipient`'s feed if its quota has room (a copy: copies and
   * bytes; a notice: bytes), counting it; otherwise, or when the stream refuses it for want of
   * room, says why and publishes nothing. A message is let through whatever its size when the
   * recipient has nothing waiting, so no message is too large to be sent at all. Any other
   * failure is thrown.
   */
  async admit<T extends { readonly seq: number }>(
    recipient: string,
    bytes: number,
    publish: () => Promise<T>,
    options: {
      readonly copy?: boolean;
      /** The agency the bytes are charged to (a copy's origin); the recipient by default (a notice). */
      readonly charge?: string;
      /**
       * What is charged to it, `bytes` by default: more for a copy (its origin pays for the
       * delivered notice its receipt will make, `OriginBudget.copyCharge`), less for a notice
       * whose events were paid for apart (`RouterStore.chargeDelivered`).
       */
      readonly chargeBytes?: number;
    } = {},
  ): Promise<{ readonly ack: T } | { readonly full: string; readonly budget?: true }> {
    const copy = options.copy === true;
    const charged = options.charge ?? recipient;
    const chargeBytes = Math.max(0, options.chargeBytes ?? bytes);
    // When the feed consumer cannot be read, the counts kept so far still apply: they only grow
    // until a question answers, so the quota fails closed.
    // Counts asked lately are used as they are, without waiting a promise tick for them (a copy
    // is then published in the same synchronous step as its check).
    const asking = this.#ask(recipient);
    if (asking) await asking;
    let over = this.#over(recipient, bytes, copy);
    // A copy at the quota by the counts kept since the last question: ask again before holding
    // it (the gateway may have taken some since). A notice waits for the notifier's next round
    // instead: asking afresh for every waiting agency at every round would put a question per
    // agency on nats-server at every commit.
    if (over !== undefined && copy) {
      await this.#ask(recipient, true);
      over = this.#over(recipient, bytes, copy);
    }
    if (over !== undefined) return { full: over };
    // Nothing to charge (a notice of events others paid for): no budget to pass.
    const spent = chargeBytes > 0 ? this.#d.budget?.over(charged, chargeBytes) : undefined;
    if (spent !== undefined) return { full: spent, budget: true };
    try {
      const bucket = chargeBytes > 0 ? this.#d.budget?.charge(charged, chargeBytes) : undefined;
      return {
        ack: await this.#publish(recipient, bytes, publish, copy, {
          charged,
          bucket,
          bytes: chargeBytes,
        }),
      };
    } catch (err) {
      if (!isStreamFull(err)) throw err;
      return { full: `the feed stream had no room: ${(err as Error).message}` };
    }
  }

  /** Why a message of `bytes` for `recipient` must wait, if it must (checked and counted in one synchronous step by the caller). */
  #over(recipient: string, bytes: number, copy: boolean): string | undefined {
    const f = this.#feed(recipient);
    const quota = this.#d.recipientMaxCopies;
    if (copy && f.count + f.inFlight >= quota)
      return `${recipient}'s feed holds ${f.count + f.inFlight} copies its gateway has not taken (streams.recipientMaxCopies ${quota})`;
    const waiting = this.#bytes(f);
    const maxBytes = this.#d.recipientMaxBytes();
    if (waiting > 0 && waiting + bytes > maxBytes)
      return `${recipient}'s feed holds about ${waiting} bytes its gateway has not taken; ${bytes} more would pass its quota (${maxBytes} bytes, streams.recipientMaxBytes)`;
    return undefined;
  }

  /** Counts a copy of `origin`'s for `recipient` as held (the routing decision holding it is being committed). */
  hold(recipient: string, at = new Date().toISOString(), origin?: string, forBudget = false): void {
    const h = this.#held.get(recipient);
    this.#held.set(recipient, { count: (h?.count ?? 0) + 1, since: h?.since ?? at });
    if (origin !== undefined) {
      let from = this.#heldFrom.get(recipient);
      if (!from) this.#heldFrom.set(recipient, (from = new Map<string, HeldFrom>()));
      const o = from.get(origin) ?? { n: 0, forBudget: 0 };
      o.n++;
      if (forBudget) o.forBudget++;
      from.set(origin, o);
    }
    this.#d.metrics.held.inc();
  }

  #feed(recipient: string): FeedCount {
    let f = this.#feeds.get(recipient);
    if (!f)
      this.#feeds.set(
        recipient,
        (f = {
          count: 0,
          at: 0,
          published: 0,
          stored: 0,
          inFlight: 0,
          inFlightBytes: 0,
          known: [],
          knownWaiting: 0,
          unknown: 0,
        }),
      );
    return f;
  }

  /** Bytes `f`'s recipient has waiting, as the router counts them. */
  #bytes(f: FeedCount): number {
    return f.knownWaiting + f.unknown * this.#average.bytes + f.inFlightBytes;
  }

  /**
   * Publishes and counts a message; `charge` is what its bytes were charged to (by the caller,
   * in the same synchronous step as its check), taken back if the stream does not store it.
   */
  async #publish<T extends { readonly seq: number }>(
    recipient: string,
    bytes: number,
    publish: () => Promise<T>,
    copy: boolean,
    charge: { readonly charged: string; readonly bucket: OriginCharged; readonly bytes: number },
  ): Promise<T> {
    const f = this.#feed(recipient);
    if (copy) f.inFlight++;
    f.inFlightBytes += bytes;
    let stored = false;
    try {
      const ack = await publish();
      if (copy) {
        f.count++;
        f.published++;
      }
      const last = f.known[f.known.length - 1];
      if (last && last.n < BLOCK_MESSAGES) {
        last.lastSeq = Math.max(last.lastSeq, ack.seq);
        last.bytes += bytes;
        last.n++;
        last.max = Math.max(last.max, bytes);
      } else f.known.push({ lastSeq: ack.seq, bytes, n: 1, max: bytes });
      f.knownWaiting += bytes;
      f.stored++;
      stored = true;
      return ack;
    } finally {
      if (copy) f.inFlight--;
      f.inFlightBytes -= bytes;
      if (!stored) this.#d.budget?.refund(charge.charged, charge.bucket, charge.bytes);
    }
  }

  /**
   * Brings `recipient`'s count of waiting copies up to date if it is older than `refreshMs`
   * (or `fresh`); when its feed consumer cannot be read, the counts kept so far stand.
   * Copies published while the question was out are added: counted twice at worst, never missed.
   * What the recipient has acknowledged (its ack floor) stops counting against its byte quota,
   * and so does whatever left the stream without moving the floor: nats-server 2.9.10 keeps the
   * floor below a message never acknowledged (one the gateway keeps refusing) and where messages
   * expired or were purged unread, so this router never counts more of its own messages than the
   * consumer says still wait, and counts those at their heaviest (the agency chooses which it
   * acknowledges).
   */
  #ask(recipient: string, fresh = false): Promise<void> | undefined {
    const f = this.#feed(recipient);
    if (!fresh && Date.now() - f.at < (this.#d.refreshMs ?? 1000)) return undefined;
    let asking = this.#asking.get(recipient);
    if (!asking) {
      const before = f.published;
      const storedBefore = f.stored;
      asking = this.#d.jsm.consumers
        .info(Streams.Feeds, feedConsumerName(recipient))
        .then(
          async (c) => {
            const unread = unhandled(c);
            f.count = unread + (f.published - before);
            f.at = Date.now();
            const floor = c.ack_floor.stream_seq;
            while (f.known.length > 0 && f.known[0]!.lastSeq <= floor) f.known.shift();
            // Stored while the question was out: perhaps not in its answer.
            const added = f.stored - storedBefore;
            const known = f.known.reduce((n, b) => n + b.n, 0);
            // Messages can leave without moving the floor (expired or purged unread, acknowledged
            // behind one the gateway keeps refusing), and the agency chooses which it
            // acknowledges: of the known messages, no more than the consumer says still wait are
            // counted, and those at their heaviest.
            f.knownWaiting = heaviest(f.known, Math.min(known, unread + added));
            // What the consumer still has to deliver that this router did not store (before its
            // restart, or another router): at the stream's average size.
            f.unknown = Math.max(0, unread - (known - added));
            if (f.known.length > MAX_BLOCKS) f.known = mergeNeighbours(f.known);
            if (f.unknown > 0) await this.#refreshAverage();
          },
          (err: unknown) => {
            this.#d.log.warn(
              { err: (err as Error).message, recipient },
              'feed consumer not readable; its last counts stand',
            );
          },
        )
        .finally(() => this.#asking.delete(recipient));
      this.#asking.set(recipient, asking);
    }
    return asking;
  }

  /** Reads the feed stream's average message size if it is older than {@link AVERAGE_REFRESH_MS}. */
  async #refreshAverage(): Promise<void> {
    if (Date.now() - this.#average.at < AVERAGE_REFRESH_MS) return;
    this.#averaging ??= this.#d.jsm.streams
      .info(Streams.Feeds)
      .then(
        (info) => {
          if (info.state.messages > 0)
            this.#average = {
              bytes: Math.ceil(info.state.bytes / info.state.messages),
              at: Date.now(),
            };
        },
        (err: unknown) =>
          this.#d.log.warn({ err: (err as Error).message }, 'feed stream not readable'),
      )
      .finally(() => (this.#averaging = undefined));
    await this.#averaging;
  }

  /** Publishes held copies of every recipient with room, oldest first. */
  async #drain(): Promise<void> {
    const { store } = this.#d;
    for (const recipient of store.heldCounts().keys()) await this.#release(recipient);
    this.#held = store.heldCounts();
    this.#heldFrom = store.heldOrigins();
  }

  async #release(recipient: string): Promise<void> {
    const { store, js, writer, metrics, log } = this.#d;
    let released = 0;
    // Origins whose budget is spent: their copies stay held (in order), the others' go on.
    const blocked = new Set<string>();
    for (;;) {
      const f = this.#feed(recipient);
      // Unanswered, the counts kept so far stand (they only grow until a question answers).
      await this.#ask(recipient, true);
      const room = Math.min(RELEASE_BATCH, this.#d.recipientMaxCopies - f.count - f.inFlight);
      if (room <= 0) break;
      const candidates = store.heldFor(recipient, room, blocked);
      if (candidates.length === 0) break;
      // As many as the byte quota has room for (the first one whatever its size when nothing
      // waits: see admit), and each origin's budget.
      const maxBytes = this.#d.recipientMaxBytes();
      let waiting = this.#bytes(f);
      let quotaFull = false;
      const rows: { row: HeldRow; bytes: number; charge: number; bucket: OriginCharged }[] = [];
      const budget = this.#d.budget;
      // When these copies are sent: taken before their charges, so a copy's forwarding time is
      // never in a later bucket than its charge (a `delivered` notice's lateness is reckoned
      // from it: OriginBudget.delivered).
      const sentAt = new Date().toISOString();
      for (const row of candidates) {
        if (blocked.has(row.origin)) continue;
        const bytes = feedMessageBytes(row.subject, row.envelope, row.msgId);
        const charge = budget?.copyCharge(bytes) ?? bytes;
        // A spent origin's rows first: they are skipped, never let fill the recipient's quota
        // ahead of another origin's.
        if (budget?.over(row.origin, charge) !== undefined) {
          blocked.add(row.origin);
          continue;
        }
        if (waiting > 0 && waiting + bytes > maxBytes) {
          quotaFull = true;
          break;
        }
        rows.push({ row, bytes, charge, bucket: budget?.charge(row.origin, charge) });
        waiting += bytes;
      }
      if (rows.length === 0) {
        // Every candidate's origin is spent: look past them (they were excluded from now on).
        if (quotaFull) break;
        continue;
      }
      // Sent in order on one connection, so the stream stores them in order.
      const results = await Promise.allSettled(
        rows.map(({ row: r, bytes, charge, bucket }) =>
          this.#publish(
            recipient,
            bytes,
            () =>
              js.publish(r.subject, r.envelope, {
                msgID: r.msgId,
                timeout: this.#d.publishTimeoutMs,
              }),
            true,
            { charged: r.origin, bucket, bytes: charge },
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
        const { origin, id } = rows[i]!.row;
        byOrigin.set(origin, (byOrigin.get(origin) ?? 0) + 1);
        records.push(
          writer.enqueue({
            kind: 'released',
            id,
            feedSeq: result.value.seq,
            forwardedAt: sentAt,
          }),
        );
      }
      await Promise.all(records);
      released += records.length;
      for (const [origin, n] of byOrigin) metrics.forwards.inc({ origin }, n);
      if (failure !== undefined) throw failure;
      if (full || quotaFull || candidates.length < room) break;
    }
    if (released > 0) {
      const left = store.heldCounts().get(recipient)?.count ?? 0;
      log.info({ recipient, released, left }, 'held copies forwarded');
    }
  }
}
