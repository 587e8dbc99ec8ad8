import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The `origin` label of the legacy shared inbound stream's backlog (`AHUB_INBOUND`, which holds
 * every agency's messages): no agency name, whose token never holds `*`.
 */
export const LEGACY_ORIGIN = '*';

/** The router's Prometheus metrics. */
export function createRouterMetrics(instance: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ instance });
  collectDefaultMetrics({ register: registry, prefix: 'ahub_router_' });
  /** Set by the router once its store is open: how many copies are undelivered now. */
  const undeliveredSource = { count: (): number => 0 };
  /** Set by the router's held copies: how many are held now, per recipient. */
  const heldSource = {
    held: (): ReadonlyMap<string, { readonly count: number }> => new Map(),
  };
  /** Set by the router's held copies: bytes waiting per recipient's feed, as it counts them, and the quota. */
  const feedBytesSource = {
    bytes: (): ReadonlyMap<string, number> => new Map(),
    quota: (): number => 0,
  };
  /**
   * Set by the router when the feed stream has limits retention: bytes charged per agency
   * within the stream's max age, and each agency's budget (origin-budget.ts).
   */
  const originBudgetSource = {
    charged: (): ReadonlyMap<string, number> => new Map(),
    peaks: (): ReadonlyMap<string, number> => new Map(),
    budgets: (): ReadonlyMap<string, number> => new Map(),
  };
  /**
   * Set by the router's notifier: per agency whose notices found no room in its feed at the last
   * round, how many notice events wait in the outbox.
   */
  const noticesSource = { waiting: (): ReadonlyMap<string, number> => new Map() };
  /** Set by the router when agencies run leaf nodes: whether it reads each one's outbox now. */
  const leafSource = { reading: (): ReadonlyMap<string, boolean> => new Map() };
  /** Set by the audit checkpointer: how long checkpoints have failed to reach NATS. */
  const unpublishedSource = { ms: (): number => 0 };
  /** Set by the router: each inbound consumer it reads, with what it has not handled yet. */
  const backlogSource = {
    backlog: (): Promise<readonly { readonly origin: string; readonly pending: number }[]> =>
      Promise.resolve([]),
  };
  return {
    registry,
    undeliveredSource,
    heldSource,
    feedBytesSource,
    originBudgetSource,
    noticesSource,
    leafSource,
    unpublishedSource,
    backlogSource,
    consumerPending: new Gauge({
      name: 'ahub_router_consumer_pending',
      help: `Inbound messages the router has not yet handled (pending plus unacknowledged), per origin: the agency whose inbound stream holds them, or "${LEGACY_ORIGIN}" for the legacy shared stream`,
      labelNames: ['origin'],
      registers: [registry],
      async collect() {
        const backlog = await backlogSource.backlog();
        this.reset();
        for (const b of backlog) this.set({ origin: b.origin }, b.pending);
      },
    }),
    heldCopies: new Gauge({
      name: 'ahub_router_held_copies',
      help: "Copies held by the router because their recipient's feed had no room, per recipient (forwarded once it has)",
      labelNames: ['recipient'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [recipient, h] of heldSource.held()) this.set({ recipient }, h.count);
      },
    }),
    feedWaitingBytes: new Gauge({
      name: 'ahub_router_feed_waiting_bytes',
      help: "Bytes of copies and notices a recipient's gateway has not taken from its feed, as the router counts them against ahub_router_feed_quota_bytes (recipients it has published to since it started)",
      labelNames: ['recipient'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [recipient, bytes] of feedBytesSource.bytes()) this.set({ recipient }, bytes);
      },
    }),
    feedQuotaBytes: new Gauge({
      name: 'ahub_router_feed_quota_bytes',
      help: "Bytes each recipient may have waiting in the feed stream (streams.recipientMaxBytes, at most the stream's share per agency); beyond, copies are held and notices wait",
      registers: [registry],
      collect() {
        this.set(feedBytesSource.quota());
      },
    }),
    originChargedBytes: new Gauge({
      name: 'ahub_router_origin_charged_bytes',
      help: "Bytes the router stored in the feed stream charged to each agency (its copies as origin, the notices to it) within the stream's max age, counted against ahub_router_origin_budget_bytes (only with limits retention)",
      labelNames: ['agency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [agency, bytes] of originBudgetSource.charged()) this.set({ agency }, bytes);
      },
    }),
    originPeakBytes: new Gauge({
      name: 'ahub_router_origin_peak_bytes',
      help: "The most that will be charged to each agency at any time from now on: ahub_router_origin_charged_bytes as it ages out, plus what it owes for the time its late receipts' delivered notices outlive their copies' charges (those count later). What its budget is checked against (only with limits retention)",
      labelNames: ['agency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [agency, bytes] of originBudgetSource.peaks()) this.set({ agency }, bytes);
      },
    }),
    originBudgetBytes: new Gauge({
      name: 'ahub_router_origin_budget_bytes',
      help: 'Bytes each agency may have the router store in the feed stream within its max age (streams.originMaxBytesFor, else an even share of what is left); beyond, its copies are held, its notices wait and its inbound stream is not read (only with limits retention)',
      labelNames: ['agency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [agency, bytes] of originBudgetSource.budgets()) this.set({ agency }, bytes);
      },
    }),
    noticeEventsWaiting: new Gauge({
      name: 'ahub_router_notice_events_waiting',
      help: "Notice events to each agency kept in the router's outbox because its feed had no room for them at the last try (its quota, or with limits retention its budget): sent, in order, once it has; counted up to 10,000",
      labelNames: ['agency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [agency, n] of noticesSource.waiting()) this.set({ agency }, n);
      },
    }),
    leafReading: new Gauge({
      name: 'ahub_router_leaf_outbox_reading',
      help: "1 while the router reads the agency's leaf-node outbox, 0 while the leaf does not answer (its alerts wait there), per agency in streams.leaves",
      labelNames: ['agency'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [agency, on] of leafSource.reading()) this.set({ agency }, on ? 1 : 0);
      },
    }),
    leafTaken: new Counter({
      name: 'ahub_router_leaf_outbox_taken_total',
      help: "Messages taken from an agency's leaf-node outbox into its inbound stream, by agency",
      labelNames: ['agency'],
      registers: [registry],
    }),
    leafRefused: new Counter({
      name: 'ahub_router_leaf_outbox_refused_total',
      help: "Deliveries from an agency's leaf node not taken (reply: not its outbox consumer's ack; subject: not its own; headers: unreadable; size: larger than its inbound stream takes), by agency",
      labelNames: ['agency', 'why'],
      registers: [registry],
    }),
    held: new Counter({
      name: 'ahub_router_held_total',
      help: "Copies held because their recipient's feed had no room (each is forwarded later)",
      registers: [registry],
    }),
    messages: new Counter({
      name: 'ahub_router_messages_total',
      help: 'Inbound messages handled, by outcome (routed, rejected, redelivered)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    forwards: new Counter({
      name: 'ahub_router_forwards_total',
      help: 'Countersigned copies forwarded to partners, by origin (the agency whose alerts they are: the one filling the shared feed stream, when it fills)',
      labelNames: ['origin'],
      registers: [registry],
    }),
    denials: new Counter({
      name: 'ahub_router_denials_total',
      help: 'Recipients denied by the agreements, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    rejections: new Counter({
      name: 'ahub_router_rejections_total',
      help: 'Messages dead-lettered, by error code',
      labelNames: ['reason'],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'ahub_router_retries_total',
      help: 'Messages handed back for a later retry (transient failures)',
      registers: [registry],
    }),
    deadLetterFailures: new Counter({
      name: 'ahub_router_dead_letter_failures_total',
      help: 'Refused messages that could not be dead-lettered after every attempt (audited and terminated all the same)',
      registers: [registry],
    }),
    reloads: new Counter({
      name: 'ahub_router_agreements_reloads_total',
      help: 'Agreement file reloads, by result',
      labelNames: ['result'],
      registers: [registry],
    }),
    receipts: new Counter({
      name: 'ahub_router_receipts_total',
      help: 'Delivery receipts handled, by outcome (accepted, redelivered); refused ones count in rejections',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    delivered: new Counter({
      name: 'ahub_router_delivered_total',
      help: 'Forwarded copies confirmed by a verified delivery receipt',
      registers: [registry],
    }),
    notices: new Counter({
      name: 'ahub_router_notices_total',
      help: 'Signed notices sent to agencies (each carries one or more events)',
      registers: [registry],
    }),
    undelivered: new Gauge({
      name: 'ahub_router_undelivered',
      help: 'Forwarded copies without a verified receipt after the configured time (undeliveredAfterMs)',
      registers: [registry],
      collect() {
        this.set(undeliveredSource.count());
      },
    }),
    checkpoints: new Counter({
      name: 'ahub_router_audit_checkpoints_total',
      help: 'Audit checkpoints signed and published',
      registers: [registry],
    }),
    cosignatures: new Counter({
      name: 'ahub_router_audit_cosignatures_total',
      help: "Witness cosignature messages received, by outcome (accepted: a valid cosignature the router did not have; limited: over the agency's rate, not read; refused: a `$JS.ACK.` reply, a subject a leaf node chose, not read; ignored: anything else)",
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    proofRequests: new Counter({
      name: 'ahub_router_audit_proof_requests_total',
      help: "Inclusion-proof requests from agencies, by outcome (served, limited: over the agency's rate, refused: a `$JS.ACK.` reply, a subject a leaf node chose, not answered, or the error code answered)",
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    cosignatureVerifications: new Counter({
      name: 'ahub_router_audit_cosignature_verifications_total',
      help: 'Ed25519 verifications spent on witness cosignatures',
      registers: [registry],
    }),
    auditUnpublished: new Gauge({
      name: 'ahub_router_audit_unpublished_seconds',
      help: 'How long audit checkpoints have failed to reach NATS (0 while they do); past auditUnpublishedMaxMs routing is paused',
      registers: [registry],
      collect() {
        this.set(unpublishedSource.ms() / 1000);
      },
    }),
    auditFailed: new Gauge({
      name: 'ahub_router_audit_failed',
      help: '1 when the audit database no longer matches what the router wrote or published (routing stopped)',
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'ahub_router_in_flight',
      help: 'Messages being processed',
      registers: [registry],
    }),
    copyBytesInFlight: new Gauge({
      name: 'ahub_router_copy_bytes_in_flight',
      help: 'Memory reckoned for countersigned copies being published (bounded by consumer.copyBudgetBytes)',
      registers: [registry],
    }),
    processSeconds: new Histogram({
      name: 'ahub_router_process_seconds',
      help: 'From message received to acked (verify, policy, forwards, audit commit)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
  };
}

export type RouterMetrics = ReturnType<typeof createRouterMetrics>;
