import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { auditCountsByAlert, isOneDecision } from './audit-counts.js';
import { feedIds } from './feed.js';
import { eventually, feedMessages, routerBacklog, seizureReport } from './fixtures.js';
import { LOCAL_ROUTER, startLocalHub, type LocalHub, type LocalHubOptions } from './local-hub.js';

/** A local hub for fault tests: one origin sending seizure reports to its partners. */
export interface ChaosHub {
  readonly hub: LocalHub;
  /** The hub's own connection (the router's principal) and its JetStream manager. */
  readonly nc: NatsConnection;
  readonly jsm: JetStreamManager;
  readonly origin: string;
  readonly recipients: readonly string[];
  /**
   * Submits `n` new seizure reports through the origin's gateway over HTTP, 4 at a time, and
   * returns their ids once every one got its 202. With `retry503`, a 503 (only that: anything
   * else throws) is retried with the same alert, as an agency's systems do; without it, any
   * answer but 202 throws.
   */
  submit(
    n: number,
    options?: { retry503?: boolean; onAccepted?: (count: number) => void },
  ): Promise<string[]>;
  /** POSTs one alert to the origin's gateway; `undefined` when the request itself failed. */
  post(alert: unknown): Promise<Response | undefined>;
  /** The ids in `agency`'s inbox, in feed order, every page. */
  inboxIds(agency: string): Promise<string[]>;
  /**
   * Waits until every partner's inbox holds `ids` and the router has drained the inbound
   * stream, then throws unless each inbox holds exactly `ids`, each once, and the feeds stream
   * exactly one copy per alert and partner.
   */
  checkDeliveredOnce(ids: readonly string[]): Promise<void>;
  /** Throws unless the audit log has one received and one forwarded per partner for each of `ids`, and no other alert. */
  checkAuditComplete(ids: readonly string[]): void;
  stop(): Promise<void>;
}

export interface ChaosHubOptions {
  readonly origin: string;
  readonly recipients: readonly string[];
  readonly env: LocalHubOptions['env'];
  readonly clusterSize?: number;
  readonly leaves?: readonly string[];
  readonly routerConfig?: Record<string, unknown>;
  readonly gatewayConfig?: Record<string, unknown>;
}

/**
 * Starts a local hub (each service its own process, see {@link startLocalHub}) for an origin and
 * its partners under one agreement for seizure reports, and connects to it as the hub.
 */
export async function startChaosHub(o: ChaosHubOptions): Promise<ChaosHub> {
  const agencies = [o.origin, ...o.recipients];
  const hub = await startLocalHub({
    agencies: agencies.map((id) => ({ id, name: id })),
    agreements: {
      agreements: [
        {
          id: 'CHAOS',
          version: 1,
          title: 'Fault tests',
          parties: [...new Set(agencies.map((a) => a.split('-')[0]!))],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    },
    env: o.env,
    ...(o.clusterSize === undefined ? {} : { clusterSize: o.clusterSize }),
    ...(o.leaves === undefined ? {} : { leaves: o.leaves }),
    ...(o.routerConfig === undefined ? {} : { routerConfig: o.routerConfig }),
    ...(o.gatewayConfig === undefined ? {} : { gatewayConfig: o.gatewayConfig }),
  });
  let nc: NatsConnection | undefined;
  try {
    nc = await hub.connectAs(LOCAL_ROUTER);
    const jsm = await jetstreamManager(nc, { timeout: 10_000 });
    return chaosHub(hub, nc, jsm, o);
  } catch (err) {
    await nc?.close();
    await hub.stop();
    throw err;
  }
}

function chaosHub(
  hub: LocalHub,
  nc: NatsConnection,
  jsm: JetStreamManager,
  o: ChaosHubOptions,
): ChaosHub {
  const auth = { authorization: `Bearer ${hub.token}` };
  const post = (alert: unknown) =>
    fetch(`${hub.gateways[o.origin]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(alert),
    }).catch(() => undefined);

  const inboxIds = (agency: string) => feedIds(hub.gateways[agency]!.url, hub.token);

  return {
    hub,
    nc,
    jsm,
    origin: o.origin,
    recipients: o.recipients,
    post,
    inboxIds,

    async submit(n, options = {}) {
      const alerts = Array.from({ length: n }, () => seizureReport(o.origin));
      let next = 0;
      let accepted = 0;
      const worker = async () => {
        for (let a = alerts[next++]; a; a = alerts[next++]) {
          for (let attempt = 0; ; attempt++) {
            const res = await post(a);
            if (res?.status === 202) break;
            // Only "try again later" is an acceptable answer, and only when retrying.
            if (!options.retry503 || res?.status !== 503)
              throw new Error(`alert ${a.id}: answered ${res?.status ?? 'no response'}, not 202`);
            if (attempt > 100) throw new Error(`alert ${a.id} was never accepted`);
            await new Promise((r) => setTimeout(r, 250));
          }
          options.onAccepted?.(++accepted);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
      return alerts.map((a) => a.id);
    },

    async checkDeliveredOnce(ids) {
      for (const agency of o.recipients) {
        const got = await eventually(
          async () => {
            const inbox = await inboxIds(agency);
            return inbox.length >= ids.length ? inbox : undefined;
          },
          90_000,
          `${agency}'s inbox to hold ${ids.length} alerts`,
        );
        const want = new Set(ids);
        const missing = ids.filter((id) => !got.includes(id));
        const extra = got.filter((id) => !want.has(id));
        if (got.length !== ids.length || missing.length > 0 || extra.length > 0)
          throw new Error(
            `${agency}'s inbox holds ${got.length} alerts for ${ids.length} sent: missing ${missing.join(', ') || 'none'}; not sent or twice ${extra.join(', ') || 'none'}`,
          );
      }
      await eventually(
        async () => (await routerBacklog(jsm)) === 0,
        60_000,
        'the router to drain the inbound streams',
      );
      // Right after the cluster regains its quorum the JetStream API may still answer
      // "temporarily unavailable": read the stream once it answers (what it holds is unchanged).
      const feeds = (
        await eventually(() => feedMessages(nc), 30_000, 'the feeds stream to answer')
      ).map((m) => m.msgId);
      if (feeds.length !== ids.length * o.recipients.length || new Set(feeds).size !== feeds.length)
        throw new Error(
          `the feeds stream holds ${feeds.length} copies (${new Set(feeds).size} distinct) for ${ids.length} alerts x ${o.recipients.length} partners`,
        );
    },

    checkAuditComplete(ids) {
      const byId = auditCountsByAlert(hub.auditDb);
      // Exactly one routing decision per alert, naming every recipient once.
      for (const id of ids) {
        const r = byId.get(id);
        if (!isOneDecision(r, o.recipients.length))
          throw new Error(
            `alert ${id}: ${r?.decisions ?? 0} routing decisions, ${r?.received ?? 0} "received" entries, ${r?.copies ?? 0} copies forwarded to ${r?.recipients ?? 0} recipients (want 1, 0, ${o.recipients.length} and ${o.recipients.length})`,
          );
      }
      if (byId.size !== ids.length)
        throw new Error(`the audit log names ${byId.size} alerts, ${ids.length} were sent`);
    },

    async stop() {
      await nc.close();
      await hub.stop();
    },
  };
}

/**
 * Whether stream `name` of a three-node cluster is at R3 with a leader and both other replicas
 * current and online.
 */
export async function streamReplicasCurrent(jsm: JetStreamManager, name: string): Promise<boolean> {
  const info = await jsm.streams.info(name);
  const replicas = info.cluster?.replicas ?? [];
  return (
    info.config.num_replicas === 3 &&
    info.cluster?.leader !== undefined &&
    replicas.length === 2 &&
    replicas.every((r) => r.current && !r.offline)
  );
}
