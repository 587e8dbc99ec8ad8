import { MAX_FEED_MESSAGE_BYTES, type Logger } from '@alert-hub/runtime';
import {
  noticeEventCharge,
  type OriginCharge,
  type OriginDeferredCharge,
  type RouterStore,
} from './store.js';

/** Bytes charged to one agency in one time bucket. */
export interface OriginBucket {
  /** When the bucket ends (ms): what it holds was stored before. */
  readonly until: number;
  bytes: number;
  /** Of `bytes`, what is not in the database yet (negative after a refund). */
  unflushed: number;
}

/**
 * What a partner pays for the time `delivered` notices outlive the charges of the copies they are
 * about: it counts from when the earliest of those charges stops counting (`from`) until the
 * bucket the notices are charged at (`until`, their receipts') ages out. One per agency and
 * receipt bucket: at most one per bucket over a max age, whatever receipts an agency sends.
 */
interface Deferred {
  readonly until: number;
  /**
   * Its notices' lateness class: `floor(log2(lateness / bucket))`, the lateness from the end of
   * the copy's bucket to `until`. Notices of one class count from the earliest of their copies'
   * ends: each at most its own lateness early.
   */
  readonly lateness: number;
  from: number;
  bytes: number;
  /** Of `bytes`, what is not in the database yet. */
  unflushed: number;
}

/** One agency's charges, oldest bucket first. */
interface Charges {
  /** What counts now. */
  total: number;
  /**
   * The most that will count at any time from now on, with what counts now and the deferred
   * charges still to start (at least `total`): reckoned again every tick, raised between.
   */
  peak: number;
  /**
   * Until when `peak` stands without reckoning it again: where it is reached, or at once after
   * a change that may have made it less than its due (a take-back, a late receipt). Between, time
   * only ages charges out before it, and a charge adds to it exactly.
   */
  reckonAt: number;
  buckets: OriginBucket[];
  /** Deferred charges not counting yet, by `until`. */
  deferred: Deferred[];
  /** The same, by `from` (when each starts counting): kept in order, never sorted again. */
  starts: Deferred[];
  /** Its budget was found spent (a message waits): its inbound stream is not read. */
  spent: boolean;
  /**
   * While spent, its oldest unrouted alert is close to aging out of its inbound stream: the
   * stream is read all the same (the copies are held by the router, never lost).
   */
  overdue: boolean;
  /** An {@link OriginBudgetOptions.overdue} question is out. */
  asking: boolean;
}

export interface OriginBudgetOptions {
  /** The feed stream's actual `max_age` (ms), read from its stream info at start. */
  readonly maxAgeMs: number;
  /** Whether budgets are enforced: only when the feed stream has limits retention. */
  readonly enforced: boolean;
  /** An agency's budget in bytes (`originBudgets` in the runtime); asked on every check. */
  readonly budget: (agency: string) => number;
  readonly store: Pick<RouterStore, 'originCharges' | 'originDeferred' | 'addOriginCharges'>;
  readonly log: Logger;
  /** How often charges are written to the database and aged out (default 1 s). */
  readonly flushMs?: number;
  /**
   * Whether `agency`'s oldest alert not routed yet is close to aging out of its inbound stream
   * (asked every `flushMs` while its budget is spent). While true its inbound stream is read
   * anyway and the copies are held: an alert waits in the router's database rather than age out
   * unrouted.
   */
  readonly overdue?: (agency: string) => Promise<boolean>;
  /** Called when an agency's budget is found spent (a message of its had to wait). */
  readonly onSpent?: (agency: string) => void;
  /** Called when an agency whose budget was spent has room again. */
  readonly onResume?: (agency: string) => void;
  /**
   * How long after a receipt its `delivered` notice may be stored (the notifier's coalescing,
   * `noticeCoalesceMs`; default 0): the partner's share is reckoned from then.
   */
  readonly noticeDelayMs?: number;
  /** The clock (tests). */
  readonly now?: () => number;
}

/**
 * What a copy's origin pays in advance for the `delivered` notice event its recipient's receipt
 * will make: a notice of that one event, reckoned as the notifier's charge for an event of 1 KiB
 * of JSON (575 bytes with 64-character alert, agency and receipt ids; see `noticeEventCharge`).
 */
export const DELIVERED_RESERVE_BYTES = noticeEventCharge(1024);

/** Buckets over one max age at most: the bucket's length is `max(250 ms, maxAgeMs / 500)`. */
const BUCKETS_PER_MAX_AGE = 500;

/**
 * A per-agency byte budget over the feed stream's max age. With limits retention the feed stream
 * keeps every copy, read or not, for its max age: without a bound, one agency's fan-out fills it
 * for everybody. Every byte the router stores in the stream is charged to one agency (a copy to
 * its alert's origin, a notice to the agency it is addressed to), in time buckets; a bucket stops
 * counting once all it holds has aged out of the stream (its end + the stream's max age + a
 * slack). A partner pays for the time a `delivered` notice its receipt made outlives its copy's
 * charge with a charge that starts counting later (see `delivered`); the budget is checked
 * against the most that will count at any time from now on (the peak), not only what counts
 * now. A message that would take its agency over budget waits (a copy is held, a notice stays
 * in the outbox) and the agency is marked spent: its inbound stream is not read until its old
 * buckets age out. A message larger than the whole budget goes through when the agency has
 * nothing charged, so none waits for ever.
 *
 * Charges are written to the router's database every `flushMs` (added, so routers sharing a
 * database add up) and loaded at start: a restart does not hand every agency a fresh budget. A
 * crash loses at most the last interval's charges. Several routers with databases of their own
 * each keep their own charges: together they may let an agency store up to its budget each.
 */
export class OriginBudget {
  readonly #o: OriginBudgetOptions;
  readonly #now: () => number;
  /** Length of a bucket (ms). */
  readonly bucketMs: number;
  /** Added to a bucket's end and the max age before it stops counting (nats-server's expiry runs a little late). */
  readonly slackMs: number;
  /**
   * How long after its end a bucket stops counting: the max age, the slack, and one bucket more,
   * so that a copy's charge (with the reservation for its notice) covers a receipt up to a bucket
   * after the copy's bucket: however an origin bunches its copies, the partner's share of their
   * notices counts only lateness beyond that.
   */
  readonly tailMs: number;
  readonly #charges = new Map<string, Charges>();
  #timer: NodeJS.Timeout | undefined;
  /** When aged-out rows were last deleted from the database (ms). */
  #pruned = 0;

  constructor(options: OriginBudgetOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.bucketMs = Math.max(250, Math.ceil(options.maxAgeMs / BUCKETS_PER_MAX_AGE));
    this.slackMs = Math.min(60_000, Math.max(1000, Math.ceil(options.maxAgeMs / 100)));
    this.tailMs = options.maxAgeMs + this.slackMs + this.bucketMs;
    if (!options.enforced) return;
    const now = this.#now();
    for (const row of options.store.originCharges(this.#expiredBefore(now))) {
      const c = this.#of(row.agency);
      c.buckets.push({ until: row.until, bytes: row.bytes, unflushed: 0 });
      c.total += row.bytes;
    }
    // Deferred charges due count now; the others wait for their start, as before the restart.
    for (const row of options.store.originDeferred(this.#expiredBefore(now))) {
      const c = this.#of(row.agency);
      if (row.starts <= now) this.#count(c, row.until, row.bytes, 0);
      else {
        const d = {
          until: row.until,
          lateness: row.lateness,
          from: row.starts,
          bytes: row.bytes,
          unflushed: 0,
        };
        c.deferred.push(d);
        c.starts.push(d);
      }
    }
    for (const c of this.#charges.values()) {
      // A bucket below zero (a take-back whose late charges had not started, the clock having
      // gone back) counts nothing.
      for (const b of c.buckets)
        if (b.bytes < 0) {
          c.total -= b.bytes;
          b.bytes = 0;
        }
      c.starts.sort((a, b) => a.from - b.from);
      c.peak = this.#peak(c, now);
    }
  }

  /** Whether the budgets apply (the feed stream has limits retention). */
  get enforced(): boolean {
    return this.#o.enforced;
  }

  /** Buckets that ended at or before this time (ms) no longer count at `now`. */
  #expiredBefore(now: number): number {
    return now - this.tailMs;
  }

  #of(agency: string): Charges {
    let c = this.#charges.get(agency);
    if (!c)
      this.#charges.set(
        agency,
        (c = {
          total: 0,
          peak: 0,
          reckonAt: -Infinity,
          buckets: [],
          deferred: [],
          starts: [],
          spent: false,
          overdue: false,
          asking: false,
        }),
      );
    return c;
  }

  /** Flushes and ages out every `flushMs`; resumes agencies with room again. */
  start(): void {
    if (!this.#o.enforced) return;
    this.#timer = setInterval(() => this.tick(), this.#o.flushMs ?? 1000);
    this.#timer.unref();
  }

  /** Stops the timer and writes what is not written yet. */
  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.flush();
  }

  /**
   * Why a message of `bytes` charged to `agency` must wait, if it must: when what is charged to
   * it, plus `bytes`, passes its budget (and something is charged at all) now or at any time
   * while it still counts, with the charges the agency owes from later on (see {@link delivered}).
   * Marks it spent then.
   */
  over(agency: string, bytes: number): string | undefined {
    if (!this.#o.enforced) return undefined;
    const c = this.#charges.get(agency);
    if (!c || c.peak <= 0) return undefined;
    const budget = this.#o.budget(agency);
    if (c.peak + bytes <= budget) return undefined;
    this.#settle(c, this.#now());
    if (c.peak <= 0 || c.peak + bytes <= budget) return undefined;
    this.#markSpent(agency, c, budget);
    return `${agency} has had about ${c.peak} bytes stored in the feed stream within its max age, with what it owes from later on; ${bytes} more would pass its budget (${budget} bytes, streams.originMaxBytesFor)`;
  }

  #markSpent(agency: string, c: Charges, budget: number): void {
    if (c.spent) return;
    c.spent = true;
    this.#o.log.warn(
      { agency, chargedBytes: c.peak, budgetBytes: budget, maxAgeMs: this.#o.maxAgeMs },
      "origin budget spent: this agency's further copies are held and its notices wait, and its inbound stream is not read, until its oldest charges age out of the feed stream",
    );
    this.#o.onSpent?.(agency);
  }

  /**
   * What a copy of `bytes` is charged to its origin: its bytes, plus {@link DELIVERED_RESERVE_BYTES}
   * for the `delivered` notice its recipient's receipt will make the hub send the origin. The
   * origin pays for that notice in advance, so neither can a partner spend the origin's budget by
   * when it receipts, nor an agency spend a partner's by sending it many small alerts to receipt.
   */
  copyCharge(bytes: number): number {
    return this.#o.enforced ? bytes + DELIVERED_RESERVE_BYTES : bytes;
  }

  /**
   * A partner's receipt made a `delivered` notice event of `bytes` for `origin`'s copy forwarded
   * at `forwardedMs`. The copy's charge paid for the notice in advance and stays where it is
   * (less what the notice does not need of it), so nothing the partner does adds to the origin's
   * total. The notice is stored now and outlives that charge by the receipt's lateness: the
   * partner (`receipter`) pays for exactly that time, the event from when the copy's charge
   * stops counting until the receipt's does (nothing when the receipt comes within half the
   * slack of the copy's bucket's end; a receipt a max age late, a whole max age), plus at once
   * what the event needs beyond the reservation. A receipt for a copy whose charge has aged out
   * (or whose forwarding time is unknown) is the partner's to pay in full, at once. What the
   * partner will owe counts against its budget from now (see {@link over}): past it the partner
   * is marked spent at once (its own lateness), and its further receipts wait.
   */
  delivered(
    origin: string,
    forwardedMs: number | undefined,
    receipter: string,
    bytes: number,
  ): void {
    if (!this.#o.enforced || bytes <= 0) return;
    const now = this.#now();
    const stored = now + (this.#o.noticeDelayMs ?? 0);
    if (
      forwardedMs === undefined ||
      !Number.isFinite(forwardedMs) ||
      this.#bucketEnd(forwardedMs) <= this.#expiredBefore(now)
    ) {
      // In the bucket of when the notice may be stored.
      this.#chargeAt(receipter, this.#bucketEnd(stored), bytes);
      return;
    }
    const reserved = Math.min(bytes, DELIVERED_RESERVE_BYTES);
    this.#takeBack(origin, forwardedMs, DELIVERED_RESERVE_BYTES - reserved);
    if (bytes > reserved) this.#chargeAt(receipter, this.#bucketEnd(now), bytes - reserved);
    const copyUntil = this.#bucketEnd(forwardedMs);
    // Stored within a bucket and half the slack of the copy's bucket's end, the notice ages out
    // with the copy's charge (the other half of the slack is for nats-server's late expiry).
    if (stored <= copyUntil + this.bucketMs + this.slackMs / 2) return;
    // From when the copy's charge stops counting (later than now: it has not aged out).
    const from = copyUntil + this.tailMs;
    const c = this.#of(receipter);
    // Kept with the notices of about the same lateness (within a factor of two) receipted in the
    // same bucket, counting from the earliest of their copies' ends: each at most its own
    // lateness early, never late.
    const until = this.#bucketEnd(stored);
    const d = this.#deferredAt(
      c,
      until,
      Math.floor(Math.log2((until - copyUntil) / this.bucketMs)),
    );
    c.reckonAt = -Infinity;
    if (from < d.from) {
      // What it holds counts earlier now: the most that will count may rise by all of it.
      if (d.bytes > 0) c.peak += d.bytes;
      this.#startAt(c, d, from);
    }
    d.bytes += reserved;
    d.unflushed += reserved;
    c.peak += reserved;
    this.#spentPast(receipter, c);
  }

  /**
   * `c`'s deferred charge for the receipt bucket ending at `until` and the lateness class
   * `lateness`, made if there is none: about ten per receipt bucket at most (500 buckets over a
   * max age), whatever receipts an agency sends.
   */
  #deferredAt(c: Charges, until: number, lateness: number): Deferred {
    let i = c.deferred.length;
    while (i > 0 && c.deferred[i - 1]!.until > until) i--;
    for (let j = i - 1; j >= 0 && c.deferred[j]!.until === until; j--)
      if (c.deferred[j]!.lateness === lateness) return c.deferred[j]!;
    const d = { until, lateness, from: Infinity, bytes: 0, unflushed: 0 };
    c.deferred.splice(i, 0, d);
    c.starts.push(d);
    return d;
  }

  /** Makes `d` start counting at `from` (earlier than before), keeping `c.starts` in order. */
  #startAt(c: Charges, d: Deferred, from: number): void {
    const starts = c.starts;
    // From its old place (a new one is last, at Infinity) to the first place starting later; one
    // not in the list (never the case) is put in it.
    let i = starts.lastIndexOf(d);
    if (i < 0) i = starts.length;
    while (i > 0 && starts[i - 1]!.from > from) {
      starts[i] = starts[i - 1]!;
      i--;
    }
    starts[i] = d;
    d.from = from;
  }

  /**
   * Adds `bytes` (`unflushed` of them not written yet) to `c`'s bucket ending at `until`, made if
   * there is none (the last one, unless a deferred charge that started or a clock that went back
   * made a later one), and returns it.
   */
  #count(c: Charges, until: number, bytes: number, unflushed: number): OriginBucket {
    let i = c.buckets.length;
    while (i > 0 && c.buckets[i - 1]!.until > until) i--;
    let b = c.buckets[i - 1];
    if (!b || b.until !== until) c.buckets.splice(i, 0, (b = { until, bytes: 0, unflushed: 0 }));
    b.bytes += bytes;
    b.unflushed += unflushed;
    c.total += bytes;
    return b;
  }

  /**
   * Charges `agency` `bytes` in the bucket ending at `until` (now's, or a later one) for a message
   * of its the hub stores; marks it spent past its budget.
   */
  #chargeAt(agency: string, until: number, bytes: number): void {
    const c = this.#of(agency);
    this.#count(c, until, bytes, bytes);
    c.peak += bytes;
    this.#spentPast(agency, c);
  }

  /**
   * Brings `c` to `now`: its deferred charges due start counting (written already: nothing to
   * write), its aged-out buckets are dropped, and its peak is reckoned again.
   */
  #settle(c: Charges, now: number): void {
    // The deferred charges due are the first of `starts`.
    let due = 0;
    while (due < c.starts.length && c.starts[due]!.from <= now) due++;
    if (due > 0) {
      c.starts.splice(0, due);
      const before = this.#expiredBefore(now);
      let kept = 0;
      for (const d of c.deferred) {
        if (d.from > now) c.deferred[kept++] = d;
        // Its bucket has aged out already (the timer ran very late): nothing left to count.
        else if (d.until > before) this.#count(c, d.until, d.bytes, d.unflushed);
      }
      c.deferred.length = kept;
    }
    this.#age(c, now);
    if (now >= c.reckonAt) c.peak = this.#peak(c, now);
  }

  /**
   * The most `c` will have counting at any time from now on: what counts now falls as buckets
   * and started deferred charges age out, and rises only when a deferred charge starts, so the
   * highest is now or at one of those starts. One pass over the buckets, the deferred charges
   * (both in `until` order) and their starts (in order): at most about 500 buckets and 5,000
   * deferred charges an agency.
   */
  #peak(c: Charges, now: number): number {
    // Reached now: reckoned again at the next settle.
    c.reckonAt = now;
    if (c.starts.length === 0) return c.total;
    const tail = this.tailMs;
    const starts = c.starts;
    let level = c.total;
    let peak = level;
    let i = 0;
    let j = 0;
    for (let k = 0; k < starts.length;) {
      const t = starts[k]!.from;
      while (i < c.buckets.length && c.buckets[i]!.until + tail <= t)
        level -= c.buckets[i++]!.bytes;
      // A deferred charge that has ended by t started before (its start is before its end).
      while (j < c.deferred.length && c.deferred[j]!.until + tail <= t)
        level -= c.deferred[j++]!.bytes;
      for (; k < starts.length && starts[k]!.from === t; k++) level += starts[k]!.bytes;
      if (level >= peak) {
        peak = level;
        c.reckonAt = t;
      }
    }
    return peak;
  }

  /**
   * Takes back `bytes` of what `origin`'s copy forwarded at `forwardedMs` reserved and its notice
   * does not need, from the bucket the copy was charged in (the last one ending by the end of
   * its forwarding's: the charge is made just before the publish). Only ever less, never later:
   * nothing when that bucket is not found (another router forwarded the copy).
   */
  #takeBack(origin: string, forwardedMs: number, bytes: number): void {
    const c = this.#charges.get(origin);
    if (!c || bytes <= 0) return;
    const end = this.#bucketEnd(forwardedMs);
    for (let i = c.buckets.length - 1; i >= 0; i--) {
      const b = c.buckets[i]!;
      if (b.until > end) continue;
      if (b.bytes >= bytes) this.#uncount(c, b, bytes);
      return;
    }
  }

  /**
   * Takes `bytes` out of `c`'s bucket `b`, never more than it holds (a copy reported unstored and
   * then receipted is taken back twice). The peak stays as it was (more than its due) until it
   * is reckoned again: at the next tick, or when a message would pass the budget.
   */
  #uncount(c: Charges, b: OriginBucket, bytes: number): void {
    const n = Math.min(bytes, Math.max(0, b.bytes));
    b.bytes -= n;
    b.unflushed -= n;
    if (c.buckets.includes(b)) c.total -= n;
    c.reckonAt = -Infinity;
  }

  /**
   * Marks `agency` spent when what it has or will have counting passes its budget (the peak
   * reckoned again first: between ticks it is only ever raised).
   */
  #spentPast(agency: string, c: Charges): void {
    const budget = this.#o.budget(agency);
    if (c.peak <= budget) return;
    this.#settle(c, this.#now());
    if (c.peak > budget) this.#markSpent(agency, c, budget);
  }

  /** The end of the bucket holding `ms`. */
  #bucketEnd(ms: number): number {
    return (Math.floor(ms / this.bucketMs) + 1) * this.bucketMs;
  }

  /**
   * Charges `bytes` to `agency` (the hot path: one lookup, one addition). Returns what
   * {@link refund} needs if the message is not stored after all.
   */
  charge(agency: string, bytes: number): OriginBucket | undefined {
    if (!this.#o.enforced) return undefined;
    const c = this.#of(agency);
    c.peak += bytes;
    return this.#count(c, this.#bucketEnd(this.#now()), bytes, bytes);
  }

  /** Takes back a charge whose message was not stored. */
  refund(agency: string, bucket: OriginBucket | undefined, bytes: number): void {
    const c = this.#charges.get(agency);
    if (bucket && c) this.#uncount(c, bucket, bytes);
  }

  /** Whether `agency`'s budget is spent (its copies are held, its notices wait). */
  spent(agency: string): boolean {
    return this.#charges.get(agency)?.spent === true;
  }

  /**
   * Whether `agency`'s inbound stream is not to be read now: its budget is spent, and its oldest
   * alert there is not about to age out (see {@link OriginBudgetOptions.overdue}).
   */
  paused(agency: string): boolean {
    const c = this.#charges.get(agency);
    return c !== undefined && c.spent && !c.overdue;
  }

  /** The agencies whose budget is spent now. */
  get spentAgencies(): string[] {
    return [...this.#charges].flatMap(([a, c]) => (c.spent ? [a] : []));
  }

  /** Bytes charged per agency now (for the metric). */
  charged(): Map<string, number> {
    return new Map([...this.#charges].map(([a, c]) => [a, c.total]));
  }

  /**
   * Per agency, the most that will count at any time from now on, with the charges it owes from
   * later on (what its budget is checked against; for the metric and its alert).
   */
  peaks(): Map<string, number> {
    return new Map([...this.#charges].map(([a, c]) => [a, Math.max(c.total, c.peak)]));
  }

  /** Drops the buckets of `c` that have aged out at `now`. */
  #age(c: Charges, now: number): void {
    const before = this.#expiredBefore(now);
    while (c.buckets.length > 0 && c.buckets[0]!.until <= before)
      c.total -= c.buckets.shift()!.bytes;
    if (c.buckets.length === 0) c.total = 0;
  }

  /** Writes the charges not written yet, in one transaction; deletes the aged-out rows. */
  flush(): void {
    if (!this.#o.enforced) return;
    const rows: OriginCharge[] = [];
    const deferredRows: OriginDeferredCharge[] = [];
    const deferred: Deferred[] = [];
    for (const [agency, c] of this.#charges) {
      // Every bucket with something unwritten: a second between two flushes (more when the
      // timer runs late) spans four buckets of 250 ms, and a refund may come a publish's timeout
      // after its charge. At most 500 buckets an agency, each a compare.
      for (const b of c.buckets) {
        if (b.unflushed === 0) continue;
        rows.push({ agency, until: b.until, bytes: b.unflushed });
        b.unflushed = 0;
      }
      // Deferred charges are written with their start, before they count: after a restart they
      // wait for it again.
      for (const d of c.deferred) {
        if (d.unflushed === 0) continue;
        deferredRows.push({
          agency,
          until: d.until,
          lateness: d.lateness,
          starts: d.from,
          bytes: d.unflushed,
        });
        deferred.push(d);
        d.unflushed = 0;
      }
    }
    // Nothing new: no write, unless aged-out rows are due for deletion (once a bucket).
    const now = this.#now();
    if (rows.length + deferredRows.length === 0 && now - this.#pruned < this.bucketMs) return;
    this.#pruned = now;
    try {
      this.#o.store.addOriginCharges(rows, deferredRows, this.#expiredBefore(now));
    } catch (err) {
      // Kept in memory and written with the next flush.
      for (const r of rows) {
        const b = this.#charges.get(r.agency)?.buckets.find((x) => x.until === r.until);
        if (b) b.unflushed += r.bytes;
      }
      for (const [i, d] of deferred.entries()) d.unflushed += deferredRows[i]!.bytes;
      this.#o.log.warn(
        { err: (err as Error).message },
        'origin budget charges not written; retried',
      );
    }
  }

  /** Asks whether a spent agency's waiting alerts are about to age out of its inbound stream. */
  #askOverdue(agency: string, c: Charges): void {
    const overdue = this.#o.overdue;
    if (!overdue || c.asking) return;
    c.asking = true;
    void overdue(agency)
      .then(
        (v) => v,
        // Unanswered: read the stream (the copies are held) rather than risk an alert aging out.
        () => true,
      )
      .then((v) => {
        if (!c.spent || v === c.overdue) return;
        c.overdue = v;
        if (v) {
          this.#o.log.warn(
            { agency },
            "origin budget spent, but this agency's oldest waiting alert is about to age out of its inbound stream: the stream is read and the copies held by the router until the budget has room",
          );
          this.#o.onResume?.(agency);
        } else this.#o.onSpent?.(agency);
      })
      .finally(() => (c.asking = false));
  }

  /** One round of the timer: flush, age out, resume the spent agencies with room again. */
  tick(): void {
    this.flush();
    const now = this.#now();
    for (const [agency, c] of this.#charges) {
      this.#settle(c, now);
      if (!c.spent) continue;
      const budget = this.#o.budget(agency);
      if (c.peak > 0 && c.peak + MAX_FEED_MESSAGE_BYTES > budget) {
        this.#askOverdue(agency, c);
        continue;
      }
      c.spent = false;
      c.overdue = false;
      this.#o.log.info(
        { agency, chargedBytes: c.peak, budgetBytes: budget },
        'origin budget has room again: this agency is routed again',
      );
      this.#o.onResume?.(agency);
    }
  }
}
