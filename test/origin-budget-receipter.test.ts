import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { seizureAgreement, seizureReport } from '@alert-hub/testkit';
import { limitsRouter, provisionLimitsFeeds, useInProcessHub } from './support/inprocess-hub.js';

/**
 * With limits retention each agency has a byte budget over the feed stream's max age. A partner's
 * receipt makes a `delivered` notice event for the alert's origin. Charged to the partner that
 * sent the receipt, at a whole notice's reckoning (noticeEventCharge: about 2.8 KB an event, more
 * than a small alert's copy costs its origin), an agency sending a partner many small alerts made
 * the partner's own, ordinary receipts spend the partner's budget: the partner (the victim, whose
 * gateway runs with default settings) was marked spent, its inbound stream no longer read, and its
 * own alerts waited until those charges aged out, while the sender (the attacker) stayed within
 * its own budget. Now a copy's origin pays for that notice in advance (OriginBudget.copyCharge).
 * Same setup as test/origin-budget-receipts.test.ts (the mirror attack): real nats-server, router
 * and gateways in this process, the feed stream's max age cut to a few seconds.
 */
const ATTACKER = 'KE-KWS';
const VICTIM = 'TZ-WD';
const OTHER = 'VN-CUSTOMS';
const AGENCIES = [ATTACKER, VICTIM, OTHER];
/**
 * Charged to the victim in full, its receipts cost about 2.9 KB each over a max age: 770 KB at
 * this rate. What it pays now is each notice for the time it outlives its copy's charge (the
 * receipt's lateness, about 0.5 s; 20 receipts a second): it stays under this budget while the
 * hub is up to 8 s late.
 */
const VICTIM_BUDGET = 500_000;
/** Ample for the attacker's copies and the delivered notices they pay for (about 2.1 MB). */
const ATTACKER_BUDGET = 4_000_000;
const FEEDS_MAX_BYTES = 8 * 1024 * 1024;
const FEEDS_MAX_AGE_MS = 12_000;
/** The attacker sends BATCH alerts every EVERY_MS for SEND_MS. */
const BATCH = 10;
const EVERY_MS = 500;
const SEND_MS = 30_000;
const hub = useInProcessHub(AGENCIES);
const { routerLog, submitAll, inboxHolding, readiness, gauge } = hub;

beforeAll(async () => {
  const jsm = await jetstreamManager(await hub.nats.connect());
  // Inbound streams keep a minute (a spent agency's waiting alerts stay there); the feed stream
  // keeps its copies FEEDS_MAX_AGE_MS.
  await provisionLimitsFeeds(jsm, AGENCIES, {
    feedsMaxBytes: FEEDS_MAX_BYTES,
    feedsMaxAgeMs: FEEDS_MAX_AGE_MS,
    inboundMaxAgeMs: 60_000,
    duplicateWindowMs: FEEDS_MAX_AGE_MS / 2,
  });
  // Every gateway with default receipt settings: the victim receipts what it stores, as usual.
  await hub.start({
    agreements: [
      seizureAgreement('AV', 'attacker-victim', [ATTACKER, VICTIM]),
      seizureAgreement('VO', 'victim-other', [VICTIM, OTHER]),
    ],
    router: limitsRouter(FEEDS_MAX_BYTES, {
      heldRetryMs: 300,
      originMaxBytesFor: { [VICTIM]: VICTIM_BUDGET, [ATTACKER]: ATTACKER_BUDGET },
    }),
  });
}, 60_000);
afterAll(() => hub.close());

/** The router's "origin budget spent" warnings naming `agency`. */
function spentLogs(agency: string): number {
  return routerLog.lines.filter(
    (l) => l.includes('"msg":"origin budget spent') && l.includes(`"agency":"${agency}"`),
  ).length;
}

describe('attack: an agency spends a partner’s budget with the partner’s own receipts', () => {
  it('the victim is not spent by delivered notices its receipts of another agency’s alerts make', async () => {
    expect(await gauge('ahub_router_origin_budget_bytes', 'agency', VICTIM)).toBe(VICTIM_BUDGET);
    expect(await gauge('ahub_router_origin_budget_bytes', 'agency', ATTACKER)).toBe(
      ATTACKER_BUDGET,
    );
    // Watched every 100 ms from now to the end: whether either agency is found spent, and the
    // most charged to each.
    const seen = { victimSpentAtMs: -1, attackerSpentAtMs: -1, victimMax: 0, attackerMax: 0 };
    const t0 = Date.now();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const spent = (await readiness())['originBudgets'] ?? '';
        if (seen.victimSpentAtMs < 0 && spent.includes(VICTIM))
          seen.victimSpentAtMs = Date.now() - t0;
        if (seen.attackerSpentAtMs < 0 && spent.includes(ATTACKER))
          seen.attackerSpentAtMs = Date.now() - t0;
        seen.victimMax = Math.max(
          seen.victimMax,
          await gauge('ahub_router_origin_charged_bytes', 'agency', VICTIM),
        );
        seen.attackerMax = Math.max(
          seen.attackerMax,
          await gauge('ahub_router_origin_charged_bytes', 'agency', ATTACKER),
        );
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      // The attacker sends the victim small alerts at a steady rate, 20 a second: well within its
      // own budget; their delivered events, at about 2.8 KB a copy, are more than what a copy
      // costs its origin without the reservation for them.
      const sent: string[] = [];
      // A slot missed while the machine stalled is skipped, never made up in a burst.
      for (let next = t0; Date.now() - t0 < SEND_MS; next += EVERY_MS) {
        const wait = next - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        else next = Date.now();
        sent.push(
          ...(await submitAll(
            ATTACKER,
            Array.from({ length: BATCH }, () => seizureReport(ATTACKER)),
          )),
        );
      }
      // Just after, the victim's own alert to its other partner.
      const s = Date.now();
      const [probe] = await submitAll(VICTIM, [seizureReport(VICTIM)]);
      await inboxHolding(OTHER, [probe!], 60_000);
      const probeMs = Date.now() - s;
      // Everything the attacker sent reached the victim.
      await inboxHolding(VICTIM, sent, 60_000);
      // The victim's last receipts (its gateway waits receipts.coalesceMs, 200 ms by default).
      await new Promise((r) => setTimeout(r, 2000));
      watching = false;
      await watcher;
      const report = {
        sent: sent.length,
        victimBudget: VICTIM_BUDGET,
        victimMaxCharged: seen.victimMax,
        victimSpentAtMs: seen.victimSpentAtMs < 0 ? null : seen.victimSpentAtMs,
        victimSpentLogs: spentLogs(VICTIM),
        attackerBudget: ATTACKER_BUDGET,
        attackerMaxCharged: seen.attackerMax,
        attackerSpentAtMs: seen.attackerSpentAtMs < 0 ? null : seen.attackerSpentAtMs,
        probeMs,
      };
      console.log('ATTACK3', JSON.stringify(report));
      expect(
        report.victimSpentAtMs,
        'the victim found spent by the delivered notices its receipts of the attacker’s alerts made',
      ).toBeNull();
      expect(
        report.victimSpentLogs,
        "the router's 'origin budget spent' lines naming the victim",
      ).toBe(0);
      // Spent, it would have waited for its charges to age out (over 7 s; about 200 ms when not).
      expect(probeMs, "the victim's next alert reached its other partner within ms").toBeLessThan(
        5000,
      );
    } finally {
      watching = false;
      await watcher;
    }
  }, 180_000);
});
