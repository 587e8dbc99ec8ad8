import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, receiptSubject } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { MAX_FEED_MESSAGE_BYTES, createToken, recipientQuotaBytes } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  gatewaySettings,
  makeHubFixture,
  memoryLogger,
  routerDrained,
  routerSettings,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

/**
 * The feed stream cannot be filled by one agency, sending or absent: on the default settings
 * (interest retention on one replica, each recipient's byte quota the stream's even share) a
 * flood of large alerts to a partner whose gateway is away, and the refusal notices of a flood
 * of junk, stay within that partner's quota; every other agency's copies keep flowing. Real
 * nats-server, router and gateways in this process.
 */
const FLOODER = 'SG-NPARKS';
const ABSENT = 'VN-CUSTOMS';
const READER = 'KE-KWS';
const HONEST = 'TZ-WD';
const AGENCIES = [FLOODER, ABSENT, READER, HONEST];
const FEEDS_MAX_BYTES = 2 * 1024 * 1024;
const QUOTA = recipientQuotaBytes(FEEDS_MAX_BYTES, AGENCIES.length);
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
let router: Router;
let nc: NatsConnection;
let jsm: JetStreamManager;
const gateways: Record<string, Gateway> = {};
const logs: Record<string, ReturnType<typeof memoryLogger>> = {};

async function startAgencyGateway(agency: string): Promise<void> {
  logs[agency] = memoryLogger(`gateway-${agency}`);
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
    { log: logs[agency].log },
  );
}

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [seizureAgreement('ALL', 'all', AGENCIES)] }));
  router = await startRouter(
    routerConfig(
      {},
      writeConfig(
        fx.dir,
        'router',
        // Nothing about retention or quotas: the defaults are what is tested.
        routerSettings(fx, nats.url, {
          agreementsFile,
          streams: { feedsMaxBytes: FEEDS_MAX_BYTES, heldRetryMs: 300 },
          noticeCoalesceMs: 50,
        }),
      ),
    ),
    { log: memoryLogger('router').log },
  );
  // The absent partner has no gateway until the last test.
  for (const agency of [FLOODER, READER, HONEST]) await startAgencyGateway(agency);
  nc = await nats.connect();
  jsm = await jetstreamManager(nc);
}, 60_000);
afterAll(async () => {
  for (const g of Object.values(gateways)) await g.close();
  await router?.close();
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

/** Submits `alerts` in one batch request; returns their ids, each accepted. */
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

async function inboxHolding(agency: string, ids: readonly string[], ms = 30_000) {
  return eventually(
    async () => {
      const inbox = await inboxIds(agency);
      return ids.every((id) => inbox.includes(id)) ? inbox : undefined;
    },
    ms,
    `${agency}'s inbox to hold ${ids.length} alerts`,
  );
}

async function gauge(name: string, recipient?: string): Promise<number> {
  const text = await (await fetch(`${router.url}/metrics`)).text();
  const labels = recipient ? `\\{[^}]*recipient="${recipient}"[^}]*\\}` : '(?:\\{[^}]*\\})?';
  const m = new RegExp(`^${name}${labels} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

describe('feeds - no agency can fill the feed stream for the others', () => {
  const flood: string[] = [];
  let honest = '';

  it('defaults: interest retention, and each recipient’s byte quota is the stream’s even share less one message', async () => {
    const info = await jsm.streams.info(Streams.Feeds);
    expect(info.config.retention).toBe('interest');
    expect(info.config.max_bytes).toBe(FEEDS_MAX_BYTES);
    expect(QUOTA).toBeGreaterThan(100_000);
    expect(AGENCIES.length * (QUOTA + MAX_FEED_MESSAGE_BYTES)).toBeLessThanOrEqual(FEEDS_MAX_BYTES);
    expect(await gauge('ahub_router_feed_quota_bytes')).toBe(QUOTA);
  });

  it('a flood of large alerts to a partner that is away stays within its quota: the other partners get every copy, and another agency’s alert reaches them at once', async () => {
    // 120 alerts of about 25 KB (four to a request: the body limit is 128 KiB) to three
    // partners: about 3 MB for the absent one alone, more than the whole stream. Without the byte
    // quota the stream fills with the absent partner's copies and every agency's copies are held.
    for (let i = 0; i < 30; i++)
      flood.push(
        ...(await submitAll(
          FLOODER,
          Array.from({ length: 4 }, () => largeReport(FLOODER)),
        )),
      );
    await inboxHolding(READER, flood, 60_000);
    await inboxHolding(HONEST, flood, 60_000);
    honest = (await submitAll(HONEST, [seizureReport(HONEST)]))[0]!;
    await inboxHolding(READER, [honest]);
    await inboxHolding(FLOODER, [honest]);

    // The absent partner's feed holds its quota (and at most one message beyond); the rest of
    // its copies are held by the router, and the stream never came near full.
    const waiting = await gauge('ahub_router_feed_waiting_bytes', ABSENT);
    expect(waiting).toBeGreaterThan(QUOTA / 2);
    expect(waiting).toBeLessThanOrEqual(QUOTA + MAX_FEED_MESSAGE_BYTES);
    expect(await gauge('ahub_router_held_copies', ABSENT)).toBeGreaterThan(0);
    for (const r of [READER, HONEST, FLOODER])
      expect(await gauge('ahub_router_held_copies', r)).toBe(0);
    const info = await jsm.streams.info(Streams.Feeds);
    expect(info.state.bytes).toBeLessThanOrEqual(QUOTA + MAX_FEED_MESSAGE_BYTES + 256 * 1024);
  }, 180_000);

  it('refusal notices of a flood of junk wait in the outbox once the absent agency’s quota is used, and take no one else’s room', async () => {
    // Junk on the absent agency's own receipt subject (this server has no accounts, so the
    // test's connection publishes it): each is refused, and each refusal is a notice event to
    // that agency's feed.
    const js = jetstream(nc);
    for (let i = 0; i < 2000; i++)
      await js.publish(receiptSubject(ABSENT), new Uint8Array(400).fill(0x6a));
    // and a few on subjects of 1,000 characters (the agency's to choose): each refusal's event
    // names the subject, cut to what notice.v1 allows (300), or the whole notice would be invalid
    for (let i = 0; i < 5; i++)
      await js.publish(`ahub.in.${ABSENT}.${'x'.repeat(1000)}`, new Uint8Array(400).fill(0x6a));
    await routerDrained(nc);
    // Every junk message is refused; its notices wait (tried again every heldRetryMs, 300 ms).
    await new Promise((r) => setTimeout(r, 1500));
    expect(router.store.outbox(10).length).toBeGreaterThan(0);
    const waiting = await gauge('ahub_router_feed_waiting_bytes', ABSENT);
    expect(waiting).toBeLessThanOrEqual(QUOTA + MAX_FEED_MESSAGE_BYTES);
    // Another agency's alert still reaches everyone present, at once.
    const [id] = await submitAll(HONEST, [seizureReport(HONEST)]);
    await inboxHolding(READER, [id!]);
    await inboxHolding(FLOODER, [id!]);
    flood.push(id!);
  }, 120_000);

  it('once the absent partner’s gateway comes back, every held copy and waiting notice reaches it, each alert once', async () => {
    await startAgencyGateway(ABSENT);
    const inbox = await inboxHolding(ABSENT, [...flood, honest], 120_000);
    expect(new Set(inbox).size).toBe(inbox.length);
    await eventually(
      async () =>
        router.store.outbox(10).length === 0 &&
        (await gauge('ahub_router_held_copies', ABSENT)) === 0,
      60_000,
      'nothing held, no notice waiting',
    );
    // Every notice it received verified and applied: none quarantined.
    const metrics = await (await fetch(`${gateways[ABSENT]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^ahub_gateway_notices_total\{[^}]*result="applied"[^}]*\} [1-9]/m);
    expect(metrics).not.toMatch(/^ahub_gateway_notices_total\{[^}]*result="quarantined"/m);
  }, 180_000);
});
