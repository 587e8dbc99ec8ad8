import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  provision,
  writeConfig,
} from '@alert-hub/testkit';
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

describe('gateway feed - a running gateway reports the gap: log code, metric, /readyz', () => {
  const nats = useNatsServer();
  const fx = makeHubFixture(['NG-NCS']);
  const HOUR = 3600_000;
  afterAll(() => fx.cleanup());

  /** Starts NG-NCS's gateway whose feed-contact.json says it last reached its feed `awayMs` ago. */
  async function startAfterAbsence(awayMs: number) {
    const dataDir = join(fx.dir, `data-${awayMs}`);
    mkdirSync(dataDir, { mode: 0o700 });
    const lastContact = new Date(Date.now() - awayMs).toISOString();
    writeFileSync(join(dataDir, 'feed-contact.json'), JSON.stringify({ lastContact }), {
      mode: 0o600,
    });
    const { log, lines } = memoryLogger(`feed-gap-${awayMs}`);
    const file = writeConfig(fx.dir, `NG-NCS-${awayMs}`, {
      agency: 'NG-NCS',
      signingKey: fx.keyFiles['NG-NCS'],
      trustDir: fx.trustDir,
      dataDir,
      http: { port: 0 },
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      feed: { hubRetentionMs: HOUR },
    });
    const gateway = await startGateway(loadConfig({}, file), { log });
    return { gateway, lines, lastContact, dataDir };
  }

  async function observe(gateway: Gateway, lines: string[]) {
    const readyz = await fetch(`${gateway.url}/readyz`);
    const body = (await readyz.json()) as { checks: Record<string, string> };
    const metrics = await (await fetch(`${gateway.url}/metrics`)).text();
    const logged = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['code'] === 'ERR_FEED_RETENTION_EXCEEDED');
    return {
      status: readyz.status,
      feedGap: body.checks['feedGap'],
      gaps: Number(/^ahub_gateway_feed_gaps_total(?:\{[^}]*\})? (\d+)$/m.exec(metrics)?.[1]),
      logged,
    };
  }

  it('back after longer than feed.hubRetentionMs: ERR_FEED_RETENTION_EXCEEDED logged with the window, ahub_gateway_feed_gaps_total counts it, /readyz shows feedGap', async () => {
    await provision(await nats.connect(), ['NG-NCS']);
    const { gateway, lines, lastContact, dataDir } = await startAfterAbsence(2 * HOUR);
    try {
      const seen = await eventually(
        async () => {
          const o = await observe(gateway, lines);
          return o.logged.length > 0 ? o : undefined;
        },
        10_000,
        'the gap reported',
      );
      expect(seen.logged).toHaveLength(1);
      expect(seen.logged[0]).toMatchObject({ since: lastContact, retentionMs: HOUR });
      expect(seen.logged[0]!['offlineMs']).toBeGreaterThan(2 * HOUR - 1000);
      expect(Date.parse(seen.logged[0]!['until'] as string)).toBeGreaterThan(
        Date.parse(lastContact),
      );
      expect(seen.gaps).toBe(1);
      // Reported, not a reason to stop serving: still ready, with the window.
      expect(seen.status).toBe(200);
      expect(seen.feedGap).toMatch(/^ERR_FEED_RETENTION_EXCEEDED\b/);
      expect(seen.feedGap).toContain(lastContact);
      // The contact is recorded: the next start after a short absence reports no new gap.
      const saved = JSON.parse(readFileSync(join(dataDir, 'feed-contact.json'), 'utf8')) as {
        lastContact: string;
      };
      expect(Date.parse(saved.lastContact)).toBeGreaterThan(Date.parse(lastContact));
      // Counted once, not at every contact.
      const later = await observe(gateway, lines);
      expect(later.gaps).toBe(1);
      expect(later.logged).toHaveLength(1);
    } finally {
      await gateway.close();
    }
  });

  it('back after less than feed.hubRetentionMs: no code, no count, no feedGap', async () => {
    const { gateway, lines } = await startAfterAbsence(HOUR / 2);
    try {
      const o = await eventually(
        async () => {
          const r = await observe(gateway, lines);
          return r.status === 200 ? r : undefined;
        },
        10_000,
        'ready',
      );
      expect(o.logged).toEqual([]);
      expect(o.gaps).toBe(0);
      expect(o.feedGap).toBeUndefined();
    } finally {
      await gateway.close();
    }
  });
});
