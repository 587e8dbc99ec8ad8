import { describe, expect, it } from 'vitest';
import { createDrainer, createLogger } from '@alert-hub/runtime';

const log = createLogger({ name: 'drainer-test', level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = async (ok: () => boolean) => {
  for (let i = 0; i < 500 && !ok(); i++) await sleep(10);
};

/** A drainer that counts its runs; with `gated`, its first run waits for `release()`. */
function counted(o: { delayMs?: number; gated?: boolean } = {}) {
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const drainer = createDrainer(
    async () => {
      runs++;
      if (o.gated && runs === 1) await gate;
    },
    { log, what: 'test', ...(o.delayMs ? { delayMs: o.delayMs } : {}) },
  );
  return { drainer, runs: () => runs, release };
}

describe('drainer - the outbox the services share', () => {
  it('with delayMs, every kick of the window shares one drain, run after the window', async () => {
    const { drainer: d, runs } = counted({ delayMs: 50 });
    for (let i = 0; i < 5; i++) d.kick();
    expect(runs()).toBe(0);
    await until(() => runs() === 1);
    await sleep(150);
    expect(runs()).toBe(1);
    // A later kick opens the next window.
    d.kick();
    await until(() => runs() === 2);
    expect(runs()).toBe(2);
    await d.stop();
  });

  it('stop() runs at once the drain still waiting for its window, and nothing after', async () => {
    const { drainer: d, runs } = counted({ delayMs: 60_000 });
    d.kick();
    expect(runs()).toBe(0);
    await d.stop();
    expect(runs()).toBe(1);
    d.kick();
    await sleep(50);
    expect(runs()).toBe(1);
  });

  it('stop() drains once more for a kick made during the running drain', async () => {
    const { drainer: d, runs, release } = counted({ gated: true });
    d.kick();
    d.kick();
    const stopped = d.stop();
    release();
    await stopped;
    expect(runs()).toBe(2);
  });

  it('stop() with nothing owed drains nothing', async () => {
    const { drainer: d, runs } = counted();
    d.kick();
    await until(() => runs() === 1);
    await d.stop();
    expect(runs()).toBe(1);
  });

  it('without delayMs, a kick drains at once; kicks during a drain run it once more after', async () => {
    const { drainer: d, runs, release } = counted({ gated: true });
    d.kick();
    expect(runs()).toBe(1);
    d.kick();
    d.kick();
    release();
    await until(() => runs() === 2);
    await sleep(50);
    expect(runs()).toBe(2);
    await d.stop();
  });
});
