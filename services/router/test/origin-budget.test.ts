import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  MAX_FEED_MESSAGE_BYTES,
  feedShareBytes,
  openDatabase,
  originBudgets,
  recipientQuotaBytes,
} from '@alert-hub/runtime';
import { makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { DELIVERED_RESERVE_BYTES, OriginBudget } from '../src/origin-budget.js';
import { RouterStore } from '../src/store.js';

/**
 * The per-agency byte budget over the feed stream's max age (limits retention), on its own: what
 * is charged, when it stops counting, and that the charges survive a restart (the router's
 * database). The end-to-end behaviour is in test/origin-budget.test.ts.
 */
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
afterAll(() => fx.cleanup());

const MAX_AGE = 100_000;

function budgetOn(
  file: string,
  clock: { t: number },
  budget = 10_000,
  options: {
    enforced?: boolean;
    onResume?: (a: string) => void;
    onSpent?: (a: string) => void;
    noticeDelayMs?: number;
    /** While it returns true, writing the charges fails (a full disk). */
    failWrites?: () => boolean;
  } = {},
) {
  const store = new RouterStore(openDatabase(join(fx.dir, file)), 'test');
  const { failWrites } = options;
  const b = new OriginBudget({
    maxAgeMs: MAX_AGE,
    enforced: options.enforced ?? true,
    budget: () => budget,
    store: failWrites
      ? {
          originCharges: (since) => store.originCharges(since),
          originDeferred: (since) => store.originDeferred(since),
          addOriginCharges: (charges, deferred, expired) => {
            if (failWrites()) throw new Error('disk full');
            store.addOriginCharges(charges, deferred, expired);
          },
        }
      : store,
    log: memoryLogger('budget').log,
    now: () => clock.t,
    ...(options.onResume ? { onResume: options.onResume } : {}),
    ...(options.onSpent ? { onSpent: options.onSpent } : {}),
    ...(options.noticeDelayMs !== undefined ? { noticeDelayMs: options.noticeDelayMs } : {}),
  });
  /** The end of the bucket holding `t`: what a message stored at `t` is charged to. */
  const end = (t: number) => Math.ceil((t + 1) / b.bucketMs) * b.bucketMs;
  /** Sets the clock to `t`, ticks, and reads what counts for `agency` then. */
  const countingAt = (agency: string) => (t: number) => {
    clock.t = t;
    b.tick();
    return b.charged().get(agency) ?? 0;
  };
  return { b, store, end, countingAt };
}

describe('origin budget - bytes charged per agency over the feed stream’s max age', () => {
  it('the default budget is the recipient quota’s even share; overrides take theirs and the others share the rest; overrides leaving an agency less than one message are reported at their pointer', () => {
    const feeds = 64 * 1024 * 1024;
    const agencies = ['A-ONE', 'B-TWO', 'C-THREE'];
    const even = originBudgets(feeds, agencies);
    expect(even.issues).toEqual([]);
    for (const a of agencies) expect(even.budgets.get(a)).toBe(feedShareBytes(feeds, 3));
    expect(recipientQuotaBytes(feeds, 3)).toBe(feedShareBytes(feeds, 3) - MAX_FEED_MESSAGE_BYTES);

    const own = originBudgets(feeds, agencies, { 'A-ONE': 40 * 1024 * 1024, 'Z-ABSENT': 1 });
    expect(own.issues).toEqual([]);
    expect(own.budgets.get('A-ONE')).toBe(40 * 1024 * 1024);
    const rest = Math.floor((Math.floor(feeds * 0.95) - 40 * 1024 * 1024) / 2);
    expect(own.budgets.get('B-TWO')).toBe(rest);
    expect(own.budgets.get('C-THREE')).toBe(rest);
    expect(own.budgets.has('Z-ABSENT')).toBe(false);

    const greedy = originBudgets(feeds, agencies, { 'A-ONE': 61 * 1024 * 1024 });
    expect(greedy.issues.map((i) => i.pointer)).toEqual(['/streams/originMaxBytesFor']);
    const small = originBudgets(feeds, agencies, { 'A-ONE': 1000 });
    expect(small.issues.map((i) => i.pointer)).toEqual(['/streams/originMaxBytesFor/A-ONE']);
  });

  it('a message that would pass its agency’s budget waits; one larger than the whole budget goes when nothing is charged; the charges stop counting once aged out of the stream, and the agency resumes', () => {
    const clock = { t: 1_000_000 };
    const resumed: string[] = [];
    const spent: string[] = [];
    const { b } = budgetOn('charges.db', clock, 10_000, {
      onResume: (a) => resumed.push(a),
      onSpent: (a) => spent.push(a),
    });
    // larger than the budget, nothing charged: through
    expect(b.over('SG-NPARKS', 12_000)).toBeUndefined();
    b.charge('SG-NPARKS', 12_000);
    expect(b.over('SG-NPARKS', 100)).toMatch(/SG-NPARKS .* budget \(10000 bytes/);
    expect(b.spent('SG-NPARKS')).toBe(true);
    expect(spent).toEqual(['SG-NPARKS']);
    // another agency is not affected
    expect(b.over('VN-CUSTOMS', 9_000)).toBeUndefined();
    expect(b.spent('VN-CUSTOMS')).toBe(false);
    // still counted until the bucket's end + max age + slack
    clock.t += MAX_AGE;
    b.tick();
    expect(b.charged().get('SG-NPARKS')).toBe(12_000);
    expect(resumed).toEqual([]);
    clock.t += 2 * b.bucketMs + b.slackMs;
    b.tick();
    expect(b.charged().get('SG-NPARKS')).toBe(0);
    expect(b.spent('SG-NPARKS')).toBe(false);
    expect(resumed).toEqual(['SG-NPARKS']);
    expect(b.over('SG-NPARKS', 100)).toBeUndefined();
    b.stop();
  });

  it('a refund takes back a charge whose message was not stored', () => {
    const clock = { t: 2_000_000 };
    const { b } = budgetOn('refund.db', clock);
    const bucket = b.charge('SG-NPARKS', 6_000);
    b.charge('SG-NPARKS', 3_000);
    b.refund('SG-NPARKS', bucket, 6_000);
    expect(b.charged().get('SG-NPARKS')).toBe(3_000);
    b.stop();
  });

  it('a copy pays in advance for the delivered notice its receipt will make (what the notice does not need is taken back); the partner pays for exactly the time the notice outlives that charge (its receipt’s lateness), in full once the copy’s charge has aged out; nothing the partner does adds to the sender’s total, nor takes from it beyond the unused part', () => {
    const clock = { t: 3_000_000 };
    const spent: string[] = [];
    const { b, store, countingAt } = budgetOn('delivered.db', clock, 20_000, {
      onSpent: (a) => spent.push(a),
    });
    const copy = 1_000;
    expect(b.copyCharge(copy)).toBe(copy + DELIVERED_RESERVE_BYTES);
    const event = DELIVERED_RESERVE_BYTES - 500;
    const at = countingAt('VN-CUSTOMS');
    // A receipt within the copy's bucket: the copy's charge covers the notice; the partner pays
    // nothing, the sender gets back what the notice did not need.
    const first = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(copy));
    clock.t += 100;
    b.delivered('SG-NPARKS', first, 'VN-CUSTOMS', event);
    expect(b.charged().get('SG-NPARKS')).toBe(copy + event);
    expect(b.charged().get('VN-CUSTOMS') ?? 0).toBe(0);
    // A receipt 2 s later (a later bucket): the partner pays the event from when the copy's
    // charge stops counting until its own receipt's bucket does: 2 s or so, no more.
    const second = clock.t;
    b.charge('KE-KWS', b.copyCharge(copy));
    at(second + 2_000);
    b.delivered('KE-KWS', second, 'TZ-WD', event);
    expect(b.charged().get('KE-KWS')).toBe(copy + event);
    expect(b.charged().get('TZ-WD') ?? 0).toBe(0);
    const copyGone = Math.ceil((second + 1) / b.bucketMs) * b.bucketMs + b.tailMs;
    at(copyGone - 1);
    expect(b.charged().get('TZ-WD') ?? 0).toBe(0);
    expect(b.charged().get('KE-KWS')).toBe(copy + event);
    at(copyGone);
    expect(b.charged().get('KE-KWS')).toBe(0);
    expect(b.charged().get('TZ-WD')).toBe(event);
    at(copyGone + 2_250);
    expect(b.charged().get('TZ-WD')).toBe(0);
    // A receipt just before the copy's charge ages out: the sender's total stays what it was
    // (it would otherwise count twice as long against it), and the partner pays for the notice
    // from then on, for about a whole max age.
    const third = clock.t;
    b.charge('UG-UWA', b.copyCharge(copy));
    at(third + b.tailMs - b.bucketMs);
    b.delivered('UG-UWA', third, 'TZ-WD', event);
    expect(b.charged().get('UG-UWA')).toBe(copy + event);
    at(third + b.tailMs + b.bucketMs);
    expect(b.charged().get('UG-UWA')).toBe(0);
    expect(b.charged().get('TZ-WD')).toBe(event);
    at(third + 2 * MAX_AGE);
    expect(b.charged().get('TZ-WD')).toBe(event);
    // A copy whose charge has aged out: its receipt's notice is the partner's in full, at once;
    // past the partner's budget, the partner is spent (its own lateness), never the sender.
    const late = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(copy));
    at(late + b.tailMs + b.bucketMs);
    for (let i = 0; i < 8; i++) b.delivered('SG-NPARKS', late, 'BW-DWNP', event);
    expect(b.charged().get('BW-DWNP')).toBe(8 * event);
    expect(spent).toEqual(['BW-DWNP']);
    expect(b.spent('SG-NPARKS')).toBe(false);
    // An event larger than the reservation, receipted at once: the partner pays what is beyond it.
    b.charge('SG-NPARKS', b.copyCharge(copy));
    b.delivered('SG-NPARKS', clock.t, 'ZA-SANPARKS', DELIVERED_RESERVE_BYTES + 300);
    expect(b.charged().get('ZA-SANPARKS')).toBe(300);
    expect(b.charged().get('SG-NPARKS')).toBe(copy + DELIVERED_RESERVE_BYTES);
    // A deferred charge is written with its start before it counts: after a restart it waits
    // for it again, and counts from then until its receipt's bucket ages out; a restart after
    // it started counts it at once.
    const fourth = clock.t;
    b.charge('KE-KWS', b.copyCharge(copy));
    at(fourth + 5_000);
    b.delivered('KE-KWS', fourth, 'MZ-ANAC', event);
    b.stop();
    const restarted = () =>
      new OriginBudget({
        maxAgeMs: MAX_AGE,
        enforced: true,
        budget: () => 20_000,
        store,
        log: memoryLogger('budget').log,
        now: () => clock.t,
      });
    const again = restarted();
    const fourthGone = Math.ceil((fourth + 1) / b.bucketMs) * b.bucketMs + b.tailMs;
    expect(again.charged().get('MZ-ANAC') ?? 0).toBe(0);
    clock.t = fourthGone - 1;
    again.tick();
    expect(again.charged().get('MZ-ANAC') ?? 0).toBe(0);
    clock.t = fourthGone;
    again.tick();
    expect(again.charged().get('MZ-ANAC')).toBe(event);
    again.stop();
    const once = restarted();
    expect(once.charged().get('MZ-ANAC')).toBe(event);
    clock.t = fourth + 5_000 + b.tailMs + b.bucketMs;
    once.tick();
    expect(once.charged().get('MZ-ANAC')).toBe(0);
    once.stop();
  });

  it('notices receipted in one bucket count, with those of about the same lateness (within a factor of two), from the earliest of their copies’ ends until the receipts’ bucket ages out: each at most its own lateness early, whatever the order', () => {
    const clock = { t: 5_000_000 };
    const { b, end, countingAt } = budgetOn('deferred-bucket.db', clock, 100 * 1024 * 1024);
    const event = 2_000;
    // One copy in each of 50 buckets, receipted together 60 buckets after the first, oldest
    // first: lateness 60 to 11 buckets, classes 32-63 (29 copies), 16-31 (16) and 8-15 (5).
    const first = clock.t;
    for (let j = 0; j < 50; j++) {
      clock.t = first + j * b.bucketMs;
      b.charge('SG-NPARKS', b.copyCharge(1_000));
    }
    const receipted = first + 60 * b.bucketMs;
    clock.t = receipted;
    for (let j = 0; j < 50; j++)
      b.delivered('SG-NPARKS', first + j * b.bucketMs, 'VN-CUSTOMS', event);
    b.tick();
    expect(b.charged().get('VN-CUSTOMS') ?? 0).toBe(0);
    const at = countingAt('VN-CUSTOMS');
    const startOf = (j: number) => end(first + j * b.bucketMs) + b.tailMs;
    expect(at(startOf(0) - 1)).toBe(0);
    expect(at(startOf(0))).toBe(29 * event);
    expect(at(startOf(29) - 1)).toBe(29 * event);
    expect(at(startOf(29))).toBe(45 * event);
    expect(at(startOf(45))).toBe(50 * event);
    expect(at(end(receipted) + b.tailMs - 1)).toBe(50 * event);
    expect(at(end(receipted) + b.tailMs)).toBe(0);
    // The newest first: the same.
    const again = budgetOn('deferred-bucket-2.db', clock, 100 * 1024 * 1024).b;
    const first2 = clock.t;
    for (let j = 0; j < 50; j++) {
      clock.t = first2 + j * b.bucketMs;
      again.charge('SG-NPARKS', again.copyCharge(1_000));
    }
    clock.t = first2 + 60 * b.bucketMs;
    for (let j = 49; j >= 0; j--)
      again.delivered('SG-NPARKS', first2 + j * b.bucketMs, 'VN-CUSTOMS', event);
    clock.t = end(first2) + b.tailMs;
    again.tick();
    expect(again.charged().get('VN-CUSTOMS')).toBe(29 * event);
    clock.t = end(first2 + 29 * b.bucketMs) + b.tailMs - 1;
    again.tick();
    expect(again.charged().get('VN-CUSTOMS')).toBe(29 * event);
    b.stop();
    again.stop();
  });

  it('a notice’s lateness is reckoned from when the notifier may store it (noticeCoalesceMs after its receipt)', () => {
    const clock = { t: 5_500_000 };
    const { b, end } = budgetOn('notice-delay.db', clock, 1_000_000, { noticeDelayMs: 5_000 });
    const event = 2_000;
    const copied = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    // Receipted at once, stored up to 5 s later: owed from the copy's end until then.
    clock.t = copied + 10;
    b.delivered('SG-NPARKS', copied, 'VN-CUSTOMS', event);
    expect(b.peaks().get('VN-CUSTOMS')).toBe(event);
    clock.t = end(copied + 10 + 5_000) + b.tailMs - 1;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(event);
    // A receipt of a copy whose charge has aged out: charged at once, until the bucket of when
    // the notice may be stored ages out.
    const late = clock.t;
    b.delivered('SG-NPARKS', copied, 'KE-KWS', event);
    clock.t = end(late + 5_000) + b.tailMs - 1;
    b.tick();
    expect(b.charged().get('KE-KWS')).toBe(event);
    clock.t += 1;
    b.tick();
    expect(b.charged().get('KE-KWS')).toBe(0);
    b.stop();
  });

  it('what a partner will owe for late receipts counts against its budget when it receipts: past it the partner is spent at once (not when the charges start), and never passes its budget by more than that batch; a partner receipting a little late is charged only what overlaps', () => {
    const clock = { t: 6_000_000 };
    const budget = 100_000;
    const spent: string[] = [];
    const { b } = budgetOn('peak.db', clock, budget, { onSpent: (a) => spent.push(a) });
    const event = 2_000;
    // An origin's copies to a partner, over 20 buckets; the partner has 90% of its budget
    // charged of its own; its receipts come one max age less two buckets after the copies.
    const first = clock.t;
    for (let j = 0; j < 20; j++) {
      clock.t = first + j * b.bucketMs;
      b.charge('SG-NPARKS', b.copyCharge(1_000));
    }
    clock.t = first + 20 * b.bucketMs;
    b.charge('VN-CUSTOMS', 90_000);
    b.tick();
    clock.t = first + MAX_AGE - 2 * b.bucketMs;
    b.tick();
    for (let j = 0; j < 20; j++)
      b.delivered('SG-NPARKS', first + j * b.bucketMs, 'VN-CUSTOMS', event);
    expect(b.charged().get('VN-CUSTOMS')).toBe(90_000);
    expect(spent).toEqual(['VN-CUSTOMS']);
    expect(b.over('VN-CUSTOMS', 100)).toMatch(/VN-CUSTOMS .* budget \(100000 bytes/);
    expect(b.spent('SG-NPARKS')).toBe(false);
    let most = 0;
    for (let t = clock.t; t < first + 3 * MAX_AGE; t += b.bucketMs) {
      clock.t = t;
      b.tick();
      most = Math.max(most, b.charged().get('VN-CUSTOMS') ?? 0);
    }
    expect(most).toBe(90_000 + 20 * event);
    expect(b.spent('VN-CUSTOMS')).toBe(false);

    // Another partner receipts each copy 2 s late: each notice outlives its copy's charge by
    // about 2 s, so about 9 of the 25 overlap. Its own 60,000 bytes and those fit its budget,
    // though all 25 together would not.
    const second = clock.t;
    const late = 2_000 / b.bucketMs;
    for (let k = 0; k < 25 + late; k++) {
      clock.t = second + k * b.bucketMs;
      if (k < 25) b.charge('KE-KWS', b.copyCharge(1_000));
      if (k >= late) b.delivered('KE-KWS', second + (k - late) * b.bucketMs, 'TZ-WD', event);
    }
    clock.t += b.bucketMs;
    b.charge('TZ-WD', 60_000);
    b.tick();
    expect(b.over('TZ-WD', 10_000)).toBeUndefined();
    expect(b.over('TZ-WD', 30_000)).toBeDefined();
    b.stop();
  });

  it('a partner’s deferred charge is inserted among its own newer charges and each ages out on time; one not written (the database failed) is written with its start at the next flush', () => {
    const clock = { t: 7_000_000 };
    let failing = true;
    const { b, store, end, countingAt } = budgetOn('deferred-order.db', clock, 1_000_000, {
      failWrites: () => failing,
    });
    const event = 2_000;
    const copied = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    const receipted = copied + 5_000;
    clock.t = receipted;
    b.delivered('SG-NPARKS', copied, 'VN-CUSTOMS', event);
    b.tick();
    expect(store.originDeferred(0)).toEqual([]);
    failing = false;
    const own = receipted + 10 * b.bucketMs;
    clock.t = own;
    b.charge('VN-CUSTOMS', 700);
    b.tick();
    expect(store.originDeferred(0)).toEqual([
      {
        agency: 'VN-CUSTOMS',
        until: end(receipted),
        lateness: 4,
        starts: end(copied) + b.tailMs,
        bytes: event,
      },
    ]);
    const at = countingAt('VN-CUSTOMS');
    expect(at(end(copied) + b.tailMs - 1)).toBe(700);
    expect(at(end(copied) + b.tailMs)).toBe(700 + event);
    expect(at(end(receipted) + b.tailMs)).toBe(700);
    expect(at(end(own) + b.tailMs)).toBe(0);
    b.stop();
    // Deleted once aged out.
    expect(store.originDeferred(0)).toEqual([]);
  });

  it('an origin’s copies pay for their notices up to a bucket and half the slack after their bucket’s end, however it bunches them: a partner receipting a burst within that owes nothing, one later owes from then on', () => {
    const clock = { t: 8_000_000 };
    const { b, end } = budgetOn('grace.db', clock, 100_000);
    const event = 2_000;
    // 20 copies in the last millisecond of a bucket.
    const copyUntil = end(clock.t);
    clock.t = copyUntil - 1;
    for (let j = 0; j < 20; j++) b.charge('SG-NPARKS', b.copyCharge(1_000));
    // Receipted up to a bucket and half the slack after that bucket's end: nothing owed.
    const grace = copyUntil + b.bucketMs + b.slackMs / 2;
    for (let j = 0; j < 20; j++) {
      clock.t = copyUntil + Math.floor(((grace - copyUntil) * j) / 19);
      b.delivered('SG-NPARKS', copyUntil - 1, 'VN-CUSTOMS', event);
    }
    expect(clock.t).toBe(grace);
    expect(b.peaks().get('VN-CUSTOMS') ?? 0).toBe(0);
    // The origin's charges cover them: they count a bucket more than the max age and slack.
    const copiesCharged = 20 * 1_000 + 20 * event;
    clock.t = copyUntil + MAX_AGE + b.slackMs + b.bucketMs - 1;
    b.tick();
    expect(b.charged().get('SG-NPARKS')).toBe(copiesCharged);
    clock.t = copyUntil - 1;
    // One millisecond later, the partner owes the notice from when the copy's charge ends.
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = grace + 1;
    b.delivered('SG-NPARKS', copyUntil - 1, 'VN-CUSTOMS', event);
    expect(b.peaks().get('VN-CUSTOMS')).toBe(event);
    clock.t = copyUntil + b.tailMs - 1;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS') ?? 0).toBe(0);
    clock.t += 1;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(event);
    b.stop();
  });

  it('a partner spent by what it will owe stays spent until that has room (not resumed on what counts now); one whose own charges age out before its late receipts’ start is not spent', () => {
    const clock = { t: 9_000_000 };
    const budget = 1_000_000;
    const resumed: string[] = [];
    const { b, end } = budgetOn('stays.db', clock, budget, {
      onResume: (a) => resumed.push(a),
    });
    const event = 2_000;
    const t0 = clock.t;
    // VN-CUSTOMS: 500,000 of its own, then 300 late receipts (600,000 owed from the copies' end):
    // what counts now has room for a message of the largest size, what it will owe does not.
    for (let j = 0; j < 300; j++) b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = t0 + b.bucketMs;
    b.charge('VN-CUSTOMS', 500_000);
    clock.t = t0 + MAX_AGE / 2;
    for (let j = 0; j < 300; j++) b.delivered('SG-NPARKS', t0, 'VN-CUSTOMS', event);
    expect(b.spent('VN-CUSTOMS')).toBe(true);
    const starts = end(t0) + b.tailMs;
    for (let t = clock.t; t < starts; t += 5 * b.bucketMs) {
      clock.t = t;
      b.tick();
      expect(b.spent('VN-CUSTOMS'), `at ${t - t0} ms`).toBe(true);
    }
    // Its own 500,000 age out a bucket after the late receipts' charge starts: then it has room.
    clock.t = end(t0 + b.bucketMs) + b.tailMs;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(300 * event);
    expect(b.spent('VN-CUSTOMS')).toBe(false);
    expect(resumed).toEqual(['VN-CUSTOMS']);

    // TZ-WD: 900,000 of its own at t1; copies at t1 + M/2, receipted 0.1 M later (200,000 owed
    // from when the copies' charge ends, by which time its own have aged out): not spent.
    const t1 = clock.t;
    b.charge('TZ-WD', 900_000);
    clock.t = t1 + MAX_AGE / 2;
    for (let j = 0; j < 100; j++) b.charge('KE-KWS', b.copyCharge(1_000));
    const copied = clock.t;
    clock.t = t1 + (MAX_AGE * 6) / 10;
    for (let j = 0; j < 100; j++) b.delivered('KE-KWS', copied, 'TZ-WD', event);
    expect(b.spent('TZ-WD')).toBe(false);
    expect(b.over('TZ-WD', 50_000)).toBeUndefined();
    b.stop();
  });

  it('a receipt of an older copy in a receipt bucket makes what that bucket owes count earlier, and is checked so at once; one of a copy more than twice as late (another lateness class) is kept apart and does not', () => {
    const clock = { t: 10_000_000 };
    const spent: string[] = [];
    const { b, end, countingAt } = budgetOn('earlier.db', clock, 80_000, {
      onSpent: (a) => spent.push(a),
    });
    const event = 2_000;
    // Copies in bucket X, then in bucket Y = X + 1, where VN-CUSTOMS also has 60,000 of its own:
    // they stop counting just as Y's copies' charges do.
    const x = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = end(x);
    const y = clock.t;
    for (let j = 0; j < 15; j++) b.charge('SG-NPARKS', b.copyCharge(1_000));
    b.charge('VN-CUSTOMS', 60_000);
    clock.t = y + 10 * b.bucketMs;
    for (let j = 0; j < 15; j++) b.delivered('SG-NPARKS', y, 'VN-CUSTOMS', event);
    expect(spent).toEqual([]);
    expect(b.over('VN-CUSTOMS', 10_000)).toBeUndefined();
    // X's copy, receipted in the same bucket: all 16 count from X's end, with the 60,000.
    b.delivered('SG-NPARKS', x, 'VN-CUSTOMS', event);
    expect(spent).toEqual(['VN-CUSTOMS']);
    expect(b.peaks().get('VN-CUSTOMS')).toBe(60_000 + 16 * event);

    // Another lateness class: KE-KWS receipts 5 copies of a bucket 10 buckets late, then one of a
    // copy 20 buckets older (30 buckets late).
    const old = clock.t;
    b.charge('TZ-WD', b.copyCharge(1_000));
    clock.t = old + 20 * b.bucketMs;
    const recent = clock.t;
    for (let j = 0; j < 5; j++) b.charge('TZ-WD', b.copyCharge(1_000));
    clock.t = recent + 10 * b.bucketMs;
    for (let j = 0; j < 5; j++) b.delivered('TZ-WD', recent, 'KE-KWS', event);
    b.delivered('TZ-WD', old, 'KE-KWS', event);
    b.tick();
    const at = countingAt('KE-KWS');
    expect(at(end(old) + b.tailMs)).toBe(event);
    expect(at(end(recent) + b.tailMs - 1)).toBe(event);
    expect(at(end(recent) + b.tailMs)).toBe(6 * event);
    b.stop();
  });

  it('what a partner owes for one receipt bucket stops counting just as what it owes for copies of that bucket starts', () => {
    const clock = { t: 12_000_000 };
    const spent: string[] = [];
    const { b, end } = budgetOn('equal-times.db', clock, 100_000, {
      onSpent: (a) => spent.push(a),
    });
    const event = 2_000;
    // 30 copies receipted late in bucket R (60,000 owed until R's end + tail); 30 more copies
    // forwarded in R itself and receipted late (60,000 owed from R's end + tail): never both.
    const first = clock.t;
    for (let j = 0; j < 30; j++) b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = first + 10 * b.bucketMs;
    const r = clock.t;
    for (let j = 0; j < 30; j++) b.delivered('SG-NPARKS', first, 'VN-CUSTOMS', event);
    for (let j = 0; j < 30; j++) b.charge('KE-KWS', b.copyCharge(1_000));
    clock.t = r + 10 * b.bucketMs;
    for (let j = 0; j < 30; j++) b.delivered('KE-KWS', r, 'VN-CUSTOMS', event);
    b.tick();
    expect(b.peaks().get('VN-CUSTOMS')).toBe(30 * event);
    expect(spent).toEqual([]);
    expect(b.over('VN-CUSTOMS', 30_000)).toBeUndefined();
    clock.t = end(r) + b.tailMs;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(30 * event);
    b.stop();
  });

  it('a stale peak never marks an agency spent: it is reckoned again first; a bucket is never taken below nothing', () => {
    const clock = { t: 11_000_000 };
    const spent: string[] = [];
    const { b } = budgetOn('stale.db', clock, 10_000, { onSpent: (a) => spent.push(a) });
    // 9,000 charged, 6,000 of it refunded: the peak stays 9,000 until reckoned again.
    b.charge('SG-NPARKS', 3_000);
    const bucket = b.charge('SG-NPARKS', 6_000);
    b.refund('SG-NPARKS', bucket, 6_000);
    expect(b.peaks().get('SG-NPARKS')).toBe(9_000);
    expect(b.over('SG-NPARKS', 5_000)).toBeUndefined();
    expect(spent).toEqual([]);
    expect(b.peaks().get('SG-NPARKS')).toBe(3_000);
    // A copy receipted (its reservation's unused part taken back) and refunded in full too: the
    // bucket goes to nothing, not below.
    clock.t += 10 * b.bucketMs;
    const copied = clock.t;
    const charge = b.copyCharge(1_000);
    const copyBucket = b.charge('KE-KWS', charge);
    b.delivered('KE-KWS', copied, 'TZ-WD', DELIVERED_RESERVE_BYTES - 600);
    expect(b.charged().get('KE-KWS')).toBe(charge - 600);
    b.refund('KE-KWS', copyBucket, charge);
    expect(b.charged().get('KE-KWS')).toBe(0);
    b.tick();
    expect(b.peaks().get('KE-KWS')).toBe(0);
    b.stop();
  });

  it('a peak reached when a late receipt’s charge starts stands between ticks and is reckoned again after a take-back; after a restart the late charges start in order, whatever order the database returns them in', () => {
    const clock = { t: 13_000_000 };
    const first = budgetOn('reckon.db', clock, 1_000_000);
    const { b, end } = first;
    const event = 2_000;
    // Copies of bucket A, and of bucket B 40 buckets later.
    const a = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = a + 40 * b.bucketMs;
    const later = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    // 20 buckets on, VN-CUSTOMS receipts B's copy, and in the next bucket A's: what it owes for
    // the later receipt bucket starts first (the database returns them by receipt bucket).
    clock.t = later + 20 * b.bucketMs;
    b.delivered('SG-NPARKS', later, 'VN-CUSTOMS', event);
    clock.t += b.bucketMs;
    b.delivered('SG-NPARKS', a, 'VN-CUSTOMS', event);
    b.charge('VN-CUSTOMS', 50_000);
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(50_000);
    expect(b.peaks().get('VN-CUSTOMS')).toBe(50_000 + 2 * event);
    // A charge of its own, refunded (its message not stored): the peak is what it was at the
    // next tick, though it is reached later.
    const bucket = b.charge('VN-CUSTOMS', 30_000);
    expect(b.peaks().get('VN-CUSTOMS')).toBe(80_000 + 2 * event);
    b.refund('VN-CUSTOMS', bucket, 30_000);
    b.tick();
    expect(b.peaks().get('VN-CUSTOMS')).toBe(50_000 + 2 * event);
    b.stop();
    first.store.db.close();

    const second = budgetOn('reckon.db', clock, 1_000_000);
    expect(second.b.peaks().get('VN-CUSTOMS')).toBe(50_000 + 2 * event);
    const at = second.countingAt('VN-CUSTOMS');
    expect(at(end(a) + b.tailMs - 1)).toBe(50_000);
    expect(at(end(a) + b.tailMs)).toBe(50_000 + event);
    expect(at(end(later) + b.tailMs - 1)).toBe(50_000 + event);
    expect(at(end(later) + b.tailMs)).toBe(50_000 + 2 * event);
    second.b.stop();
  });

  it('a take-back from a bucket holding late charges that started is loaded after a restart as it was counted: the database’s row of that bucket below zero, the late charges beside it; never below zero', () => {
    const clock = { t: 14_000_000 };
    const first = budgetOn('take-back-late.db', clock, 1_000_000);
    const { b, end } = first;
    const event = 2_000;
    // VN-CUSTOMS receipts SG-NPARKS's copy 20 buckets late: a late charge for its receipt bucket U.
    const copied = clock.t;
    b.charge('SG-NPARKS', b.copyCharge(1_000));
    clock.t = copied + 20 * b.bucketMs;
    const receipted = clock.t;
    b.delivered('SG-NPARKS', copied, 'VN-CUSTOMS', event);
    // Once it counts, a receipt of a copy of VN-CUSTOMS's own forwarded in U (by another router,
    // say: this one charged none there) takes back 600 bytes of the reservation from U.
    clock.t = end(copied) + b.tailMs;
    b.tick();
    expect(b.charged().get('VN-CUSTOMS')).toBe(event);
    b.delivered('VN-CUSTOMS', receipted, 'KE-KWS', DELIVERED_RESERVE_BYTES - 600);
    expect(b.charged().get('VN-CUSTOMS')).toBe(event - 600);
    b.stop();
    first.store.db.close();
    // Restarted: the same, not the late charge alone.
    const second = budgetOn('take-back-late.db', clock, 1_000_000);
    expect(second.b.charged().get('VN-CUSTOMS')).toBe(event - 600);
    expect(second.b.peaks().get('VN-CUSTOMS')).toBe(event - 600);
    second.b.stop();
    second.store.db.close();
    // Restarted with the clock gone back before the late charge starts: the bucket counts
    // nothing, never less, until the late charge starts (then all of it: more, not less).
    clock.t = end(copied) + b.tailMs - 1;
    const third = budgetOn('take-back-late.db', clock, 1_000_000);
    expect(third.b.charged().get('VN-CUSTOMS')).toBe(0);
    expect(third.b.peaks().get('VN-CUSTOMS')).toBe(event);
    third.b.stop();
  });

  it('deferred charges written twice for one bucket add up and keep the earlier start (routers sharing a database)', () => {
    const store = new RouterStore(openDatabase(join(fx.dir, 'deferred-min.db')), 'test');
    const row = { agency: 'VN-CUSTOMS', until: 5_000, lateness: 2, bytes: 100 };
    store.addOriginCharges([], [{ ...row, starts: 9_000 }], 0);
    store.addOriginCharges([], [{ ...row, starts: 8_000 }], 0);
    store.addOriginCharges([], [{ ...row, starts: 8_500 }], 0);
    store.addOriginCharges([], [{ ...row, lateness: 5, starts: 1_000 }], 0);
    expect(store.originDeferred(0)).toEqual([
      { ...row, starts: 8_000, bytes: 300 },
      { ...row, lateness: 5, starts: 1_000 },
    ]);
    store.db.close();
  });

  it('charges survive a restart: written in batches (not per message), loaded at start while they still count', () => {
    const clock = { t: 3_000_000 };
    const first = budgetOn('restart.db', clock);
    first.b.charge('SG-NPARKS', 4_000);
    first.b.charge('SG-NPARKS', 4_000);
    first.b.charge('VN-CUSTOMS', 500);
    // nothing written until the flush
    expect(first.store.originCharges(0)).toEqual([]);
    first.b.tick();
    expect(first.store.originCharges(0).reduce((n, r) => n + r.bytes, 0)).toBe(8_500);
    clock.t += first.b.bucketMs;
    first.b.charge('SG-NPARKS', 1_000);
    first.b.stop();
    first.store.db.close();

    // A new router on the same database: the budget is not fresh.
    const second = budgetOn('restart.db', clock);
    expect(second.b.charged().get('SG-NPARKS')).toBe(9_000);
    expect(second.b.charged().get('VN-CUSTOMS')).toBe(500);
    expect(second.b.over('SG-NPARKS', 2_000)).toBeDefined();
    second.b.stop();
    second.store.db.close();

    // Once aged out they are neither loaded nor kept.
    clock.t += MAX_AGE + 3 * (first.b.bucketMs + first.b.slackMs);
    const third = budgetOn('restart.db', clock);
    expect(third.b.charged().size).toBe(0);
    third.b.stop();
    expect(third.store.originCharges(0)).toEqual([]);
  });

  it('with interest retention nothing is charged or enforced', () => {
    const clock = { t: 4_000_000 };
    const { b, store } = budgetOn('interest.db', clock, 1000, { enforced: false });
    b.charge('SG-NPARKS', 5_000);
    b.charge('SG-NPARKS', 5_000);
    expect(b.over('SG-NPARKS', 5_000)).toBeUndefined();
    b.stop();
    expect(store.originCharges(0)).toEqual([]);
  });
});
