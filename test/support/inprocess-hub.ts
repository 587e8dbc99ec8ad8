import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { JetStreamManager } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { Streams } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedIds,
  gatewaySettings,
  makeHubFixture,
  memoryLogger,
  routerSettings,
  seizureReport,
  writeConfig,
  scrapeMetrics,
} from '@alert-hub/testkit';

/**
 * A hub run in the test's own process against a real nats-server (the testkit's): the router and
 * one gateway per agency started with `startRouter` / `startGateway`, so a test can read the
 * router's store and memory log. Shared by the end-to-end tests of the feed stream's quotas and
 * the origin budget (test/origin-budget*.test.ts, test/feeds-cannot-fill.test.ts,
 * test/inbound-quota.test.ts); each test keeps its own streams, agreements, budgets and timings.
 * It lives under test/, not in the testkit, because the testkit may not import the services.
 */

type MemoryLogger = ReturnType<typeof memoryLogger>;

export interface InProcessHubStart {
  /** The router's agreements, written to `agreements.yaml` (its `agreementsFile`). */
  agreements: unknown[];
  /** Members added to or replacing the router's settings (`routerSettings`'s `extra`). */
  router?: Record<string, unknown>;
  /** The agencies whose gateway starts now (default: every one; the others by `startGateway`). */
  gateways?: readonly string[];
  /** Members added to or replacing an agency's gateway settings, after the one client's. */
  gateway?: (agency: string) => Record<string, unknown>;
}

/**
 * Registers the nats-server (`useNatsServer`) and makes the keys and certificates of `agencies`;
 * `start` (in a `beforeAll`) starts the router and the gateways, `close` (in an `afterAll`) stops
 * them. Each gateway has one client, `token`, that may submit and read the feed. The helpers
 * (submitAll, inboxIds, ...) need no `this`: a test may take them apart.
 */
export function useInProcessHub(agencies: readonly string[]) {
  const nats = useNatsServer();
  const fx = makeHubFixture(agencies);
  const token = createToken();
  /** The router's one metrics reader (its `/metrics` answers only a reader's token). */
  const prometheus = createToken();
  const routerLog = memoryLogger('router');
  const gatewayLogs: Record<string, MemoryLogger> = {};
  const gateways: Record<string, Gateway> = {};
  let router: Router | undefined;
  let gatewayExtra: (agency: string) => Record<string, unknown> = () => ({});

  const started = (): Router => {
    if (!router) throw new Error('the in-process hub is not started yet (hub.start in beforeAll)');
    return router;
  };
  const gatewayUrl = (agency: string): string => {
    const g = gateways[agency];
    if (!g) throw new Error(`${agency} has no gateway running`);
    return g.url;
  };

  /** Starts `agency`'s gateway, one `start` left out, with the per-agency settings it was given. */
  async function startAgencyGateway(agency: string): Promise<Gateway> {
    const log = memoryLogger(`gateway-${agency}`);
    gatewayLogs[agency] = log;
    const file = writeConfig(
      fx.dir,
      `gw-${agency}`,
      gatewaySettings(fx, nats.url, agency, token.sha256, {
        clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
        ...gatewayExtra(agency),
      }),
    );
    const g = await startGateway(gatewayConfig({}, file), { log: log.log });
    gateways[agency] = g;
    return g;
  }

  async function start(options: InProcessHubStart): Promise<void> {
    if (options.gateway) gatewayExtra = options.gateway;
    const agreementsFile = join(fx.dir, 'agreements.yaml');
    writeFileSync(agreementsFile, toYaml({ agreements: options.agreements }));
    const file = writeConfig(
      fx.dir,
      'router',
      routerSettings(fx, nats.url, {
        agreementsFile,
        metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
        ...options.router,
      }),
    );
    router = await startRouter(routerConfig({}, file), { log: routerLog.log });
    for (const agency of options.gateways ?? agencies) await startAgencyGateway(agency);
  }

  /** Stops the gateways and the router, removes the fixture's files. */
  async function close(): Promise<void> {
    for (const g of Object.values(gateways)) await g.close();
    await router?.close();
    fx.cleanup();
  }

  /** Posts one alert to `agency`'s gateway; the response as it is. */
  function submit(agency: string, alert: unknown): Promise<Response> {
    return fetch(`${gatewayUrl(agency)}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
      body: JSON.stringify(alert),
    });
  }

  /** Submits `alerts` in one batch request; returns their ids, each accepted. */
  async function submitAll(agency: string, alerts: unknown[]): Promise<string[]> {
    const res = await fetch(`${gatewayUrl(agency)}/v1/alerts:batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
      body: JSON.stringify(alerts),
    });
    const body = (await res.json()) as { results: { status: number; id: string }[] };
    expect(res.status, JSON.stringify(body).slice(0, 2000)).toBeLessThan(300);
    expect(body.results.map((r) => r.status)).toEqual(alerts.map(() => 202));
    return body.results.map((r) => r.id);
  }

  /** The ids in `agency`'s inbox (its gateway's feed), oldest first. */
  function inboxIds(agency: string): Promise<string[]> {
    return feedIds(gatewayUrl(agency), token.token);
  }

  /** Waits up to `ms` until `agency`'s inbox holds every one of `ids`; returns the whole inbox. */
  async function inboxHolding(
    agency: string,
    ids: readonly string[],
    ms = 30_000,
  ): Promise<string[]> {
    return eventually(
      async () => {
        const inbox = await inboxIds(agency);
        return ids.every((id) => inbox.includes(id)) ? inbox : undefined;
      },
      ms,
      `${agency}'s inbox to hold ${ids.length} alerts`,
    );
  }

  /** The router's readiness checks (`/readyz`). */
  async function readiness(): Promise<Record<string, string>> {
    return (
      (await (
        await fetch(`${started().url}/readyz`, {
          headers: { authorization: `Bearer ${prometheus.token}` },
        })
      ).json()) as { checks: Record<string, string> }
    ).checks;
  }

  /**
   * One scrape of the router's metrics, read with the function it gives: the first sample of
   * `name` whose `label` is `value`, or (without a label) the first sample of `name`; 0 when
   * there is none. Values read from one scrape are of one instant.
   */
  async function scrape(): Promise<(name: string, label?: string, value?: string) => number> {
    const text = await scrapeMetrics(started().url, prometheus.token);
    return (name, label, value) => {
      const labels =
        label === undefined ? '(?:\\{[^}]*\\})?' : `\\{[^}]*${label}="${value}"[^}]*\\}`;
      const m = new RegExp(`^${name}${labels} (\\S+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
  }
  /** A metric of the router's, from a scrape of its own (see {@link scrape}). */
  async function gauge(name: string, label?: string, value?: string): Promise<number> {
    return (await scrape())(name, label, value);
  }

  return {
    nats,
    fx,
    /** The one client token of every gateway (roles submit and read-feed). */
    token,
    /** The router's metrics reader's token (its `/metrics` answers no request without one). */
    metricsToken: prometheus.token,
    /** The router's log lines, kept in memory. */
    routerLog,
    /** Each gateway's log lines, kept in memory, by agency. */
    gatewayLogs,
    /** The running gateways by agency. */
    gateways,
    get router(): Router {
      return started();
    },
    start,
    startGateway: startAgencyGateway,
    close,
    submit,
    submitAll,
    inboxIds,
    inboxHolding,
    readiness,
    gauge,
    scrape,
  };
}

/**
 * Provisions the hub's streams as the router would, with limits retention on the feed stream
 * (`feedsMaxBytes`), inbound streams that keep their messages `inboundMaxAgeMs`, and then cuts the
 * feed stream's max age to `feedsMaxAgeMs` (seconds, shorter than provisioning allows): the router
 * reads it from the stream, not from its configuration, so start it with `provision: false`.
 */
export async function provisionLimitsFeeds(
  jsm: JetStreamManager,
  agencies: readonly string[],
  limits: {
    feedsMaxBytes: number;
    feedsMaxAgeMs: number;
    inboundMaxAgeMs: number;
    duplicateWindowMs: number;
  },
): Promise<void> {
  await provisionHub(jsm, agencies, {
    limits: {
      feedsRetention: 'limits',
      feedsMaxBytes: limits.feedsMaxBytes,
      maxAgeMs: limits.inboundMaxAgeMs,
      duplicateWindowMs: limits.duplicateWindowMs,
    },
  });
  const feeds = await jsm.streams.info(Streams.Feeds);
  await jsm.streams.update(Streams.Feeds, {
    ...feeds.config,
    max_age: nanos(limits.feedsMaxAgeMs),
  });
}

/**
 * The router settings for a hub whose feeds {@link provisionLimitsFeeds} provisioned: no
 * provisioning of its own, limits retention on a feed stream of `feedsMaxBytes`, notices
 * coalesced for 50 ms, and the test's own `streams` settings (budgets, held copies' retry).
 */
export function limitsRouter(feedsMaxBytes: number, streams: Record<string, unknown> = {}) {
  return {
    provision: false,
    streams: { feedsRetention: 'limits', feedsMaxBytes, ...streams },
    noticeCoalesceMs: 50,
  };
}

/** A seizure report of about 25 KB: fifty commodities with long names. */
export function largeReport(origin: string) {
  const base = seizureReport(origin) as unknown as { seizure: { commodities: unknown[] } };
  const commodity = {
    taxon: {
      scientificName: 'Manis javanica',
      commonName: `Sunda pangolin ${'x'.repeat(100)}`,
      citesAppendix: 'I',
    },
    product: 'scales',
    quantity: { value: 12.9, unit: 't' },
    hsCode: '0507.90',
  };
  return seizureReport(origin, {
    seizure: { ...base.seizure, commodities: Array.from({ length: 50 }, () => commodity) },
  });
}
