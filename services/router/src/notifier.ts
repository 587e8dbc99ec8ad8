import type { JetStreamClient } from '@nats-io/jetstream';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  newAlertId,
  noticeSubject,
  encodeEnvelope,
  signNotice,
  statementMsgId,
  type NoticeEvent,
  type SigningKey,
} from '@alert-hub/core';
import { createDrainer, type Drainer, type Logger } from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import type { RouterStore } from './store.js';
import { feedMessageBytes, type HeldCopies } from './held-copies.js';

export interface NotifierDeps {
  readonly js: JetStreamClient;
  readonly store: RouterStore;
  readonly hubKey: () => SigningKey;
  readonly metrics: RouterMetrics;
  readonly log: Logger;
  readonly publishTimeoutMs: number;
  /** The router instance: part of each notice's message id, so two hosts' outboxes never collide. */
  readonly instance: string;
  /** Events per notice at most. */
  readonly maxEvents?: number;
  /** How long after a commit the waiting events are sent (0: at once). */
  readonly coalesceMs?: number;
  /**
   * Bytes of events (their JSON) per notice at most. The default keeps a notice's envelope (the
   * JSON base64url-encoded in a JWS, then msgpack) well under the feed stream's largest message
   * and the gateways' envelope limit, whatever the events hold.
   */
  readonly maxEventBytes?: number;
  /**
   * Counts each notice against its agency's feed quota, as copies are: a notice beyond it waits
   * in the outbox (see {@link HeldCopies.admit}). Without it notices are published as they come.
   */
  readonly feeds?: Pick<HeldCopies, 'admit'>;
  /** How soon notices that waited for room are tried again (ms). */
  readonly retryMs?: number;
}

/** Base64url makes 4 bytes of 3; 8 KiB is left for the protected header, signature and framing. */
export const DEFAULT_NOTICE_EVENT_BYTES = Math.floor((DEFAULT_MAX_ENVELOPE_BYTES * 3) / 4) - 8192;

/**
 * Sends the hub's notices. Notice events are written to the outbox in the same transaction as
 * the decision they report (so none is lost in a crash); `coalesceMs` after a commit the notifier
 * groups the waiting events by agency, signs ONE notice per agency with the hub key, publishes it on
 * that agency's feed, and deletes the rows once JetStream acknowledged. A failed publish is
 * retried later; delivery is at least once (the gateway applies events idempotently).
 */
export class Notifier {
  readonly #d: NotifierDeps;
  readonly #drainer: Drainer;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopped = false;
  #waiting: ReadonlySet<string> = new Set();

  constructor(deps: NotifierDeps) {
    this.#d = deps;
    this.#drainer = createDrainer(() => this.#drain(), {
      log: deps.log,
      what: 'sending notices',
      ...(deps.coalesceMs ? { delayMs: deps.coalesceMs } : {}),
    });
  }

  /**
   * The agencies whose notices found no room in their feed (its quota, or their budget) at the
   * last round: their events wait in the outbox and are tried again every `retryMs`.
   */
  get waiting(): ReadonlySet<string> {
    return this.#waiting;
  }

  /** Sends what is in the outbox `coalesceMs` from now (calls in between coalesce). */
  kick(): void {
    this.#drainer.kick();
  }

  async #drain(): Promise<void> {
    const { store, js, metrics } = this.#d;
    const max = this.#d.maxEvents ?? 1000;
    const maxBytes = this.#d.maxEventBytes ?? DEFAULT_NOTICE_EVENT_BYTES;
    // Agencies whose feed had no room this round: their events stay in the outbox, and are not
    // read again until the next round (which comes `retryMs` later at the latest).
    const waiting = new Set<string>();
    for (;;) {
      const rows = store.outbox(max * 4, waiting);
      if (rows.length === 0) break;
      const byAgency = new Map<
        string,
        { ids: number[]; events: NoticeEvent[]; bytes: number; precharged: number }[]
      >();
      for (const r of rows) {
        // Each event counts with its separator; a notice holds at least one event.
        const size = r.bytes + 1;
        const chunks = byAgency.get(r.agency) ?? [];
        let last = chunks[chunks.length - 1];
        // Events another agency paid for never share a notice with the addressee's own: the
        // addressee's are then all charged to it and checked against its budget.
        if (
          !last ||
          last.events.length >= max ||
          last.bytes + size > maxBytes ||
          last.precharged > 0 !== r.precharged > 0
        )
          chunks.push((last = { ids: [], events: [], bytes: 0, precharged: 0 }));
        last.ids.push(r.id);
        last.events.push(r.event);
        last.bytes += size;
        last.precharged += r.precharged;
        byAgency.set(r.agency, chunks);
      }
      const key = this.#d.hubKey();
      await Promise.all(
        [...byAgency].map(async ([agency, chunks]) => {
          // One agency's notices in order: the first that finds no room stops the rest.
          for (const chunk of chunks) {
            const notice = {
              notice: newAlertId(),
              hub: key.principal,
              to: agency,
              issuedAt: new Date().toISOString(),
              events: chunk.events,
            };
            const data = encodeEnvelope(await signNotice(notice, key));
            const subject = noticeSubject(agency, key.principal);
            const msgID = statementMsgId(
              'notice',
              `${this.#d.instance}-${chunk.ids[0]}-${chunk.ids[chunk.ids.length - 1]}`,
            );
            const publish = () =>
              js.publish(subject, data, { msgID, timeout: this.#d.publishTimeoutMs });
            if (this.#d.feeds) {
              const bytes = feedMessageBytes(subject, data, msgID);
              // Events another agency's message made were charged to it when they were queued
              // (a partner's receipt pays for the sender's delivered event): the addressee pays
              // only for the rest.
              const r = await this.#d.feeds.admit(agency, bytes, publish, {
                chargeBytes: bytes - chunk.precharged,
              });
              if ('full' in r) {
                waiting.add(agency);
                return;
              }
            } else await publish();
            store.removeOutbox(chunk.ids);
            metrics.notices.inc();
          }
        }),
      );
      if (rows.length < max * 4) break;
    }
    this.#waiting = waiting;
    if (waiting.size > 0) this.#retry();
  }

  #retry(): void {
    if (this.#retryTimer || this.#stopped) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      this.#drainer.kick();
    }, this.#d.retryMs ?? 5000);
    this.#retryTimer.unref();
  }

  /** Waits for a running send; sends nothing more. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    await this.#drainer.stop();
  }
}
