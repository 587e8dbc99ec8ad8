import { setTimeout as delay } from 'node:timers/promises';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  LEAF_OUTBOX_CONSUMER,
  LEAF_OUTBOX_SEQ_HEADER,
  inboundStreamName,
  inboundSubjects,
  leafJsApiPrefix,
  outboxStreamName,
  parseInboundSubject,
} from '@alert-hub/core';
import {
  STREAM_MAX_MESSAGE_BYTES,
  isStreamFull,
  leafOutboxProgress,
  type Logger,
} from '@alert-hub/runtime';

/** What one fetch from a leaf's outbox asks for at most. */
const BATCH = 256;
/** How long a fetch waits for the outbox to have something. */
const FETCH_EXPIRES_MS = 10_000;
/** After a failure (the leaf unreachable, its outbox not made yet), the next try waits this long. */
const RETRY_MS = 2_000;
/**
 * After a fetch whose every delivery was refused, the next waits this long: a leaf's software
 * answering each pull at once with what is refused would otherwise have the routers pull again
 * and again, as fast as they can.
 */
const REFUSED_PAUSE_MS = 1_000;
/** Refusals of one agency for one reason are logged at most once in this long (all counted). */
const REFUSAL_LOG_MS = 10_000;
/** How long stopping waits for a leaf connection to drain before it closes it. */
const CLOSE_MS = 2_000;
/** How long JetStream on the leaf waits for an ack before it delivers a message again. */
const ACK_WAIT_MS = 30_000;
/** A message the hub could not store (its stream full, a cluster election) comes back after this. */
const NAK_DELAY_MS = 5_000;

/** Why a delivery from a leaf was not taken into the agency's inbound stream. */
export type LeafRefusal = 'reply' | 'subject' | 'headers' | 'size';

/**
 * A delivery larger than this is never taken: the agency's inbound stream at the hub stores
 * nothing larger (`max_msg_size`, headers included). The leaf's operators can store more in their
 * own outbox, and nats-server 2.9.10 does not hold a leaf node to the hub's `max_payload`
 * (docs/security.md). What the stream does store, even over the envelope limit, reaches the
 * routing loop, which refuses it, audited, as it refuses any agency's.
 */
export const LEAF_DELIVERY_MAX_BYTES = STREAM_MAX_MESSAGE_BYTES;

/** JetStream's error when a message is larger than the stream's `max_msg_size`. */
const JS_MESSAGE_TOO_LARGE = 10054;

/** How one agency's outbox is being read. */
export type LeafOutboxState = 'starting' | 'reading' | 'unreachable';

export interface LeafOutboxOptions {
  /**
   * Makes the NATS connection `agency`'s outbox is read on, one per leaf agency: what a leaf
   * sends reaches only its own (a reply nats.js cannot parse ends the reader of the connection it
   * arrives on, and with one connection shared, every leaf's outbox waited on it).
   */
  readonly connect: (agency: string, signal: AbortSignal) => Promise<NatsConnection>;
  /** The hub's JetStream, where the inbound streams are. */
  readonly hub: { readonly js: JetStreamClient; readonly jsm: JetStreamManager };
  readonly agencies: readonly string[];
  readonly log: Logger;
  /** Counts each message stored in the hub, and each delivery refused, by agency. */
  readonly onTaken?: (agency: string) => void;
  readonly onRefused?: (agency: string, why: LeafRefusal) => void;
}

export interface LeafOutboxes {
  /** Each agency's state, for /readyz. */
  states(): Record<string, LeafOutboxState>;
  stop(): Promise<void>;
}

/**
 * Reads each agency's outbox on its leaf node, by the durable consumer {@link LEAF_OUTBOX_CONSUMER}
 * there (through the leaf's JetStream API, which the leaf's account exports to the hub's alone),
 * stores what it delivers in the agency's inbound stream, and acks it once stored.
 *
 * The leaf is the agency's own software: what comes back is checked before anything is done with
 * it. A delivery is acked only on the ack subject of this agency's outbox and consumer (a reply
 * naming another leaf's outbox would ack that agency's message, which the hub then never takes);
 * it is stored only under this agency's inbound subjects. Nothing a leaf sends is answered: a
 * status message (flow control, a heartbeat asking for a reply) gets no reply from the router,
 * where a stream sourcing the leaf answered it from inside the hub's account.
 *
 * Several routers may read the same consumer. A message stored but not acked (a router stopped
 * in between) is delivered again, and the inbound stream's duplicate window, or the router's
 * refusal of an alert routed before, keeps it from being routed twice.
 */
export function startLeafOutboxes(options: LeafOutboxOptions): LeafOutboxes {
  const o: Reader = { ...options, refusalsLogged: new Map() };
  const states: Record<string, LeafOutboxState> = {};
  const abort = new AbortController();
  const loops = o.agencies.map((agency) => {
    states[agency] = 'starting';
    return readOutbox(o, agency, abort.signal, (s) => {
      if (states[agency] !== s)
        o.log[s === 'unreachable' ? 'warn' : 'info'](
          { agency, state: s },
          s === 'reading'
            ? "reading the agency's leaf node: its outbox goes into its inbound stream"
            : "the agency's leaf node does not answer: its alerts wait in its outbox",
        );
      states[agency] = s;
    });
  });
  return {
    states: () => ({ ...states }),
    async stop() {
      abort.abort();
      await Promise.allSettled(loops);
    },
  };
}

/** The options, and when each agency's refusals for each reason were last logged. */
interface Reader extends LeafOutboxOptions {
  readonly refusalsLogged: Map<string, { at: number; since: number }>;
}

async function readOutbox(
  o: Reader,
  agency: string,
  signal: AbortSignal,
  setState: (s: LeafOutboxState) => void,
): Promise<void> {
  const apiPrefix = leafJsApiPrefix(agency);
  const outbox = outboxStreamName(agency);
  let nc: NatsConnection | undefined;
  let batch: { stop(): void } | undefined;
  // Stopping ends a fetch under way at once (it would otherwise wait out its expiry).
  const stopping = () => batch?.stop();
  signal.addEventListener('abort', stopping, { once: true });
  while (!signal.aborted) {
    try {
      if (!nc || nc.isClosed()) nc = await o.connect(agency, signal);
      if (signal.aborted) break;
      const jsm = await jetstreamManager(nc, { apiPrefix, checkAPI: false });
      await ensureConsumer(o, jsm, agency);
      const js = jetstream(nc, { apiPrefix, checkAPI: false });
      const consumer = await js.consumers.get(outbox, LEAF_OUTBOX_CONSUMER);
      setState('reading');
      while (!signal.aborted) {
        const fetched = await consumer.fetch({ max_messages: BATCH, expires: FETCH_EXPIRES_MS });
        batch = fetched;
        if (signal.aborted) fetched.stop();
        const taking: Promise<Taken>[] = [];
        for await (const m of fetched)
          taking.push(
            take(o, agency, m).catch((err: unknown): Taken => {
              // never an unhandled rejection: the message stays unacked and comes back later
              o.log.warn(
                { agency, err: (err as Error).message },
                'a delivery from the leaf outbox could not be taken: delivered again later',
              );
              return 'later';
            }),
          );
        const taken = await Promise.all(taking);
        if (taken.length > 0 && taken.every((t) => t === 'refused'))
          await delay(REFUSED_PAUSE_MS, undefined, { signal }).catch(() => undefined);
      }
    } catch (err) {
      if (signal.aborted) break;
      setState('unreachable');
      o.log.debug({ agency, err: (err as Error).message }, 'leaf outbox: tried again shortly');
      await delay(RETRY_MS, undefined, { signal }).catch(() => undefined);
    }
  }
  signal.removeEventListener('abort', stopping);
  if (nc) await closeWithin(nc, CLOSE_MS);
}

/**
 * Drains `nc` (the acks of what was just taken go out), for at most `ms`: a connection whose
 * reader a leaf ended answers no ping, and its drain would wait for ever.
 */
async function closeWithin(nc: NatsConnection, ms: number): Promise<void> {
  const drained = nc.drain().catch(() => undefined);
  await Promise.race([drained, delay(ms)]);
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}

/**
 * The consumer on the leaf, made when it is not there: after the last outbox message the hub holds
 * ({@link leafOutboxProgress}), so that an upgrade from a hub that sourced the outbox, or a
 * consumer the agency deleted, takes nothing twice.
 */
async function ensureConsumer(o: Reader, jsm: JetStreamManager, agency: string): Promise<void> {
  const outbox = outboxStreamName(agency);
  try {
    await jsm.consumers.info(outbox, LEAF_OUTBOX_CONSUMER);
    return;
  } catch (err) {
    // 10014: no such consumer; anything else (no such stream, no answer) is tried again later
    if (!(err instanceof JetStreamApiError && err.code === 10014)) throw err;
  }
  const after = await leafOutboxProgress(o.hub.jsm, agency);
  await jsm.consumers.add(outbox, {
    durable_name: LEAF_OUTBOX_CONSUMER,
    filter_subject: inboundSubjects(agency),
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ACK_WAIT_MS),
    max_deliver: -1,
    max_ack_pending: 1024,
    ...(after > 0
      ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: after + 1 }
      : { deliver_policy: DeliverPolicy.All }),
  });
  o.log.info(
    { agency, after },
    "the consumer of the agency's outbox was made on its leaf node, after what the hub holds",
  );
}

/** `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>` */
function outboxSequence(agency: string, reply: string | undefined): number | undefined {
  const t = reply?.split('.');
  if (
    t?.length !== 9 ||
    t[0] !== '$JS' ||
    t[1] !== 'ACK' ||
    t[2] !== outboxStreamName(agency) ||
    t[3] !== LEAF_OUTBOX_CONSUMER ||
    !t.slice(4).every((n) => /^[0-9]{1,20}$/.test(n))
  )
    return undefined;
  const seq = Number(t[5]);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}

/** What became of one delivery. */
type Taken = 'taken' | 'refused' | 'later';

async function take(o: Reader, agency: string, m: JsMsg): Promise<Taken> {
  // nats.js's message has its reply subject, unlisted in JsMsg: checked before `ack` publishes to it
  const seq = outboxSequence(agency, (m as JsMsg & { readonly reply?: string }).reply);
  if (seq === undefined) {
    // not acked: an ack goes only where this agency's outbox consumer listens
    refuse(o, agency, 'reply', m.subject);
    return 'refused';
  }
  if (parseInboundSubject(m.subject)?.origin !== agency) {
    refuse(o, agency, 'subject', m.subject);
    m.ack();
    return 'refused';
  }
  // Larger than the inbound stream stores: refused at every delivery, so it is terminated
  // rather than offered again every few seconds (with their own outbox's limit raised, the
  // leaf's operators could otherwise keep the link and the routers busy with it).
  if (m.data.length > LEAF_DELIVERY_MAX_BYTES) {
    refuse(o, agency, 'size', m.subject);
    m.term();
    return 'refused';
  }
  let msgID: string | undefined;
  try {
    // nats.js throws on a header it cannot parse (a name with a space): the leaf's to send
    msgID = m.headers?.get('Nats-Msg-Id') || undefined;
  } catch {
    refuse(o, agency, 'headers', m.subject);
    m.term();
    return 'refused';
  }
  const h = natsHeaders();
  h.set(LEAF_OUTBOX_SEQ_HEADER, String(seq));
  try {
    await o.hub.js.publish(m.subject, m.data, {
      headers: h,
      ...(msgID ? { msgID } : {}),
      expect: { streamName: inboundStreamName(agency) },
    });
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === JS_MESSAGE_TOO_LARGE) {
      // its headers took it over the stream's limit: no later delivery fits either
      refuse(o, agency, 'size', m.subject);
      m.term();
      return 'refused';
    }
    // The hub could not store it now (its stream full, no answer): it stays in the outbox.
    o.log[isStreamFull(err) ? 'warn' : 'debug'](
      { agency, outboxSeq: seq, err: (err as Error).message },
      'a message of the leaf outbox could not be stored at the hub: delivered again later',
    );
    m.nak(NAK_DELAY_MS);
    return 'later';
  }
  m.ack();
  o.onTaken?.(agency);
  return 'taken';
}

function refuse(o: Reader, agency: string, why: LeafRefusal, subject: string): void {
  o.onRefused?.(agency, why);
  // Counted each; logged at most once in 10 s per agency and reason, with how many were not.
  const key = `${agency} ${why}`;
  const last = o.refusalsLogged.get(key);
  const now = Date.now();
  if (last && now - last.at < REFUSAL_LOG_MS) {
    last.since++;
    return;
  }
  o.refusalsLogged.set(key, { at: now, since: 0 });
  o.log.warn(
    {
      agency,
      code: 'ERR_LEAF_DELIVERY_REFUSED',
      why,
      subject: subject.slice(0, 256),
      ...(last && last.since > 0 ? { alsoRefusedSinceLastLine: last.since } : {}),
    },
    why === 'reply'
      ? "a delivery from the agency's leaf node with a reply that is not its outbox consumer's ack: not taken, not acked"
      : why === 'headers'
        ? "a delivery from the agency's leaf node with headers that cannot be read: not taken, terminated"
        : why === 'size'
          ? "a delivery from the agency's leaf node larger than its inbound stream stores: not taken, terminated"
          : "a delivery from the agency's leaf node under a subject not its own: not taken",
  );
}
