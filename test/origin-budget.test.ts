import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Streams } from '@alert-hub/core';
import { feedShareBytes } from '@alert-hub/runtime';
import { eventually, seizureAgreement } from '@alert-hub/testkit';
import {
  largeReport,
  limitsRouter,
  provisionLimitsFeeds,
  useInProcessHub,
} from './support/inprocess-hub.js';

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
const hub = useInProcessHub(AGENCIES);
const { routerLog, submitAll, inboxIds, inboxHolding, readiness, gauge, scrape } = hub;
let jsm: JetStreamManager;

beforeAll(async () => {
  jsm = await jetstreamManager(await hub.nats.connect());
  // Inbound streams keep a minute (the flooder's waiting alerts stay there); the feed stream
  // keeps its copies FEEDS_MAX_AGE_MS.
  await provisionLimitsFeeds(jsm, AGENCIES, {
    feedsMaxBytes: FEEDS_MAX_BYTES,
    feedsMaxAgeMs: FEEDS_MAX_AGE_MS,
    inboundMaxAgeMs: 60_000,
    duplicateWindowMs: FEEDS_MAX_AGE_MS / 2,
  });
  await hub.start({
    agreements: [seizureAgreement('ALL', 'all', AGENCIES)],
    router: limitsRouter(FEEDS_MAX_BYTES, { heldRetryMs: 300 }),
  });
}, 60_000);
afterAll(() => hub.close());

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
    // Both of one scrape: read apart, a bucket ageing out between them lowers the second.
    const metric = await scrape();
    const charged = metric('ahub_router_origin_charged_bytes', 'agency', FLOODER);
    expect(charged).toBeGreaterThan(BUDGET / 2);
    expect(charged).toBeLessThanOrEqual(BUDGET);
    // What its budget is checked against: at least what counts now.
    expect(metric('ahub_router_origin_peak_bytes', 'agency', FLOODER)).toBeGreaterThanOrEqual(
      charged,
    );
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
