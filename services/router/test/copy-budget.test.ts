import { describe, expect, it } from 'vitest';
import { CopyBudget, sendWithin } from '../src/copy-budget.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('copy budget - memory bounded by copies', () => {
  it('never has more in flight than its capacity, and grants in request order', async () => {
    const budget = new CopyBudget(10);
    const granted: string[] = [];
    const a = budget.acquire(6).then(() => granted.push('a'));
    const b = budget.acquire(6).then(() => granted.push('b'));
    const c = budget.acquire(2).then(() => granted.push('c'));
    await tick();
    // c would fit beside a, but b asked first: first come, first served.
    expect(granted).toEqual(['a']);
    expect(budget.used).toBe(6);
    expect(budget.waiting).toBe(2);
    budget.release(6);
    await Promise.all([a, b, c]);
    expect(granted).toEqual(['a', 'b', 'c']);
    expect(budget.used).toBe(8);
  });

  it('a request larger than the whole budget goes alone rather than waiting for ever', async () => {
    const budget = new CopyBudget(10);
    await budget.acquire(4);
    let big = false;
    const p = budget.acquire(25).then(() => (big = true));
    await tick();
    expect(big).toBe(false);
    budget.release(4);
    await p;
    expect(budget.used).toBe(25);
  });

  it('sends the items of one alert within the budget, in order, never more at once than it holds', async () => {
    const budget = new CopyBudget(3 * 100);
    let inFlight = 0;
    let peak = 0;
    const items = Array.from({ length: 108 }, (_, i) => i);
    const results = await sendWithin(budget, items, 100, async (i) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick();
      inFlight--;
      return `copy ${i}`;
    });
    expect(results).toEqual(items.map((i) => `copy ${i}`));
    expect(peak).toBe(3);
    expect(budget.used).toBe(0);
  });

  it('after a failure no further item starts; the ones in flight finish and give their share back', async () => {
    const budget = new CopyBudget(2 * 10);
    const started: number[] = [];
    await expect(
      sendWithin(budget, [0, 1, 2, 3, 4, 5], 10, async (i) => {
        started.push(i);
        await tick();
        if (i === 1) throw new Error('stream full');
        return i;
      }),
    ).rejects.toThrow('stream full');
    expect(started.length).toBeLessThan(6);
    expect(budget.used).toBe(0);
  });
});
