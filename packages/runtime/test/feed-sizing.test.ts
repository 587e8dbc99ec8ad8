import { describe, expect, it } from 'vitest';
import { checkFeedSizing } from '@alert-hub/runtime';

const MiB = 1024 * 1024;
const day = 86_400_000;

describe('feed sizing - checked at start', () => {
  it('refuses a recipient quota as large as the whole feed stream (one partner could fill it for all)', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 64 * MiB,
      maxAgeMs: day,
      recipientMaxCopies: 16_384,
      load: { alertsPerSecond: 1, fanOut: 1, copyBytes: 4096 },
    });
    expect(s.errors.map((e) => e.pointer)).toEqual(['/streams/recipientMaxCopies']);
    expect(s.recipientBytes).toBe(64 * MiB);
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
    expect(s.errors).toEqual([]);
    expect(s.warnings).toEqual([]);
    expect(s.recipientCopiesPerSecond).toBeCloseTo(0.05);
    expect(s.recipientAbsenceMs / 1000).toBeCloseTo(400_000);
  });

  it('warns, with the numbers, when a partner away for the replay window outgrows its quota and when all quotas outgrow the stream', () => {
    const s = checkFeedSizing({
      feedsMaxBytes: 2048 * MiB,
      maxAgeMs: 30 * day,
      recipientMaxCopies: 20_000,
      // Thunderball: 108 partners on every alert
      load: { alertsPerSecond: 10, fanOut: 108, copyBytes: 4096 },
      agencies: 109,
    });
    expect(s.errors).toEqual([]);
    expect(s.warnings).toHaveLength(2);
    // 10 x 108 / 109 copies/s per recipient: 20,000 copies last 2,018 s
    expect(Math.round(s.recipientAbsenceMs / 1000)).toBe(2019);
    expect(s.warnings[0]).toContain('0.56 h');
    // 20,000 x 4 KiB = 78 MiB per recipient: 26 of 109 fit in 2 GiB
    expect(s.fullRecipientsHeld).toBe(26);
    expect(s.warnings[1]).toContain('26 full recipient quota(s) of 109');
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
    expect(s.errors).toEqual([]);
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
