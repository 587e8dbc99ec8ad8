import { readFileSync, renameSync, writeFileSync } from 'node:fs';

/** A time during which this gateway did not reach its feed for longer than the hub keeps alerts. */
export interface FeedGap {
  /** The last contact with the feed before the gap (RFC 3339). */
  readonly since: string;
  /** The first contact after it. */
  readonly until: string;
  readonly offlineMs: number;
  /** The hub's retention the gap was measured against (`feed.hubRetentionMs`). */
  readonly retentionMs: number;
}

/**
 * Tells a partner that it may have missed alerts. The hub keeps each forwarded copy for its
 * streams' `maxAgeMs` and then removes it whether or not the partner has read it; nats-server
 * gives the partner no sign of that. So the gateway records, in a file of its own, the last time
 * it reached its feed consumer, and when it reaches it again after more than the hub's retention
 * it reports a {@link FeedGap}: alerts forwarded to it in that window may have expired unread.
 * It is conservative: it can report a gap in which nothing was forwarded, never miss one.
 */
export class FeedContactWatch {
  readonly #file: string;
  readonly #retentionMs: number;
  readonly #now: () => number;
  #last: number | undefined;
  #written = 0;
  #gap: FeedGap | undefined;

  constructor(o: { file: string; retentionMs: number; now?: () => number }) {
    this.#file = o.file;
    this.#retentionMs = o.retentionMs;
    this.#now = o.now ?? Date.now;
    try {
      const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as { lastContact?: unknown };
      const t = typeof saved.lastContact === 'string' ? Date.parse(saved.lastContact) : NaN;
      if (Number.isFinite(t)) this.#last = t;
    } catch {
      // first start: no contact yet, hence no gap
    }
  }

  /** The most recent gap found since this process started, if any. */
  get gap(): FeedGap | undefined {
    return this.#gap;
  }

  /**
   * Records that the feed consumer answered just now. Returns the gap when the previous contact
   * (possibly before a restart) is older than the hub's retention.
   */
  contact(): FeedGap | undefined {
    const now = this.#now();
    let gap: FeedGap | undefined;
    if (this.#last !== undefined && now - this.#last > this.#retentionMs) {
      gap = {
        since: new Date(this.#last).toISOString(),
        until: new Date(now).toISOString(),
        offlineMs: now - this.#last,
        retentionMs: this.#retentionMs,
      };
      this.#gap = gap;
    }
    this.#last = now;
    // At most one write every 10 s: the file needs a precision of minutes, not of messages.
    if (gap || now - this.#written >= 10_000) {
      const tmp = `${this.#file}.tmp`;
      writeFileSync(tmp, JSON.stringify({ lastContact: new Date(now).toISOString() }), {
        mode: 0o600,
      });
      renameSync(tmp, this.#file);
      this.#written = now;
    }
    return gap;
  }
}
