/**
 * Group commit for SQLite (better-sqlite3 is synchronous): everything enqueued during one turn
 * of the event loop is written by one `write(items)` call, which the caller wraps in a single
 * transaction, and each `enqueue()` resolves only after that transaction committed. A consumer
 * that acks a message after its `enqueue()` resolved therefore never acks an uncommitted row,
 * and a burst of messages costs one fsync instead of one each.
 */
export interface BatchWriter<T> {
  /** Resolves once `item` is committed; rejects if its batch failed (nothing of it was written). */
  enqueue(item: T): Promise<void>;
  /** Writes whatever is queued now. */
  flush(): void;
  /** Items waiting for the next flush. */
  readonly pending: number;
}

export function createBatchWriter<T>(
  write: (items: readonly T[]) => void,
  options: { maxBatch?: number } = {},
): BatchWriter<T> {
  const maxBatch = options.maxBatch ?? 1000;
  let queue: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;

  const flush = (): void => {
    scheduled = false;
    while (queue.length > 0) {
      const batch = queue.slice(0, maxBatch);
      queue = queue.slice(batch.length);
      try {
        write(batch.map((b) => b.item));
      } catch (err) {
        for (const b of batch) b.reject(err);
        continue;
      }
      for (const b of batch) b.resolve();
    }
  };

  return {
    enqueue(item) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        if (queue.length >= maxBatch) flush();
        else if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    flush,
    get pending() {
      return queue.length;
    },
  };
}
