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
import { isStreamFull, leafOutboxProgress, type Logger } from '@alert-hub/runtime';

/** What one fetch from a leaf's outbox asks for at most. */
const BATCH = 256;
/** How long a fetch waits for the outbox to have something. */
const FETCH_EXPIRES_MS = 10_000;
/** After a failure (the leaf unreachable, its outbox not made yet), the next try waits this long. */
const RETRY_MS = 2_000;
/** How long JetStream on the leaf waits for an ack before it delivers a message again. */
const ACK_WAIT_MS = 30_000;
/** A message the hub could not store (its stream full, a cluster election) comes back after this. */
const NAK_DELAY_MS = 5_000;

/** Why a delivery from a leaf was not taken into the agency's inbound stream. */
export type LeafRefusal = 'reply' | 'subject' | 'headers';

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
export function startLeafOutboxes(o: LeafOutboxOptions): LeafOutboxes {
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

async function readOutbox(
  o: LeafOutboxOptions,
  agency: string,
  signal: AbortSignal,
  setState: (s: LeafOutboxState) => void,
): Promise<void> {
  const apiPrefix = leafJsApiPrefix(agency);
  const outbox = outboxStreamName(agency);
  let nc: NatsConnection | undefined;
  // Stopping ends a fetch under way at once (it would otherwise wait out its expiry).
  const closing = () => void nc?.drain().catch(() => nc?.close());
  signal.addEventListener('abort', closing, { once: true });
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
        const batch = await consumer.fetch({ max_messages: BATCH, expires: FETCH_EXPIRES_MS });
        const taking: Promise<void>[] = [];
        for await (const m of batch)
          taking.push(
            take(o, agency, m).catch((err: unknown) => {
              // never an unhandled rejection: the message stays unacked and comes back later
              o.log.warn(
                { agency, err: (err as Error).message },
                'a delivery from the leaf outbox could not be taken: delivered again later',
              );
            }),
          );
        await Promise.all(taking);
      }
    } catch (err) {
      if (signal.aborted) break;
      setState('unreachable');
      o.log.debug({ agency, err: (err as Error).message }, 'leaf outbox: tried again shortly');
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  }
  signal.removeEventListener('abort', closing);
  await nc?.drain().catch(() => nc?.close());
}

/**
 * The consumer on the leaf, made when it is not there: after the last outbox message the hub holds
 * ({@link leafOutboxProgress}), so that an upgrade from a hub that sourced the outbox, or a
 * consumer the agency deleted, takes nothing twice.
 */
async function ensureConsumer(
  o: LeafOutboxOptions,
  jsm: JetStreamManager,
  agency: string,
): Promise<void> {
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

async function take(o: LeafOutboxOptions, agency: string, m: JsMsg): Promise<void> {
  // nats.js's message has its reply subject, unlisted in JsMsg: checked before `ack` publishes to it
  const seq = outboxSequence(agency, (m as JsMsg & { readonly reply?: string }).reply);
  if (seq === undefined) {
    // not acked: an ack goes only where this agency's outbox consumer listens
    refuse(o, agency, 'reply', m.subject);
    return;
  }
  if (parseInboundSubject(m.subject)?.origin !== agency) {
    refuse(o, agency, 'subject', m.subject);
    m.ack();
    return;
  }
  let msgID: string | undefined;
  try {
    // nats.js throws on a header it cannot parse (a name with a space): the leaf's to send
    msgID = m.headers?.get('Nats-Msg-Id') || undefined;
  } catch {
    refuse(o, agency, 'headers', m.subject);
    m.term();
    return;
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
    // The hub could not store it now (its stream full, no answer): it stays in the outbox.
    o.log[isStreamFull(err) ? 'warn' : 'debug'](
      { agency, outboxSeq: seq, err: (err as Error).message },
      'a message of the leaf outbox could not be stored at the hub: delivered again later',
    );
    m.nak(NAK_DELAY_MS);
    return;
  }
  m.ack();
  o.onTaken?.(agency);
}

function refuse(o: LeafOutboxOptions, agency: string, why: LeafRefusal, subject: string): void {
  o.onRefused?.(agency, why);
  o.log.warn(
    { agency, code: 'ERR_LEAF_DELIVERY_REFUSED', why, subject: subject.slice(0, 256) },
    why === 'reply'
      ? "a delivery from the agency's leaf node with a reply that is not its outbox consumer's ack: not taken, not acked"
      : why === 'headers'
        ? "a delivery from the agency's leaf node with headers that cannot be read: not taken, terminated"
        : "a delivery from the agency's leaf node under a subject not its own: not taken",
  );
}
