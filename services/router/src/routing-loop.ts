import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  AlertHubError,
  ROUTER_CONSUMER,
  Streams,
  RECEIPT_TOKEN,
  ReceiptError,
  ReceiptErrorCode,
  countersign,
  deadLetterSubject,
  decideRoute,
  encodeEnvelope,
  feedSubject,
  forwardMsgId,
  openInbound,
  parseInboundSubject,
  openReceipt,
  referencedAlertId,
  sha256Hex,
  type Alert,
  type AgreementSet,
  type GeneralJws,
  type SchemaRegistry,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import { AuditIntegrityError } from '@alert-hub/audit';
import { isTransientFailure, type BatchWriter, type Logger } from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import type { Outcome, RouterStore } from './store.js';

/** Codes only the router reports, merged into core's ErrorCodeTable. */
export const RouterErrorCode = {
  DuplicateAlert: 'ERR_DUPLICATE_ALERT',
} as const;
type RouterErrorCode = (typeof RouterErrorCode)[keyof typeof RouterErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<RouterErrorCode, true> {}
}

/** A check a message failed: it is dead-lettered with this code and reason, then terminated. */
export class RejectError extends AlertHubError {}

export interface RoutingDeps {
  readonly js: JetStreamClient;
  readonly store: RouterStore;
  readonly writer: BatchWriter<Outcome>;
  readonly trust: () => TrustStore;
  readonly agreements: () => AgreementSet;
  readonly registry: SchemaRegistry;
  readonly hubKey: () => SigningKey;
  readonly metrics: RouterMetrics;
  readonly log: Logger;
  readonly maxMessages: number;
  readonly publishTimeoutMs: number;
  readonly now?: () => Date;
  /** Called after an outcome committed (the notifier sends the notices it queued). */
  readonly onCommitted?: () => void;
}

/** A receipt naming a delivery the router has not committed yet is retried this often before refused. */
const MAX_RECEIPT_WAITS = 4;

/** A receipt names a delivery the router has no record of (yet). */
class NotYetRoutedError extends ReceiptError {}

/** Deliveries after which an unexpected (non-transient) failure is dead-lettered. */
const MAX_INTERNAL_FAILURES = 5;

function backoffMs(deliveries: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveries - 1));
}

/**
 * The router's consumer of the inbound stream. Per message: open it with core's openInbound
 * (decode, verify the origin signature, the subject names the signer, the schema); refuse
 * an alert id routed before; evaluate the agreements; forward a countersigned copy to each
 * allowed partner (message id per recipient); commit the audit records; ack. A message failing a
 * check is dead-lettered with its reason and terminated; a transient failure is retried later.
 */
export class RoutingLoop {
  readonly #d: RoutingDeps;
  #messages: ConsumerMessages | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  /** Alert ids being processed now, with their stream sequence. */
  readonly #active = new Map<string, number>();
  #stopped = false;

  constructor(deps: RoutingDeps) {
    this.#d = deps;
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  async start(): Promise<void> {
    const consumer = await this.#d.js.consumers.get(Streams.Inbound, ROUTER_CONSUMER);
    this.#messages = await consumer.consume({
      max_messages: this.#d.maxMessages,
      callback: (m) => {
        const p = this.#handle(m);
        this.#inFlight.add(p);
        this.#d.metrics.inFlight.set(this.#inFlight.size);
        void p.finally(() => {
          this.#inFlight.delete(p);
          this.#d.metrics.inFlight.set(this.#inFlight.size);
        });
      },
    });
  }

  /** Stops pulling, lets in-flight messages finish (their audit records commit), then returns. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#messages?.close();
    await Promise.allSettled([...this.#inFlight]);
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  async #handle(m: JsMsg): Promise<void> {
    const { metrics, log } = this.#d;
    const started = performance.now();
    const claim = parseInboundSubject(m.subject);
    let alertId: string | undefined;
    let alertType: string | undefined;
    let receiptId: string | undefined;
    try {
      if (claim?.type === RECEIPT_TOKEN) {
        alertType = RECEIPT_TOKEN;
        await this.#receipt(m, claim.origin, (id) => (receiptId = id));
        metrics.processSeconds.observe((performance.now() - started) / 1000);
        return;
      }
      const opened = await openInbound(m.data, m.subject, {
        trust: this.#d.trust(),
        registry: this.#d.registry,
        now: this.#now(),
      });
      alertId = opened.alert?.id;
      alertType = opened.alert?.type;
      if (!opened.ok) throw opened.error;
      const { jws, alert } = opened;

      const prior = this.#d.store.routed(alert.id);
      if (prior) {
        if (prior.streamSeq === m.seq) {
          // Committed before a crash or a lost ack: the forwards and the audit are done.
          m.ack();
          metrics.messages.inc({ outcome: 'redelivered' });
          return;
        }
        throw new RejectError(
          RouterErrorCode.DuplicateAlert,
          `alert ${alert.id} was already routed (inbound sequence ${prior.streamSeq}); a replay or a duplicate is never forwarded again`,
        );
      }
      const active = this.#active.get(alert.id);
      if (active !== undefined && active !== m.seq)
        throw new RejectError(
          RouterErrorCode.DuplicateAlert,
          `alert ${alert.id} is being routed from inbound sequence ${active}`,
        );
      this.#active.set(alert.id, m.seq);
      try {
        await this.#route(m, jws, alert);
      } finally {
        this.#active.delete(alert.id);
      }
      metrics.messages.inc({ outcome: 'routed' });
      metrics.processSeconds.observe((performance.now() - started) / 1000);
    } catch (err) {
      if (err instanceof NotYetRoutedError && m.info.deliveryCount < MAX_RECEIPT_WAITS) {
        // The router may not have committed the forward a fast receipt names: look again later.
        m.nak(1000);
        return;
      }
      if (err instanceof AuditIntegrityError) {
        // The router has stopped: the message goes back for a router whose log is sound.
        m.nak();
        return;
      }
      if (err instanceof AlertHubError) {
        const issues = (err as { issues?: readonly { pointer: string; message: string }[] }).issues;
        await this.#reject(
          m,
          claim?.origin,
          alertId,
          alertType ?? claim?.type,
          err.code,
          issues?.length
            ? `${err.message}: ${issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`
            : err.message,
          receiptId,
        );
        return;
      }
      const deliveries = m.info.deliveryCount;
      if (!isTransientFailure(err) && deliveries >= MAX_INTERNAL_FAILURES) {
        log.error({ err, streamSeq: m.seq }, 'message failed repeatedly; dead-lettering it');
        await this.#reject(
          m,
          claim?.origin,
          alertId,
          alertType,
          'ERR_INTERNAL',
          `processing failed ${deliveries} times: ${(err as Error).message}`,
        );
        return;
      }
      metrics.retries.inc();
      log.warn(
        { err: (err as Error).message, streamSeq: m.seq, alertId, deliveries },
        'routing failed; will retry',
      );
      m.nak(backoffMs(deliveries));
    }
  }

  /**
   * A partner's delivery receipt: verify it (signature by the subject's agency), refuse a replay,
   * check every delivery it names against what the router forwarded to that agency (same alert,
   * same origin, same envelope digest, not receipted before), then commit "delivered" for each.
   */
  async #receipt(m: JsMsg, agency: string, named: (id: string) => void): Promise<void> {
    const { store, metrics } = this.#d;
    const opened = await openReceipt(m.data, m.subject, {
      trust: this.#d.trust(),
      registry: this.#d.registry,
      now: this.#now(),
    });
    if (!opened.ok) throw opened.error;
    const { receipt, key } = opened;
    named(receipt.receipt);
    const seenAt = store.receiptSeq(receipt.receipt);
    if (seenAt !== undefined) {
      if (seenAt === m.seq) {
        m.ack();
        metrics.receipts.inc({ outcome: 'redelivered' });
        return;
      }
      throw new ReceiptError(
        ReceiptErrorCode.Replayed,
        `receipt ${receipt.receipt} was already accepted (inbound sequence ${seenAt})`,
      );
    }
    const ids = new Set<string>();
    for (const d of receipt.deliveries) {
      if (ids.has(d.alertId))
        throw new ReceiptError(ReceiptErrorCode.Invalid, `alert ${d.alertId} is listed twice`);
      ids.add(d.alertId);
      const known = store.delivery(d.alertId, agency);
      if (!known || known.origin !== d.origin)
        throw new NotYetRoutedError(
          ReceiptErrorCode.UnknownDelivery,
          `the hub never forwarded alert ${d.alertId} of ${d.origin} to ${agency}`,
        );
      if (known.envelopeSha256 !== null && known.envelopeSha256 !== d.envelopeSha256)
        throw new ReceiptError(
          ReceiptErrorCode.DigestMismatch,
          `alert ${d.alertId}: the digest is not that of the envelope forwarded to ${agency}`,
        );
      if (known.deliveredAt !== null)
        throw new ReceiptError(
          ReceiptErrorCode.Replayed,
          `alert ${d.alertId} was already receipted by ${agency} (receipt ${known.receiptId})`,
        );
    }
    await this.#d.writer.enqueue({
      kind: 'receipt',
      streamSeq: m.seq,
      receipt: receipt.receipt,
      agency,
      kid: key.kid,
      committedAt: receipt.committedAt,
      receiptSha256: sha256Hex(m.data),
      deliveries: receipt.deliveries,
    });
    m.ack();
    this.#d.onCommitted?.();
    metrics.receipts.inc({ outcome: 'accepted' });
    metrics.delivered.inc(receipt.deliveries.length);
  }

  async #route(m: JsMsg, jws: GeneralJws, alert: Alert): Promise<void> {
    const { store, js, metrics } = this.#d;
    const now = this.#now();
    const trust = this.#d.trust();
    const ref = referencedAlertId(alert);
    const originalState = ref === undefined ? undefined : store.routed(ref);
    const plan = decideRoute({
      agreements: this.#d.agreements(),
      alert,
      candidates: trust.agencies,
      now,
      original:
        ref === undefined || !originalState
          ? undefined
          : { origin: originalState.origin, deliveries: store.deliveriesOf(ref) },
    });
    if (plan.kind === 'refuse') throw new RejectError(plan.code, plan.reason);
    const { allowed, denied } = plan;
    const key = this.#d.hubKey();
    // The time the inbound stream stored the alert, not the clock now: a copy forwarded again
    // after a crash is then byte-identical (Ed25519 is deterministic), so the recipient's
    // receipt digest matches whichever forward it received.
    const routedAt = new Date(Math.floor(Number(m.info.timestampNanos) / 1e6)).toISOString();
    const forwards = await Promise.all(
      allowed.map(async (a) => {
        const copy = await countersign(jws, key, {
          recipient: a.recipient,
          agreement: a.agreement,
          routed_at: routedAt,
          onward: a.onward,
          alert_id: alert.id,
        });
        const bytes = encodeEnvelope(copy);
        const forwardedAt = new Date().toISOString();
        const ack = await js.publish(feedSubject(a.recipient, alert.origin, alert.type), bytes, {
          msgID: forwardMsgId(alert.id, a.recipient),
          timeout: this.#d.publishTimeoutMs,
        });
        return { ...a, feedSeq: ack.seq, envelopeSha256: sha256Hex(bytes), forwardedAt };
      }),
    );
    await this.#d.writer.enqueue({
      kind: 'routed',
      alert,
      streamSeq: m.seq,
      forwards,
      denied,
      ...(plan.operation ? { operation: plan.operation } : {}),
      ...(alert.type === 'outcome' && originalState ? { answersOrigin: originalState.origin } : {}),
    });
    m.ack();
    this.#d.onCommitted?.();
    metrics.forwards.inc(forwards.length);
    for (const d of denied) metrics.denials.inc({ reason: d.reason });
    this.#d.log.info(
      {
        alertId: alert.id,
        origin: alert.origin,
        type: alert.type,
        streamSeq: m.seq,
        forwarded: forwards.map((f) => f.recipient),
        denied: denied.length,
      },
      'alert routed',
    );
  }

  async #reject(
    m: JsMsg,
    claimedOrigin: string | undefined,
    alertId: string | undefined,
    type: string | undefined,
    code: string,
    reason: string,
    receiptId?: string,
  ): Promise<void> {
    const { js, writer, metrics, log } = this.#d;
    try {
      const h = natsHeaders();
      h.set('Ahub-Reason-Code', code);
      h.set('Ahub-Reason', reason.replace(/[\r\n]+/g, ' ').slice(0, 1000));
      h.set('Ahub-Original-Subject', m.subject);
      h.set('Ahub-Original-Seq', String(m.seq));
      const ack = await js.publish(deadLetterSubject(claimedOrigin), m.data, {
        msgID: `dlq:${m.seq}`,
        headers: h,
        timeout: this.#d.publishTimeoutMs,
      });
      await writer.enqueue({
        kind: 'rejected',
        streamSeq: m.seq,
        subject: m.subject,
        claimedOrigin,
        alertId,
        type,
        code,
        reason,
        deadLetterSeq: ack.seq,
        // The subject's agency learns its message's fate; an unknown agency has no feed.
        notify:
          claimedOrigin && this.#d.trust().agencies.includes(claimedOrigin)
            ? claimedOrigin
            : undefined,
        receipt: receiptId,
      });
      this.#d.onCommitted?.();
    } catch (err) {
      log.warn(
        { err: (err as Error).message, streamSeq: m.seq },
        'dead-lettering failed; will retry',
      );
      m.nak(backoffMs(m.info.deliveryCount));
      return;
    }
    // term() without a reason: nats-server 2.9 redelivers on term("reason") (2.10.4+ only).
    m.term();
    metrics.messages.inc({ outcome: 'rejected' });
    metrics.rejections.inc({ reason: code });
    log.warn(
      { streamSeq: m.seq, subject: m.subject, alertId, code, reason },
      'message rejected and dead-lettered',
    );
  }

  #now(): Date {
    return (this.#d.now ?? (() => new Date()))();
  }
}
