import { EventEmitter } from 'node:events';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import {
  NOTICE_TOKEN,
  Streams,
  feedConsumerName,
  openDelivery,
  openNotice,
  parseFeedSubject,
  sha256Hex,
  type PerCopyCountersignaturePolicy,
  type SchemaRegistry,
  type TrustStore,
} from '@alert-hub/core';
import type { BatchWriter, Logger } from '@alert-hub/runtime';
import type { GatewayMetrics } from './metrics.js';
import type { FeedWrite } from './store.js';

export interface FeedDeps {
  readonly agency: string;
  readonly js: JetStreamClient;
  readonly trust: () => TrustStore;
  readonly registry: SchemaRegistry;
  readonly writer: BatchWriter<FeedWrite>;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly maxMessages: number;
  /** The retired per-copy countersignature: accepted during the transition, or refused. */
  readonly perCopy?: PerCopyCountersignaturePolicy;
  /** Called for every message received: the feed is in reach. */
  readonly onContact?: () => void;
}

/**
 * Consumes the agency's durable feed consumer. Every message is opened by core's openDelivery
 * (origin signature, router countersignature for this agency, subject, schema) and then either stored in the
 * inbox or quarantined with its reason; it is acked only after that row is committed. Many
 * messages are in flight at once; nothing awaits per message.
 */
export class FeedConsumer {
  readonly events = new EventEmitter();
  readonly #d: FeedDeps;
  #messages: ConsumerMessages | undefined;
  #stopped = false;
  #consuming = false;
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: FeedDeps) {
    this.#d = deps;
    this.events.setMaxListeners(0);
  }

  /** True once the durable consumer was found and messages are being pulled. */
  get consuming(): boolean {
    return this.#consuming;
  }

  /** Starts consuming; keeps retrying while the consumer does not exist yet (the router creates it). */
  async start(): Promise<void> {
    const name = feedConsumerName(this.#d.agency);
    while (!this.#stopped) {
      try {
        const consumer = await this.#d.js.consumers.get(Streams.Feeds, name);
        this.#messages = await consumer.consume({
          max_messages: this.#d.maxMessages,
          callback: (m) => this.#track(this.#handle(m)),
        });
        this.#consuming = true;
        this.#d.log.info({ consumer: name }, 'consuming feed');
        return;
      } catch (err) {
        this.#d.log.warn(
          { err: (err as Error).message, consumer: name },
          'feed consumer not available yet; retrying',
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#consuming = false;
    await this.#messages?.close();
    await Promise.allSettled([...this.#inFlight]);
  }

  #track(p: Promise<void>): void {
    this.#inFlight.add(p);
    void p.finally(() => this.#inFlight.delete(p));
  }

  async #handle(m: JsMsg): Promise<void> {
    const { metrics, agency, registry, writer, log } = this.#d;
    const started = performance.now();
    const receivedAt = new Date().toISOString();
    metrics.feedReceived.inc();
    this.#d.onContact?.();
    let write: FeedWrite;
    if (parseFeedSubject(m.subject)?.type === NOTICE_TOKEN) {
      await this.#notice(m);
      return;
    }
    const opened = await openDelivery(m.data, m.subject, {
      trust: this.#d.trust(),
      registry,
      recipient: agency,
      ...(this.#d.perCopy ? { perCopy: this.#d.perCopy } : {}),
    }).catch((err: unknown) => {
      log.error(
        { err, streamSeq: m.seq },
        'feed message could not be processed; will be redelivered',
      );
      return undefined;
    });
    if (!opened) {
      m.nak(2000);
      return;
    }
    if (opened.ok) {
      metrics.feedVerified.inc();
      write = {
        kind: 'alert',
        item: {
          alert: opened.alert,
          envelope: m.data,
          agreement: opened.route.agreement,
          onward: opened.route.onward === true,
          streamSeq: m.seq,
          receivedAt,
          envelopeSha256: sha256Hex(m.data),
        },
      };
    } else {
      const err = opened.error;
      metrics.quarantined.inc({ reason: err.code });
      log.warn(
        { streamSeq: m.seq, subject: m.subject, code: err.code },
        'feed message quarantined',
      );
      write = {
        kind: 'quarantine',
        item: {
          subject: m.subject,
          streamSeq: m.seq,
          code: err.code,
          reason: err.message,
          envelope: m.data,
          receivedAt,
        },
      };
    }
    try {
      await writer.enqueue(write);
    } catch (err) {
      log.error({ err, streamSeq: m.seq }, 'inbox write failed; the message will be redelivered');
      m.nak(2000);
      return;
    }
    m.ack();
    metrics.feedSeconds.observe((performance.now() - started) / 1000);
    if (write.kind === 'alert')
      log.info(
        {
          alertId: write.item.alert.id,
          origin: write.item.alert.origin,
          type: write.item.alert.type,
          streamSeq: m.seq,
        },
        'feed alert stored',
      );
  }

  /** A hub notice: verified (hub key, addressed to this agency), then applied; else quarantined. */
  async #notice(m: JsMsg): Promise<void> {
    const { metrics, agency, registry, writer, log } = this.#d;
    const opened = await openNotice(m.data, m.subject, {
      trust: this.#d.trust(),
      registry,
      recipient: agency,
    }).catch((err: unknown) => {
      log.error({ err, streamSeq: m.seq }, 'notice could not be processed; will be redelivered');
      return undefined;
    });
    if (!opened) {
      m.nak(2000);
      return;
    }
    const write: FeedWrite = opened.ok
      ? { kind: 'notice', events: opened.notice.events }
      : {
          kind: 'quarantine',
          item: {
            subject: m.subject,
            streamSeq: m.seq,
            code: opened.error.code,
            reason: opened.error.message,
            envelope: m.data,
            receivedAt: new Date().toISOString(),
          },
        };
    metrics.notices.inc({ result: opened.ok ? 'applied' : 'quarantined' });
    if (!opened.ok)
      log.warn({ streamSeq: m.seq, code: opened.error.code }, 'hub notice quarantined');
    try {
      await writer.enqueue(write);
    } catch (err) {
      log.error({ err, streamSeq: m.seq }, 'notice write failed; it will be redelivered');
      m.nak(2000);
      return;
    }
    m.ack();
  }
}
