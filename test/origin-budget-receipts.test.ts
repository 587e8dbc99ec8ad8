import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { seizureAgreement, seizureReport } from '@alert-hub/testkit';
import { limitsRouter, provisionLimitsFeeds, useInProcessHub } from './support/inprocess-hub.js';

/**
 * With limits retention each agency has a byte budget over the feed stream's max age. The hub's
 * "delivered" notices to an agency are made by the receipts of the partners it sent alerts to.
 * When they were charged to the agency they are addressed to, when the receipt came, a partner
 * that stores the victim's alerts at once but sends its receipts late (its gateway's
 * `receipts.coalesceMs`, or any receipts it signs and keeps) made the hub send the victim a burst
 * of notices that spent the victim's budget: the victim was marked spent, its inbound stream no
 * longer read, and its own alerts waited until the notices aged out of the stream (with a 30-day
 * max age, weeks). Now each copy pays for its notice in advance and a late receipt's notice is
 * its partner's. Same setup as test/origin-budget.test.ts: real nats-server, router and gateways
 * in this process, the feed stream's max age cut to 3 s.
 */
const VICTIM = 'TZ-WD';
const ATTACKER = 'KE-KWS';
const OTHER = 'VN-CUSTOMS';
const AGENCIES = [VICTIM, ATTACKER, OTHER];
const VICTIM_BUDGET = 400_000;
const FEEDS_MAX_BYTES = 2 * 1024 * 1024;
const FEEDS_MAX_AGE_MS = 3000;
const hub = useInProcessHub(AGENCIES);
const { routerLog, submitAll, inboxHolding, readiness, gauge } = hub;

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
    agreements: [seizureAgreement('VA', 'victim-attacker', [VICTIM, ATTACKER])],
    router: limitsRouter(FEEDS_MAX_BYTES, {
      heldRetryMs: 300,
      originMaxBytesFor: { [VICTIM]: VICTIM_BUDGET },
    }),
    // the attacker's own gateway: its receipts wait the longest the setting allows
    gateway: (agency) => (agency === ATTACKER ? { receipts: { coalesceMs: 60_000 } } : {}),
  });
}, 60_000);
afterAll(() => hub.close());

describe('attack: an agency spends another agency’s budget with its receipts', () => {
  it('the victim is not spent by notices another agency made the hub send it', async () => {
    expect(await gauge('ahub_router_origin_budget_bytes', 'agency', VICTIM)).toBe(VICTIM_BUDGET);
    // Phase 1: the victim sends the attacker small alerts, well within its budget, for 50 s; the
    // attacker's gateway stores them at once but sends its receipts only after 60 s.
    const sent: string[] = [];
    let victimSpentEarly = false;
    let maxCharged = 0;
    // Four alerts every 700 ms: about 60% of the victim's budget over a window (each copy is
    // charged its bytes and the delivered notice its receipt will make, paid in advance, and the
    // victim's own notices are its own).
    const t0 = Date.now();
    // A slot missed while the machine stalled is skipped, never made up in a burst.
    for (let next = t0; Date.now() - t0 < 50_000; next += 700) {
      const wait = next - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      else next = Date.now();
      sent.push(
        ...(await submitAll(
          VICTIM,
          Array.from({ length: 4 }, () => seizureReport(VICTIM)),
        )),
      );
      if ((await readiness())['originBudgets']?.includes(VICTIM)) victimSpentEarly = true;
      maxCharged = Math.max(
        maxCharged,
        await gauge('ahub_router_origin_charged_bytes', 'agency', VICTIM),
      );
    }
    // The victim stayed within its budget by what it sent itself.
    expect(victimSpentEarly).toBe(false);
    await inboxHolding(ATTACKER, sent, 30_000);
    // Phase 2: the receipts arrive; the hub's "delivered" notices to the victim are charged to it.
    let spentAt: number | undefined;
    const t1 = Date.now();
    while (Date.now() - t1 < 30_000) {
      if ((await readiness())['originBudgets']?.includes(VICTIM)) {
        spentAt = Date.now();
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // The victim's next alert.
    const s = Date.now();
    const [probe] = await submitAll(VICTIM, [seizureReport(VICTIM)]);
    await inboxHolding(ATTACKER, [probe!], 60_000);
    const probeMs = Date.now() - s;
    const report = {
      sent: sent.length,
      victimSpentEarly,
      maxChargedPhase1: maxCharged,
      budget: VICTIM_BUDGET,
      spentAfterReceiptsMs: spentAt === undefined ? null : spentAt - t1,
      probeMs,
      spentLogs: routerLog.lines.filter(
        (l) => l.includes('"msg":"origin budget spent') && l.includes(VICTIM),
      ).length,
    };
    console.log('ATTACK2', JSON.stringify(report));
    expect(
      spentAt,
      'the victim found spent by notices the attacker made the hub send',
    ).toBeUndefined();
    expect(probeMs, "the victim's next alert reached its partner within ms").toBeLessThan(3000);
  }, 240_000);
});
