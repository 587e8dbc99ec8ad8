import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, receiptSubject } from '@alert-hub/core';
import { MAX_FEED_MESSAGE_BYTES, recipientQuotaBytes } from '@alert-hub/runtime';
import { eventually, routerDrained, seizureAgreement, seizureReport } from '@alert-hub/testkit';
import { largeReport, useInProcessHub } from './support/inprocess-hub.js';

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
const hub = useInProcessHub(AGENCIES);
const { submitAll, inboxHolding, gauge, readiness } = hub;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  await hub.start({
    agreements: [seizureAgreement('ALL', 'all', AGENCIES)],
    // Nothing about retention or quotas: the defaults are what is tested.
    router: {
      streams: { feedsMaxBytes: FEEDS_MAX_BYTES, heldRetryMs: 300 },
      noticeCoalesceMs: 50,
    },
    // The absent partner has no gateway until the last test.
    gateways: [FLOODER, READER, HONEST],
  });
  nc = await hub.nats.connect();
  jsm = await jetstreamManager(nc);
}, 60_000);
afterAll(() => hub.close());

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
    const waiting = await gauge('ahub_router_feed_waiting_bytes', 'recipient', ABSENT);
    expect(waiting).toBeGreaterThan(QUOTA / 2);
    expect(waiting).toBeLessThanOrEqual(QUOTA + MAX_FEED_MESSAGE_BYTES);
    expect(await gauge('ahub_router_held_copies', 'recipient', ABSENT)).toBeGreaterThan(0);
    for (const r of [READER, HONEST, FLOODER])
      expect(await gauge('ahub_router_held_copies', 'recipient', r)).toBe(0);
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
    expect(hub.router.store.outbox(10).length).toBeGreaterThan(0);
    // Shown to the operator: how many wait, for whom (the router stays ready).
    const events = await gauge('ahub_router_notice_events_waiting', 'agency', ABSENT);
    expect(events).toBeGreaterThan(0);
    expect(events).toBe(hub.router.store.outboxCount(ABSENT));
    const checks = await readiness();
    expect(checks['notices']).toMatch(
      new RegExp(`^waiting: ${ABSENT} ${events} events \\(no room in their feed`),
    );
    expect(await gauge('ahub_router_notice_events_waiting', 'agency', READER)).toBe(0);
    expect((await fetch(`${hub.router.url}/readyz`)).status).toBe(200);
    const waiting = await gauge('ahub_router_feed_waiting_bytes', 'recipient', ABSENT);
    expect(waiting).toBeLessThanOrEqual(QUOTA + MAX_FEED_MESSAGE_BYTES);
    // Another agency's alert still reaches everyone present, at once.
    const [id] = await submitAll(HONEST, [seizureReport(HONEST)]);
    await inboxHolding(READER, [id!]);
    await inboxHolding(FLOODER, [id!]);
    flood.push(id!);
  }, 120_000);

  it('once the absent partner’s gateway comes back, every held copy and waiting notice reaches it, each alert once', async () => {
    await hub.startGateway(ABSENT);
    const inbox = await inboxHolding(ABSENT, [...flood, honest], 120_000);
    expect(new Set(inbox).size).toBe(inbox.length);
    await eventually(
      async () =>
        hub.router.store.outbox(10).length === 0 &&
        (await gauge('ahub_router_held_copies', 'recipient', ABSENT)) === 0,
      60_000,
      'nothing held, no notice waiting',
    );
    await eventually(
      async () => (await readiness())['notices'] === 'ok',
      10_000,
      'no notice shown waiting',
    );
    expect(await gauge('ahub_router_notice_events_waiting', 'agency', ABSENT)).toBe(0);
    // Every notice it received verified and applied: none quarantined.
    const metrics = await (await fetch(`${hub.gateways[ABSENT]!.url}/metrics`)).text();
    expect(metrics).toMatch(/^ahub_gateway_notices_total\{[^}]*result="applied"[^}]*\} [1-9]/m);
    expect(metrics).not.toMatch(/^ahub_gateway_notices_total\{[^}]*result="quarantined"/m);
  }, 180_000);
});
