import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Offers `rate` items per second for `seconds`: every 5 ms it asks `emit` for however many are
 * due, so the offered rate holds even when a tick runs late. Returns the number offered.
 */
export async function pace(
  rate: number,
  seconds: number,
  emit: (count: number) => void,
): Promise<number> {
  const start = performance.now();
  const end = start + seconds * 1000;
  let offered = 0;
  for (let now = performance.now(); now < end; now = performance.now()) {
    const due = Math.floor(((now - start) / 1000) * rate) - offered;
    if (due > 0) {
      emit(due);
      offered += due;
    }
    await sleep(5);
  }
  return offered;
}
