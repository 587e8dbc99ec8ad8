import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { openDatabase } from '@alert-hub/runtime';
import { eventually, seizureAgreement, seizureReport } from '@alert-hub/testkit';
import {
  largeReport,
  limitsRouter,
  provisionLimitsFeeds,
  useInProcessHub,
} from './support/inprocess-hub.js';

/**
 * "An agency's spent budget never holds up another agency's copies" (docs/security.md). A copy
 * waits behind another origin's held copies unless that origin is spent *now*: when a flooder's
 * oldest charges age out it is no longer spent, but its held copies are still there until the
 * next release round (`heldRetryMs`, 5 s by default), and meanwhile every other agency's copies
 * to the same partners are held behind them. Once held, such a copy goes out only after every
 * older held copy of the flooder's to that partner: each release round takes the held copies in
 * order, and the flooder's (as its budget allows) fill the partner's byte quota before the round
 * reaches it, so it waits for the flooder's whole backlog (22 s here; weeks with a 30-day max
 * age). Same setup as test/origin-budget.test.ts, but with the default `heldRetryMs` (that
 * test's 300 ms hides it): a flood that keeps the flooder's budget spent and resuming, and
 * another agency's small alerts all along.
 */
const FLOODER = 'SG-NPARKS';
const HONEST = 'TZ-WD';
const READERS = ['KE-KWS', 'VN-CUSTOMS'];
const AGENCIES = [FLOODER, HONEST, ...READERS];
const FEEDS_MAX_BYTES = 2 * 1024 * 1024;
const FEEDS_MAX_AGE_MS = 3000;
const hub = useInProcessHub(AGENCIES);
const { routerLog, submitAll, inboxHolding, readiness } = hub;

beforeAll(async () => {
  const jsm = await jetstreamManager(await hub.nats.connect());
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
    router: limitsRouter(FEEDS_MAX_BYTES),
  });
}, 60_000);
afterAll(() => hub.close());

/** The router's "alert routed" lines of the honest agency's alerts that held a copy. */
function honestHeld(): string[] {
  return routerLog.lines.filter(
    (l) =>
      l.includes('"msg":"alert routed"') &&
      l.includes(`"origin":"${HONEST}"`) &&
      l.includes('"held":['),
  );
}

describe('feeds with limits retention - a flooder whose budget has room again', () => {
  it('another agency’s copies are never held behind the flooder’s held copies', async () => {
    // 72 alerts of about 21 KB to three partners: the flooder is spent, then resumed, about
    // every 5 s (max age, a bucket, the slack) while its held copies go out a budget at a time.
    for (let i = 0; i < 18; i++)
      await submitAll(
        FLOODER,
        Array.from({ length: 4 }, () => largeReport(FLOODER)),
      );
    await eventually(
      async () => (await readiness())['originBudgets']?.includes(FLOODER) || undefined,
      10_000,
      "the flooder's budget to be spent",
    );
    // The honest agency's small alerts, one every 300 ms or so, for 15 s (the flooder resumes
    // about every 5 s).
    const latencies: number[] = [];
    const t0 = Date.now();
    while (Date.now() - t0 < 15_000) {
      const s = Date.now();
      const [id] = await submitAll(HONEST, [seizureReport(HONEST)]);
      await inboxHolding(READERS[0]!, [id!], 60_000);
      latencies.push(Date.now() - s);
      await new Promise((r) => setTimeout(r, 300));
    }
    expect(
      routerLog.lines.some((l) => l.includes('"msg":"origin budget has room again')),
      'the flooder resumed at least once',
    ).toBe(true);
    // An honest copy may still be held when its partner's own quota is full (a loaded machine's
    // gateway reading the flooder's released copies slowly), or behind copies held for that:
    // that is the partner's side. Never behind copies held for the flooder's budget, nor for
    // anyone's budget (before the fix: "earlier copies for KE-KWS are held: this one waits
    // behind them", the flooder's budget-held copies).
    const db = openDatabase(join(hub.fx.dir, 'router', 'audit.db'), { readonly: true });
    const reasons = (
      db.prepare("SELECT reason FROM audit WHERE event = 'held' AND origin = ?").all(HONEST) as {
        reason: string;
      }[]
    ).map((r) => r.reason);
    db.close();
    const held = honestHeld();
    // Behind its own earlier copies held for their partner's quota is the partner's side too; a
    // first copy held for a budget would say so.
    expect(reasons.filter((r) => r.includes('budget'))).toEqual([]);
    expect(
      reasons.filter(
        (r) =>
          !r.includes('its gateway has not taken') &&
          !r.includes('for want of room in its feed') &&
          !r.startsWith(`earlier copies of ${HONEST}'s for`),
      ),
      `honest copies held other than for their partner's quota (${held.length} alerts held; latencies ${JSON.stringify(latencies)} ms)`,
    ).toEqual([]);
  }, 200_000);
});
