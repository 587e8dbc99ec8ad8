/**
 * A token bucket per key: each key may take `perSecond` on average, and `burst` at once after
 * being idle. What an agency may make the router do on subjects only it publishes (proof
 * requests, cosignatures): over its rate a request costs a map lookup, whatever it carries.
 */
export class KeyedRateLimit {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  /** The map is trimmed of full buckets when it grows to this many keys. */
  #trimAt = 4096;

  constructor(options: { perSecond: number; burst: number; now?: () => number }) {
    if (!(options.perSecond > 0) || !(options.burst >= 1))
      throw new RangeError('a rate limit needs perSecond > 0 and burst >= 1');
    this.#perMs = options.perSecond / 1000;
    this.#burst = options.burst;
    this.#now = options.now ?? (() => performance.now());
  }

  /**
   * Takes one token for `key`: 0 when it had one, otherwise the milliseconds until it will have
   * one (nothing is taken then).
   */
  take(key: string): number {
    const now = this.#now();
    const b = this.#buckets.get(key);
    const tokens = b ? Math.min(this.#burst, b.tokens + (now - b.at) * this.#perMs) : this.#burst;
    if (tokens < 1) {
      b!.tokens = tokens;
      b!.at = now;
      return Math.ceil((1 - tokens) / this.#perMs);
    }
    if (b) {
      b.tokens = tokens - 1;
      b.at = now;
    } else {
      // Keys come from subjects NATS binds to agencies. A bucket refilled to its burst says
      // nothing a new one would not: such buckets are dropped whenever the map has doubled.
      if (this.#buckets.size >= this.#trimAt) {
        this.#forgetFull(now);
        this.#trimAt = Math.max(4096, 2 * this.#buckets.size);
      }
      this.#buckets.set(key, { tokens: tokens - 1, at: now });
    }
    return 0;
  }

  /** Keys with a bucket now. */
  get keys(): number {
    return this.#buckets.size;
  }

  #forgetFull(now: number): void {
    for (const [key, b] of this.#buckets)
      if (b.tokens + (now - b.at) * this.#perMs >= this.#burst) this.#buckets.delete(key);
  }
}
