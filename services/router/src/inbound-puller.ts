import {
  JetStreamApiCodes,
  JetStreamApiError,
  type Consumer,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream';
import { unhandled, type Logger } from '@alert-hub/runtime';

/**
 * How long a pull waits for messages on a source with no backlog (the server answers at once
 * when messages are there, so an idle agency's first alert is delivered as it arrives). Long,
 * because every source has one such pull outstanding: 110 idle agencies cost 110 pulls per 30 s,
 * and their heartbeats ({@link IDLE_PULL_HEARTBEAT_MS}).
 */
export const DEFAULT_IDLE_PULL_EXPIRES_MS = 30_000;

/**
 * How often the server tells an idle pull it is still there. Two missed end the pull (nats.js),
 * and the source is pulled again: a pull the server lost (its restart, a consumer leader moved to
 * another node of a cluster) is found out within about 10 s, not the whole expiry.
 */
export const IDLE_PULL_HEARTBEAT_MS = 5_000;

/**
 * How long a pull of a source with a backlog waits for the rest of what it asked for, once the
 * stream has no more (the smallest nats.js allows): the budget it reserved is lent back soon.
 */
export const BUSY_PULL_EXPIRES_MS = 1_000;

/** After a failed pull (connection lost) the source's next one waits this long. */
const FETCH_RETRY_MS = 1_000;

/**
 * A source whose consumer does not exist (its stream is not provisioned yet) is looked for again
 * this often; the others are read meanwhile.
 */
export const DEFAULT_MISSING_RETRY_MS = 10_000;

/**
 * How long a message is kept alive ("in progress") at most, from when it was fetched. A message
 * held longer has a handler that is stuck, not queued: the copy budget lets a fetched alert start
 * within seconds, and a failed step hands the message back (nak) rather than waiting. Past this,
 * the router logs it (`ERR_MESSAGE_STUCK`) and stops telling JetStream it is working, so the message is redelivered
 * after its ack wait, to this router or another one sharing the consumer. Five minutes is ten
 * times the default ack wait (30 s).
 */
export const DEFAULT_MAX_KEEP_ALIVE_MS = 5 * 60_000;

/** One consumer the puller reads: an agency's inbound stream, or the legacy shared one. */
export interface PullSource {
  /** Unique among the sources (the stream's name). */
  readonly name: string;
  /** Looks the consumer up; rejects while it does not exist (asked again later). */
  readonly consumer: () => Promise<Consumer>;
  /**
   * Asked when the source's pull came back with nothing: true ends the source (its held messages
   * finish). The legacy stream, once it neither receives nor holds anything.
   */
  readonly drained?: (consumer: Consumer) => Promise<boolean>;
  /**
   * True while the source must not be pulled (its agency's budget in the feed stream is spent):
   * no new pull starts; call {@link InboundPuller.wake} when it turns false.
   */
  readonly paused?: () => boolean;
}

export interface InboundPullerOptions {
  /** The sources read from the start; {@link InboundPuller.setSources} changes them. */
  readonly sources: readonly PullSource[];
  /**
   * Messages held at most by pulls for a backlog: fetched and not yet ended (acked, nacked or
   * terminated), plus what pulls under way may still deliver. Sources without a backlog ask for
   * one message each beyond it (see {@link InboundPuller}).
   */
  readonly maxMessages: number;
  /**
   * The consumer's ack wait. A message held longer than a third of it (an alert whose copies
   * wait for the copy budget) is told "in progress", so JetStream does not redeliver work that
   * is only queued.
   */
  readonly ackWaitMs: number;
  /**
   * How many messages may be fetched now, given how many are held (0: not now). Asked again
   * whenever a held message ends, a pull ends or {@link InboundPuller.wake} is called.
   */
  readonly room: (held: number) => number;
  /** Handles one message to its end; never rejects. */
  readonly handle: (m: JsMsg) => Promise<void>;
  readonly log: Logger;
  /** Called whenever the number of held messages changes. */
  readonly onHeld?: (held: number) => void;
  /** How long a held message is kept alive at most (default {@link DEFAULT_MAX_KEEP_ALIVE_MS}). */
  readonly maxKeepAliveMs?: number;
  /** How often a missing consumer is looked for again (default {@link DEFAULT_MISSING_RETRY_MS}). */
  readonly missingRetryMs?: number;
  /** How long a pull of a source without backlog waits (default {@link DEFAULT_IDLE_PULL_EXPIRES_MS}). */
  readonly idlePullExpiresMs?: number;
}

interface SourceState {
  readonly source: PullSource;
  consumer: Consumer | undefined;
  opening: boolean;
  /** The pull under way: what it asked for, what it delivered so far, and its messages. */
  pull: { asked: number; received: number; idle: boolean; batch?: ConsumerMessages } | undefined;
  /** Messages of this source fetched and not ended. */
  held: number;
  /** Its last pull delivered all it asked for: more are probably waiting. */
  busy: boolean;
  /** No pull before this time (a failure, a missing consumer). */
  retryAt: number;
  /** Its consumer was reported missing (logged once until it is found). */
  missing: boolean;
  /** Removed: no more pulls; forgotten once its held messages ended. */
  removed: boolean;
  /** Its place among the sources read now, in round-robin order (set by `#relist`). */
  index: number;
}

interface Held {
  readonly source: SourceState;
  readonly fetched: number;
  since: number;
  capped: boolean;
  done: Promise<void>;
}

/**
 * Pulls the router's inbound consumers (one per agency's inbound stream, and the legacy shared
 * stream while it holds anything) in explicit batches, only as many messages as there is room
 * for, and **in turn**: one agency flooding its stream takes a share of the router, never all of
 * it. nats.js's `consume()` refills its pull as messages arrive, whether or not they were handled,
 * so only the server's `max_ack_pending` would bound what a slow router holds; here nothing is
 * fetched until the router can take it.
 *
 * Each source has at most one pull outstanding:
 * - a source with no backlog (its last pull came back short) asks for ONE message, with a long
 *   expiry: it costs the server one waiting request and the alert it receives is delivered at
 *   once. These pulls are not counted against `maxMessages`;
 * - a source with a backlog (its last pull came back full) asks for up to its share,
 *   `floor(maxMessages / sources with a backlog)` (at least 1), less what it holds, within what is
 *   left of `maxMessages` and of `room()` after the held messages and the pulls under way. When
 *   that is short, the sources waiting are served in round-robin order.
 *
 * So a flooding source never holds more than its share while another source has a backlog, and
 * an idle agency's first alert is never queued behind it. **Bound**: held messages never exceed
 * `maxMessages + (number of sources)` (each source adds at most the one message of its idle pull);
 * no pull at all is started while `room()` is 0, and {@link interrupt} ends those under way.
 */
export class InboundPuller {
  readonly #o: InboundPullerOptions;
  readonly #held = new Map<JsMsg, Held>();
  /** Every source, including removed ones until their held messages and pull have ended. */
  #sources: SourceState[] = [];
  /** The sources read now (not removed), in round-robin order: `#sources` less the removed. */
  #live: SourceState[] = [];
  /**
   * The few sources {@link #pump} acts on, kept as they change so that a pump (after every
   * message, every copy sent) costs what they number, not what the sources number (110 agencies,
   * nearly all with their idle pull outstanding): sources read now with neither a pull under way
   * nor a lookup of their consumer; those whose pull is for a backlog; those with a backlog.
   */
  readonly #waiting = new Set<SourceState>();
  readonly #backlogPulls = new Set<SourceState>();
  readonly #backlogged = new Set<SourceState>();
  /** Round-robin position: the source served first when room is short. */
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #retryAt = Infinity;
  readonly #pulls = new Set<Promise<void>>();
  #started = false;
  #stopped = false;

  constructor(options: InboundPullerOptions) {
    this.#o = options;
    this.setSources(options.sources);
  }

  /** Messages fetched and not yet ended. */
  get held(): number {
    return this.#held.size;
  }

  /** The names of the sources read now (a drained or removed source is gone). */
  get sources(): string[] {
    return this.#live.map((s) => s.source.name);
  }

  /** Messages held per source now. */
  heldBy(name: string): number {
    return this.#live.find((s) => s.source.name === name)?.held ?? 0;
  }

  /**
   * Reads exactly `sources` from now on: a new one is read from its next turn, one no longer
   * listed gets no more pulls (its held messages finish). A source already read keeps its state.
   */
  setSources(sources: readonly PullSource[]): void {
    const wanted = new Map(sources.map((s) => [s.name, s]));
    for (const s of this.#live) if (!wanted.has(s.source.name)) this.#remove(s);
    const read = new Set(this.#live.map((s) => s.source.name));
    for (const [name, source] of wanted) {
      if (read.has(name)) continue;
      const s: SourceState = {
        source,
        consumer: undefined,
        opening: false,
        pull: undefined,
        held: 0,
        busy: false,
        retryAt: 0,
        missing: false,
        removed: false,
        index: -1,
      };
      this.#sources.push(s);
      this.#track(s);
    }
    this.#relist();
    this.#pump();
  }

  start(): void {
    this.#started = true;
    const every = Math.max(100, Math.floor(this.#o.ackWaitMs / 3));
    this.#timer = setInterval(() => this.#keepAlive(every), every);
    this.#timer.unref();
    this.#pump();
  }

  /** Room may have appeared (budget given back): look again. */
  wake(): void {
    this.#pump();
  }

  /**
   * Ends the pulls under way, so that nothing more arrives through them: the next pulls ask for
   * room first (routing paused, say). Messages already delivered are handled as usual.
   */
  interrupt(): void {
    for (const s of this.#sources) void s.pull?.batch?.close().catch(() => undefined);
  }

  /**
   * Ends the pull under way of the source `name` (its `paused` turned true): nothing more arrives
   * through it; what it delivered already is handled as usual.
   */
  interruptSource(name: string): void {
    for (const s of this.#sources)
      if (s.source.name === name) void s.pull?.batch?.close().catch(() => undefined);
  }

  /** Stops fetching and waits until every held message has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.interrupt();
    while (this.#pulls.size > 0) await Promise.allSettled([...this.#pulls]);
    await Promise.allSettled([...this.#held.values()].map((h) => h.done));
    clearInterval(this.#timer);
  }

  #remove(s: SourceState): void {
    s.removed = true;
    this.#track(s);
    void s.pull?.batch?.close().catch(() => undefined);
    this.#forget(s);
    this.#relist();
  }

  /** Drops `s` once it is removed and its held messages and pull have ended. */
  #forget(s: SourceState): void {
    if (s.removed && s.held === 0 && !s.pull) this.#sources = this.#sources.filter((x) => x !== s);
  }

  /** Lists the sources read now, in order, after one was added or removed. */
  #relist(): void {
    this.#live = this.#sources.filter((s) => !s.removed);
    this.#live.forEach((s, i) => (s.index = i));
  }

  /** Files `s` where {@link #pump} looks for it, after its pull, lookup, backlog or removal changed. */
  #track(s: SourceState): void {
    const live = !s.removed;
    if (live && !s.pull && !s.opening) this.#waiting.add(s);
    else this.#waiting.delete(s);
    if (live && s.pull && !s.pull.idle) this.#backlogPulls.add(s);
    else this.#backlogPulls.delete(s);
    if (live && s.busy) this.#backlogged.add(s);
    else this.#backlogged.delete(s);
  }

  /** Starts the pulls there is room for, in turn. Synchronous: every call sees the last state. */
  #pump(): void {
    if (!this.#started || this.#stopped) return;
    const now = Date.now();
    const n = this.#live.length;
    if (n === 0) return;
    const held = this.#held.size;
    const room = this.#o.room(held);
    if (room <= 0) return;
    let reserved = 0;
    for (const s of this.#backlogPulls) reserved += Math.max(0, s.pull!.asked - s.pull!.received);
    const busy = this.#backlogged.size;
    // What the pulls under way may still deliver is taken from both.
    let free = Math.min(room, this.#o.maxMessages - held) - reserved;
    const share = Math.max(1, Math.floor(this.#o.maxMessages / Math.max(1, busy)));
    let wait = Infinity;
    const first = this.#next % n;
    // The sources without a pull or a lookup under way, in turn from `first`: the others are
    // skipped whatever their turn.
    const turn = (s: SourceState) => (s.index - first + n) % n;
    const waiting = [...this.#waiting].sort((a, b) => turn(a) - turn(b));
    for (const s of waiting) {
      const index = s.index;
      if (s.pull || s.opening || s.removed) continue;
      if (s.source.paused?.()) continue;
      if (s.retryAt > now) {
        wait = Math.min(wait, s.retryAt);
        continue;
      }
      if (!s.consumer) {
        void this.#open(s);
        continue;
      }
      if (!s.busy) {
        // One message, waited for long: an idle agency's alert is fetched as it arrives.
        if (s.held >= share) continue;
        this.#pull(s, 1, true);
        continue;
      }
      const ask = Math.min(share - s.held, free);
      if (ask <= 0) continue;
      free -= ask;
      this.#next = index + 1;
      this.#pull(s, ask, false);
    }
    if (wait !== Infinity && wait < this.#retryAt) {
      clearTimeout(this.#retry);
      this.#retryAt = wait;
      this.#retry = setTimeout(
        () => {
          this.#retryAt = Infinity;
          this.#pump();
        },
        Math.max(0, wait - now),
      );
      this.#retry.unref();
    }
  }

  async #open(s: SourceState): Promise<void> {
    s.opening = true;
    this.#track(s);
    try {
      s.consumer = await s.source.consumer();
      if (s.missing)
        this.#o.log.info({ source: s.source.name }, 'inbound consumer found: reading it');
      s.missing = false;
    } catch (err) {
      s.retryAt = Date.now() + (this.#o.missingRetryMs ?? DEFAULT_MISSING_RETRY_MS);
      if (!isMissingConsumer(err)) {
        this.#o.log.warn(
          { source: s.source.name, err: (err as Error).message },
          'inbound consumer lookup failed; retrying',
        );
      } else if (!s.missing) {
        s.missing = true;
        this.#o.log.warn(
          { source: s.source.name, retryMs: this.#o.missingRetryMs ?? DEFAULT_MISSING_RETRY_MS },
          'inbound consumer not provisioned yet; the other sources are read meanwhile',
        );
      }
    } finally {
      s.opening = false;
      this.#track(s);
      this.#pump();
    }
  }

  #pull(s: SourceState, asked: number, idle: boolean): void {
    const pull: NonNullable<SourceState['pull']> = { asked, received: 0, idle };
    s.pull = pull;
    this.#track(s);
    const expires = idle
      ? (this.#o.idlePullExpiresMs ?? DEFAULT_IDLE_PULL_EXPIRES_MS)
      : BUSY_PULL_EXPIRES_MS;
    const p = this.#fetch(s, pull, expires).finally(() => {
      s.pull = undefined;
      this.#track(s);
      this.#pulls.delete(p);
      this.#forget(s);
      this.#pump();
    });
    this.#pulls.add(p);
  }

  async #fetch(
    s: SourceState,
    pull: NonNullable<SourceState['pull']>,
    expires: number,
  ): Promise<void> {
    const consumer = s.consumer!;
    try {
      const batch = await consumer.fetch({
        max_messages: pull.asked,
        expires,
        ...(pull.idle ? { idle_heartbeat: Math.min(IDLE_PULL_HEARTBEAT_MS, expires / 2) } : {}),
      });
      pull.batch = batch;
      if (this.#stopped || s.removed) void batch.close().catch(() => undefined);
      for await (const m of batch) {
        pull.received++;
        this.#start(s, m);
      }
      s.busy = pull.received >= pull.asked;
      this.#track(s);
      if (pull.received === 0 && s.source.drained && !this.#stopped && !s.removed) {
        if (await s.source.drained(consumer)) {
          this.#o.log.info({ source: s.source.name }, 'inbound source drained: no longer read');
          this.#remove(s);
        }
      }
    } catch (err) {
      if (this.#stopped) return;
      s.busy = false;
      this.#track(s);
      // Looked up again before the next pull: a consumer deleted and made again is a new one.
      s.consumer = undefined;
      s.retryAt = Date.now() + FETCH_RETRY_MS;
      if (!isMissingConsumer(err))
        this.#o.log.warn(
          { source: s.source.name, err: (err as Error).message },
          'pulling inbound messages failed; retrying',
        );
    }
  }

  #start(s: SourceState, m: JsMsg): void {
    if (this.#stopped) {
      // Stopping: the message goes back at once rather than waiting out its ack wait.
      m.nak();
      return;
    }
    const now = Date.now();
    const entry: Held = {
      source: s,
      fetched: now,
      since: now,
      capped: false,
      done: Promise.resolve(),
    };
    entry.done = this.#o
      .handle(m)
      .catch((err: unknown) =>
        this.#o.log.error(
          { err: (err as Error).message, stream: m.info.stream, streamSeq: m.seq },
          'message handling failed',
        ),
      )
      .finally(() => {
        this.#held.delete(m);
        s.held--;
        this.#forget(s);
        this.#o.onHeld?.(this.#held.size);
        this.#pump();
      });
    this.#held.set(m, entry);
    s.held++;
    this.#o.onHeld?.(this.#held.size);
  }

  #keepAlive(every: number): void {
    const now = Date.now();
    const cap = this.#o.maxKeepAliveMs ?? DEFAULT_MAX_KEEP_ALIVE_MS;
    for (const [m, h] of this.#held) {
      if (h.capped) continue;
      if (now - h.fetched >= cap) {
        // Stuck: JetStream redelivers it after its ack wait. It keeps its place here until its
        // handler ends, so a stuck router does not fetch more than it can hold.
        h.capped = true;
        this.#o.log.error(
          {
            code: 'ERR_MESSAGE_STUCK',
            stream: m.info.stream,
            streamSeq: m.seq,
            heldMs: now - h.fetched,
          },
          'message held past the keep-alive cap; JetStream will redeliver it',
        );
        continue;
      }
      if (now - h.since < every) continue;
      // A no-op once the message was acked, nacked or terminated.
      m.working();
      h.since = now;
    }
  }
}

/** The consumer or its stream does not exist (not provisioned yet, or deleted). */
function isMissingConsumer(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.ConsumerNotFound ||
      err.code === JetStreamApiCodes.StreamNotFound)
  );
}

/**
 * Whether the consumer `name` on `stream` may have messages to deliver: false only when
 * JetStream answers that the stream or the consumer does not exist, or (`unhandledOnly`) that
 * nothing is pending or unacknowledged. Any other failure (a timeout, a 503 while a cluster
 * restarts) answers true: the source is read, and the puller looks its consumer up again until it
 * is found, rather than leave it out until the next reload.
 */
export async function mayHoldMessages(
  js: JetStreamClient,
  stream: string,
  name: string,
  unhandledOnly: boolean,
): Promise<boolean> {
  try {
    const consumer = await js.consumers.get(stream, name);
    if (!unhandledOnly) return true;
    return unhandled(await consumer.info(true)) > 0;
  } catch (err) {
    return !isMissingConsumer(err);
  }
}
