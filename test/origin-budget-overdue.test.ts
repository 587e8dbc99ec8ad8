import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { Streams } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  gatewaySettings,
  makeHubFixture,
  memoryLogger,
  routerSettings,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

/**
 * An agency whose byte budget in a limits feed stream is spent has its inbound stream left
 * unread, so its further alerts wait there: when the inbound stream would drop them first (its
 * max age shorter than what is left of the budget's window), the router reads them anyway and
 * holds their copies, and no alert ages out unrouted. Real nats-server, router and gateways in
 * this process; the streams' max ages are set after provisioning (the router reads them).
 */
const FLOODER = 'SG-NPARKS';
const HONEST = 'TZ-WD';
const READERS = ['KE-KWS', 'VN-CUSTOMS'];
const AGENCIES = [FLOODER, HONEST, ...READERS];
const FEEDS_MAX_BYTES = 2 * 1024 * 1024;
const FEEDS_MAX_AGE_MS = 120_000;
const INBOUND_MAX_AGE_MS = 10_000;
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
let router: Router;
let nc: NatsConnection;
let jsm: JetStreamManager;
const routerLog = memoryLogger('router');
const gateways: Record<string, Gateway> = {};

beforeAll(async () => {
  nc = await nats.connect();
  jsm = await jetstreamManager(nc);
  // Inbound streams keep 10 s, the feed stream 2 minutes: the flooder's budget has no room
  // again before its waiting alerts would age out of its inbound stream.
  await provisionHub(jsm, AGENCIES, {
    limits: {
      feedsRetention: 'limits',
      feedsMaxBytes: FEEDS_MAX_BYTES,
      maxAgeMs: INBOUND_MAX_AGE_MS,
      duplicateWindowMs: INBOUND_MAX_AGE_MS / 2,
    },
  });
  const feeds = await jsm.streams.info(Streams.Feeds);
  await jsm.streams.update(Streams.Feeds, { ...feeds.config, max_age: nanos(FEEDS_MAX_AGE_MS) });
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [seizureAgreement('ALL', 'all', AGENCIES)] }));
  router = await startRouter(
    routerConfig(
      {},
      writeConfig(
        fx.dir,
        'router',
        routerSettings(fx, nats.url, {
          agreementsFile,
          provision: false,
          streams: { feedsRetention: 'limits', feedsMaxBytes: FEEDS_MAX_BYTES, heldRetryMs: 300 },
          noticeCoalesceMs: 50,
        }),
      ),
    ),
    { log: routerLog.log },
  );
  for (const agency of AGENCIES)
    gateways[agency] = await startGateway(
      gatewayConfig(
        {},
        writeConfig(
          fx.dir,
          `gw-${agency}`,
          gatewaySettings(fx, nats.url, agency, token.sha256, {
            nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
            clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
          }),
        ),
      ),
      { log: memoryLogger(`gateway-${agency}`).log },
    );
}, 60_000);
afterAll(async () => {
  for (const g of Object.values(gateways)) await g.close();
  await router?.close();
  await nc?.close();
  fx.cleanup();
});

/** A seizure report of about 25 KB: fifty commodities with long names. */
function largeReport(origin: string) {
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

async function submitAll(agency: string, alerts: unknown[]): Promise<string[]> {
  const res = await fetch(`${gateways[agency]!.url}/v1/alerts:batch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
    body: JSON.stringify(alerts),
  });
  const body = (await res.json()) as { results: { status: number; id: string }[] };
  expect(res.status, JSON.stringify(body).slice(0, 2000)).toBeLessThan(300);
  expect(body.results.map((r) => r.status)).toEqual(alerts.map(() => 202));
  return body.results.map((r) => r.id);
}

async function inboxIds(agency: string): Promise<string[]> {
  const ids: string[] = [];
  let after = '0';
  for (;;) {
    const res = await fetch(`${gateways[agency]!.url}/v1/feed?after=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    const page = (await res.json()) as { items: { id: string }[]; next: string; hasMore: boolean };
    ids.push(...page.items.map((i) => i.id));
    after = page.next;
    if (!page.hasMore) return ids;
  }
}

async function inboxHolding(agency: string, ids: readonly string[], ms: number) {
  return eventually(
    async () => {
      const inbox = await inboxIds(agency);
      return ids.every((id) => inbox.includes(id)) ? inbox : undefined;
    },
    ms,
    `${agency}'s inbox to hold ${ids.length} alerts`,
  );
}

async function readiness(): Promise<Record<string, string>> {
  return (
    (await (await fetch(`${router.url}/readyz`)).json()) as { checks: Record<string, string> }
  ).checks;
}

async function gauge(name: string, label: string, value: string): Promise<number> {
  const text = await (await fetch(`${router.url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*${label}="${value}"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('feeds with limits retention - a spent budget never lets an alert age out of its inbound stream', () => {
  it('the flooder’s alerts about to age out of its inbound stream are read and their copies held: every alert is delivered or held, none lost', async () => {
    const flood: string[] = [];
    for (let i = 0; i < 5; i++)
      flood.push(
        ...(await submitAll(
          FLOODER,
          Array.from({ length: 4 }, () => largeReport(FLOODER)),
        )),
      );
    await eventually(
      async () => (await readiness())['originBudgets']?.includes(FLOODER),
      10_000,
      "the flooder's budget to be spent",
    );
    // Before its oldest waiting alert would age out (10 s), the router reads its inbound stream
    // and holds the copies; the budget has no room again for two minutes.
    const partners = [HONEST, ...READERS];
    await eventually(
      async () => {
        const inboxes = await Promise.all(partners.map((r) => inboxIds(r)));
        return flood.every((id) => {
          const held = router.store.heldOf(FLOODER, id).map((h) => h.recipient);
          return partners.every((r, i) => inboxes[i]!.includes(id) || held.includes(r));
        });
      },
      INBOUND_MAX_AGE_MS + 10_000,
      'every flood alert delivered or held',
    );
    const held = flood.filter((id) => router.store.heldOf(FLOODER, id).length > 0);
    expect(held.length).toBeGreaterThan(0);
    expect(await gauge('ahub_router_consumer_pending', 'origin', FLOODER)).toBe(0);
    expect(
      routerLog.lines.some((l) => l.includes('is about to age out of its inbound stream')),
    ).toBe(true);
    // Another agency's alert still reaches every partner at once.
    const [honest] = await submitAll(HONEST, [largeReport(HONEST)]);
    for (const r of [...READERS, FLOODER]) await inboxHolding(r, [honest!], 5_000);
  }, 60_000);
});
