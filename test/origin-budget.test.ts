import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { Streams } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, feedShareBytes, provisionHub } from '@alert-hub/runtime';
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
 * With limits retention (a cluster's, or `streams.feedsRetention: limits` on one server) the feed
 * stream keeps the copies partners read for its max age: without a bound one agency's fan-out
 * fills it for everybody. Each agency has a byte budget over the stream's max age: a flood of
 * large alerts to partners that read them spends the flooder's budget, its further alerts wait
 * (in its inbound stream, or held by the router), another agency's alert reaches the same
 * partners at once, and once the flooder's charges age out every waiting alert is delivered,
 * each once. Real nats-server, router and gateways in this process; the feed stream's max age is
 * cut to seconds after provisioning (the router reads it from the stream, not its configuration).
 */
const FLOODER = 'SG-NPARKS';
const HONEST = 'TZ-WD';
const READERS = ['KE-KWS', 'VN-CUSTOMS'];
const AGENCIES = [FLOODER, HONEST, ...READERS];
const FEEDS_MAX_BYTES = 2 * 1024 * 1024;
// Long enough that the flooder is still spent while the honest alert's checks run on a loaded
// machine (at 3 s a CI run found its charges aged out, and the flooder routed again, before).
const FEEDS_MAX_AGE_MS = 6000;
const BUDGET = feedShareBytes(FEEDS_MAX_BYTES, AGENCIES.length);
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
  // Inbound streams keep a minute (the flooder's waiting alerts stay there); the feed stream
  // keeps its copies FEEDS_MAX_AGE_MS.
  await provisionHub(jsm, AGENCIES, {
    limits: {
      feedsRetention: 'limits',
      feedsMaxBytes: FEEDS_MAX_BYTES,
      maxAgeMs: 60_000,
      duplicateWindowMs: FEEDS_MAX_AGE_MS / 2,
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

describe('feeds with limits retention - each agency’s byte budget over the stream’s max age', () => {
  it('a flood to partners that read spends the flooder’s budget: its further alerts wait, another agency’s alert reaches the partners at once, and once the charges age out every waiting alert is delivered, each once', async () => {
    expect((await jsm.streams.info(Streams.Feeds)).config.retention).toBe('limits');
    expect(await gauge('ahub_router_origin_budget_bytes', 'agency', FLOODER)).toBe(BUDGET);
    // 36 alerts of about 21 KB to three partners: about 2.4 MB, more than the whole stream
    // (2 MiB) and more than four times the flooder's budget (an even quarter, 0.95 x 2 MiB / 4).
    // Without the budget they fill the stream within its max age and every partner's copies
    // are held meanwhile.
    const flood: string[] = [];
    for (let i = 0; i < 9; i++)
      flood.push(
        ...(await submitAll(
          FLOODER,
          Array.from({ length: 4 }, () => largeReport(FLOODER)),
        )),
      );
    // The flooder's budget spent (or, without it, the stream filled by its copies).
    await eventually(
      async () =>
        (await readiness())['originBudgets']?.includes(FLOODER) ||
        (await jsm.streams.info(Streams.Feeds)).state.bytes > 0.8 * FEEDS_MAX_BYTES,
      10_000,
      "the flooder's budget to be spent",
    );
    // Another agency's alert reaches every partner at once, while the flooder's budget is spent
    // (without the budget it is held until the flood's copies age out of the stream).
    const started = Date.now();
    const [honest] = await submitAll(HONEST, [largeReport(HONEST)]);
    for (const r of [...READERS, FLOODER]) await inboxHolding(r, [honest!], 10_000);
    const took = Date.now() - started;
    expect(took, 'the honest alert reached every partner within ms').toBeLessThan(
      FEEDS_MAX_AGE_MS / 2,
    );
    expect((await jsm.streams.info(Streams.Feeds)).state.bytes).toBeLessThan(0.8 * FEEDS_MAX_BYTES);
    expect(routerLog.lines.some((l) => l.includes('"msg":"origin budget spent'))).toBe(true);
    const charged = await gauge('ahub_router_origin_charged_bytes', 'agency', FLOODER);
    expect(charged).toBeGreaterThan(BUDGET / 2);
    expect(charged).toBeLessThanOrEqual(BUDGET);
    // Its further alerts wait: not all of them reached the first partner yet.
    const partial = await inboxIds(READERS[0]!);
    expect(flood.filter((id) => partial.includes(id)).length).toBeLessThan(flood.length);

    // The flooder's charges age out (about every 7 s: max age, a bucket, the slack) and its waiting
    // alerts go, a budget at a time: every one delivered, each once.
    for (const r of [HONEST, ...READERS]) {
      const inbox = await inboxHolding(r, flood, 90_000);
      expect(new Set(inbox).size, `${r}'s inbox holds each alert once`).toBe(inbox.length);
    }
    expect(routerLog.lines.some((l) => l.includes('"msg":"origin budget has room again'))).toBe(
      true,
    );
    await eventually(
      async () => (await readiness())['originBudgets'] === 'ok' || undefined,
      30_000,
      'no budget spent',
    );
  }, 150_000);
});
