import type { JetStreamClient } from '@nats-io/jetstream';
import {
  encodeEnvelope,
  receiptSubject,
  signReceipt,
  receiptMsgId,
  type SigningKey,
} from '@alert-hub/core';
import { createDrainer, type Drainer, type Logger } from '@alert-hub/runtime';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayStore } from './store.js';

export interface ReceiptSenderDeps {
  readonly agency: string;
  readonly js: JetStreamClient;
  readonly store: GatewayStore;
  readonly signingKey: () => SigningKey;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly publishTimeoutMs: number;
  /** How long after a commit the open receipt is sealed and sent (0: at once). */
  readonly coalesceMs: number;
}

/**
 * Sends the delivery receipts the inbox queued (written in the same transaction as the alerts
 * they cover; the commits of one `coalesceMs` window share one receipt): seals the open receipt,
 * signs each sealed one with the agency key once and stores the signed bytes, publishes them on
 * `ahub.in.<agency>.receipt` with a message id bound to the agency and those bytes (core's
 * receiptMsgId), and deletes the receipt once acknowledged. A failed publish is retried; a
 * receipt is never lost, a sealed receipt never changes, every send of it (after a crash too) is
 * the same bytes whatever the key's algorithm, and a resend inside the stream's duplicate window
 * is dropped by JetStream.
 */
export class ReceiptSender {
  readonly #d: ReceiptSenderDeps;
  readonly #drainer: Drainer;

  constructor(deps: ReceiptSenderDeps) {
    this.#d = deps;
    this.#drainer = createDrainer(() => this.#drain(), {
      log: deps.log,
      what: 'sending receipts',
      delayMs: deps.coalesceMs,
    });
  }

  /** After a commit: sends what is owed once the coalescing window has passed. */
  kick(): void {
    this.#drainer.kick();
  }

  async #drain(): Promise<void> {
    const { store, js } = this.#d;
    let sent: string[] = [];
    for (;;) {
      // One transaction: forget what was acknowledged, and seal what commits added meanwhile.
      store.receiptsSent(sent, true);
      sent = [];
      const pending = store.pendingReceipts(64);
      if (pending.length === 0) return;
      const key = this.#d.signingKey();
      const results = await Promise.allSettled(
        pending.map(async ({ receipt, signed }) => {
          // Signed once, and stored before it is first published: every send, after a crash
          // too, publishes the same bytes under the same message id (an ES256 signature, unlike
          // an Ed25519 one, differs each time it is made).
          const envelope =
            signed ??
            store.storeSignedReceipt(
              receipt.receipt,
              encodeEnvelope(await signReceipt(receipt, key)),
            );
          if (!envelope) return; // no longer owed: nothing to send
          await js.publish(receiptSubject(this.#d.agency), envelope, {
            msgID: receiptMsgId(this.#d.agency, receipt.receipt, envelope),
            timeout: this.#d.publishTimeoutMs,
          });
          sent.push(receipt.receipt);
          this.#d.metrics.receiptsSent.inc();
        }),
      );
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) {
        store.receiptsSent(sent);
        throw failed.reason;
      }
    }
  }

  async stop(): Promise<void> {
    await this.#drainer.stop();
  }
}
