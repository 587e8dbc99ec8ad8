import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  AlertHubError,
  ROUTER_CONSUMER,
  Streams,
  countersign,
  deadLetterSubject,
  decodeEnvelope,
  encodeEnvelope,
  decideRoute,
  feedSubject,
  forwardMsgId,
  parseInboundSubject,
  verifyOrigin,
  type Alert,
  type AgreementSet,
  type GeneralJws,
  type SchemaRegistry,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import type { BatchWriter, Logger } from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import type { Outcome, RouterStore } from './store.js';

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
}

/** Deliveries after which an unexpected (non-transient) failure is dead-lettered. */
const MAX_INTERNAL_FAILURES = 5;

function backoffMs(deliveries: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveries - 1));
}

/** True for failures that will pass by themselves (NATS, JetStream, a full stream): retry, never dead-letter. */
function isTransient(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name ?? '';
  return (
    /Timeout|NoResponders|Connection|Closed|JetStream|Request|Nats|Drain|Permission|SqliteError/i.test(
      name,
    ) || (err as { code?: string }).code === 'SQLITE_BUSY'
  );
}

/**
 * The router's consumer of the inbound stream. Per message: decode; verify the origin
 * signature; check that the signer is the agency its subject claims; validate the schema; refuse
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
    try {
      if (!claim)
        throw new RejectError(
          'ERR_SUBJECT_INVALID',
          `${m.subject} is not an inbound subject (ahub.in.<agency>.<type>)`,
        );
      const jws = decodeEnvelope(m.data);
      // The router adds the second signature; an inbound envelope that already has one is not
      // what any gateway sends, and the one it carries would be replaced unread.
      if (jws.signatures.length !== 1)
        throw new RejectError(
          'ERR_ENVELOPE_MALFORMED',
          `an inbound envelope carries exactly one signature, not ${jws.signatures.length}`,
        );
      const { alert } = await verifyOrigin(jws, {
        trust: this.#d.trust(),
        registry: this.#d.registry,
        now: this.#now(),
      });
      alertId = alert.id;
      alertType = alert.type;
      if (alert.origin !== claim.origin) {
        throw new RejectError(
          'ERR_SUBJECT_MISMATCH',
          `signed by ${alert.origin} but published on the subject of ${claim.origin}`,
        );
      }
      if (alert.type !== claim.type)
        throw new RejectError('ERR_SUBJECT_MISMATCH', `a ${alert.type} published as ${claim.type}`);
      const checked = this.#d.registry.checkAlert(alert);
      if (!checked.ok)
        throw new RejectError(
          checked.error.code,
          `${checked.error.message}: ${checked.error.issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`,
        );

      const prior = this.#d.store.routed(alert.id);
      if (prior) {
        if (prior.streamSeq === m.seq) {
          // Committed before a crash or a lost ack: the forwards and the audit are done.
          m.ack();
          metrics.messages.inc({ outcome: 'redelivered' });
          return;
        }
        throw new RejectError(
          'ERR_DUPLICATE_ALERT',
          `alert ${alert.id} was already routed (inbound sequence ${prior.streamSeq}); a replay or a duplicate is never forwarded again`,
        );
      }
      const active = this.#active.get(alert.id);
      if (active !== undefined && active !== m.seq)
        throw new RejectError(
          'ERR_DUPLICATE_ALERT',
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
      if (err instanceof AlertHubError) {
        await this.#reject(
          m,
          claim?.origin,
          alertId,
          alertType ?? claim?.type,
          err.code,
          err.message,
        );
        return;
      }
      const deliveries = m.info.deliveryCount;
      if (!isTransient(err) && deliveries >= MAX_INTERNAL_FAILURES) {
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

  async #route(m: JsMsg, jws: GeneralJws, alert: Alert): Promise<void> {
    const { store, js, metrics } = this.#d;
    const now = this.#now();
    const trust = this.#d.trust();
    const original =
      alert.type === 'retraction' && alert.retracts ? store.routed(alert.retracts) : undefined;
    const decision = decideRoute({
      agreements: this.#d.agreements(),
      alert,
      candidates: trust.agencies,
      now,
      original: original && {
        origin: original.origin,
        deliveries: store.deliveriesOf(alert.retracts!),
      },
    });
    if (decision.kind === 'refuse') throw new RejectError(decision.code, decision.reason);
    const { allowed, denied } = decision;
    const key = this.#d.hubKey();
    const routedAt = now.toISOString();
    const forwards = await Promise.all(
      allowed.map(async (a) => {
        const copy = await countersign(jws, key, {
          recipient: a.recipient,
          agreement: a.agreement,
          routed_at: routedAt,
          onward: a.onward,
          alert_id: alert.id,
        });
        const ack = await js.publish(
          feedSubject(a.recipient, alert.origin, alert.type),
          encodeEnvelope(copy),
          {
            msgID: forwardMsgId(alert.id, a.recipient),
            timeout: this.#d.publishTimeoutMs,
          },
        );
        return { ...a, feedSeq: ack.seq };
      }),
    );
    await this.#d.writer.enqueue({ kind: 'routed', alert, streamSeq: m.seq, forwards, denied });
    m.ack();
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
      });
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
