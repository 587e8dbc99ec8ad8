import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  newAlertId,
  openNotice,
  type NoticeEvent,
} from '@alert-hub/core';
import { openDatabase, provisionHub } from '@alert-hub/runtime';
import { loadTrustStore } from '@alert-hub/runtime/files';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { eventually, feedMessages, makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { createRouterMetrics } from '../src/metrics.js';
import { Notifier } from '../src/notifier.js';
import { NOTICE_EVENTS_COUNTED, RouterStore } from '../src/store.js';

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);

/** A routed event as big as an operation-wide alert's: many recipients, long refusal reasons. */
function bigEvent(): NoticeEvent {
  return {
    event: 'routed',
    alertId: newAlertId(),
    at: '2026-11-29T05:50:57.380Z',
    recipients: Array.from({ length: 20 }, (_, r) => `KE-AGENCY${r}`),
    denied: Array.from({ length: 10 }, (_, r) => ({
      recipient: `TH-OTHER${r}`,
      code: 'ERR_NO_AGREEMENT',
      reason: 'no agreement of the sender with this agency covers this alert type '.repeat(2),
    })),
  };
}

describe('router notifier', () => {
  it('splits a large outbox into notices that each fit the hub envelope limit, and loses none', async () => {
    const nc = await nats.connect();
    await provisionHub(await jetstreamManager(nc), AGENCIES);
    const store = new RouterStore(openDatabase(join(fx.dir, 'router.db')), 'test');
    // 3,000 events of ~1.5 KB for one agency: 4.5 MB, far over one message.
    const insert = store.db.prepare('INSERT INTO outbox (agency, event) VALUES (?, ?)');
    for (let i = 0; i < 3000; i++) insert.run('SG-NPARKS', JSON.stringify(bigEvent()));
    const { log, lines } = memoryLogger('notifier-test');
    const notifier = new Notifier({
      js: jetstream(nc),
      store,
      hubKey: () => fx.hubKey,
      metrics: createRouterMetrics('test'),
      log,
      publishTimeoutMs: 10_000,
      instance: 'test',
    });
    notifier.kick();
    await eventually(() => expect(store.outbox(10)).toHaveLength(0), 60_000);
    await notifier.stop();

    const notices = await feedMessages(nc, { notices: true });
    expect(notices.length).toBeGreaterThan(1);
    const trust = loadTrustStore(fx.trustDir, fx.registry);
    const seen = new Set<string>();
    for (const m of notices) {
      expect(m.data.byteLength).toBeLessThanOrEqual(DEFAULT_MAX_ENVELOPE_BYTES);
      const opened = await openNotice(m.data, m.subject, {
        trust,
        registry: fx.registry,
        recipient: 'SG-NPARKS',
      });
      if (!opened.ok) throw new Error(JSON.stringify(opened));
      if (opened.ok) for (const e of opened.notice.events) if (e.alertId) seen.add(e.alertId);
    }
    expect(seen.size).toBe(3000);
    expect(lines.filter((l) => l.includes('sending notices failed'))).toEqual([]);
  }, 120_000);

  it('the outbox is read agency by agency: an agency whose notices wait, however many, is skipped, the others come oldest first', () => {
    const store = new RouterStore(openDatabase(join(fx.dir, 'outbox.db')), 'test');
    const insert = store.db.prepare('INSERT INTO outbox (agency, event) VALUES (?, ?)');
    const event = (n: number) => JSON.stringify({ ...bigEvent(), alertId: `a${n}` });
    store.db.transaction(() => {
      for (let i = 0; i < 20_000; i++) insert.run('SG-NPARKS', event(i));
      for (let i = 0; i < 3; i++) insert.run('VN-CUSTOMS', event(i));
    })();
    const rows = store.outbox(10, new Set(['SG-NPARKS']));
    expect(rows.map((r) => [r.agency, r.event.alertId])).toEqual([
      ['VN-CUSTOMS', 'a0'],
      ['VN-CUSTOMS', 'a1'],
      ['VN-CUSTOMS', 'a2'],
    ]);
    expect(store.outbox(5).map((r) => r.agency)).toEqual(Array(5).fill('SG-NPARKS'));
    expect(store.outbox(20_001).length).toBe(20_001);
    expect(
      (
        store.db
          .prepare(
            "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE agency = 'VN-CUSTOMS' ORDER BY id",
          )
          .all() as { detail: string }[]
      )
        .map((r) => r.detail)
        .join(' '),
    ).toContain('outbox_agency');
  });
  it('the events waiting for an agency are counted up to NOTICE_EVENTS_COUNTED: /readyz and every scrape ask, and millions may wait', () => {
    const store = new RouterStore(openDatabase(join(fx.dir, 'outbox-count.db')), 'test');
    const insert = store.db.prepare('INSERT INTO outbox (agency, event) VALUES (?, ?)');
    store.db.transaction(() => {
      for (let i = 0; i < NOTICE_EVENTS_COUNTED + 500; i++) insert.run('SG-NPARKS', '{}');
      for (let i = 0; i < 3; i++) insert.run('VN-CUSTOMS', '{}');
    })();
    expect(store.outboxCount('SG-NPARKS')).toBe(NOTICE_EVENTS_COUNTED);
    expect(store.outboxCount('VN-CUSTOMS')).toBe(3);
    expect(store.outboxCount('NG-NCS')).toBe(0);
  });
});
