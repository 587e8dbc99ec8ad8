import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@alert-hub/runtime';
import { makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { OriginBudget } from '../src/origin-budget.js';
import { RouterStore } from '../src/store.js';

/**
 * The origin budget's charges are written to the router's database once a second, "at most the
 * last interval's charges" lost in a crash and none on a clean stop. With a max age under about
 * 166 s the buckets are 250 ms long, so one second of charges spans four buckets (more when the
 * timer runs late), and the flush writes only the newest three.
 */
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
afterAll(() => fx.cleanup());

describe('origin budget - every charge reaches the database', () => {
  it('charges spread over more buckets than the flush looks at are all written, and loaded after a restart', () => {
    const clock = { t: 1_000_000 };
    const store = new RouterStore(openDatabase(join(fx.dir, 'flush.db')), 'test');
    const options = {
      maxAgeMs: 60_000, // the configuration's minimum: buckets of 250 ms
      enforced: true,
      budget: () => 1_000_000,
      store,
      log: memoryLogger('budget').log,
      now: () => clock.t,
    };
    const first = new OriginBudget(options);
    expect(first.bucketMs).toBe(250);
    // One second between two flushes: a charge in each of four buckets.
    for (let i = 0; i < 4; i++) {
      first.charge('SG-NPARKS', 1000);
      clock.t += 250;
    }
    first.stop(); // a clean stop flushes
    expect(first.charged().get('SG-NPARKS')).toBe(4000);
    const second = new OriginBudget(options);
    expect(second.charged().get('SG-NPARKS')).toBe(4000);
  });
});
