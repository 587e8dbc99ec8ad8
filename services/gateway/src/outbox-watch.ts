import type { JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from '@alert-hub/runtime';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayStore } from './store.js';

/** Alerts accepted (202) that left the leaf's outbox before the hub had them. */
export interface OutboxLoss {
  /** How many. */
  readonly count: number;
  /** The oldest of them (at most 20). */
  readonly ids: readonly string[];
  /** The outbox's first sequence when this was found. */
  readonly firstSeq: number;
}

/**
 * Behind a leaf node, a 202 means "stored in the agency's outbox"; the hub sources the outbox
 * when the link is up. An outbox keeps messages for its `max_age` whether or not the hub has
 * them, and nats-server tells nobody when an unsourced one expires. So the gateway compares the
 * outbox's first sequence with the sequences its alerts were stored at: an alert below it of
 * which the hub has said nothing (no `routed` nor `refused` notice) expired before reaching the
 * hub. It is then counted (`ahub_gateway_outbox_expired`), logged (`ERR_OUTBOX_EXPIRED`) and
 * shown in `/readyz`; the agency resends those alerts under new ids.
 *
 * Conservative: an alert that the hub did route but whose notice has not arrived by the time it
 * expires from the outbox (its whole `max_age` later) is counted too.
 */
export class OutboxWatch {
  readonly #d: OutboxWatchDeps;
  #loss: OutboxLoss | undefined;
  #error: string | undefined;

  constructor(deps: OutboxWatchDeps) {
    this.#d = deps;
  }

  /** The alerts found lost at the last check, if any. */
  get loss(): OutboxLoss | undefined {
    return this.#loss;
  }

  /** Why the last check could not read the outbox, if it could not. */
  get error(): string | undefined {
    return this.#error;
  }

  /** Reads the outbox's first sequence and counts the alerts lost below it. */
  async check(): Promise<OutboxLoss | undefined> {
    const { jsm, stream, store, metrics, log } = this.#d;
    let firstSeq: number;
    try {
      firstSeq = (await jsm.streams.info(stream)).state.first_seq;
      this.#error = undefined;
    } catch (err) {
      this.#error = (err as Error).message;
      return this.#loss;
    }
    const { ids, count } = store.sentGoneUnrouted(firstSeq);
    metrics.outboxExpired.set(count);
    const before = this.#loss?.count ?? 0;
    this.#loss = count > 0 ? { count, ids, firstSeq } : undefined;
    if (count > before)
      log.error(
        { code: 'ERR_OUTBOX_EXPIRED', count, stream, firstSeq, alertIds: ids },
        "alerts accepted (202) expired in the leaf's outbox before the hub had them: they were never routed; resend them under new ids",
      );
    return this.#loss;
  }
}

/** What {@link OutboxWatch} reads and reports to. */
export interface OutboxWatchDeps {
  /** A manager of the leaf's own JetStream (its local API, not the hub's). */
  readonly jsm: JetStreamManager;
  readonly stream: string;
  readonly store: GatewayStore;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
}
