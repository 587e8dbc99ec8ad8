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
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { FeedsWorkQueueError } from './errors.js';
import {
  AUDIT_CHECKPOINTS_ALL,
  AUDIT_COSIGNATURES_ALL,
  DEAD_LETTER_ALL,
  DEFAULT_MAX_ENVELOPE_BYTES,
  FEEDS_ALL,
  INBOUND_ALL,
  ROUTER_CONSUMER,
  Streams,
  feedConsumerName,
  feedFilter,
  inboundSubjects,
  leafJsApiPrefix,
  leafSourceDeliverPrefix,
  outboxStreamName,
} from '@alert-hub/core';

/** Limits of the hub's streams; every one refuses new messages when full rather than drop old ones. */
export interface StreamLimits {
  /** How long alerts stay in the inbound and feed streams (a partner offline this long loses nothing). */
  readonly maxAgeMs: number;
  readonly inboundMaxBytes: number;
  readonly feedsMaxBytes: number;
  readonly deadLetterMaxBytes: number;
  /** The audit checkpoint and cosignature stream. */
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
   * Retention of the feed stream. `interest`: a copy is removed once every consumer whose filter
   * covers it acknowledged it; only its recipient's consumer does, and its gateway acks only after
   * storing the copy in its inbox (the inbox is then the replay window). `limits` (the default):
   * every copy stays for `maxAgeMs`, read or not. A work queue is never created: on nats-server
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

function retentionPolicy(r: FeedsRetention): RetentionPolicy {
  return r === 'interest' ? RetentionPolicy.Interest : RetentionPolicy.Limits;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxAgeMs: 30 * 24 * 3600_000,
  inboundMaxBytes: 1024 ** 3,
  feedsMaxBytes: 2 * 1024 ** 3,
  deadLetterMaxBytes: 256 * 1024 ** 2,
  auditMaxBytes: 256 * 1024 ** 2,
  duplicateWindowMs: 2 * 60_000,
  replicas: 1,
  feedsRetention: 'limits',
};

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

/**
 * The inbound stream's sources: the outbox stream of every agency that runs a leaf node, in the
 * leaf's JetStream domain, filtered to the agency's own inbound subjects. nats-server 2.9 creates
 * the source's consumer with the filter in the request subject and resumes it after the leaf
 * link returns; messages keep their subject and `Nats-Msg-Id`, so the stream's de-duplication
 * window applies to them as to a direct publish.
 */
function leafSources(leaves: readonly string[]): Partial<StreamConfig> {
  if (leaves.length === 0) return {};
  return {
    sources: leaves.map((a) => ({
      name: outboxStreamName(a),
      filter_subject: inboundSubjects(a),
      external: { api: leafJsApiPrefix(a), deliver: leafSourceDeliverPrefix(a) },
    })),
  };
}

function streamConfigs(
  limits: StreamLimits,
  leaves: readonly string[] = [],
  agencies = 0,
): Partial<StreamConfig>[] {
  const common = {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    num_replicas: limits.replicas,
    // headers are small; the envelope limit plus room for them
    max_msg_size: DEFAULT_MAX_ENVELOPE_BYTES + 4096,
    duplicate_window: nanos(limits.duplicateWindowMs),
    // Every stream holds evidence the audit log points to: what an agency sent, what it was
    // forwarded, what was refused. Nobody (not even the router's user) may delete or purge
    // messages; they leave only by age or size limit. nats-server lets an update set these but
    // never clear them.
    deny_delete: true,
    deny_purge: true,
  };
  return [
    {
      ...common,
      name: Streams.Inbound,
      subjects: [INBOUND_ALL],
      ...leafSources(leaves),
      max_age: nanos(limits.maxAgeMs),
      max_bytes: limits.inboundMaxBytes,
    },
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
      // Signed audit checkpoints and witnesses' cosignatures: small, kept for a year; when full
      // the oldest go first (each witness keeps the last one it cosigned itself).
      ...common,
      discard: DiscardPolicy.Old,
      name: Streams.Audit,
      subjects: [AUDIT_CHECKPOINTS_ALL, AUDIT_COSIGNATURES_ALL],
      max_age: nanos(365 * 24 * 3600_000),
      max_bytes: limits.auditMaxBytes,
    },
  ];
}

/** Creates or updates a stream; returns the retention it has (an existing stream keeps its own). */
async function ensureStream(
  jsm: JetStreamManager,
  cfg: Partial<StreamConfig> & { name: string },
): Promise<RetentionPolicy> {
  let existing: RetentionPolicy;
  try {
    existing = (await jsm.streams.info(cfg.name)).config.retention;
  } catch (err) {
    if (err instanceof JetStreamApiError && err.status === 404) {
      await jsm.streams.add(cfg);
      return cfg.retention ?? RetentionPolicy.Limits;
    }
    throw err;
  }
  // nats-server 2.9 refuses to change a stream's retention: everything else is brought up to date.
  const update = { ...cfg, retention: existing };
  await jsm.streams.update(cfg.name, update);
  return existing;
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
 * Creates (or brings up to date) the hub's streams, the router's durable consumer and one
 * feed consumer per agency. Agencies cannot do this themselves: their NATS users may only
 * read their own consumer, so the router does it for them (at start and on every reload).
 */
export async function provisionHub(
  jsm: JetStreamManager,
  agencies: readonly string[],
  options: {
    limits?: Partial<StreamLimits>;
    ackWaitMs?: number;
    routerMaxAckPending?: number;
    /** Agencies whose alerts come from a leaf node's outbox (see `provisionLeaf`). */
    leaves?: readonly string[];
    /**
     * Move a feed stream of another retention to the configured one: deleted and created anew
     * once every feed consumer has read everything (nats-server cannot change a retention).
     */
    migrateFeeds?: boolean;
  } = {},
): Promise<ProvisionReport> {
  const limits = { ...DEFAULT_STREAM_LIMITS, ...options.limits };
  const ackWait = nanos(options.ackWaitMs ?? DEFAULT_ACK_WAIT_MS);
  const migration = options.migrateFeeds
    ? await migrateFeeds(jsm, retentionPolicy(limits.feedsRetention))
    : undefined;
  const perOrigin = deadLettersPerOrigin(limits.deadLetterMaxBytes, agencies.length);
  let report: ProvisionReport = {
    feedsRetention: RetentionPolicy.Limits,
    feedsRetentionMismatch: false,
    deadLettersPerOrigin: perOrigin,
  };
  for (const cfg of streamConfigs(limits, options.leaves, agencies.length)) {
    if (cfg.name === Streams.DeadLetter) await prepareDeadLetterLimit(jsm, perOrigin);
    const retention = await ensureStream(jsm, cfg as Partial<StreamConfig> & { name: string });
    if (cfg.name === Streams.Feeds && retention === RetentionPolicy.Workqueue)
      throw new FeedsWorkQueueError(migration?.why);
    if (cfg.name === Streams.Feeds)
      report = {
        deadLettersPerOrigin: perOrigin,
        feedsRetention: retention,
        feedsRetentionMismatch: retention !== cfg.retention,
        ...(migration?.migrated ? { feedsMigrated: true } : {}),
        ...(migration?.why ? { feedsNotMigrated: migration.why } : {}),
      };
  }
  await ensureConsumer(jsm, Streams.Inbound, {
    durable_name: ROUTER_CONSUMER,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ackWait,
    max_deliver: -1,
    max_ack_pending: options.routerMaxAckPending ?? 1024,
  });
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
  return report;
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
 * publishes are stored there first (the 202 means "stored at the agency") and the hub's inbound
 * stream sources them whenever the link is up. Alerts stay for `maxAgeMs` whether or not the hub
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
    max_msg_size: DEFAULT_MAX_ENVELOPE_BYTES + 4096,
    duplicate_window: nanos(limits.duplicateWindowMs),
    max_age: nanos(limits.maxAgeMs),
    max_bytes: limits.inboundMaxBytes,
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
