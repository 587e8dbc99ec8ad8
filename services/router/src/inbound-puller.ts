import type { Consumer, ConsumerMessages, JsMsg } from '@nats-io/jetstream';
import type { Logger } from '@alert-hub/runtime';

/**
 * How long one pull request waits for messages on an idle stream (the server answers at once
 * when messages are there). nats.js asks for idle heartbeats every half of it.
 */
export const FETCH_EXPIRES_MS = 5_000;

/** After a failed pull (connection lost, consumer missing) the next one waits this long. */
const FETCH_RETRY_MS = 1_000;

/**
 * How long a message is kept alive ("in progress") at most, from when it was fetched. A message
 * held longer has a handler that is stuck, not queued: the copy budget lets a fetched alert start
 * within seconds, and a failed step hands the message back (nak) rather than waiting. Past this,
 * the router logs it (`ERR_MESSAGE_STUCK`) and stops telling JetStream it is working, so the message is redelivered
 * after its ack wait, to this router or another one sharing the consumer. Five minutes is ten
 * times the default ack wait (30 s).
 */
export const MAX_KEEP_ALIVE_MS = 5 * 60_000;

export interface InboundPullerOptions {
  readonly consumer: Consumer;
  /** Messages held at most: fetched and not yet ended (acked, nacked or terminated). */
  readonly maxMessages: number;
  /**
   * The consumer's ack wait. A message held longer than a third of it (an alert whose copies
   * wait for the copy budget) is told "in progress", so JetStream does not redeliver work that
   * is only queued.
   */
  readonly ackWaitMs: number;
  /**
   * How many messages may be fetched now, given how many are held (0: not now). Asked again
   * whenever a held message ends or {@link InboundPuller.wake} is called.
   */
  readonly room: (held: number) => number;
  /** Handles one message to its end; never rejects. */
  readonly handle: (m: JsMsg) => Promise<void>;
  readonly log: Logger;
  /** Called whenever the number of held messages changes. */
  readonly onHeld?: (held: number) => void;
  /** How long a held message is kept alive at most (default {@link MAX_KEEP_ALIVE_MS}). */
  readonly maxKeepAliveMs?: number;
}

/**
 * Pulls the router's inbound consumer in explicit batches, only as many messages as there is
 * room for. nats.js's `consume()` refills its pull as messages arrive, whether or not they were
 * handled, so only the server's `max_ack_pending` would bound what a slow router holds; here
 * nothing is fetched until the router can take it.
 */
export class InboundPuller {
  readonly #o: InboundPullerOptions;
  /**
   * Held messages: when each was fetched, when it was last known to be alive (fetched or told
   * "working"), and whether it was held past the keep-alive cap.
   */
  readonly #held = new Map<
    JsMsg,
    { fetched: number; since: number; capped: boolean; done: Promise<void> }
  >();
  #wake: (() => void) | undefined;
  #batch: ConsumerMessages | undefined;
  #loop: Promise<void> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: InboundPullerOptions) {
    this.#o = options;
  }

  get held(): number {
    return this.#held.size;
  }

  start(): void {
    this.#loop = this.#run();
    const every = Math.max(100, Math.floor(this.#o.ackWaitMs / 3));
    this.#timer = setInterval(() => this.#keepAlive(every), every);
    this.#timer.unref();
  }

  /** Room may have appeared (budget given back): look again. */
  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /**
   * Ends the pull under way, so that nothing more arrives through it: the next pull asks for
   * room first (routing paused, say). Messages already delivered are handled as usual.
   */
  interrupt(): void {
    void this.#batch?.close().catch(() => undefined);
  }

  /** Stops fetching and waits until every held message has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake();
    await this.#batch?.close().catch(() => undefined);
    await this.#loop;
    await Promise.allSettled([...this.#held.values()].map((h) => h.done));
    clearInterval(this.#timer);
  }

  async #run(): Promise<void> {
    while (!this.#stopped) {
      const n = Math.min(this.#o.room(this.#held.size), this.#o.maxMessages - this.#held.size);
      if (n <= 0) {
        await new Promise<void>((resolve) => (this.#wake = resolve));
        continue;
      }
      try {
        const batch = await this.#o.consumer.fetch({ max_messages: n, expires: FETCH_EXPIRES_MS });
        this.#batch = batch;
        for await (const m of batch) this.#start(m);
      } catch (err) {
        if (this.#stopped) break;
        this.#o.log.warn(
          { err: (err as Error).message },
          'pulling inbound messages failed; retrying',
        );
        await new Promise((r) => setTimeout(r, FETCH_RETRY_MS));
      } finally {
        this.#batch = undefined;
      }
    }
  }

  #start(m: JsMsg): void {
    if (this.#stopped) {
      // Stopping: the message goes back at once rather than waiting out its ack wait.
      m.nak();
      return;
    }
    const now = Date.now();
    const entry = { fetched: now, since: now, capped: false, done: Promise.resolve() };
    entry.done = this.#o
      .handle(m)
      .catch((err: unknown) =>
        this.#o.log.error(
          { err: (err as Error).message, streamSeq: m.seq },
          'message handling failed',
        ),
      )
      .finally(() => {
        this.#held.delete(m);
        this.#o.onHeld?.(this.#held.size);
        this.wake();
      });
    this.#held.set(m, entry);
    this.#o.onHeld?.(this.#held.size);
  }

  #keepAlive(every: number): void {
    const now = Date.now();
    const cap = this.#o.maxKeepAliveMs ?? MAX_KEEP_ALIVE_MS;
    for (const [m, h] of this.#held) {
      if (h.capped) continue;
      if (now - h.fetched >= cap) {
        // Stuck: JetStream redelivers it after its ack wait. It keeps its place here until its
        // handler ends, so a stuck router does not fetch more than it can hold.
        h.capped = true;
        this.#o.log.error(
          { code: 'ERR_MESSAGE_STUCK', streamSeq: m.seq, heldMs: now - h.fetched },
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
