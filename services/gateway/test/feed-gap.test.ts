import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FeedContactWatch } from '../src/feed-gap.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-feed-gap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const DAY = 24 * 3600_000;

describe('gateway feed - offline longer than the hub keeps alerts', () => {
  it('reports the gap when the feed is reached again after more than the retention, across a restart', () => {
    const file = join(dir, 'a.json');
    let now = Date.parse('2026-01-01T00:00:00Z');
    const first = new FeedContactWatch({ file, retentionMs: 30 * DAY, now: () => now });
    expect(first.contact()).toBeUndefined();
    expect(statSync(file).mode & 0o077).toBe(0);
    // The gateway stops; it comes back 31 days later, a new process.
    now += 31 * DAY;
    const second = new FeedContactWatch({ file, retentionMs: 30 * DAY, now: () => now });
    const gap = second.contact();
    expect(gap).toEqual({
      since: '2026-01-01T00:00:00.000Z',
      until: '2026-02-01T00:00:00.000Z',
      offlineMs: 31 * DAY,
      retentionMs: 30 * DAY,
    });
    expect(second.gap).toEqual(gap);
    // Reported once: the next contact is close to this one.
    now += 60_000;
    expect(second.contact()).toBeUndefined();
  });

  it('reports nothing for an outage shorter than the retention, nor on the very first start', () => {
    const file = join(dir, 'b.json');
    let now = Date.parse('2026-01-01T00:00:00Z');
    const w = new FeedContactWatch({ file, retentionMs: 30 * DAY, now: () => now });
    expect(w.contact()).toBeUndefined();
    now += 29 * DAY;
    expect(
      new FeedContactWatch({ file, retentionMs: 30 * DAY, now: () => now }).contact(),
    ).toBeUndefined();
  });
});
