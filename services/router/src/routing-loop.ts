import { createHash } from 'node:crypto';
import type { Consumer, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  AlertHubError,
  DEFAULT_MAX_ENVELOPE_BYTES,
  ErrorCode,
  INBOUND_ALL,
  ROUTER_CONSUMER,
  Streams,
  inboundStreamAgency,
  inboundStreamName,
  subjectsOverlap,
  RECEIPT_TOKEN,
  ReceiptError,
  ReceiptErrorCode,
  copyEncoder,
  countersignDecision,
  deadLetterSubject,
  decideRoute,
  feedSubject,
  forwardMsgId,
  decodeEnvelope,
  inboundMsgId,
  isAlertId,
  openInbound,
  parseInboundSubject,
  parseJsonBytes,
  timeOf,
  openReceipt,
  receiptMsgId,
  referencedAlertId,
  sha256Hex,
  type Alert,
  type AgreementSet,
  type DeliveryReceipt,
  type Allowed,
  type RoutedTo,
  type GeneralJws,
  type SchemaRegistry,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import { AuditIntegrityError } from '@alert-hub/audit';
import { isTransientFailure, unhandled, type BatchWriter, type Logger } from '@alert-hub/runtime';
import { CopyBudget, copyCost, sendWithin } from './copy-budget.js';
import type { FeedPublisher } from './feed-publisher.js';
import { feedMessageBytes, type HeldCopies } from './held-copies.js';
import { InboundPuller, mayHoldMessages, type PullSource } from './inbound-puller.js';
import type { RouterMetrics } from './metrics.js';
import { checkReceiptMsgId } from './receipt-msg-id.js';
import { bounded, recordedSubject, recordedType, refusalReason } from './refusal-text.js';
import type { KnownInboundStream, Outcome, RouterStore } from './store.js';

/** Codes only the router reports, merged into core's ErrorCodeTable. */
export const RouterErrorCode = {
  DuplicateAlert: 'ERR_DUPLICATE_ALERT',
  /** An agency sent an alert under the id of one another origin's the hub delivered to it. */
  AlertIdReused: 'ERR_ALERT_ID_REUSED',
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
  /** Inbound messages held at most (fetched, not yet ended). */
  readonly maxMessages: number;
  /** The router consumer's ack wait: held messages are kept alive well within it. */
  readonly ackWaitMs: number;
  /** Memory for copies in flight, in bytes (see {@link copyCost}): bounds the router by copies. */
  readonly copyBudgetBytes: number;
  readonly publishTimeoutMs: number;
  /** Publishes the countersigned copies and collects JetStream's acknowledgements. */
  readonly feeds: Pick<FeedPublisher, 'publish'>;
  /** Bounds on `issuedAt` (see the router's `freshness` configuration). */
  readonly freshness?: { readonly maxAgeMs: number; readonly maxFutureSkewMs: number };
  readonly now?: () => Date;
  /** Holds the copies of recipients whose feed has no room (absent: a full feed is retried). */
  readonly held?: HeldCopies;
  /** Called after an outcome committed (the notifier sends the notices it queued). */
  readonly onCommitted?: () => void;
  /** False while no new inbound message may be taken (held ones finish); call `wake()` after. */
  readonly mayRoute?: () => boolean;
  /** How often an inbound consumer not provisioned yet is looked for (default `DEFAULT_MISSING_RETRY_MS`). */
  readonly missingRetryMs?: number;
  /**
   * True while an agency's byte budget over the feed stream's max age is spent
   * (`OriginBudget.spent`): its inbound stream is not read meanwhile (its alerts wait there);
   * call `wake()` when it has room again.
   */
  readonly originSpent?: (agency: string) => boolean;
  /** Dead letters an operator requeued: their message id stands in for the inbound one. */
  readonly requeues?: {
    accepts(msgId: string, subject: string, data: Uint8Array): boolean;
  };
}

/** A receipt naming a delivery the router has not committed yet is retried this often before refused. */
const MAX_RECEIPT_WAITS = 4;

/** A receipt names a delivery the router has no record of (yet). */
class NotYetRoutedError extends ReceiptError {}

/** Deliveries after which an unexpected (non-transient) failure is dead-lettered. */
const MAX_INTERNAL_FAILURES = 5;

/**
 * Attempts at dead-lettering a refused message. After them the message ends anyway: audited as
 * refused (with why the dead letter failed), terminated, counted in
 * `ahub_router_dead_letter_failures_total`. A refused message never holds an ack slot for ever.
 */
const MAX_DEAD_LETTER_ATTEMPTS = 5;

/** A message fetched while routing is paused goes back for this long. */
const PAUSED_NAK_MS = 1000;

/** A message retried this many times is stuck: `/readyz` says so until it ends. */
export const STUCK_DELIVERIES = 3;

/**
 * Largest original copied whole into a dead letter. Anything larger (it was refused as too
 * large) is kept as its SHA-256 and its first {@link DEAD_LETTER_PREFIX_BYTES} bytes, so a dead
 * letter always fits the dead-letter stream, whose messages may be this plus headers.
 */
export const DEAD_LETTER_MAX_COPY_BYTES = DEFAULT_MAX_ENVELOPE_BYTES;
export const DEAD_LETTER_PREFIX_BYTES = 4096;

/** An alert id as the id formats allow, or undefined: nothing else from a refused message is recorded. */
const ALERT_ID =
  /^(?:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|[0-7][0-9A-HJKMNP-TV-Z]{25})$/;

/**
 * The alert id a refused message claims in its (unverified) origin header, if it has one of the
 * alert id formats; recorded in the audit log marked unverified, so `audit trace <id>` finds it.
 */
export function claimedAlertId(data: Uint8Array): string | undefined {
  try {
    const jws = decodeEnvelope(data);
    const h = parseJsonBytes(Buffer.from(jws.signatures[0]!.protected, 'base64url')) as {
      alert_id?: unknown;
    };
    return typeof h.alert_id === 'string' && ALERT_ID.test(h.alert_id) ? h.alert_id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An inbound message's identity across streams, `<stream>:<sequence>`: each agency's inbound
 * stream numbers its messages from 1, so a sequence alone names one message per stream.
 */
export function inboundKey(m: JsMsg): string {
  return `${m.info.stream}:${m.seq}`;
}

/**
 * JetStream message id of a message's dead letter: a redelivery refused again is de-duplicated.
 * `dlq:<sequence>` for the legacy shared stream (as before per-agency streams, so a redelivery
 * across the upgrade is still one), `dlq:<stream>:<sequence>` for an agency's own stream, whose
 * numbers repeat other agencies'.
 */
export function deadLetterMsgId(m: JsMsg): string {
  return m.info.stream === Streams.Inbound ? `dlq:${m.seq}` : `dlq:${m.info.stream}:${m.seq}`;
}

function backoffMs(deliveries: number): number {
  return Math.min(30_000, 500 * 2 ** Math.max(0, deliveries - 1));
}

/**
 * What identifies a receipt being recorded: its id, `<agency>\n<receipt id>`, then each delivery
 * it lists, `<agency>\n<origin>\n<alert id>` (a delivery is the origin's alert to that agency).
 */
function receiptKeys(agency: string, receipt: DeliveryReceipt): string[] {
  return [
    `${agency}\n${receipt.receipt}`,
    ...receipt.deliveries.map((d) => `${agency}\n${d.origin}\n${d.alertId}`),
  ];
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
  #puller: InboundPuller | undefined;
  readonly #budget: CopyBudget;
  /** Held messages past opening: forwarding (what they take from the budget is known) or not forwarding at all. */
  readonly #placed = new Set<JsMsg>();
  /** What an alert's copies cost, on average lately (0 until the first alert is routed). */
  #alertCost = 0;
  /** Alert ids being processed now, with their inbound message ({@link inboundKey}). */
  readonly #active = new Map<string, string>();
  /** Messages handed back for a retry, by {@link inboundKey}, with their delivery count. */
  readonly #retrying = new Map<string, number>();
  /**
   * Receipts being recorded, from their check against the store until their write settles
   * (committed or failed), under their id and under each delivery they list
   * ({@link receiptKeys}): what settles when the write does. Another receipt naming one of them
   * waits for it, then is checked again (docs/protocol.md §9.1).
   */
  readonly #receipting = new Map<string, Promise<void>>();
  #stopped = false;
  /**
   * Per inbound stream, the latest message delivered since it was opened, and when JetStream
   * stored it (nanoseconds): recorded every {@link SEEN_RECORD_MS} and at stop as what identifies
   * the stream (inboundStreamRemade), under the creation time it was opened with.
   */
  readonly #lastSeen = new Map<string, { seq: number; storedNs: bigint }>();
  /** Per inbound stream, its creation time when the router last opened it. */
  readonly #openedCreated = new Map<string, string>();
  #seenTimer: NodeJS.Timeout | undefined;
  /** The legacy stream was found drained (and no longer receiving): not read again. */
  #legacyDrained = false;
  /** Counts {@link refreshSources} calls: only the latest one sets the sources. */
  #sourcesGeneration = 0;

  constructor(deps: RoutingDeps) {
    this.#d = deps;
    this.#budget = new CopyBudget(deps.copyBudgetBytes, () => {
      deps.metrics.copyBytesInFlight.set(this.#budget.used);
      this.#puller?.wake();
    });
  }

  /** Inbound messages being processed. */
  get inFlight(): number {
    return this.#puller?.held ?? 0;
  }

  /** Messages retried at least {@link STUCK_DELIVERIES} times that have not ended yet. */
  get stuck(): number {
    let n = 0;
    for (const d of this.#retrying.values()) if (d >= STUCK_DELIVERIES) n++;
    return n;
  }

  #retry(m: JsMsg): void {
    this.#retrying.set(inboundKey(m), m.info.deliveryCount);
    this.#d.metrics.retries.inc();
    m.nak(backoffMs(m.info.deliveryCount));
  }

  #ended(m: JsMsg): void {
    this.#retrying.delete(inboundKey(m));
  }

  async start(): Promise<void> {
    const sources = await this.#sources();
    // Stopped meanwhile (the router failing closed as it starts): nothing is started.
    if (this.#stopped) return;
    this.#puller = new InboundPuller({
      sources,
      maxMessages: this.#d.maxMessages,
      ackWaitMs: this.#d.ackWaitMs,
      room: (held) => this.#room(held),
      handle: (m) => this.#handle(m).finally(() => this.#placed.delete(m)),
      log: this.#d.log,
      onHeld: (held) => this.#d.metrics.inFlight.set(held),
      ...(this.#d.missingRetryMs === undefined ? {} : { missingRetryMs: this.#d.missingRetryMs }),
    });
    this.#puller.start();
    // A router that runs long without opening a stream again keeps its record recent: the one
    // of its last open may have aged out of the stream by the next open (limits retention).
    this.#seenTimer = setInterval(() => this.#recordSeen(), SEEN_RECORD_MS).unref();
  }

  /** Records the latest message seen of each inbound stream, or of `only` (see {@link #lastSeen}). */
  #recordSeen(only?: string): void {
    for (const [stream, seen] of this.#lastSeen) {
      if (only !== undefined && stream !== only) continue;
      const created = this.#openedCreated.get(stream);
      if (created === undefined) continue;
      try {
        this.#d.store.noteInboundAnchor(stream, created, seen.seq, seen.storedNs);
      } catch (err) {
        this.#d.log.warn(
          { err: (err as Error).message, stream },
          'recording the inbound stream read failed',
        );
      }
    }
  }

  /**
   * Reads the inbound stream of every agency in the trust store now (after a reload: a new
   * agency's stream is read from its next turn), and the legacy shared stream if it still holds
   * anything.
   */
  async refreshSources(): Promise<void> {
    if (this.#stopped || !this.#puller) return;
    const generation = ++this.#sourcesGeneration;
    const sources = await this.#sources();
    // Reloads may overlap: a refresh begun earlier that finishes later read an older trust store
    // and must not replace the newer list.
    if (generation !== this.#sourcesGeneration || this.#stopped) return;
    this.#puller.setSources(sources);
  }

  /** The names of the inbound streams read now. */
  get sources(): string[] {
    return this.#puller?.sources ?? [];
  }

  /**
   * The router's consumer on each agency's inbound stream; then on the inbound stream of any
   * agency no longer in the trust store while it holds messages not handled (they were accepted
   * before the agency was removed: they are refused, audited and dead-lettered, not left unread);
   * then on the legacy stream (`AHUB_INBOUND`, before each agency had its own) when it exists and
   * was not found drained.
   */
  async #sources(): Promise<PullSource[]> {
    const { js } = this.#d;
    const trusted = this.#d.trust().agencies;
    const spent = this.#d.originSpent;
    const sources: PullSource[] = trusted.map((agency) => {
      const name = inboundStreamName(agency);
      return {
        name,
        consumer: () => this.#openInbound(name),
        ...(spent ? { paused: () => spent(agency) } : {}),
      };
    });
    for (const name of await this.#formerAgencyStreams(new Set(trusted))) {
      if (!(await mayHoldMessages(js, name, ROUTER_CONSUMER, true))) continue;
      sources.push({
        name,
        consumer: () => this.#openInbound(name),
        // Read again from the next reload if anything arrives after (its gateway still sending).
        drained: async (consumer) => unhandled(await consumer.info()) === 0,
      });
    }
    if (
      this.#legacyDrained ||
      !(await mayHoldMessages(js, Streams.Inbound, ROUTER_CONSUMER, false))
    )
      return sources;
    sources.push({
      name: Streams.Inbound,
      consumer: () => js.consumers.get(Streams.Inbound, ROUTER_CONSUMER),
      drained: async (consumer) => {
        if (unhandled(await consumer.info()) > 0) return false;
        // Still receiving (a hub not migrated yet): read for ever.
        const stream = await (await js.streams.get(Streams.Inbound)).info();
        if (stream.config.subjects?.some((subject) => subjectsOverlap(subject, INBOUND_ALL)))
          return false;
        this.#legacyDrained = true;
        return true;
      },
    });
    return sources;
  }

  /** The inbound streams of agencies not in `trusted` (removed from the trust store). */
  async #formerAgencyStreams(trusted: ReadonlySet<string>): Promise<string[]> {
    try {
      const names: string[] = [];
      const jsm = await this.#d.js.jetstreamManager();
      for await (const name of jsm.streams.names()) {
        const agency = inboundStreamAgency(name);
        if (agency !== undefined && !trusted.has(agency)) names.push(name);
      }
      return names;
    } catch (err) {
      this.#d.log.warn(
        { err: (err as Error).message },
        'listing the inbound streams failed; those of agencies no longer trusted are read after the next reload',
      );
      return [];
    }
  }

  /**
   * The router's consumer of an agency's inbound stream, once the store knows which stream it is.
   * Asked whenever the puller (re)opens the stream: at start, after a reload, and after a pull
   * failed (deleting a stream ends the pull under way). A stream deleted and made again under
   * the same name numbers from 1 again: the store relabels the earlier stream's rows before
   * anything of the new one is read (`RouterStore.noteInboundStream`). Whether it was made again
   * is {@link inboundStreamRemade}'s answer, not its creation time's alone.
   */
  async #openInbound(name: string): Promise<Consumer> {
    const { js, store, log } = this.#d;
    // What this router saw of the stream since it last opened it, recorded first: the record it
    // is about to be compared with is then the latest (not up to a minute old, which a short max
    // age may have removed from the stream).
    this.#recordSeen(name);
    const consumer = await js.consumers.get(name, ROUTER_CONSUMER);
    const stream = await js.streams.get(name);
    const info = await stream.info();
    const { created } = info;
    const known = store.knownInboundStream(name);
    const remade =
      known !== undefined &&
      known.created !== created &&
      (await inboundStreamRemade(known, info.state, (seq) => stream.getMessage({ seq })));
    this.#lastSeen.delete(name);
    this.#openedCreated.set(name, created);
    const lastNs = info.state.last_seq > 0 ? timeNanos(info.state.last_ts) : undefined;
    const before = store.noteInboundStream(
      name,
      { created, anchorSeq: lastNs === undefined ? 0 : info.state.last_seq, anchorNs: lastNs },
      remade ? known.created : undefined,
    );
    if (before !== undefined)
      log.warn(
        { stream: name, created, before },
        "inbound stream made again since it was last read: its earlier messages are kept in the router's records under the stream name with its earlier creation time",
      );
    return consumer;
  }

  /**
   * How many inbound messages to fetch now. None while copies wait for the budget (the router
   * is busy to its bound); otherwise as many as the free budget holds at the recent cost per
   * alert, less what the held messages not yet forwarding will take.
   */
  #room(held: number): number {
    if (this.#budget.waiting > 0) return 0;
    if (this.#d.mayRoute?.() === false) return 0;
    const unplaced = held - this.#placed.size;
    if (this.#alertCost === 0) return unplaced === 0 ? 1 : 0;
    const free = this.#budget.capacity - this.#budget.used - unplaced * this.#alertCost;
    const n = Math.floor(free / this.#alertCost);
    return n > 0 ? n : unplaced === 0 ? 1 : 0;
  }

  /**
   * Forwards the copies of one alert within the copy budget, one share per copy in flight.
   * `forwardCopy` signs and publishes one copy; the results come back in recipient order.
   */
  async #forwardAll<R>(
    m: JsMsg,
    allowed: readonly RoutedTo[],
    forwardCopy: (a: RoutedTo) => Promise<R>,
  ): Promise<R[]> {
    const cost = copyCost(m.data.byteLength);
    const alertCost = Math.max(1, allowed.length) * cost;
    this.#alertCost =
      this.#alertCost === 0 ? alertCost : Math.round(0.8 * this.#alertCost + 0.2 * alertCost);
    this.#placed.add(m);
    this.#puller?.wake(); // its cost is known now: room for others may have appeared
    return sendWithin(this.#budget, allowed, cost, forwardCopy);
  }

  /** Room, or permission to route, may have come back: look again. */
  wake(): void {
    this.#puller?.wake();
  }

  /**
   * `agency`'s budget in the feed stream is spent: the pull of its inbound stream under way ends
   * now (no new one starts while `originSpent` says so), so its further alerts wait there.
   */
  pauseOrigin(agency: string): void {
    this.#puller?.interruptSource(inboundStreamName(agency));
  }

  /** Routing has paused: the pull under way ends now rather than deliver more to send back. */
  interrupt(): void {
    this.#puller?.interrupt();
  }

  /** Stops pulling, lets in-flight messages finish (their audit records commit), then returns. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#puller?.stop();
    clearInterval(this.#seenTimer);
    this.#recordSeen();
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  async #handle(m: JsMsg): Promise<void> {
    const { metrics, log } = this.#d;
    if (this.#d.mayRoute?.() === false) {
      // Fetched by a pull opened before routing paused: back to the stream, untouched, for
      // after (no new pull is opened meanwhile).
      m.nak(PAUSED_NAK_MS);
      return;
    }
    const started = performance.now();
    const seen = this.#lastSeen.get(m.info.stream);
    if (seen === undefined || m.seq > seen.seq)
      this.#lastSeen.set(m.info.stream, {
        seq: m.seq,
        storedNs: BigInt(Math.round(m.info.timestampNanos)),
      });
    const claim = parseInboundSubject(m.subject);
    // An agency's inbound stream holds what that agency sent, and a message in it is that
    // agency's whatever its subject says: a stream that sources an agency's leaf node stores the
    // subject the leaf delivers, and an agency running its own leaf software chooses it (another
    // agency's subject included). Its refusal, dead letter and notice are then the stream's
    // agency's, never the agency its subject names. Only the legacy shared stream is read by subject.
    const streamAgency = inboundStreamAgency(m.info.stream);
    const origin = streamAgency ?? claim?.origin;
    let alertId: string | undefined;
    let alertType: string | undefined;
    let receiptId: string | undefined;
    try {
      if (claim && streamAgency !== undefined && claim.origin !== streamAgency)
        throw new RejectError(
          ErrorCode.SubjectMismatch,
          `a message in ${streamAgency}'s inbound stream is ${streamAgency}'s: its subject names another agency`,
        );
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
        ...(this.#d.freshness ? { maxClockSkewMs: this.#d.freshness.maxFutureSkewMs } : {}),
      });
      // Signed by its origin but not yet checked by the schema, the id is the sender's text like
      // any other member: kept (audit log, dead letter, log) only when it is of the id's form.
      alertId = isAlertId(opened.alert?.id) ? opened.alert.id : undefined;
      alertType = opened.alert?.type;
      if (!opened.ok) throw opened.error;
      const { jws, alert } = opened;
      // The router adds the second signature; an inbound envelope that already has one is not
      // what any gateway sends, and the one it carries would be replaced unread.
      if (jws.signatures.length !== 1)
        throw new RejectError(
          'ERR_ENVELOPE_MALFORMED',
          `an inbound envelope carries exactly one signature, not ${jws.signatures.length}`,
        );
      // Age is measured against when JetStream stored the message, not the router's clock: a
      // backlog after an outage is not refused for waiting.
      const storedAt = Math.floor(m.info.timestampNanos / 1e6);
      const maxAge = this.#d.freshness?.maxAgeMs;
      if (maxAge !== undefined && storedAt - timeOf(alert.issuedAt) > maxAge)
        throw new RejectError(
          'ERR_ISSUED_AT_TOO_OLD',
          `issued-at ${alert.issuedAt} is more than ${Math.round(maxAge / 1000)} s before the hub received it`,
        );

      // JetStream de-duplicates by Nats-Msg-Id across the whole stream: an id another agency
      // could choose would let it shadow this alert. The id must be the one bound to this envelope,
      // or the requeue id of a dead letter an operator requeued (bound to the same bytes).
      const msgId = m.headers?.get('Nats-Msg-Id') ?? '';
      if (
        msgId !== inboundMsgId(alert.origin, alert.id, m.data) &&
        !this.#d.requeues?.accepts(msgId, m.subject, m.data)
      )
        throw new RejectError(
          'ERR_MSG_ID_MISMATCH',
          'Nats-Msg-Id is not the one this envelope must carry (<origin>:<alert id>:<digest>)',
        );

      const prior = this.#d.store.routed(alert.origin, alert.id);
      if (prior) {
        if (prior.stream === m.info.stream && prior.streamSeq === m.seq) {
          // Committed before a crash or a lost ack: the forwards and the audit are done.
          m.ack();
          this.#ended(m);
          metrics.messages.inc({ outcome: 'redelivered' });
          return;
        }
        throw new RejectError(
          RouterErrorCode.DuplicateAlert,
          `alert ${alert.id} was already routed (inbound sequence ${prior.streamSeq} of ${prior.stream}); a replay or a duplicate is never forwarded again`,
        );
      }
      // An id is the origin's own: an agency that sends an alert under the id of one another origin
      // sent it would make that id ambiguous for every partner that received both (an outcome or
      // a receipt naming it could no longer say which is meant), so it is refused.
      const from = this.#d.store
        .routedByAnyOrigin(alert.id)
        .find(
          (r) =>
            r.origin !== alert.origin &&
            this.#d.store.delivery(r.origin, alert.id, alert.origin) !== undefined,
        );
      if (from)
        throw new RejectError(
          RouterErrorCode.AlertIdReused,
          `${alert.origin} was delivered an alert with id ${alert.id} from ${from.origin}: an agency's alert ids are its own`,
        );
      const identity = `${alert.origin}:${alert.id}`;
      const active = this.#active.get(identity);
      if (active !== undefined && active !== inboundKey(m))
        throw new RejectError(
          RouterErrorCode.DuplicateAlert,
          `alert ${alert.id} is being routed from inbound message ${active}`,
        );
      this.#active.set(identity, inboundKey(m));
      try {
        await this.#route(m, jws, alert);
      } finally {
        this.#active.delete(identity);
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
          origin,
          alertId,
          // A type is the sender's text until the schema accepts it: recorded only when known.
          recordedType(alertType ?? claim?.type, this.#d.registry.alertTypes),
          err.code,
          // Where and why, never what the refused alert held (refusal-text.ts).
          refusalReason(err.message, issues),
          receiptId,
        );
        return;
      }
      const deliveries = m.info.deliveryCount;
      if (!isTransientFailure(err) && deliveries >= MAX_INTERNAL_FAILURES) {
        log.error(
          { err, stream: m.info.stream, streamSeq: m.seq },
          'message failed repeatedly; dead-lettering it',
        );
        await this.#reject(
          m,
          origin,
          alertId,
          recordedType(alertType, this.#d.registry.alertTypes),
          'ERR_INTERNAL',
          `processing failed ${deliveries} times: ${(err as Error).message}`,
        );
        return;
      }
      log.warn(
        {
          err: (err as Error).message,
          stream: m.info.stream,
          streamSeq: m.seq,
          alertId,
          deliveries,
        },
        'routing failed; will retry',
      );
      this.#retry(m);
    }
  }

  /**
   * A partner's delivery receipt: verify it (signature by the subject's agency), refuse a replay,
   * check every delivery it names against what the router forwarded to that agency (same alert,
   * same origin, same envelope digest, not receipted before), then commit "delivered" for each.
   * A receipt with the id of one being recorded, or listing one of its deliveries, waits for that
   * write and is checked again: one of two is refused `ERR_RECEIPT_REPLAYED`, as one after the other.
   */
  async #receipt(m: JsMsg, agency: string, named: (id: string) => void): Promise<void> {
    const { metrics, log } = this.#d;
    this.#placed.add(m); // a receipt forwards nothing
    const opened = await openReceipt(m.data, m.subject, {
      trust: this.#d.trust(),
      registry: this.#d.registry,
      now: this.#now(),
    });
    if (!opened.ok) throw opened.error;
    const { receipt, key } = opened;
    named(receipt.receipt);
    // The router handles several messages at once: a receipt with this id, or one listing one of
    // these deliveries, may be on its way to the store now. This one waits until that write
    // settled and is checked again, so it meets what the other recorded (refused as a replay) or,
    // the other's write failed, what it did not.
    for (;;) {
      const checked = this.#checkReceipt(m, agency, receipt);
      if (checked === 'redelivered') {
        m.ack();
        this.#ended(m);
        metrics.receipts.inc({ outcome: 'redelivered' });
        return;
      }
      if (checked === 'checked') break;
      await checked;
    }
    // Nothing is awaited between the check and here: no other receipt was checked meanwhile.
    const keys = receiptKeys(agency, receipt);
    const write = this.#d.writer.enqueue({
      kind: 'receipt',
      stream: m.info.stream,
      streamSeq: m.seq,
      receipt: receipt.receipt,
      agency,
      kid: key.kid,
      committedAt: receipt.committedAt,
      receiptSha256: sha256Hex(m.data),
      deliveries: receipt.deliveries,
    });
    // Released as the write settles, whichever way, before anything waiting on it looks again.
    const release = () => {
      for (const k of keys) this.#receipting.delete(k);
    };
    const settled = write.then(release, release);
    for (const k of keys) this.#receipting.set(k, settled);
    await write;
    m.ack();
    this.#ended(m);
    this.#d.onCommitted?.();
    // Another router sharing the database may have recorded some of these deliveries first,
    // past its own check: the store then records them once (no second entry or notice), and
    // only what this receipt recorded counts.
    let recorded = 0;
    for (const d of receipt.deliveries) {
      const by = this.#d.store.delivery(d.origin, d.alertId, agency)?.receiptId;
      if (by === undefined || by === receipt.receipt) recorded++;
    }
    if (recorded < receipt.deliveries.length)
      log.warn(
        {
          stream: m.info.stream,
          streamSeq: m.seq,
          deliveries: receipt.deliveries.length,
          recorded,
        },
        'receipt recorded without deliveries another receipt recorded first (a router sharing the database?): no delivered entry or notice for those',
      );
    if (recorded > 0) metrics.receipts.inc({ outcome: 'accepted' });
    metrics.delivered.inc(recorded);
  }

  /**
   * A receipt's checks against the router's records, in the order of docs/protocol.md §9.1:
   * throws the first failure; 'redelivered' for a receipt accepted before from this message (or
   * its resend); a promise when a receipt with its id or one of its deliveries is being recorded
   * now (settles when that write does); 'checked' when it may be recorded.
   */
  #checkReceipt(
    m: JsMsg,
    agency: string,
    receipt: DeliveryReceipt,
  ): 'checked' | 'redelivered' | Promise<void> {
    const { store } = this.#d;
    const seen = store.receiptSeq(agency, receipt.receipt);
    if (seen !== undefined) {
      // The same message again (a redelivery), or the same bytes under the same message id, as
      // the agency's gateway resends them after the duplicate window (a resend after a crash,
      // docs/protocol.md §9.1): nothing new. Any other copy is a replay.
      if (
        (seen.stream === m.info.stream && seen.streamSeq === m.seq) ||
        (seen.receiptSha256 === sha256Hex(m.data) &&
          m.headers?.get('Nats-Msg-Id') === receiptMsgId(agency, receipt.receipt, m.data))
      )
        return 'redelivered';
      throw new ReceiptError(
        ReceiptErrorCode.Replayed,
        `receipt ${receipt.receipt} was already accepted (inbound sequence ${seen.streamSeq} of ${seen.stream})`,
      );
    }
    const [receiptKey, ...deliveryKeys] = receiptKeys(agency, receipt);
    const sameId = this.#receipting.get(receiptKey!);
    if (sameId) return sameId;
    checkReceiptMsgId(m, agency, receipt.receipt, this.#d.requeues);
    // The whole list first (docs/protocol.md §9.1, in this order): no alert listed twice.
    const ids = new Set<string>();
    for (const d of receipt.deliveries) {
      const identity = `${d.origin}:${d.alertId}`;
      if (ids.has(identity))
        throw new ReceiptError(ReceiptErrorCode.Invalid, `alert ${d.alertId} is listed twice`);
      ids.add(identity);
    }
    for (const [i, d] of receipt.deliveries.entries()) {
      const known = store.delivery(d.origin, d.alertId, agency);
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
      const recording = this.#receipting.get(deliveryKeys[i]!);
      if (recording) return recording;
    }
    return 'checked';
  }

  async #route(m: JsMsg, jws: GeneralJws, alert: Alert): Promise<void> {
    const { store, metrics } = this.#d;
    const now = this.#now();
    const trust = this.#d.trust();
    // Alert identity is (origin, id). A retraction retracts its origin's own alert; another
    // agency's alert with that id makes it a retraction of someone else's alert (refused). An
    // outcome answers an alert its sender received: of the alerts with that id delivered to the
    // sender, the one from `answersOrigin` (a member of outcome version 2 only; read whatever the
    // version, since the schema already refused it in version 1), or the only one. Several and
    // none named is refused: an agency may have learned an id elsewhere than from the hub (one it
    // was delivered it may not reuse, #handle), and must not receive another's outcome by it.
    const ref = referencedAlertId(alert);
    let originalState: { origin: string; deliveries: Allowed[] } | undefined;
    if (ref !== undefined && alert.type === 'retraction') {
      const own = store.routed(alert.origin, ref);
      const other = own ? undefined : store.routedByAnyOrigin(ref)[0];
      originalState = own
        ? { origin: own.origin, deliveries: store.deliveriesOf(own.origin, ref) }
        : other && { origin: other.origin, deliveries: [] };
    } else if (ref !== undefined) {
      const received = store
        .routedByAnyOrigin(ref)
        .filter((r) => alert.answersOrigin === undefined || r.origin === alert.answersOrigin)
        .map((r) => ({ origin: r.origin, deliveries: store.deliveriesOf(r.origin, ref) }))
        .filter((r) => r.deliveries.some((d) => d.recipient === alert.origin));
      if (received.length > 1)
        throw new RejectError(
          ErrorCode.OutcomeAmbiguous,
          `${alert.origin} received alert ${ref} from ${received.map((r) => r.origin).join(', ')}: the outcome must name the one it answers in answersOrigin (outcome version 2)`,
        );
      originalState = received[0];
    }
    const plan = decideRoute({
      agreements: this.#d.agreements(),
      alert,
      candidates: trust.agencies,
      now,
      original: originalState,
    });
    if (plan.kind === 'refuse') throw new RejectError(plan.code, plan.reason);
    const { allowed, denied } = plan;
    const key = this.#d.hubKey();
    // The time the inbound stream stored the alert, not the clock now: a copy forwarded again
    // after a crash is then byte-identical (Ed25519 is deterministic), so the recipient's
    // receipt digest matches whichever forward it received.
    const routedAt = new Date(Math.floor(Number(m.info.timestampNanos) / 1e6)).toISOString();
    // One countersignature for the whole decision (docs/protocol.md §3.2): each copy carries it
    // with its own leaf and path. A copy is encoded and published only once the copy budget has
    // room for it: an alert to 108 partners never materialises 108 encoded copies at once.
    const { copies, root, leaves } = await countersignDecision(jws, key, {
      origin: alert.origin,
      alertId: alert.id,
      routedAt,
      grants: allowed,
    });
    const copyFor = new Map(allowed.map((a, i) => [a.recipient, copies[i]!]));
    // The copies share everything up to the router's signature: encoded and hashed once.
    const encodeCopy = copyEncoder(jws);
    const forwardCopy = async (a: RoutedTo) => {
      const { bytes, sha256: envelopeSha256 } = encodeCopy(copyFor.get(a.recipient)!);
      const forwardedAt = new Date().toISOString();
      const subject = feedSubject(a.recipient, alert.origin, alert.type);
      const msgID = forwardMsgId(alert.origin, alert.id, a.recipient);
      const publish = () => this.#d.feeds.publish(subject, bytes, msgID);
      // A recipient whose feed has no room gets its copy held, never everybody's routing stopped.
      const r = this.#d.held
        ? await this.#d.held.send(
            a.recipient,
            feedMessageBytes(subject, bytes, msgID),
            publish,
            alert.origin,
          )
        : { ack: await publish() };
      if ('held' in r)
        return {
          held: {
            ...a,
            subject,
            msgId: msgID,
            envelope: bytes,
            envelopeSha256,
            reason: r.held,
            ...('forBudget' in r && r.forBudget ? { forBudget: true } : {}),
          },
        };
      return {
        forward: { ...a, feedSeq: r.ack.seq, envelopeSha256, forwardedAt },
      };
    };
    const sent = await this.#forwardAll(m, allowed, forwardCopy);
    const forwards = sent.flatMap((s) => (s.forward ? [s.forward] : []));
    const held = sent.flatMap((s) => (s.held ? [s.held] : []));
    await this.#d.writer.enqueue({
      kind: 'routed',
      alert,
      stream: m.info.stream,
      streamSeq: m.seq,
      forwards,
      denied,
      ...(held.length ? { held } : {}),
      routeTree: { root, leaves },
      ...(plan.operation ? { operation: plan.operation } : {}),
      ...(alert.type === 'outcome' && originalState ? { answersOrigin: originalState.origin } : {}),
    });
    m.ack();
    this.#ended(m);
    this.#d.onCommitted?.();
    metrics.forwards.inc({ origin: alert.origin }, forwards.length);
    // One increment per reason, not per refused agency (a sender's near misses may be hundreds).
    const byReason = new Map<string, number>();
    for (const d of denied) byReason.set(d.reason, (byReason.get(d.reason) ?? 0) + 1);
    for (const [reason, n] of byReason) metrics.denials.inc({ reason }, n);
    this.#d.log.info(
      {
        alertId: alert.id,
        origin: alert.origin,
        type: alert.type,
        stream: m.info.stream,
        streamSeq: m.seq,
        forwarded: forwards.map((f) => f.recipient),
        ...(held.length ? { held: held.map((h) => h.recipient) } : {}),
        denied: denied.length,
      },
      'alert routed',
    );
  }

  async #reject(
    m: JsMsg,
    claimedOrigin: string | undefined,
    verifiedAlertId: string | undefined,
    type: string | undefined,
    code: string,
    reason: string,
    receiptId?: string,
  ): Promise<void> {
    const { js, writer, metrics, log } = this.#d;
    // One bounded reason for the dead letter, the audit log, the notice and the log line.
    reason = bounded(reason);
    const recordedAs = recordedSubject(m.subject, this.#d.registry.alertTypes);
    this.#placed.add(m); // a refusal forwards nothing
    const alertId = verifiedAlertId;
    const sha256 = createHash('sha256').update(m.data).digest('hex');
    let deadLetterSeq: number | undefined;
    let deadLetterError: string | undefined;
    try {
      const h = natsHeaders();
      h.set('Ahub-Reason-Code', code);
      h.set('Ahub-Reason', reason.replace(/[\r\n]+/g, ' '));
      h.set('Ahub-Original-Subject', m.subject);
      h.set('Ahub-Original-Stream', m.info.stream);
      h.set('Ahub-Original-Seq', String(m.seq));
      h.set('Ahub-Original-Sha256', sha256);
      h.set('Ahub-Original-Bytes', String(m.data.byteLength));
      const whole = m.data.byteLength <= DEAD_LETTER_MAX_COPY_BYTES;
      if (!whole) h.set('Ahub-Truncated', String(DEAD_LETTER_PREFIX_BYTES));
      const ack = await js.publish(
        deadLetterSubject(claimedOrigin),
        whole ? m.data : m.data.slice(0, DEAD_LETTER_PREFIX_BYTES),
        { msgID: deadLetterMsgId(m), headers: h, timeout: this.#d.publishTimeoutMs },
      );
      deadLetterSeq = ack.seq;
    } catch (err) {
      deadLetterError = (err as Error).message;
      if (m.info.deliveryCount < MAX_DEAD_LETTER_ATTEMPTS) {
        log.warn(
          {
            err: deadLetterError,
            stream: m.info.stream,
            streamSeq: m.seq,
            deliveries: m.info.deliveryCount,
          },
          'dead-lettering failed; will retry',
        );
        this.#retry(m);
        return;
      }
      metrics.deadLetterFailures.inc();
      log.error(
        { err: deadLetterError, stream: m.info.stream, streamSeq: m.seq, code },
        'dead-lettering failed repeatedly; the message is refused without a dead letter',
      );
    }
    try {
      await writer.enqueue({
        kind: 'rejected',
        stream: m.info.stream,
        streamSeq: m.seq,
        subject: m.subject,
        auditSubject: recordedAs,
        claimedOrigin,
        alertId: verifiedAlertId,
        // Unverified, the id is only what the message claims: recorded apart, as claimed.
        claimedId: verifiedAlertId === undefined ? claimedAlertId(m.data) : undefined,
        type,
        code,
        reason:
          deadLetterError === undefined
            ? reason
            : `${reason} (not dead-lettered: ${deadLetterError}; original sha256 ${sha256})`,
        ...(deadLetterSeq === undefined ? {} : { deadLetterSeq }),
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
        { err: (err as Error).message, stream: m.info.stream, streamSeq: m.seq },
        'audit write failed; will retry',
      );
      this.#retry(m);
      return;
    }
    // term() without a reason: nats-server 2.9 redelivers on term("reason") (2.10.4+ only).
    m.term();
    this.#ended(m);
    metrics.messages.inc({ outcome: 'rejected' });
    metrics.rejections.inc({ reason: code });
    log.warn(
      {
        stream: m.info.stream,
        streamSeq: m.seq,
        subject: recordedAs,
        alertId,
        code,
        reason,
        deadLetterSeq,
      },
      deadLetterSeq === undefined
        ? 'message rejected without a dead letter'
        : 'message rejected and dead-lettered',
    );
  }

  #now(): Date {
    return (this.#d.now ?? (() => new Date()))();
  }
}

/** How often the latest message seen of each inbound stream is recorded (and at stop). */
const SEEN_RECORD_MS = 60_000;

/** How far apart two readings of one message's stored time may be (a number's precision). */
const ANCHOR_TOLERANCE_NS = 1000n;

/** A JetStream time (RFC 3339, up to nanoseconds) as nanoseconds since the epoch. */
function timeNanos(ts: string): bigint | undefined {
  const m = /^(.*?:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  const ms = m ? Date.parse(`${m[1]}${m[3]}`) : NaN;
  if (!m || Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * Whether the inbound stream the router recorded as `known` was deleted and made again under its
 * name, now that its creation time differs. The creation time alone does not say so:
 * nats-server 2.9.10 rewrites it on a stream never deleted (recovering a stream at start, its file
 * store takes "now" as creation time, and the next update of the stream, provisioning at every
 * start of the router, writes it into meta.inf; after the following restart the stream reports
 * it). What does say so, the stream being `state` now:
 * - the latest message the router saw of it (`anchorSeq`: its last when the router opened it, or
 *   the latest delivered before the router stopped), still held: the same stream stored it at
 *   the same time; another time (or none) is another stream;
 * - sequences gone backwards (below that message, or below the highest decided): another stream;
 * - no message held at or below the highest decided: none can be taken for a decided one, so it
 *   is treated as the same;
 * - otherwise (that message aged out, or none was seen): made again, as the
 *   creation time says; a new message is never skipped as decided.
 */
export async function inboundStreamRemade(
  known: KnownInboundStream,
  state: { readonly first_seq: number; readonly last_seq: number },
  messageTime: (seq: number) => Promise<{ readonly timestamp: string } | null>,
): Promise<boolean> {
  if (state.last_seq < known.anchorSeq || state.last_seq < known.decidedUpTo) return true;
  if (known.anchorSeq > 0 && known.anchorNs !== undefined && state.first_seq <= known.anchorSeq) {
    const held = await messageTime(known.anchorSeq);
    const heldNs = held === null ? undefined : timeNanos(held.timestamp);
    if (heldNs === undefined) return true;
    // nats.js gives a delivered message's time as a JavaScript number (to 256 ns)
    const apart = heldNs - known.anchorNs;
    return apart > ANCHOR_TOLERANCE_NS || apart < -ANCHOR_TOLERANCE_NS;
  }
  if (state.last_seq === 0 || state.first_seq > known.decidedUpTo) return false;
  return true;
}
