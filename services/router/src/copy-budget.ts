/**
 * What one countersigned copy in flight is reckoned to cost, in bytes of memory, for an inbound
 * envelope of `envelopeBytes`: the copy's JWS (payload as base64url), its encoded bytes (kept by
 * the NATS client until flushed) and the publish request around it.
 */
export function copyCost(envelopeBytes: number): number {
  return 3 * envelopeBytes + COPY_OVERHEAD_BYTES;
}

/** The fixed part of {@link copyCost}: headers, the request, the promise and its result. */
export const COPY_OVERHEAD_BYTES = 2048;

/**
 * A first-in first-out budget of memory for copies in flight. The router's memory is bounded by
 * copies, not by alerts: an alert to 108 partners takes 108 shares of it, one per copy while
 * that copy is signed and published, and gives each back once JetStream acknowledged it.
 * A request larger than the whole budget is granted when nothing else is in flight, so a single
 * huge copy never waits for ever.
 */
export class CopyBudget {
  readonly capacity: number;
  #used = 0;
  readonly #waiters: { readonly cost: number; readonly grant: () => void }[] = [];
  readonly #onChange: () => void;

  /** `onChange` is called whenever budget is given back (the inbound puller may fetch again). */
  constructor(capacity: number, onChange: () => void = () => undefined) {
    if (!Number.isSafeInteger(capacity) || capacity < 1)
      throw new RangeError(`a copy budget must be a positive integer, not ${capacity}`);
    this.capacity = capacity;
    this.#onChange = onChange;
  }

  /** Bytes taken by copies in flight now. */
  get used(): number {
    return this.#used;
  }

  /** Requests waiting for budget (copies that are ready to go but do not fit yet). */
  get waiting(): number {
    return this.#waiters.length;
  }

  #fits(cost: number): boolean {
    return this.#used === 0 || this.#used + cost <= this.capacity;
  }

  /** Resolves once `cost` is granted; grants are made in the order of the requests. */
  acquire(cost: number): Promise<void> {
    if (this.tryAcquire(cost)) return Promise.resolve();
    return new Promise((grant) => this.#waiters.push({ cost, grant }));
  }

  /**
   * Takes `cost` now if {@link acquire} would grant it at once (nothing waits and it fits), and
   * says whether it did; otherwise takes nothing.
   */
  tryAcquire(cost: number): boolean {
    if (this.#waiters.length > 0 || !this.#fits(cost)) return false;
    this.#used += cost;
    return true;
  }

  /** Gives back what one {@link acquire} took, and grants waiting requests that now fit. */
  release(cost: number): void {
    this.#used -= cost;
    for (let w = this.#waiters[0]; w !== undefined && this.#fits(w.cost); w = this.#waiters[0]) {
      this.#waiters.shift();
      this.#used += w.cost;
      w.grant();
    }
    this.#onChange();
  }
}

/**
 * Sends `items` one by one within `budget`, each taking `cost` while it is in flight, and
 * resolves with their results in the order of `items`. Nothing is materialised ahead of the
 * budget: an item is prepared only once its share is granted. Items whose shares are granted at
 * once are started in one synchronous run (an alert's copies then go out in a few socket writes,
 * not one write and a round of promise ticks each). After a failure no further item is started
 * (a failure is seen when an item waits for its share, or between runs); the ones in flight are
 * awaited (their shares given back), then the first error is thrown.
 */
export async function sendWithin<T, R>(
  budget: CopyBudget,
  items: readonly T[],
  cost: number,
  send: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = [];
  const inFlight: Promise<void>[] = [];
  let failure: { readonly err: unknown } | undefined;
  for (let i = 0; i < items.length && failure === undefined; i++) {
    if (!budget.tryAcquire(cost)) await budget.acquire(cost);
    if (failure !== undefined) {
      budget.release(cost);
      break;
    }
    const item = items[i]!;
    inFlight.push(
      (async () => {
        try {
          results[i] = await send(item);
        } catch (err) {
          failure ??= { err };
        } finally {
          budget.release(cost);
        }
      })(),
    );
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure.err;
  return results;
}
