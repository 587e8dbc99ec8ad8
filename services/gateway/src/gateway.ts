import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Streams, feedConsumerName, outboxStreamName } from '@alert-hub/core';
import {
  connectService,
  createBatchWriter,
  openServiceBasics,
  listenHttp,
  openDatabase,
  StartupScope,
  type Logger,
  registerConsumerBacklogGauge,
  registerNatsGauge,
  watchConnection,
  type Readiness,
} from '@alert-hub/runtime';
import { databaseFile, type GatewayConfig } from './config.js';
import { FeedConsumer } from './feed.js';
import { FeedContactWatch } from './feed-gap.js';
import { HubLink } from './hub-link.js';
import { buildHttp } from './http.js';
import { Intake } from './intake.js';
import { createGatewayMetrics } from './metrics.js';
import { NatsLink } from './nats-link.js';
import { OutboxWatch } from './outbox-watch.js';
import { ReceiptSender } from './receipts.js';
import { GatewayStore, type FeedWrite, type SentReceipt } from './store.js';
import { GatewayWitness } from './witness.js';

/** A running gateway. */
export interface Gateway {
  readonly config: GatewayConfig;
  readonly http: FastifyInstance;
  /** Base URL once listening (`http://127.0.0.1:8080`). */
  readonly url: string;
  readonly store: GatewayStore;
  /** The audit-log witness (undefined when disabled). */
  readonly witness: GatewayWitness | undefined;
  /**
   * Reloads the trust store and the signing key (SIGHUP); a failed reload keeps the old ones.
   * With `next` (the configuration file read again), its `clients` replace the API tokens in
   * force: a token added works at once, a revoked one gets 401 and its console sessions end.
   */
  reload(next?: GatewayConfig): void;
  /** Stops taking requests, drains the feed, closes NATS and the database. */
  close(): Promise<void>;
}

/** How {@link startGateway} runs the gateway. */
export interface StartGatewayOptions {
  /** `false`: the HTTP app is built but not bound. */
  listen?: boolean;
  log?: Logger;
}

/**
 * Wires a gateway together and starts it: database, keys, NATS, feed consumer, HTTP. A gateway
 * that does not start (its HTTP port taken, the hub out of reach) leaves nothing running: its
 * connections, attempts, timers and database are closed before the error is thrown.
 */
export function startGateway(
  config: GatewayConfig,
  options: StartGatewayOptions = {},
): Promise<Gateway> {
  return StartupScope.run((scope) => start(scope, config, options));
}

async function start(
  scope: StartupScope,
  config: GatewayConfig,
  options: StartGatewayOptions,
): Promise<Gateway> {
  const { log, registry, keys } = openServiceBasics({
    name: `gateway-${config.agency}`,
    logLevel: config.log.level,
    log: options.log,
    schemasDir: config.schemasDir,
    trustDir: config.trustDir,
    signingKey: config.signingKey,
    principal: config.agency,
    role: 'agency',
  });
  const metrics = createGatewayMetrics(config.agency);
  const db = openDatabase(databaseFile(config), { synchronous: config.sqlite.synchronous });
  scope.onFailure(() => db.close());
  const store = new GatewayStore(db, {
    agency: config.agency,
    receipts: config.receipts.enabled,
  });
  metrics.overdueSource.count = () => store.overdueCount(Date.now(), config.status.pendingAlertMs);
  const feedEvents = new EventEmitter();
  feedEvents.setMaxListeners(0);

  // Without a leaf node the gateway needs the hub for everything: it connects first, and fails
  // at start when the hub stays out of reach.
  const direct = config.outbox.servers
    ? undefined
    : await HubLink.open(config.nats, config.agency, log);
  // Behind a leaf node, what the gateway sends (alerts, receipts) is stored in the leaf's outbox,
  // which the hub sources; everything else goes to the hub by a connection of its own. The leaf
  // relays nothing else: it lands at the hub in an account of its own that imports nothing.
  const outbox = config.outbox.servers
    ? await (async () => {
        const onc = await connectService(
          { ...config.nats, servers: config.outbox.servers! },
          `alert-hub gateway ${config.agency} (leaf outbox)`,
          config.agency,
          log,
        );
        scope.onFailure(() => onc.close());
        const watch = watchConnection(onc, log);
        registerNatsGauge(metrics.registry, 'ahub_gateway_outbox_', watch);
        return {
          nc: onc,
          watch,
          js: jetstream(onc, { timeout: config.nats.publishTimeoutMs }),
          // The leaf's own JetStream (its local API), to read its outbox's state.
          jsm: await jetstreamManager(onc, { checkAPI: false, timeout: 2000 }),
        };
      })()
    : undefined;
  // Behind its leaf, the gateway takes alerts as soon as the leaf answers ("202 means stored at
  // the agency"); the hub is reached in the background, and what needs it starts then.
  const hubLink = direct ?? HubLink.connectInBackground(config.nats, config.agency, log);
  scope.onFailure(() => hubLink.close());
  registerNatsGauge(metrics.registry, 'ahub_gateway_', hubLink);
  const feedInfo = () =>
    hubLink.require('the feed').jsm.consumers.info(Streams.Feeds, feedConsumerName(config.agency));
  registerConsumerBacklogGauge(
    metrics.registry,
    'ahub_gateway_feed_pending',
    "Alerts routed to this agency that its gateway has not yet stored (its feed consumer's backlog)",
    feedInfo,
  );
  const sender = outbox ?? hubLink.require('intake');
  const link = new NatsLink(sender.nc, sender.js, sender.watch, {
    publishTimeoutMs: config.nats.publishTimeoutMs,
  });

  const receipts = createBatchWriter<SentReceipt>((items) => store.putSent(items));
  const receiptSender = new ReceiptSender({
    agency: config.agency,
    js: sender.js,
    store,
    signingKey: keys.key,
    metrics,
    log,
    publishTimeoutMs: config.nats.publishTimeoutMs,
    coalesceMs: config.receipts.coalesceMs,
  });
  const feedWriter = createBatchWriter<FeedWrite>((writes) => {
    const inserted = store.write(writes);
    const alerts = writes.filter((w) => w.kind === 'alert').length;
    if (alerts > inserted) metrics.feedDuplicates.inc(alerts - inserted);
    feedEvents.emit('committed');
    if (inserted > 0 && config.receipts.enabled) receiptSender.kick();
  });
  scope.onFailure(() => receiptSender.stop());
  // Receipts owed from before a restart go out first.
  if (config.receipts.enabled) receiptSender.kick();
  const intake = new Intake({
    agency: config.agency,
    registry,
    signingKey: keys.key,
    trust: keys.trust,
    store,
    receipts,
    nats: link,
    metrics,
    log,
    maxInFlight: config.http.maxInFlight,
  });
  const contactWatch = new FeedContactWatch({
    file: join(config.dataDir, 'feed-contact.json'),
    retentionMs: config.feed.hubRetentionMs,
  });
  const feedContact = () => {
    const gap = contactWatch.contact();
    if (gap) {
      metrics.feedGaps.inc();
      log.error(
        { code: 'ERR_FEED_RETENTION_EXCEEDED', ...gap },
        'the feed was out of reach longer than the hub keeps alerts: alerts forwarded in that window may have expired unread; ask the hub coordinator for the audit of alerts forwarded to this agency then',
      );
    }
  };
  const witness = config.witness.enabled
    ? new GatewayWitness({
        agency: config.agency,
        hubPrincipal: config.witness.hubPrincipal,
        signingKey: keys.key,
        trust: keys.trust,
        dir: join(config.dataDir, `witness-${config.agency}`),
        metrics,
        log,
        requestTimeoutMs: config.nats.publishTimeoutMs,
      })
    : undefined;
  scope.onFailure(() => witness?.close());
  let feed: FeedConsumer | undefined;
  let contactTimer: NodeJS.Timeout | undefined;
  scope.onFailure(() => {
    // No hub connection completing from now on starts a feed behind this stop.
    hubLink.abandon();
    clearInterval(contactTimer);
    return feed?.stop();
  });
  hubLink.onConnected((hub) => {
    witness?.start(hub.nc);
    if (!config.feed.enabled) return;
    feed = new FeedConsumer({
      onContact: feedContact,
      agency: config.agency,
      js: hub.js,
      trust: keys.trust,
      registry,
      writer: feedWriter,
      metrics,
      log,
      maxMessages: config.feed.maxMessages,
      perCopy: config.feed.perCopyCountersignature,
    });
    void feed.start();
    // Reach for the feed consumer once a minute even when nothing arrives, so that the time of
    // the last contact stays accurate to the minute (see FeedContactWatch).
    contactTimer = setInterval(() => {
      feedInfo().then(
        () => feedContact(),
        () => undefined,
      );
    }, 60_000).unref();
  });
  // Behind a leaf node: alerts that expire in its outbox before the hub has them are reported.
  const outboxWatch = outbox
    ? new OutboxWatch({
        jsm: outbox.jsm,
        stream: outboxStreamName(config.agency),
        store,
        metrics,
        log,
      })
    : undefined;
  const outboxTimer = outboxWatch
    ? setInterval(() => void outboxWatch.check(), config.outbox.checkIntervalMs).unref()
    : undefined;
  scope.onFailure(() => clearInterval(outboxTimer));

  let cachedReadiness: { at: number; value: Readiness } | undefined;
  const readiness = async (): Promise<Readiness> => {
    if (cachedReadiness && Date.now() - cachedReadiness.at < 1000) return cachedReadiness.value;
    const checks: Record<string, string> = {};
    checks['nats'] = hubLink.describe();
    if (outbox) checks['outboxNats'] = outbox.watch.state;
    try {
      // The one JetStream request an agency's user may always make: its own consumer's info.
      await feedInfo();
      checks['jetstream'] = 'ok';
      if (config.feed.enabled) feedContact();
    } catch (err) {
      checks['jetstream'] = `unreachable: ${(err as Error).message}`;
    }
    try {
      store.checkWritable();
      checks['database'] = 'writable';
    } catch (err) {
      checks['database'] = `not writable: ${(err as Error).message}`;
    }
    if (config.feed.enabled)
      checks['feed'] = feed?.consuming ? 'consuming' : 'waiting for the feed consumer';
    const gap = contactWatch.gap;
    if (gap)
      checks['feedGap'] =
        `ERR_FEED_RETENTION_EXCEEDED: out of reach from ${gap.since} to ${gap.until}, longer than the hub keeps alerts`;
    if (outboxWatch) {
      const loss = await outboxWatch.check();
      checks['outbox'] = loss
        ? `ERR_OUTBOX_EXPIRED: ${loss.count} accepted alerts expired in the leaf's outbox before the hub had them (resend them): ${loss.ids.join(', ')}`
        : outboxWatch.error
          ? `unreadable: ${outboxWatch.error}`
          : 'ok';
    }
    // Reported, not a reason to stop serving this agency: the problem is the hub's.
    if (witness)
      checks['witness'] = witness.inconsistency
        ? `audit log inconsistent: ${witness.inconsistency}`
        : witness.stalled
          ? `audit log not extending: ${witness.stalled}`
          : witness.failure
            ? `checkpoint not handled: ${witness.failure}`
            : 'ok';
    const ready =
      checks['nats'] === 'connected' &&
      (!outbox || checks['outboxNats'] === 'connected') &&
      checks['jetstream'] === 'ok' &&
      checks['database'] === 'writable' &&
      (!config.feed.enabled || feed?.consuming === true);
    cachedReadiness = { at: Date.now(), value: { ready, checks } };
    return cachedReadiness.value;
  };

  let clients = config.clients;
  const http = buildHttp({
    config,
    clients: () => clients,
    intake,
    store,
    registry,
    metrics,
    log,
    feedEvents,
    readiness,
    witness,
  });
  scope.onFailure(() => http.close());
  const url = await listenHttp(http, { ...config.http, listen: options.listen ?? true });
  if (url) log.info({ url, agency: config.agency, kid: keys.key().kid }, 'gateway listening');

  return {
    config,
    http,
    url,
    store,
    witness,
    reload(next) {
      keys.reload();
      if (next) {
        clients = next.clients;
        log.info({ clients: clients.map((c) => c.name) }, 'API tokens reloaded');
        // Every open live feed looks its caller up again now: a revoked token's stream ends.
        feedEvents.emit('committed');
      }
    },
    async close() {
      // A connection to the hub still being attempted is given up: nothing starts from now on.
      hubLink.abandon();
      clearInterval(contactTimer);
      clearInterval(outboxTimer);
      // The witness first: a proof of delivery waiting for it answers now, not after its wait.
      witness?.close();
      await http.close();
      await feed?.stop();
      feedWriter.flush();
      await receiptSender.stop();
      receipts.flush();
      await hubLink.close();
      await outbox?.nc.drain().catch(() => outbox.nc.close());
      store.close();
    },
  };
}
