import type { FSWatcher } from 'node:fs';
import { basename } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  AgreementsChangedInPlaceError,
  ROUTER_CONSUMER,
  Streams,
  checkTermsUnchanged,
  inboundStreamName,
  termsDigests,
  type AgreementSet,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import {
  connectService,
  createBatchWriter,
  loadAgreementsFile,
  openServiceBasics,
  listenHttp,
  StartupScope,
  openDatabase,
  checkFeedSizing,
  recipientQuotaBytes,
  originBudgets,
  MAX_FEED_MESSAGE_BYTES,
  ConfigInvalidError,
  provisionHub,
  InboundStreamsNotProvisionedError,
  type ProvisionReport,
  heldSigningKeys,
  loadTrustStore,
  registerStreamFillGauge,
  registerNatsGauge,
  watchConnection,
  watchAgreementsFile,
  unhandled,
  type Logger,
  type SqliteDatabase,
} from '@alert-hub/runtime';
import { auditDbFile, type RouterConfig } from './config.js';
import { buildCoordinatorApi, type RouterTokens } from './http.js';
import { FeedPublisher } from './feed-publisher.js';
import { LEGACY_ORIGIN, createRouterMetrics } from './metrics.js';
import { HeldCopies } from './held-copies.js';
import { OriginBudget } from './origin-budget.js';
import { Notifier } from './notifier.js';
import { RoutingLoop, STUCK_DELIVERIES } from './routing-loop.js';
import { NOTICE_EVENTS_COUNTED, RouterStore, type Outcome } from './store.js';
import { AuditCheckpointer, hubNoteSigner, vouchingKeysOf } from './audit-checkpoints.js';
import { DeadLetters } from './dead-letters.js';
import { startLeafOutboxes, type LeafOutboxState } from './leaf-outbox.js';
import { auditOrigin, inboundStreamAgency, inboxPrefix } from '@alert-hub/core';
import { AuditIntegrityError } from '@alert-hub/audit';

/** Attempts at provisioning after a reload, and the pause between two. */
const PROVISION_ATTEMPTS = 5;
const PROVISION_RETRY_MS = 2000;

/** How often the inbound streams that could not be made are tried again. */
export const DEFAULT_INBOUND_RETRY_MS = 30_000;

/** A running router. */
export interface Router {
  readonly config: RouterConfig;
  readonly url: string;
  readonly store: RouterStore;
  readonly http: FastifyInstance;
  /** The transparency-log side of the audit: checkpoints, cosignatures, proofs. */
  readonly audit: AuditCheckpointer;
  /** Reloads the agreements file; an invalid file is refused and the old agreements stay. */
  reloadAgreements(): boolean;
  /**
   * Reloads trust store, key and agreements (SIGHUP), and provisions new agencies' feeds. With
   * `next` (the configuration file read again), its `coordinators` and `operators` replace the
   * tokens in force: one added works at once, a revoked one gets 401 and its dashboard sessions end.
   */
  reload(next?: RouterConfig): Promise<void>;
  close(): Promise<void>;
}

/** How {@link startRouter} runs the router. */
export interface StartRouterOptions {
  log?: Logger;
  listen?: boolean;
  /** How often missing inbound streams are tried again ({@link DEFAULT_INBOUND_RETRY_MS}). */
  inboundRetryMs?: number;
}

/**
 * Wires a router together and starts it. A router that does not start (its HTTP port taken, its
 * audit refused, NATS refusing its streams) leaves nothing running: its connections, leaf
 * outbox loops, timers and databases are closed before the error is thrown.
 */
export function startRouter(
  config: RouterConfig,
  options: StartRouterOptions = {},
): Promise<Router> {
  return StartupScope.run((scope) => start(scope, config, options));
}

async function start(
  scope: StartupScope,
  config: RouterConfig,
  options: StartRouterOptions,
): Promise<Router> {
  const { log, registry, keys } = openServiceBasics({
    name: `router-${config.instance}`,
    logLevel: config.log.level,
    log: options.log,
    schemasDir: config.schemasDir,
    trustDir: config.trustDir,
    signingKey: config.signingKey,
    principal: config.principal,
    role: 'router',
  });
  // Refuse at once a hub key that cannot sign checkpoints.
  hubNoteSigner(keys.key(), auditOrigin(config.auditLog));
  const loaded = loadAgreementsFile(config.agreementsFile, registry, keys.trust().agencies);
  let agreements: AgreementSet = loaded.set;
  let agreementsHash = loaded.sha256;
  const metrics = createRouterMetrics(config.instance);
  const db: SqliteDatabase = openDatabase(auditDbFile(config), {
    synchronous: config.sqlite.synchronous,
  });
  scope.onFailure(() => db.close());
  let store: RouterStore;
  let vouching: { trust: TrustStore; key: SigningKey; keys: readonly Buffer[] } | undefined;
  try {
    store = new RouterStore(db, config.instance, {
      transparency: config.auditTransparency,
      groupRefusals: config.noticeGroupRefusals,
      // The current hub key signs the head with every append (a reload may have rotated it).
      auditHead: () => ({
        signer: hubNoteSigner(keys.key(), auditOrigin(config.auditLog)),
        origin: auditOrigin(config.auditLog),
      }),
      // Asked only when another router sharing the file appended; worked out again after a
      // reload (the trust store or key changed). Fresh (before failing closed): from the files as
      // they are now, as at start, since a router sharing the file may have reloaded a rotated
      // key first.
      auditVouchingKeys: (fresh) => {
        const trust = keys.trust();
        const key = keys.key();
        if (!fresh && vouching?.trust === trust && vouching.key === key) return vouching.keys;
        // Kept until the next reload. Files that cannot be read vouch for nothing (the router then
        // fails closed, saying why): they do not end the process.
        let read: readonly Buffer[] = [];
        try {
          read = vouchingKeysOf(
            fresh ? loadTrustStore(config.trustDir, registry) : trust,
            config.principal,
            heldSigningKeys(config.signingKey, config.principal),
          );
        } catch (err) {
          log.error(
            { err: (err as Error).message },
            'the trust store or key directory could not be read for the audit log’s vouching keys',
          );
        }
        vouching = { trust, key, keys: read };
        return read;
      },
    });
  } catch (err) {
    if (err instanceof AuditIntegrityError)
      log.error({ reason: err.message }, 'audit database refused at start: not routing');
    throw err;
  }
  // The terms of every agreement label this log recorded, then loaded in this run: a label never
  // comes back with other terms (a change needs a new version), or the audit's `SG-VN-2019@1`
  // would name two agreements. At start such a file is refused like an invalid one, once the log
  // they are read from has been checked (below).
  let seenTerms = new Map<string, string>();
  const peers = config.auditPeers.map((p) => {
    const peer = openDatabase(p, { readonly: true });
    scope.onFailure(() => peer.close());
    return peer;
  });

  // Set once the audit database is found tampered with: the router stops routing.
  const running: { loop?: RoutingLoop; audit?: AuditCheckpointer; held?: HeldCopies } = {};
  const failClosed = (reason: string) => {
    log.error({ reason }, 'routing stopped: the audit log cannot be trusted');
    void running.loop?.stop();
  };
  const writer = createBatchWriter<Outcome>((outcomes) => {
    try {
      store.write(outcomes);
    } catch (err) {
      if (err instanceof AuditIntegrityError) {
        if (running.audit) running.audit.fail(err.message);
        else failClosed(err.message);
      }
      throw err;
    }
  });
  const agreementsOutcome = (file: string, sha256: string, set: AgreementSet): Outcome => ({
    kind: 'agreements',
    // The base name only: coordinators read (and export) the audit, not the host's paths.
    file: basename(file),
    sha256,
    agreements: set.agreements.map((a) => ({ id: a.id, version: a.version })),
    terms: Object.fromEntries(termsDigests(set)),
  });
  const nc = await connectService(
    config.nats,
    `alert-hub router ${config.instance}`,
    config.principal,
    log,
  );
  scope.onFailure(() => nc.close());
  const natsWatch = watchConnection(nc, log);
  registerNatsGauge(metrics.registry, 'ahub_router_', natsWatch);
  const jsm = await jetstreamManager(nc, {
    checkAPI: false,
    ...(config.nats.jsApiPrefix ? { apiPrefix: config.nats.jsApiPrefix } : {}),
  });
  registerStreamFillGauge(
    metrics.registry,
    'ahub_router_stream_fill_ratio',
    // every agency's inbound stream; the shared one of an older hub while it exists (its limit
    // is what it holds once migrated: near 1, and nothing new comes in)
    () => [
      ...keys.trust().agencies.map(inboundStreamName),
      Streams.Inbound,
      Streams.Feeds,
      Streams.DeadLetter,
    ],
    (name) => jsm.streams.info(name),
  );
  // Streams, the router's consumer and one feed consumer per agency in the trust store.
  let feedsRetention: string = config.streams.feedsRetention;
  // Agencies whose inbound stream could not be made (their alerts are refused meanwhile): the
  // router still routes every other agency's, says so in /readyz and tries them again.
  let inboundMissing: readonly { agency: string; reason: string }[] = [];
  const provision = async () => {
    if (config.provision) {
      let report: ProvisionReport;
      try {
        report = await provisionHub(jsm, keys.trust().agencies, {
          limits: config.streams,
          routerMaxAckPending: config.consumer.maxAckPending,
          ackWaitMs: config.consumer.ackWaitMs,
          migrateFeeds: config.streams.migrateFeeds,
        });
        if (inboundMissing.length > 0)
          log.info(
            { agencies: inboundMissing.map((f) => f.agency) },
            'the missing inbound streams are provisioned',
          );
        inboundMissing = [];
      } catch (err) {
        // Before an older hub's shared stream is retired, a failure leaves the hub as it ran
        // (on that stream): the router does not start (docs/operations.md, "Upgrading").
        if (
          !(err instanceof InboundStreamsNotProvisionedError) ||
          err.sharedStreamKept ||
          !err.report
        )
          throw err;
        inboundMissing = err.failures;
        log.error(
          { code: err.code, agencies: err.failures.map((f) => f.agency), failures: err.failures },
          "inbound streams not provisioned: these agencies' alerts are refused until they are; every other agency is routed; tried again periodically",
        );
        report = err.report;
      }
      for (const c of report.clamped)
        log.warn(
          c,
          'inbound stream holds more than its configured max_bytes: kept a larger limit (a lower one would delete its oldest messages); lowered further once they age out',
        );
      feedsRetention = report.feedsRetention;
      if (report.legacyInbound)
        log[report.legacyInbound.unhandled > 0 ? 'warn' : 'info'](
          { stream: Streams.Inbound, ...report.legacyInbound },
          'the shared inbound stream of an older hub holds messages of before the upgrade: it takes no new ones (each agency has its own stream) and is read until drained',
        );
      log.info(
        {
          perOrigin: report.deadLettersPerOrigin,
          deadLetterMaxBytes: config.streams.deadLetterMaxBytes,
        },
        'dead letters: each origin keeps its newest ones, at most this many',
      );
      if (report.feedsMigrated)
        log.warn(
          { retention: report.feedsRetention },
          'the feed stream, read by every partner, was created anew with the configured retention',
        );
      if (report.feedsRetentionMismatch)
        log.warn(
          {
            configured: config.streams.feedsRetention,
            actual: report.feedsRetention,
            ...(report.feedsNotMigrated ? { notMigrated: report.feedsNotMigrated } : {}),
          },
          'the feed stream was created with another retention, which nats-server cannot change: it keeps its own until migrated (operations guide, "Feed streams")',
        );
    }
    const agencies = keys.trust().agencies;
    for (const agency of Object.keys(config.streams.inboundMaxBytesFor))
      if (!agencies.includes(agency))
        log.warn(
          { agency },
          'streams.inboundMaxBytesFor names an agency the trust store does not hold: it applies once the agency is added',
        );
    warnFeedSizing(config, agencies, log);
  };
  await provision();
  const js = jetstream(nc, {
    timeout: config.nats.publishTimeoutMs,
    ...(config.nats.jsApiPrefix ? { apiPrefix: config.nats.jsApiPrefix } : {}),
  });
  // Agencies' leaf nodes: each outbox read into its agency's inbound stream, each on a connection
  // of its own (what a leaf sends reaches nothing else of the router, nor another leaf's reading).
  const leafOutboxes =
    config.streams.leaves.length > 0
      ? startLeafOutboxes({
          // tried until it answers or the router stops (the loop waits between two tries), and
          // watched: its disconnects and reconnects are logged with the agency
          connect: async (agency, signal) => {
            const leafLog = log.child({ agency, connection: 'leaf outbox' });
            const leafNc = await connectService(
              { ...config.nats, connectAttempts: 0 },
              `alert-hub router ${config.instance} (leaf outbox ${agency})`,
              config.principal,
              leafLog,
              { signal },
            );
            watchConnection(leafNc, leafLog);
            return leafNc;
          },
          hub: { js, jsm },
          agencies: config.streams.leaves,
          log,
          onTaken: (agency) => metrics.leafTaken.inc({ agency }),
          onRefused: (agency, why) => metrics.leafRefused.inc({ agency, why }),
        })
      : undefined;
  scope.onFailure(() => leafOutboxes?.stop());
  if (leafOutboxes)
    metrics.leafSource.reading = () =>
      new Map(Object.entries(leafOutboxes.states()).map(([a, s]) => [a, s === 'reading']));
  const checkpointer = new AuditCheckpointer({
    nc,
    js,
    jsm,
    store,
    log: config.auditLog,
    principal: config.principal,
    hubKey: keys.key,
    heldKeys: () => heldSigningKeys(config.signingKey, config.principal),
    trust: keys.trust,
    metrics,
    logger: log,
    publishTimeoutMs: config.nats.publishTimeoutMs,
    checkpointIntervalMs: config.checkpointIntervalMs,
    proofRequestsPerSecond: config.auditProofRequestsPerSecond,
    unpublishedMaxMs: config.auditUnpublishedMaxMs,
    anchorRefreshMs: config.auditAnchorRefreshMs,
    onPublished: () => running.loop?.wake(),
    onPaused: () => running.loop?.interrupt(),
    onFailure: failClosed,
  });
  running.audit = checkpointer;
  scope.onFailure(() => checkpointer.close());
  metrics.unpublishedSource.ms = () => checkpointer.unpublishedMs;
  try {
    // The database must still hold what the router last published, before anything is appended.
    await checkpointer.start();
    seenTerms = store.recordedTerms();
    for (const [label, d] of checkTermsUnchanged(seenTerms, agreements)) seenTerms.set(label, d);
    await writer.enqueue(agreementsOutcome(config.agreementsFile, agreementsHash, agreements));
  } catch (err) {
    if (err instanceof AuditIntegrityError)
      log.error({ reason: err.message }, 'audit database refused at start: not routing');
    throw err;
  }
  const checkpoint = async () => {
    try {
      await checkpointer.checkpoint();
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'audit checkpoint not published; will retry');
    }
  };

  // The per-agency byte budget over the feed stream's max age, enforced when the stream (as it
  // is, not as configured) has limits retention and so keeps what partners read.
  const feedsStream = await jsm.streams.info(Streams.Feeds).catch((err: unknown) => {
    log.warn(
      { err: (err as Error).message },
      'feed stream not readable at start: its configured retention and max age are assumed',
    );
    return undefined;
  });
  const feedsLimits = (feedsStream?.config.retention ?? feedsRetention) === 'limits';
  const feedsMaxAgeMs =
    feedsStream && feedsStream.config.max_age > 0
      ? Math.ceil(feedsStream.config.max_age / 1_000_000)
      : config.streams.maxAgeMs;
  const budgetsFor = (agencies: readonly string[]) =>
    originBudgets(config.streams.feedsMaxBytes, agencies, config.streams.originMaxBytesFor);
  let budgetAgencies = keys.trust().agencies;
  const initialBudgets = budgetsFor(budgetAgencies);
  if (feedsLimits && initialBudgets.issues.length > 0)
    throw new ConfigInvalidError('streams.originMaxBytesFor', initialBudgets.issues);
  let budgets = initialBudgets.budgets;
  const smallest = Math.min(...budgets.values());
  if (feedsLimits && smallest < MAX_FEED_MESSAGE_BYTES)
    log.warn(
      { smallestBudgetBytes: smallest, maxMessageBytes: MAX_FEED_MESSAGE_BYTES },
      'feed stream with limits retention: an agency’s budget is less than one message of the largest size; each agency may still store one message per max age, and together they may pass the stream: raise streams.feedsMaxBytes',
    );
  // Asked on every check: follows the trust store (a reload adds or removes agencies).
  const currentBudgets = (): ReadonlyMap<string, number> => {
    const agencies = keys.trust().agencies;
    if (agencies !== budgetAgencies) {
      budgetAgencies = agencies;
      const next = budgetsFor(agencies);
      if (next.issues.length > 0)
        log.error(
          { issues: next.issues },
          'streams.originMaxBytesFor leaves an agency of the reloaded trust store less than one message: the budgets in force stay',
        );
      else budgets = next.budgets;
    }
    return budgets;
  };
  const budgetOf = (agency: string): number =>
    currentBudgets().get(agency) ?? Math.min(...budgets.values(), Infinity);
  const originBudget = new OriginBudget({
    maxAgeMs: feedsMaxAgeMs,
    noticeDelayMs: config.noticeCoalesceMs,
    enforced: feedsLimits,
    budget: budgetOf,
    store,
    log,
    onSpent: (agency) => running.loop?.pauseOrigin(agency),
    overdue: (agency) => inboundOverdue(jsm, agency),
    // Its held copies go out at once, and its inbound stream is read again.
    onResume: () => {
      running.loop?.wake();
      running.held?.releaseNow();
    },
  });
  originBudget.start();
  scope.onFailure(() => originBudget.stop());
  if (feedsLimits) {
    // A delivered notice is paid in advance by its copy, and by the receipt's sender for its lateness.
    store.chargeDelivered = (origin, forwardedAt, receipter, bytes) =>
      originBudget.delivered(
        origin,
        forwardedAt === null ? undefined : Date.parse(forwardedAt),
        receipter,
        bytes,
      );
    metrics.originBudgetSource.charged = () => originBudget.charged();
    metrics.originBudgetSource.peaks = () => originBudget.peaks();
    metrics.originBudgetSource.budgets = currentBudgets;
    log.info(
      {
        maxAgeMs: feedsMaxAgeMs,
        bucketMs: originBudget.bucketMs,
        budgets: Object.fromEntries(budgets),
      },
      'feed stream with limits retention: each agency has a byte budget over its max age',
    );
  }
  const held = new HeldCopies({
    js,
    jsm,
    store,
    writer,
    metrics,
    log,
    publishTimeoutMs: config.nats.publishTimeoutMs,
    recipientMaxCopies: config.streams.recipientMaxCopies,
    recipientMaxBytes: () =>
      recipientQuotaBytes(
        config.streams.feedsMaxBytes,
        keys.trust().agencies.length,
        config.streams.recipientMaxBytes,
      ),
    retryMs: config.streams.heldRetryMs,
    budget: originBudget,
  });
  running.held = held;
  held.start();
  scope.onFailure(() => held.stop());
  const notifier = new Notifier({
    js,
    store,
    hubKey: keys.key,
    metrics,
    log,
    publishTimeoutMs: config.nats.publishTimeoutMs,
    instance: config.instance,
    coalesceMs: config.noticeCoalesceMs,
    feeds: held,
    retryMs: config.streams.heldRetryMs,
  });
  scope.onFailure(() => notifier.stop());
  // Notices left in the outbox by a previous run go out first.
  notifier.kick();
  /** Per agency whose notices found no room at the notifier's last round, how many wait. */
  const noticesWaiting = () =>
    new Map([...notifier.waiting].map((agency) => [agency, store.outboxCount(agency)]));
  metrics.noticesSource.waiting = noticesWaiting;
  const feeds = new FeedPublisher(nc, {
    inboxPrefix: config.nats.inboxPrefix ?? inboxPrefix(config.principal),
    timeoutMs: config.nats.publishTimeoutMs,
    log,
  });
  scope.onFailure(() => feeds.close());
  const deadLetters = new DeadLetters({
    js,
    jsm,
    store,
    log,
    publishTimeoutMs: config.nats.publishTimeoutMs,
  });
  const loop = new RoutingLoop({
    // No new inbound message while checkpoints cannot reach NATS for too long: what is routed
    // meanwhile could never be witnessed (docs/security.md).
    mayRoute: () => !checkpointer.paused,
    feeds,
    js,
    store,
    writer,
    trust: keys.trust,
    agreements: () => agreements,
    registry,
    hubKey: keys.key,
    metrics,
    log,
    maxMessages: config.consumer.maxMessages,
    ackWaitMs: config.consumer.ackWaitMs,
    copyBudgetBytes: config.consumer.copyBudgetBytes,
    publishTimeoutMs: config.nats.publishTimeoutMs,
    freshness: config.freshness,
    held,
    onCommitted: () => notifier.kick(),
    requeues: deadLetters,
    ...(feedsLimits ? { originSpent: (agency: string) => originBudget.paused(agency) } : {}),
  });
  running.loop = loop;
  scope.onFailure(() => loop.stop());
  await loop.start();
  // Per source, read from JetStream at each scrape: who floods shows by name. A source whose
  // consumer does not answer (not provisioned yet) has no series.
  metrics.backlogSource.backlog = async () => {
    const read = await Promise.allSettled(
      loop.sources.map(async (stream) => {
        const c = await jsm.consumers.info(stream, ROUTER_CONSUMER);
        return {
          origin: inboundStreamAgency(stream) ?? LEGACY_ORIGIN,
          pending: unhandled(c),
        };
      }),
    );
    return read.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  };
  const checkpointTimer = setInterval(() => void checkpoint(), config.checkpointIntervalMs);
  scope.onFailure(() => clearInterval(checkpointTimer));
  // One provisioning at a time: the retry below and a SIGHUP's would otherwise race to make the
  // same streams.
  let provisioned: Promise<void> = Promise.resolve();
  const provisionInTurn = (): Promise<void> => {
    const next = provisioned.then(provision);
    provisioned = next.catch(() => undefined);
    return next;
  };
  let retrying = false;
  const inboundRetryTimer = setInterval(() => {
    if (inboundMissing.length === 0 || retrying) return;
    retrying = true;
    provisionInTurn()
      .catch((err: unknown) =>
        log.error(
          { reason: (err as Error).message },
          'provisioning the inbound streams again failed',
        ),
      )
      .finally(() => {
        retrying = false;
      });
  }, options.inboundRetryMs ?? DEFAULT_INBOUND_RETRY_MS);
  scope.onFailure(() => clearInterval(inboundRetryTimer));
  checkpointTimer.unref();

  const reloadAgreements = (): boolean => {
    try {
      const next = loadAgreementsFile(config.agreementsFile, registry, keys.trust().agencies);
      if (next.sha256 === agreementsHash) return true;
      for (const [label, d] of checkTermsUnchanged(seenTerms, next.set)) seenTerms.set(label, d);
      agreements = next.set;
      agreementsHash = next.sha256;
      metrics.reloads.inc({ result: 'applied' });
      log.info(
        { agreements: next.set.agreements.map((a) => `${a.id}@${a.version}`) },
        'agreements reloaded',
      );
      writer
        .enqueue(agreementsOutcome(config.agreementsFile, next.sha256, next.set))
        .catch((err: unknown) => log.error({ err }, 'audit of the agreements reload failed'));
      return true;
    } catch (err) {
      metrics.reloads.inc({ result: 'refused' });
      const issues = (err as { issues?: { pointer: string; message: string }[] }).issues;
      log.error(
        {
          code: (err as { code?: string }).code,
          reason: (err as Error).message,
          issues,
          ...(err instanceof AgreementsChangedInPlaceError ? { labels: err.labels } : {}),
        },
        'agreements file refused; the previous agreements stay in force',
      );
      return false;
    }
  };
  const watcher: FSWatcher = watchAgreementsFile(
    config.agreementsFile,
    () => void reloadAgreements(),
  );
  scope.onFailure(() => watcher.close());

  let ready = true;
  // Counting waiting notices reads the database: when that fails, the check says so (and the
  // database check below makes the router not ready) instead of failing the whole probe.
  const noticesCheck = () => {
    try {
      return describeWaitingNotices(noticesWaiting());
    } catch (err) {
      return `not counted: ${(err as Error).message}`;
    }
  };
  const readiness = async () => {
    const checks: Record<string, string> = {
      nats: natsWatch.state,
      consumer: loop.stopped ? 'stopped' : 'consuming',
      // Work that keeps failing (a full stream, an unreachable partner feed) is stuck work.
      routing:
        loop.stuck === 0
          ? 'ok'
          : `stuck: ${loop.stuck} message(s) retried ${STUCK_DELIVERIES}+ times`,
      audit: checkpointer.failure
        ? `tampered: ${checkpointer.failure}`
        : checkpointer.paused
          ? `checkpoints not published for ${Math.round(checkpointer.unpublishedMs / 1000)} s: routing paused`
          : 'ok',
      // A full feed is one recipient's alarm, not the router's: it stays ready.
      feeds: describeHeld(held.held),
      // Likewise notices waiting for room in their addressee's feed.
      notices: noticesCheck(),
      // Likewise an agency whose budget in a limits feed stream is spent.
      originBudgets:
        originBudget.spentAgencies.length === 0
          ? 'ok'
          : `spent: ${originBudget.spentAgencies.join(', ')} (copies held, inbound not read until their oldest charges age out)`,
      // Likewise an agency without its inbound stream: every other agency is routed.
      inboundStreams:
        inboundMissing.length === 0
          ? 'ok'
          : `degraded: not provisioned for ${inboundMissing.map((f) => f.agency).join(', ')} (retrying)`,
      feedsRetention,
      // An agency's leaf node out of reach is that agency's wait, not the router's: it stays ready.
      ...(leafOutboxes ? { leafOutboxes: describeLeafOutboxes(leafOutboxes.states()) } : {}),
    };
    try {
      db.prepare('SELECT 1').get();
      checks['database'] = 'ok';
    } catch (err) {
      checks['database'] = (err as Error).message;
    }
    return {
      ready:
        ready &&
        checks['nats'] === 'connected' &&
        checks['consumer'] === 'consuming' &&
        checks['routing'] === 'ok' &&
        checks['audit'] === 'ok' &&
        checks['database'] === 'ok',
      checks,
    };
  };
  metrics.undeliveredSource.count = () =>
    store.countUndelivered(new Date(Date.now() - config.undeliveredAfterMs).toISOString());
  const tokensOf = (c: RouterConfig): RouterTokens => ({
    coordinators: c.coordinators,
    operators: c.operators,
    metricsReaders: c.metricsReaders,
  });
  let tokens = tokensOf(config);
  const http = buildCoordinatorApi({
    config,
    tokens: () => tokens,
    databases: [db, ...peers],
    metrics,
    log,
    readiness,
    store,
    agreements: () => agreements,
    latestCheckpoint: () => checkpointer.latest,
    trust: keys.trust,
    deadLetters,
  });
  scope.onFailure(() => http.close());
  const url = await listenHttp(http, {
    ...config.http,
    listen: config.http.enabled && (options.listen ?? true),
  });
  log.info(
    {
      url,
      instance: config.instance,
      agreements: agreements.agreements.length,
      agencies: keys.trust().agencies.length,
    },
    'router listening',
  );

  return {
    config,
    url,
    store,
    http,
    audit: checkpointer,
    reloadAgreements,
    async reload(next) {
      if (next) {
        tokens = tokensOf(next);
        log.info(
          {
            coordinators: tokens.coordinators.map((c) => c.name),
            operators: tokens.operators.map((o) => o.name),
            metricsReaders: tokens.metricsReaders.map((m) => m.name),
          },
          'API tokens reloaded',
        );
      }
      // The agencies' feeds are provisioned again after a trust-store reload: new agencies get one.
      // A failure is retried: a nats-server reloading its accounts at the same moment (a new
      // agency) can time the JetStream API out, and a new agency without its feed consumer
      // would receive nothing until the next SIGHUP.
      if (keys.reload()) {
        // The head is signed again with the key now in use: a key revoked for compromise no
        // longer counts at start, and the head must verify then (docs/protocol.md §8.3).
        try {
          db.transaction(() => store.audit.append([], new Date().toISOString())).immediate();
        } catch (err) {
          if (err instanceof AuditIntegrityError) checkpointer.fail(err.message);
          else log.error({ err: (err as Error).message }, 'the audit head was not signed again');
        }
        for (let attempt = 1; attempt <= PROVISION_ATTEMPTS; attempt++) {
          try {
            await provisionInTurn();
            break;
          } catch (err) {
            log.error(
              { reason: (err as Error).message, attempt, of: PROVISION_ATTEMPTS },
              'provisioning after the reload failed',
            );
            if (attempt < PROVISION_ATTEMPTS)
              await new Promise((r) => setTimeout(r, PROVISION_RETRY_MS));
          }
        }
      }
      // A new agency's inbound stream is read from now on (one provisioning did not make yet
      // is looked for again until it exists).
      await loop.refreshSources();
      reloadAgreements();
    },
    async close() {
      ready = false;
      watcher.close();
      clearInterval(checkpointTimer);
      clearInterval(inboundRetryTimer);
      await http.close();
      await loop.stop();
      await held.stop();
      feeds.close();
      writer.flush();
      await notifier.stop();
      // After the last notices are sent (and charged) and the last receipts written.
      originBudget.stop();
      await leafOutboxes?.stop();
      await checkpoint();
      checkpointer.close();
      await nc.drain().catch(() => nc.close());
      for (const p of peers) p.close();
      db.close();
    },
  };
}

/**
 * Whether `agency`'s oldest message the router has not handled is within a tenth of its inbound
 * stream's max age (at least 5 s, at most an hour) of aging out. Asked while the agency's budget
 * in the feed stream is spent and its stream is not read: rather than let an alert age out
 * unrouted, the router reads it and holds its copies.
 */
async function inboundOverdue(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  agency: string,
): Promise<boolean> {
  const stream = inboundStreamName(agency);
  const c = await jsm.consumers.info(stream, ROUTER_CONSUMER);
  if (unhandled(c) === 0) return false;
  const s = await jsm.streams.info(stream);
  const maxAgeMs = s.config.max_age / 1_000_000;
  if (maxAgeMs <= 0) return false;
  const margin = Math.max(5000, Math.min(3_600_000, maxAgeMs / 10));
  const seq = Math.max(c.ack_floor.stream_seq + 1, s.state.first_seq);
  const m = await jsm.streams.getMessage(stream, { seq });
  return !m || Date.now() - m.time.getTime() >= maxAgeMs - margin;
}

/** `/readyz`'s `leafOutboxes` check: `ok`, or whose leaf node is not read and why. */
function describeLeafOutboxes(states: Record<string, LeafOutboxState>): string {
  const waiting = Object.entries(states).filter(([, s]) => s !== 'reading');
  return waiting.length === 0
    ? 'ok'
    : `waiting: ${waiting.map(([a, s]) => `${a} ${s}`).join(', ')}`;
}

/** `/readyz`'s `feeds` check: `ok`, or which recipients have copies held and since when. */
function describeHeld(held: ReadonlyMap<string, { count: number; since: string }>): string {
  if (held.size === 0) return 'ok';
  return `held: ${[...held].map(([r, h]) => `${r} ${h.count} cop${h.count === 1 ? 'y' : 'ies'} since ${h.since}`).join(', ')}`;
}

/** `/readyz`'s `notices` check: `ok`, or which agencies' notice events wait in the outbox. */
function describeWaitingNotices(waiting: ReadonlyMap<string, number>): string {
  if (waiting.size === 0) return 'ok';
  return `waiting: ${[...waiting].map(([a, n]) => `${a} ${n >= NOTICE_EVENTS_COUNTED ? `${n} or more events` : `${n} event${n === 1 ? '' : 's'}`}`).join(', ')} (no room in their feed: kept in the outbox, tried again every heldRetryMs)`;
}

/** Logs what the feed stream's limits cannot hold of the configured load, with the numbers. */
function warnFeedSizing(config: RouterConfig, agencyIds: readonly string[], log: Logger): void {
  const s = config.streams;
  const agencies = agencyIds.length;
  const sizing = checkFeedSizing({
    feedsMaxBytes: s.feedsMaxBytes,
    maxAgeMs: s.maxAgeMs,
    recipientMaxCopies: s.recipientMaxCopies,
    ...(s.recipientMaxBytes === undefined ? {} : { recipientMaxBytes: s.recipientMaxBytes }),
    load: s.load,
    agencies,
    retention: s.feedsRetention,
    inbound: {
      agencies: agencyIds,
      maxBytes: s.inboundMaxBytes,
      maxBytesFor: s.inboundMaxBytesFor,
    },
  });
  const figures = {
    feedsMaxBytes: s.feedsMaxBytes,
    inboundMaxBytes: s.inboundMaxBytes,
    inboundMaxBytesFor: s.inboundMaxBytesFor,
    recipientMaxCopies: s.recipientMaxCopies,
    quotaBytes: sizing.quotaBytes,
    recipientBytes: sizing.recipientBytes,
    recipientCopiesPerSecond: sizing.recipientCopiesPerSecond,
    recipientAbsenceMs: sizing.recipientAbsenceMs,
    agencies,
    load: s.load,
  };
  for (const w of sizing.warnings) log.warn(figures, `stream sizing: ${w}`);
  if (sizing.warnings.length === 0) log.info(figures, 'stream sizing holds the configured load');
}
