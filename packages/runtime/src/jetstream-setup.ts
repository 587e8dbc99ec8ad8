import {
  jetstreamManager,
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type ConsumerConfig,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { TimeoutError, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
import {
  FeedsInterestReplicasError,
  FeedsWorkQueueError,
  InboundStreamsNotProvisionedError,
} from './errors.js';
import {
  AUDIT_CHECKPOINTS_ALL,
  AUDIT_COSIGNATURES_ALL,
  DEAD_LETTER_ALL,
  DEFAULT_MAX_ENVELOPE_BYTES,
  FEEDS_ALL,
  INBOUND_ALL,
  LEGACY_INBOUND_SUBJECTS,
  ROUTER_CONSUMER,
  Streams,
  feedConsumerName,
  feedFilter,
  inboundStreamName,
  inboundSubjects,
  LEAF_OUTBOX_SEQ_HEADER,
  outboxStreamName,
} from '@alert-hub/core';

/** Limits of the hub's streams; every one refuses new messages when full rather than drop old ones. */
export interface StreamLimits {
  /** How long alerts stay in the inbound and feed streams (a partner offline this long loses nothing). */
  readonly maxAgeMs: number;
  /**
   * Each agency's inbound stream (`AHUB_IN_<agency>`): its own alerts and receipts, routed or
   * not, for `maxAgeMs`. A full one refuses only that agency's new messages. Also the size of a
   * leaf node's outbox stream.
   */
  readonly inboundMaxBytes: number;
  /** Agencies whose inbound stream has another size than {@link inboundMaxBytes}. */
  readonly inboundMaxBytesFor: Readonly<Record<string, number>>;
  readonly feedsMaxBytes: number;
  readonly deadLetterMaxBytes: number;
  /** The audit checkpoint stream, and the cosignature stream. */
  readonly auditMaxBytes: number;
  /**
   * JetStream de-duplication window. Every message id in it costs nats-server memory, so it is
   * kept at JetStream's default of 2 minutes. It covers a client's immediate retry; anything
   * later (a redelivery after a long outage, a replay) is caught by the router's table of routed
   * alert ids and by the gateways' inboxes, which refuse an alert id they already hold.
   */
  readonly duplicateWindowMs: number;
  /**
   * Copies of every stream (1 on a single server, 3 on a three-node cluster). Provisioning
   * creates the streams with this many and moves existing ones to it (nats-server 2.9 scales a
   * stream's replicas up and down through a stream update).
   */
  readonly replicas: number;
  /**
   * Retention of the feed stream. `interest` (the default on one replica): a copy is removed once
   * every consumer whose filter covers it acknowledged it; only its recipient's consumer does, and
   * its gateway acks only after storing the copy in its inbox (the inbox is then the replay
   * window). `limits` (the default on several replicas, where nats-server 2.9.10 cannot run
   * interest safely): every copy stays for `maxAgeMs`, read or not. A work queue is never created: on nats-server
   * 2.9 any consumer's ack removes a work queue's message, whatever the consumer's filter, so an
   * agency could remove other agencies' copies through its own ack subject. nats-server cannot
   * change the retention of an existing stream: an existing stream keeps its own, and
   * provisioning reports it (see the operations guide, "Feed streams"), except a work queue,
   * which it refuses ({@link FeedsWorkQueueError}).
   */
  readonly feedsRetention: FeedsRetention;
}

/** Retention of the feed stream (see {@link StreamLimits.feedsRetention}). */
export type FeedsRetention = 'interest' | 'limits';

/**
 * The feed stream's retention when none is configured: `interest` on one replica (a copy leaves
 * once its recipient stored it, so what the stream holds is what partners have not taken yet, which
 * the router bounds per recipient), `limits` on several (interest is unsafe there on nats-server
 * 2.9.10: docs/security.md).
 */
export function defaultFeedsRetention(replicas: number): FeedsRetention {
  return replicas > 1 ? 'limits' : 'interest';
}

function retentionPolicy(r: FeedsRetention): RetentionPolicy {
  return r === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxAgeMs: 30 * 24 * 3600_000,
  // Per agency. The router's default stated load (10 alerts/s of 4 KiB for 30 days) is about
  // 100 GiB for the whole hub, 1 GiB each split over 100 agencies. nats-server reserves every
  // stream's max_bytes against its max_file_store (by default 75% of the free disk): 100
  // agencies need about 103 GiB of it with the other streams.
  inboundMaxBytes: 1024 ** 3,
  inboundMaxBytesFor: {},
  feedsMaxBytes: 2 * 1024 ** 3,
  deadLetterMaxBytes: 256 * 1024 ** 2,
  auditMaxBytes: 256 * 1024 ** 2,
  duplicateWindowMs: 2 * 60_000,
  replicas: 1,
  feedsRetention: defaultFeedsRetention(1),
};

/**
 * {@link DEFAULT_STREAM_LIMITS} with `limits` over them; the feed stream's retention, unless given,
 * follows the replicas ({@link defaultFeedsRetention}).
 */
function withDefaultLimits(limits: Partial<StreamLimits> = {}): StreamLimits {
  const replicas = limits.replicas ?? DEFAULT_STREAM_LIMITS.replicas;
  return {
    ...DEFAULT_STREAM_LIMITS,
    ...limits,
    feedsRetention: limits.feedsRetention ?? defaultFeedsRetention(replicas),
  };
}

/** Room in a dead letter for the router's headers (reason at most 1000 characters, subject, digest). */
export const DEAD_LETTER_HEADROOM_BYTES = 8192;

/**
 * Largest dead letter: the refused message (whole up to the envelope limit, otherwise a bounded
 * prefix) plus the router's headers. The dead-letter stream's `max_msg_size`.
 */
export const DEAD_LETTER_MAX_BYTES = DEFAULT_MAX_ENVELOPE_BYTES + 4096 + DEAD_LETTER_HEADROOM_BYTES;

/**
 * Dead letters each origin keeps (the stream's `max_msgs_per_subject`; the subject is
 * `ahub.dlq.<origin>`, the agency whose inbound subject carried the message): as many as let
 * every agency, and `unknown`, hold that many of the largest dead letters at once within
 * `deadLetterMaxBytes`. An origin at its limit evicts its own oldest dead letter, so one agency's
 * junk never fills the stream for the others; at least 1.
 */
export function deadLettersPerOrigin(deadLetterMaxBytes: number, agencies: number): number {
  return Math.max(
    1,
    Math.floor(deadLetterMaxBytes / ((Math.max(0, agencies) + 1) * DEAD_LETTER_MAX_BYTES)),
  );
}

/** How long the router or a gateway may hold a message before JetStream redelivers it. */
export const DEFAULT_ACK_WAIT_MS = 30_000;

/** The byte limit of `agency`'s inbound stream: its override, or the common one. */
export function inboundMaxBytesOf(limits: StreamLimits, agency: string): number {
  return Object.hasOwn(limits.inboundMaxBytesFor, agency)
    ? limits.inboundMaxBytesFor[agency]!
    : limits.inboundMaxBytes;
}

/** The largest cosignature message the stream stores: a signed note (64 KiB) and its headers. */
export const AUDIT_COSIGNATURE_MAX_BYTES = 64 * 1024 + 4096;

/**
 * The largest message the agencies' streams store (`max_msg_size`, headers included): the
 * envelope limit, and room for the headers.
 */
export const STREAM_MAX_MESSAGE_BYTES = DEFAULT_MAX_ENVELOPE_BYTES + 4096;

/** What every stream of the hub has in common. */
function commonStreamConfig(limits: StreamLimits) {
  return {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: limits.replicas,
    max_msg_size: STREAM_MAX_MESSAGE_BYTES,
    duplicate_window: nanos(limits.duplicateWindowMs),
    // Every stream holds evidence the audit log points to: what an agency sent, what it was
    // forwarded, what was refused. Nobody (not even the router's user) may delete or purge
    // messages; they leave only by age or size limit. nats-server lets an update set these but
    // never clear them.
    deny_delete: true,
    deny_purge: true,
  };
}

/**
 * The inbound stream of `agency` (see {@link inboundStreamName}): only its own subjects, its own
 * byte limit, and no source. An agency's leaf node is read by the routers
 * (`services/router/src/leaf-outbox.ts`), no longer sourced: a stream sourcing the leaf answered
 * the leaf's forged flow control from inside the hub's account.
 */
function inboundStreamConfig(
  limits: StreamLimits,
  agency: string,
): Partial<StreamConfig> & { name: string } {
  return {
    ...commonStreamConfig(limits),
    name: inboundStreamName(agency),
    subjects: [inboundSubjects(agency)],
    // always named: nats.js merges an update into the stream's config, so the source of a leaf
    // an older hub gave the stream needs the empty list to go
    sources: [],
    max_age: nanos(limits.maxAgeMs),
    max_bytes: inboundMaxBytesOf(limits, agency),
  };
}

function streamConfigs(limits: StreamLimits, agencies = 0): Partial<StreamConfig>[] {
  const common = commonStreamConfig(limits);
  return [
    {
      ...common,
      // Interest: a copy leaves once every consumer whose filter covers it acked it, and only its
      // recipient's consumer covers it (nats-server 2.9.10 checks the other consumers' filters
      // on every ack, stream.go checkInterest). Acks are not deletes: deny_delete still holds.
      retention: retentionPolicy(limits.feedsRetention),
      name: Streams.Feeds,
      subjects: [FEEDS_ALL],
      max_age: nanos(limits.maxAgeMs),
      max_bytes: limits.feedsMaxBytes,
    },
    {
      ...common,
      // A dead letter carries the refused message (whole up to the envelope limit, otherwise a
      // bounded prefix) plus the router's headers: always within this.
      max_msg_size: DEAD_LETTER_MAX_BYTES,
      // One subject per origin, each at most its share: an origin's new dead letter evicts its
      // own oldest (nats-server 2.9 does so even under discard: new), never another origin's.
      max_msgs_per_subject: deadLettersPerOrigin(limits.deadLetterMaxBytes, agencies),
      name: Streams.DeadLetter,
      subjects: [DEAD_LETTER_ALL],
      max_age: nanos(3 * limits.maxAgeMs),
      max_bytes: limits.deadLetterMaxBytes,
    },
    {
      // The router's signed audit checkpoints, and nothing else: no agency may publish here (it
      // could otherwise evict them, or take their message ids first). Kept for a year; when full
      // the oldest go first. Listed before the cosignature stream: an older hub's stream also
      // held the cosignature subjects, which must leave it before another stream can take them.
      ...common,
      discard: DiscardPolicy.Old,
      name: Streams.Audit,
      subjects: [AUDIT_CHECKPOINTS_ALL],
      max_age: nanos(365 * 24 * 3600_000),
      max_bytes: limits.auditMaxBytes,
    },
    {
      // Witnesses' cosignatures: the last one per subject (one witness, one log). An agency may
      // publish only its own subjects of the hub's logs (its NATS permissions), each holding one
      // message of at most a note's size: it replaces its own cosignature and can neither evict
      // nor crowd out anyone else's (`discard: new`: a full stream refuses, never drops).
      ...common,
      name: Streams.AuditCosignatures,
      subjects: [AUDIT_COSIGNATURES_ALL],
      max_msgs_per_subject: 1,
      max_msg_size: AUDIT_COSIGNATURE_MAX_BYTES,
      max_age: nanos(365 * 24 * 3600_000),
      max_bytes: limits.auditMaxBytes,
    },
  ];
}

/**
 * Room kept above what a stream holds when provisioning would lower its byte limit below that:
 * publishes stored between reading the stream and updating it must fit too.
 */
const SHRINK_HEADROOM_BYTES = 16 * 1024 * 1024;

/** A stream whose byte limit provisioning did not lower as far as configured. */
export interface ClampedStream {
  readonly stream: string;
  /** The configured `max_bytes`. */
  readonly configured: number;
  /** The `max_bytes` it keeps: what it holds plus {@link SHRINK_HEADROOM_BYTES}, at most its former limit. */
  readonly kept: number;
  /** What it holds. */
  readonly bytes: number;
}

/**
 * Creates or updates a stream; returns the retention it has (an existing stream keeps its own)
 * and, when its byte limit was not lowered as far as configured, what it kept. nats-server 2.9.10
 * applies a lower `max_bytes` on the update by deleting the stream's OLDEST messages, whatever
 * `discard: new` says: a limit is therefore never lowered below what the stream holds (plus room
 * for what arrives meanwhile); the next provisioning lowers it further once messages aged out.
 */
async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<{ retention: RetentionPolicy; clamped?: ClampedStream }> {
  let info: StreamInfo;
  try {
    info = await jsm.streams.info(cfg.name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) {
      await jsm.streams.add(cfg);
      return { retention: cfg.retention ?? RetentionPolicy.Limits };
    }
    throw err;
  }
  const existing = info.config.retention;
  // Interest on several replicas is unsafe on nats-server 2.9.10: a stream made
  // on one replica with interest is never scaled up (security.md).
  const replicas = cfg.num_replicas ?? info.config.num_replicas;
  if (cfg.name === Streams.Feeds && existing === RetentionPolicy.Interest && replicas > 1)
    throw new FeedsInterestReplicasError(replicas);
  let clamped: ClampedStream | undefined;
  const wanted = cfg.max_bytes;
  if (wanted !== undefined && wanted > 0 && wanted < info.state.bytes + SHRINK_HEADROOM_BYTES) {
    const former = info.config.max_bytes > 0 ? info.config.max_bytes : Number.MAX_SAFE_INTEGER;
    const kept = Math.max(wanted, Math.min(former, info.state.bytes + SHRINK_HEADROOM_BYTES));
    if (kept > wanted && info.state.bytes > 0)
      clamped = { stream: cfg.name, configured: wanted, kept, bytes: info.state.bytes };
  }
  // nats-server 2.9 refuses to change a stream's retention: everything else is brought up to date.
  const update = {
    ...cfg,
    retention: existing,
    ...(clamped ? { max_bytes: clamped.kept } : {}),
  };
  await jsm.streams.update(cfg.name, update);
  return { retention: existing, ...(clamped ? { clamped } : {}) };
}

/** What provisioning found: the feed stream's actual retention. */
export interface ProvisionReport {
  readonly feedsRetention: RetentionPolicy;
  /** True when the feed stream has another retention than the configured one (created before). */
  readonly feedsRetentionMismatch: boolean;
  /** With `migrateFeeds`: why the feed stream was not migrated (copies not read yet). */
  readonly feedsNotMigrated?: string;
  /** With `migrateFeeds`: true when the feed stream was deleted and created anew. */
  readonly feedsMigrated?: boolean;
  /** Dead letters each origin keeps ({@link deadLettersPerOrigin}). */
  readonly deadLettersPerOrigin: number;
  /**
   * The shared inbound stream of an older hub (`AHUB_INBOUND`), when it exists: provisioning took
   * its subjects and sources away; it keeps its messages, and its `router` consumer reads them.
   * `unhandled`: messages that consumer has not acknowledged yet (all of them without one).
   */
  readonly legacyInbound?: { readonly messages: number; readonly unhandled: number };
  /**
   * Streams whose byte limit was not lowered as far as configured: they hold more than (or nearly)
   * the configured limit, which nats-server 2.9.10 would enforce by deleting their oldest messages.
   */
  readonly clamped: readonly ClampedStream[];
}

/**
 * Deletes a feed stream whose retention is not `wanted` when every feed consumer has read and
 * acknowledged everything, so that provisioning creates it anew; otherwise says why not. Only
 * read copies are lost: what nobody has taken yet is never deleted.
 */
async function migrateFeeds(
  jsm: JetStreamManager,
  wanted: RetentionPolicy,
): Promise<{ migrated: boolean; why?: string }> {
  let retention: RetentionPolicy;
  try {
    retention = (await jsm.streams.info(Streams.Feeds)).config.retention;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) return { migrated: false };
    throw err;
  }
  if (retention === wanted) return { migrated: false };
  const unread: string[] = [];
  for await (const c of jsm.consumers.list(Streams.Feeds))
    if (c.num_pending + c.num_ack_pending > 0)
      unread.push(`${c.name}: ${c.num_pending + c.num_ack_pending}`);
  if (unread.length > 0)
    return { migrated: false, why: `copies not read yet (${unread.join(', ')})` };
  await jsm.streams.delete(Streams.Feeds);
  return { migrated: true };
}

/**
 * Readies an existing dead-letter stream without a per-origin limit (made by an earlier version)
 * for one. nats-server 2.9.10 trims the subjects already over a `max_msgs_per_subject` only when
 * an update lowers it from a positive value (filestore.go UpdateConfig); from unlimited it would
 * keep a flooded origin's excess for ever. So the limit is first set one above the target; the
 * update that follows lowers it, and each origin keeps its newest dead letters.
 */
async function prepareDeadLetterLimit(jsm: JetStreamManager, perOrigin: number): Promise<void> {
  let config: StreamConfig;
  try {
    config = (await jsm.streams.info(Streams.DeadLetter)).config;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) return;
    throw err;
  }
  if (config.max_msgs_per_subject > 0) return;
  await jsm.streams.update(Streams.DeadLetter, { ...config, max_msgs_per_subject: perOrigin + 1 });
}

/** Room the shared stream of an older hub keeps at least, once it takes no new messages. */
const LEGACY_MIN_BYTES = 1024 * 1024;

/** The shared inbound stream of an older hub, as provisioning left it. */
interface LegacyInbound {
  readonly messages: number;
  readonly unhandled: number;
}

/**
 * The shared inbound stream of an older hub (`AHUB_INBOUND`), or undefined on a hub without one;
 * `holdsInbound`: it still holds `ahub.in.>` (not migrated yet: every agency still publishes to it).
 */
async function findLegacyInbound(
  jsm: JetStreamManager,
): Promise<{ info: StreamInfo; holdsInbound: boolean } | undefined> {
  try {
    const info = await jsm.streams.info(Streams.Inbound);
    return { info, holdsInbound: info.config.subjects.includes(INBOUND_ALL) };
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) return undefined;
    throw err;
  }
}

/**
 * Takes `ahub.in.>` and the leaf sources away from the shared inbound stream of an older hub
 * (`AHUB_INBOUND`), so that each agency's own stream can hold its subjects (nats-server refuses
 * two streams with overlapping subjects). Nothing is deleted: the stream keeps every message under
 * its original subject (nats-server 2.9.10 changes a stream's subjects with messages stored), and
 * its `router` consumer goes on delivering them. Two updates: the first takes the subjects and
 * sources away and keeps the byte limit (gateways and leaf sources store messages until it lands);
 * only then, with nothing new able to come in, the limit shrinks to what the stream holds, read
 * again, which frees the server's storage reserved for it (JetStream reserves every stream's
 * `max_bytes`). Never below what it holds: nats-server 2.9.10 applies a lower limit by deleting
 * the oldest messages, whatever `discard: new` says. Returns undefined on a hub without one.
 */
async function retireLegacyInbound(jsm: JetStreamManager): Promise<LegacyInbound | undefined> {
  const found = await findLegacyInbound(jsm);
  if (!found) return undefined;
  let info = found.info;
  if (
    (info.config.sources?.length ?? 0) > 0 ||
    info.config.subjects.length !== 1 ||
    info.config.subjects[0] !== LEGACY_INBOUND_SUBJECTS
  ) {
    // nats.js merges an update into the stream's config: an empty list removes the sources
    await jsm.streams.update(Streams.Inbound, {
      ...info.config,
      subjects: [LEGACY_INBOUND_SUBJECTS],
      sources: [],
    });
    info = await jsm.streams.info(Streams.Inbound);
  }
  const keep = Math.max(info.state.bytes, LEGACY_MIN_BYTES);
  if (info.config.max_bytes <= 0 || info.config.max_bytes > keep)
    await jsm.streams.update(Streams.Inbound, { ...info.config, max_bytes: keep });
  let unhandled = info.state.messages;
  try {
    const c = await jsm.consumers.info(Streams.Inbound, ROUTER_CONSUMER);
    unhandled = c.num_pending + c.num_ack_pending;
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.status === 404)) throw err;
  }
  return { messages: info.state.messages, unhandled };
}

/**
 * The last outbox sequence of `agency`'s leaf node that the hub holds: what the routers took
 * (`Ahub-Outbox-Seq`), or what a stream of an older hub sourced (its `Nats-Stream-Source` header
 * names the outbox sequence), in the agency's inbound stream or the shared stream of an older hub;
 * 0 when none. The consumer that reads the outbox, when it has to be made anew, starts after it,
 * so that nothing is taken twice: 30 days of an outbox taken again would be refused by the router
 * as duplicates, each one a dead letter.
 */
export async function leafOutboxProgress(jsm: JetStreamManager, agency: string): Promise<number> {
  let last = 0;
  for (const stream of [inboundStreamName(agency), Streams.Inbound]) {
    let held: StreamInfo;
    try {
      held = await jsm.streams.info(stream, { subjects_filter: inboundSubjects(agency) });
    } catch (err) {
      if (err instanceof JetStreamApiError && err.status === 404) continue;
      throw err;
    }
    for (const subject of Object.keys(held.state.subjects ?? {})) {
      const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
      const seq = outboxSequenceOf(agency, m?.header);
      if (seq > last) last = seq;
    }
  }
  return last;
}

/** The outbox sequence a stored message names (0 when it did not come from the leaf). */
function outboxSequenceOf(agency: string, h: MsgHdrs | undefined): number {
  const taken = Number(h?.get(LEAF_OUTBOX_SEQ_HEADER) || NaN);
  if (Number.isSafeInteger(taken) && taken > 0) return taken;
  // "<source>[:<hash>] <outbox sequence> ...", as nats-server's sourcing wrote it
  const [source, seq] = (h?.get('Nats-Stream-Source') ?? '').split(' ');
  const sourced = Number(seq);
  return source?.split(':')[0] === outboxStreamName(agency) &&
    Number.isSafeInteger(sourced) &&
    sourced > 0
    ? sourced
    : 0;
}

/** Attempts at one agency's inbound stream while its cluster answers "temporarily unavailable". */
const UNAVAILABLE_ATTEMPTS = 5;
const UNAVAILABLE_PAUSE_MS = 500;

/**
 * Runs `work` again while JetStream answers 503 ("JetStream system temporarily unavailable",
 * 10008: a cluster just restarted or electing a stream's leader) or does not answer in time.
 * With one inbound stream per agency, provisioning makes many more requests than it did, and one
 * of them meeting that moment should not fail the agency's stream.
 */
async function retryUnavailable<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (err) {
      const passing =
        (err instanceof JetStreamApiError && err.status === 503) ||
        err instanceof TimeoutError ||
        (err instanceof Error && err.cause instanceof TimeoutError);
      if (!passing || attempt >= UNAVAILABLE_ATTEMPTS) throw err;
      await new Promise((r) => setTimeout(r, UNAVAILABLE_PAUSE_MS));
    }
  }
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  cfg: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  try {
    await jsm.consumers.info(stream, cfg.durable_name);
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) {
      await jsm.consumers.add(stream, cfg);
      return;
    }
    throw err;
  }
  const { durable_name, deliver_policy: _dp, ...update } = cfg;
  await jsm.consumers.update(stream, durable_name, update);
}

/**
 * Creates (or brings up to date) the hub's streams: one inbound stream per agency
 * (`AHUB_IN_<agency>`, its own `max_bytes`) with the router's durable consumer on each, and one
 * feed consumer per agency. An agency gone from `agencies` keeps its stream and what it holds
 * (evidence: nothing here deletes a stream). An older hub's shared `AHUB_INBOUND` is retired
 * (see `retireLegacyInbound`) only once every agency's stream could be made: otherwise it is left
 * as it was and {@link InboundStreamsNotProvisionedError} says so (`sharedStreamKept`). On a hub
 * without one, some agencies' inbound streams failing does not stop the
 * others': they are thrown at the end ({@link InboundStreamsNotProvisionedError}). Agencies cannot
 * do this themselves: their NATS users may only read their own consumer, so the router does it
 * for them (at start and on every reload).
 */
export async function provisionHub(
  jsm: JetStreamManager,
  agencies: readonly string[],
  options: {
    limits?: Partial<StreamLimits>;
    ackWaitMs?: number;
    routerMaxAckPending?: number;
    /**
     * Move a feed stream of another retention to the configured one: deleted and created anew
     * once every feed consumer has read everything (nats-server cannot change a retention).
     */
    migrateFeeds?: boolean;
  } = {},
): Promise<ProvisionReport> {
  const limits = withDefaultLimits(options.limits);
  const ackWait = nanos(options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
  const migration = options.migrateFeeds
    ? await migrateFeeds(jsm, retentionPolicy(limits.feedsRetention))
    : undefined;
  const perOrigin = deadLettersPerOrigin(limits.deadLetterMaxBytes, agencies.length);
  let report: ProvisionReport = {
    feedsRetention: RetentionPolicy.Limits,
    feedsRetentionMismatch: false,
    deadLettersPerOrigin: perOrigin,
    clamped: [],
  };
  const clamped: ClampedStream[] = [];
  for (const cfg of streamConfigs(limits, agencies.length)) {
    if (cfg.name === Streams.DeadLetter) await prepareDeadLetterLimit(jsm, perOrigin);
    const ensured = await ensureStream(jsm, cfg as Partial<StreamConfig> & { name: string }).catch(
      (err: unknown) => {
        // why the migration that would have made it safe did not happen, when it was asked for
        throw err instanceof FeedsInterestReplicasError && migration?.why
          ? new FeedsInterestReplicasError(limits.replicas, migration.why)
          : err;
      },
    );
    const retention = ensured.retention;
    if (ensured.clamped) clamped.push(ensured.clamped);
    if (cfg.name === Streams.Feeds && retention === RetentionPolicy.Workqueue)
      throw new FeedsWorkQueueError(migration?.why);
    if (cfg.name === Streams.Feeds)
      report = {
        ...report,
        feedsRetention: retention,
        feedsRetentionMismatch: retention !== cfg.retention,
        ...(migration?.migrated ? { feedsMigrated: true } : {}),
        ...(migration?.why ? { feedsNotMigrated: migration.why } : {}),
      };
  }
  const inboundFailed: { agency: string; reason: string }[] = [];
  // Streams cannot share subjects: the shared stream of an older hub gives `ahub.in.>` up before
  // the agencies' streams take it. Before it does, every agency's stream is made without its
  // subjects (nats-server then gives it its own name as subject, which nobody may publish to), so
  // that JetStream reserves its storage, or refuses to (error 10047), while every agency still
  // publishes to the shared stream. Only when every one is made is the shared stream retired: an
  // upgrade that cannot complete leaves the hub as it ran, and the older release can run it again.
  const found = await findLegacyInbound(jsm);
  if (found?.holdsInbound) {
    for (const agency of agencies) {
      try {
        const r = await retryUnavailable(() =>
          ensureStream(jsm, { ...inboundStreamConfig(limits, agency), subjects: [] }),
        );
        if (r.clamped) clamped.push(r.clamped);
      } catch (err) {
        inboundFailed.push({ agency, reason: (err as Error).message });
      }
    }
    if (inboundFailed.length > 0) {
      await ensureFeedConsumers(jsm, agencies, ackWait);
      const former = found.info.config.max_bytes;
      throw new InboundStreamsNotProvisionedError(inboundFailed, {
        sharedStreamKept: true,
        // the shared stream was sized from the same key, then the whole hub's
        wholeHubSize: agencies.length > 1 && former > 0 && limits.inboundMaxBytes >= former,
      });
    }
  }
  const legacy = await retireLegacyInbound(jsm);
  for (const agency of agencies) {
    try {
      await retryUnavailable(async () => {
        const stream = inboundStreamName(agency);
        const r = await ensureStream(jsm, inboundStreamConfig(limits, agency));
        if (r.clamped && !clamped.some((c) => c.stream === stream)) clamped.push(r.clamped);
        await ensureConsumer(jsm, stream, {
          durable_name: ROUTER_CONSUMER,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: ackWait,
          max_deliver: -1,
          max_ack_pending: options.routerMaxAckPending ?? 1024,
        });
      });
    } catch (err) {
      // One agency's stream that cannot be made (the server's storage reserved by the others:
      // JetStream error 10047) must not keep every other agency's from being made; the failure
      // is thrown once the rest is done.
      inboundFailed.push({ agency, reason: (err as Error).message });
    }
  }
  report = { ...report, clamped };
  if (legacy)
    report = {
      ...report,
      legacyInbound: { messages: legacy.messages, unhandled: legacy.unhandled },
    };
  await ensureFeedConsumers(jsm, agencies, ackWait);
  if (inboundFailed.length > 0)
    throw new InboundStreamsNotProvisionedError(inboundFailed, { report });
  return report;
}

/** One feed consumer per agency. */
async function ensureFeedConsumers(
  jsm: JetStreamManager,
  agencies: readonly string[],
  ackWait: number,
): Promise<void> {
  for (const agency of agencies) {
    await ensureConsumer(jsm, Streams.Feeds, {
      durable_name: feedConsumerName(agency),
      filter_subject: feedFilter(agency),
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: ackWait,
      max_deliver: -1,
      max_ack_pending: 1024,
    });
  }
}

/**
 * JetStream error codes of a publish the stream could not store: `10077` (stream store failed:
 * maximum bytes or messages exceeded with `discard: new`) and `10023` (insufficient resources:
 * the server's JetStream storage is full). Either means "no room", never "bad message".
 */
const NO_ROOM_CODES: ReadonlySet<number> = new Set([10077, 10023]);

/** True when a JetStream publish failed because the stream (or the server's storage) is full. */
export function isStreamFull(err: unknown): boolean {
  return err instanceof JetStreamApiError && NO_ROOM_CODES.has(err.code);
}

/**
 * Creates (or brings up to date) the outbox stream on `agency`'s leaf node: the gateway's
 * publishes are stored there first (the 202 means "stored at the agency") and the hub's routers
 * take them into the agency's inbound stream whenever the link is up. Alerts stay for `maxAgeMs` whether or not the hub
 * has them yet: a link down longer than that loses the oldest, so keep it longer than any outage
 * you plan for. `jsm` is a manager on the leaf itself (its own domain).
 */
export async function provisionLeaf(
  jsm: JetStreamManager,
  agency: string,
  options: { limits?: Partial<StreamLimits> } = {},
): Promise<void> {
  const limits = { ...DEFAULT_STREAM_LIMITS, ...options.limits };
  await ensureStream(jsm, {
    name: outboxStreamName(agency),
    subjects: [inboundSubjects(agency)],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: 1,
    max_msg_size: STREAM_MAX_MESSAGE_BYTES,
    duplicate_window: nanos(limits.duplicateWindowMs),
    max_age: nanos(limits.maxAgeMs),
    // the size of the agency's stream at the hub, which sources it
    max_bytes: inboundMaxBytesOf(limits, agency),
    deny_delete: true,
    deny_purge: true,
  });
}

/** {@link provisionLeaf} over a connection to the leaf node (as the agency's operators). */
export async function provisionLeafNode(
  nc: NatsConnection,
  agency: string,
  options: { limits?: Partial<StreamLimits> } = {},
): Promise<StreamConfig> {
  const jsm = await jetstreamManager(nc);
  await provisionLeaf(jsm, agency, options);
  return (await jsm.streams.info(outboxStreamName(agency))).config;
}
