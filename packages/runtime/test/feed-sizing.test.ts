import { describe, expect, it } from 'vitest';
import { MAX_FEED_MESSAGE_BYTES, checkFeedSizing, recipientQuotaBytes } from '@alert-hub/runtime';

const MiB = 1024 * 1024;
const day = 86_400_000;

describe('feed sizing - checked at start', () => {
  it('each recipient’s byte quota is the stream’s even share less one message, or less when configured: every quota plus one message fits the stream at once', () => {
    for (const agencies of [1, 4, 109, 500]) {
      const q = recipientQuotaBytes(2048 * MiB, agencies);
      expect(q).toBeGreaterThan(0);
      expect(agencies * (q + MAX_FEED_MESSAGE_BYTES)).toBeLessThanOrEqual(2048 * MiB);
      expect(agencies * (q + MAX_FEED_MESSAGE_BYTES + 1)).toBeGreaterThan(
        0.95 * 2048 * MiB - agencies,
      );
    }
    expect(recipientQuotaBytes(2048 * MiB, 4, 10 * MiB)).toBe(10 * MiB);
    // Configured larger than the share: the share.
    expect(recipientQuotaBytes(2048 * MiB, 4, 2048 * MiB)).toBe(recipientQuotaBytes(2048 * MiB, 4));
    // A stream too small for that many agencies: nothing but the one message let through.
    expect(recipientQuotaBytes(MiB, 10)).toBe(0);
    const s = checkFeedSizing({
      feedsMaxBytes: MiB,
      maxAgeMs: day,
      recipientMaxCopies: 20_000,
      load: { alertsPerSecond: 1, fanOut: 1, copyBytes: 4096 },
      agencies: 10,
    });
    expect(s.quotaBytes).toBe(0);
    expect(s.warnings[0]).toContain('less than one message of the largest size');
  });

  it('a copy quota larger than the stream is no longer refused: the byte quota bounds it', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 64 * MiB,
      maxAgeMs: day,
      recipientMaxCopies: 16_384,
      load: { alertsPerSecond: 1, fanOut: 1, copyBytes: 4096 },
    });
    expect(s.quotaBytes).toBe(recipientQuotaBytes(64 * MiB, 1));
    expect(s.recipientBytes).toBe(s.quotaBytes);
  });

  it('holds a load whose replay window fits every quota: no error, no warning', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 2048 * MiB,
      maxAgeMs: day,
      recipientMaxCopies: 20_000,
      // 0.1 alert/s to 2 of 4 agencies: 0.05 copies/s per recipient, 4,320 a day
      load: { alertsPerSecond: 0.1, fanOut: 2, copyBytes: 4096 },
      agencies: 4,
    });
    expect(s.warnings).toEqual([]);
    expect(s.recipientCopiesPerSecond).toBeCloseTo(0.05);
    expect(s.recipientAbsenceMs / 1000).toBeCloseTo(400_000);
  });

  it('warns, with the numbers, when a partner away for the replay window outgrows its quota', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 2048 * MiB,
      maxAgeMs: 30 * day,
      recipientMaxCopies: 20_000,
      // Thunderball: 108 partners on every alert
      load: { alertsPerSecond: 10, fanOut: 108, copyBytes: 4096 },
      agencies: 109,
    });
    expect(s.warnings).toHaveLength(1);
    // 2 GiB x 0.95 / 109 less one message: 17.6 MiB each, smaller than 20,000 x 4 KiB = 78 MiB;
    // at 10 x 108 / 109 copies/s of 4 KiB it lasts about 455 s
    expect(s.recipientBytes).toBe(s.quotaBytes);
    expect(s.quotaBytes).toBe(Math.floor((2048 * MiB * 0.95) / 109) - MAX_FEED_MESSAGE_BYTES);
    expect(Math.round(s.recipientAbsenceMs / 1000)).toBe(
      Math.round(s.quotaBytes / (((10 * 108) / 109) * 4096)),
    );
    expect(s.warnings[0]).toContain(`${(s.recipientAbsenceMs / 3600_000).toFixed(2)} h`);
  });

  it('warns when a limits feed stream, keeping read copies for the whole window, fills before it ends', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 2048 * MiB,
      maxAgeMs: 30 * day,
      recipientMaxCopies: 20_000,
      // 10 alerts/s to 2 partners, 4 KiB each: 288 MiB an hour, 2 GiB in about 7 hours
      load: { alertsPerSecond: 10, fanOut: 2, copyBytes: 4096 },
      agencies: 4,
      retention: 'limits',
    });
    expect(s.warnings.filter((w) => w.startsWith('with limits retention'))).toHaveLength(1);
    expect(s.warnings.find((w) => w.startsWith('with limits retention'))).toContain('7.28 h');
  });

  it('warns, naming the streams and the size they need, when an even share of the stated load fills an agency’s inbound stream before its alerts age out (only that agency refused from then on)', () => {
    const base = {
      feedsMaxBytes: 2048 * MiB,
      maxAgeMs: 30 * day,
      recipientMaxCopies: 20_000,
      load: { alertsPerSecond: 10, fanOut: 2, copyBytes: 4096 },
      agencies: 4,
      retention: 'interest' as const,
    };
    const agencies = ['SG-NPARKS', 'VN-CUSTOMS', 'TH-DNP', 'KE-KWS'];
    const inboundWarnings = (s: { warnings: readonly string[] }) =>
      s.warnings.filter((w) => w.startsWith('the inbound stream of each agency'));
    // 10 alerts/s of 4 KiB over 4 agencies: 35.16 MiB an hour each, so 256 MiB lasts 7.28 h of a
    // 720 h window; the whole window needs 10,240 bytes/s x 30 days = 25,313 MiB.
    const s = checkFeedSizing({ ...base, inbound: { agencies, maxBytes: 256 * MiB } });
    expect(inboundWarnings(s)).toHaveLength(1);
    expect(inboundWarnings(s)[0]).toContain('after 7.28 h');
    expect(inboundWarnings(s)[0]).toContain('at least 25313 MiB');
    for (const a of agencies) expect(inboundWarnings(s)[0]).toContain(`AHUB_IN_${a}`);

    // Room for the whole window: no warning; an override too small is named on its own.
    const roomy = 10_240 * 30 * 86_400;
    const one = checkFeedSizing({
      ...base,
      inbound: { agencies, maxBytes: roomy, maxBytesFor: { 'VN-CUSTOMS': 512 * MiB } },
    });
    expect(inboundWarnings(one)).toHaveLength(1);
    expect(inboundWarnings(one)[0]).toContain('AHUB_IN_VN-CUSTOMS');
    expect(inboundWarnings(one)[0]).toContain('streams.inboundMaxBytesFor.VN-CUSTOMS');
    expect(inboundWarnings(one)[0]).toContain('after 15 h');
    expect(inboundWarnings(one)[0]).not.toContain('AHUB_IN_SG-NPARKS');
    expect(
      inboundWarnings(
        checkFeedSizing({
          ...base,
          inbound: {
            agencies,
            maxBytes: 256 * MiB,
            maxBytesFor: Object.fromEntries(agencies.map((a) => [a, roomy])),
          },
        }),
      ),
    ).toEqual([]);
    // Many agencies: the first ten are named, the rest counted.
    const many = Array.from({ length: 12 }, (_, k) => `AG-${k}`);
    const m = checkFeedSizing({ ...base, inbound: { agencies: many, maxBytes: 16 * MiB } });
    expect(inboundWarnings(m)[0]).toContain('AHUB_IN_AG-9 and 2 more');
    // Not asked: not checked.
    expect(inboundWarnings(checkFeedSizing(base))).toEqual([]);
  });
});
