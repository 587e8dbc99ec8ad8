import type { Logger } from './logger.js';

/** Runs a drain function on demand, one at a time; see {@link createDrainer}. */
export interface Drainer {
  /**
   * Runs the drain now (or `delayMs` from now), or once more after the running one (calls in
   * between coalesce).
   */
  kick(): void;
  /**
   * Waits for a running drain, then drains once more if a kick is still owed (one waiting for
   * its `delayMs` window, or made during the last drain); runs nothing after.
   */
  stop(): Promise<void>;
}

/**
 * The outbox pattern the services share (notices, receipts, held copies): rows are written in the
 * transaction of the decision they belong to, and `drain` sends them and removes each once sent.
 * `kick()` after every commit; a failed drain is logged and run again after `retryMs`, so
 * nothing written is ever left behind while the process runs.
 */
export function createDrainer(
  drain: () => Promise<void>,
  o: {
    log: Logger;
    what: string;
    retryMs?: number;
    /**
     * Runs the drain this long after the first `kick()` instead of at once, so that what the
     * commits of that window wrote goes out together (one notice or receipt, not one each).
     */
    delayMs?: number;
  },
): Drainer {
  let running: Promise<void> | undefined;
  let again = false;
  let retry: NodeJS.Timeout | undefined;
  let delayed: NodeJS.Timeout | undefined;
  let stopped = false;
  // A kick no drain has started since: what it was for is still to be sent.
  let owed = false;
  const kick = (): void => {
    if (stopped) return;
    owed = true;
    if (!o.delayMs) return run();
    delayed ??= setTimeout(() => {
      delayed = undefined;
      run();
    }, o.delayMs);
  };
  const run = (): void => {
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    owed = false;
    running = drain()
      .catch((err: unknown) => {
        o.log.warn({ err: (err as Error).message }, `${o.what} failed; will retry`);
        retry ??= setTimeout(() => {
          retry = undefined;
          kick();
        }, o.retryMs ?? 2000);
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          setImmediate(kick);
        }
      });
  };
  return {
    kick,
    async stop() {
      stopped = true;
      if (retry) clearTimeout(retry);
      if (delayed) clearTimeout(delayed);
      delayed = undefined;
      await running?.catch(() => undefined);
      // What the last commits wrote (a kick still waiting for its window, or one made during
      // the last drain) goes out now, not at the next start.
      if (owed) {
        owed = false;
        await drain().catch((err: unknown) =>
          o.log.warn(
            { err: (err as Error).message },
            `${o.what} failed at stop; sent at the next start`,
          ),
        );
      }
    },
  };
}
