import { describe, expect, it } from 'vitest';
import { KeyedRateLimit } from '../src/rate-limit.js';

describe('keyed rate limit - what one agency may make the router read', () => {
  it('gives a key its burst at once, then its rate, and says how long to wait', () => {
    let now = 1_000;
    const limit = new KeyedRateLimit({ perSecond: 10, burst: 20, now: () => now });
    const taken = Array.from({ length: 25 }, () => limit.take('KE-KWS'));
    expect(taken.filter((w) => w === 0)).toHaveLength(20);
    // Empty: one token comes back every 100 ms.
    expect(taken[20]).toBe(100);
    now += 50;
    expect(limit.take('KE-KWS')).toBe(50);
    now += 50;
    expect(limit.take('KE-KWS')).toBe(0);
    expect(limit.take('KE-KWS')).toBe(100);
    // A second later: ten more, never more than the burst however long the key was quiet.
    now += 1_000;
    expect(
      Array.from({ length: 11 }, () => limit.take('KE-KWS')).filter((w) => w === 0),
    ).toHaveLength(10);
    now += 3_600_000;
    expect(
      Array.from({ length: 30 }, () => limit.take('KE-KWS')).filter((w) => w === 0),
    ).toHaveLength(20);
  });

  it('keys are independent: one key at its limit leaves another its whole burst', () => {
    const now = 0;
    const limit = new KeyedRateLimit({ perSecond: 1, burst: 3, now: () => now });
    for (let i = 0; i < 100; i++) limit.take('KE-KWS');
    expect(limit.take('KE-KWS')).toBeGreaterThan(0);
    expect([limit.take('SG-NPARKS'), limit.take('SG-NPARKS'), limit.take('SG-NPARKS')]).toEqual([
      0, 0, 0,
    ]);
    expect(limit.take('SG-NPARKS')).toBe(1000);
  });

  it('forgets keys whose bucket is full again, and never the state of a key still limited', () => {
    let now = 0;
    const limit = new KeyedRateLimit({ perSecond: 1, burst: 1, now: () => now });
    expect(limit.take('KE-KWS')).toBe(0);
    // Thousands of keys seen once; KE-KWS is still empty when the map is trimmed.
    for (let i = 0; i < 5000; i++) limit.take(`K${i}`);
    expect(limit.take('KE-KWS')).toBe(1000);
    expect(limit.keys).toBe(5001);
    now += 2_000;
    for (let i = 5000; i < 10_000; i++) limit.take(`K${i}`);
    // Trimmed when it doubled: every bucket then full again was dropped.
    expect(limit.keys).toBeLessThan(5001);
    expect(limit.take('KE-KWS')).toBe(0);
  });

  it('refuses a rate that would let nothing through', () => {
    expect(() => new KeyedRateLimit({ perSecond: 0, burst: 1 })).toThrow(RangeError);
    expect(() => new KeyedRateLimit({ perSecond: 1, burst: 0 })).toThrow(RangeError);
  });
});
