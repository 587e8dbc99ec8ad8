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
}

/**
 * Sends the delivery receipts the inbox queued (one per commit, written in the same
 * transaction as the alerts it covers): signs each with the agency key, publishes it on
 * `ahub.in.<agency>.receipt` with a message id bound to the agency and the signed bytes
 * (core's receiptMsgId), and deletes it once
 * acknowledged. A failed publish is retried; a receipt is never lost, and a resend inside the
 * stream's duplicate window is dropped by JetStream.
 */
export class ReceiptSender {
  readonly #d: ReceiptSenderDeps;
  readonly #drainer: Drainer;

  constructor(deps: ReceiptSenderDeps) {
    this.#d = deps;
    this.#drainer = createDrainer(() => this.#drain(), { log: deps.log, what: 'sending receipts' });
  }

  kick(): void {
    this.#drainer.kick();
  }

  async #drain(): Promise<void> {
    const { store, js } = this.#d;
    for (;;) {
      const pending = store.pendingReceipts(64);
      if (pending.length === 0) return;
      const key = this.#d.signingKey();
      await Promise.all(
        pending.map(async (receipt) => {
          const envelope = encodeEnvelope(await signReceipt(receipt, key));
          await js.publish(receiptSubject(this.#d.agency), envelope, {
            msgID: receiptMsgId(this.#d.agency, receipt.receipt, envelope),
            timeout: this.#d.publishTimeoutMs,
          });
          store.receiptSent(receipt.receipt);
          this.#d.metrics.receiptsSent.inc();
        }),
      );
    }
  }

  async stop(): Promise<void> {
    await this.#drainer.stop();
  }
}
