import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, feedConsumerName, feedSubject } from '@alert-hub/core';
import { READINESS_WITHHELD, isStreamFull, openDatabase } from '@alert-hub/runtime';
import {
  eventually,
  feedIds,
  feedMessages,
  routerDrained,
  seizureReport,
  spawnService,
  startSeizureHub,
  type LocalHub,
  type ServiceProcess,
  scrapeMetrics,
} from '@alert-hub/testkit';

/**
 * A full feed is one recipient's alarm, never everybody's stop: real nats-server (mutual TLS,
 * per-agency accounts), the router and three gateways as processes. Viet Nam's gateway is stopped
 * until its feed reaches its quota; then the feed stream itself is filled to its byte limit.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const QUOTA = 3;

let hub: LocalHub;
let nc: NatsConnection;
let jsm: JetStreamManager;
const restarted: Record<string, ServiceProcess> = {};

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: [NG, VN, KE],
    agreement: { id: 'NG-VN-KE', title: 'Nigeria, Viet Nam, Kenya' },
    routerConfig: {
      streams: {
        feedsMaxBytes: 1_048_576,
        recipientMaxCopies: QUOTA,
        heldRetryMs: 300,
        feedsRetention: 'interest',
      },
    },
  });
  nc = await hub.connectAs('HUB');
  jsm = await jetstreamManager(nc);
}, 120_000);

afterAll(async () => {
  for (const g of Object.values(restarted)) await g.stop();
  await hub?.stop();
});

const gw = (agency: string) => restarted[agency] ?? hub.gateways[agency]!;
const auth = () => ({ authorization: `Bearer ${hub.token}` });
const coordinator = () => ({ authorization: `Bearer ${hub.coordinatorToken}` });

async function send(): Promise<string> {
  const res = await fetch(`${gw(NG).url}/v1/alerts`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify(seizureReport(NG)),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const inboxIds = (agency: string) => feedIds(gw(agency).url, hub.token);

/** Waits until `agency`'s inbox holds every one of `ids`; returns the whole inbox. */
async function inboxHolding(agency: string, ids: readonly string[]): Promise<string[]> {
  return eventually(
    async () => {
      const inbox = await inboxIds(agency);
      return ids.every((id) => inbox.includes(id)) ? inbox : undefined;
    },
    60_000,
    `${agency}'s inbox to hold ${ids.length} alerts`,
  );
}

async function recipientStates(id: string): Promise<Record<string, string>> {
  const res = await fetch(`${gw(NG).url}/v1/alerts/${id}/status`, { headers: auth() });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { recipients: { recipient: string; state: string }[] };
  return Object.fromEntries(body.recipients.map((r) => [r.recipient, r.state]));
}

async function readyz(): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await fetch(`${hub.router.url}/readyz`, { headers: coordinator() });
  return {
    status: res.status,
    checks: ((await res.json()) as { checks: Record<string, string> }).checks,
  };
}

async function heldGauge(recipient: string): Promise<number> {
  const text = await scrapeMetrics(hub.router.url, hub.coordinatorToken);
  const m = new RegExp(
    `^ahub_router_held_copies\\{[^}]*recipient="${recipient}"[^}]*\\} (\\d+)$`,
    'm',
  ).exec(text);
  return m ? Number(m[1]) : 0;
}

/**
 * Audit events per (alert, recipient, event) for `ids`, from the router's database. A copy that
 * a routing decision put on its feed at once counts as `forwarded` (a route with a feed sequence);
 * a held copy's forward is its own `forwarded` entry, once it is sent.
 */
function auditCounts(ids: readonly string[]): Map<string, number> {
  const db = openDatabase(hub.auditDb, { readonly: true });
  try {
    const list = ids.map(() => '?').join(',');
    const rows = db
      .prepare(
        `SELECT alert_id AS id, recipient, event FROM audit WHERE alert_id IN (${list}) AND recipient IS NOT NULL
         UNION ALL
         SELECT a.alert_id AS id, r.recipient, 'forwarded' AS event FROM audit_routes r JOIN audit a ON a.seq = r.seq
          WHERE a.alert_id IN (${list}) AND a.event = 'routed' AND r.feed_seq IS NOT NULL`,
      )
      .all(...ids, ...ids) as { id: string; recipient: string; event: string }[];
    const counts = new Map<string, number>();
    for (const r of rows) {
      const k = `${r.id} ${r.recipient} ${r.event}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return counts;
  } finally {
    db.close();
  }
}

async function restart(agency: string): Promise<void> {
  restarted[agency] = await spawnService('gateway', join(hub.dir, `gateway-${agency}.yaml`), {
    env: process.env,
  });
}

describe('feeds - a full feed is one recipient’s alarm, never a global stop', () => {
  const first: string[] = [];

  it('the feed stream has interest retention: a copy leaves it once the recipient’s gateway stored it', async () => {
    const info = await jsm.streams.info(Streams.Feeds);
    expect(info.config.retention).toBe('interest');
    expect([info.config.deny_delete, info.config.deny_purge]).toEqual([true, true]);
    const id = await send();
    first.push(id);
    await inboxHolding(VN, [id]);
    await inboxHolding(KE, [id]);
    await eventually(
      async () => (await feedMessages(nc)).every((m) => !m.msgId.startsWith(id)),
      30_000,
      'both copies removed from the feed stream',
    );
  }, 60_000);

  it('a recipient at its quota: its copies are held (pending + alarm), the other recipient gets everything; once it reads, all arrive exactly once', async () => {
    await hub.gateways[VN]!.stop();
    const ids: string[] = [];
    for (let i = 0; i < QUOTA + 4; i++) ids.push(await send());
    // Kenya gets every alert while Viet Nam is away.
    await inboxHolding(KE, ids);
    // Viet Nam's feed holds its quota; the rest is held by the router, not retried for ever.
    await eventually(
      async () => {
        const c = await jsm.consumers.info(Streams.Feeds, feedConsumerName(VN));
        return c.num_pending + c.num_ack_pending === QUOTA && (await heldGauge(VN)) === 4;
      },
      30_000,
      'Viet Nam’s feed at its quota and 4 copies held',
    );
    const r = await readyz();
    expect(r.status).toBe(200);
    expect(r.checks['feeds']).toMatch(new RegExp(`^held: ${VN} 4 copies since `));
    expect(r.checks['routing']).toBe('ok');
    // Whose feed is full is the hub's to know: without a token, only that a check is not ok.
    const anonymous = await fetch(`${hub.router.url}/readyz`);
    expect(anonymous.status).toBe(200);
    const withheld = await anonymous.text();
    expect(withheld).not.toContain(VN);
    expect((JSON.parse(withheld) as { checks: Record<string, string> }).checks).toMatchObject({
      feeds: READINESS_WITHHELD,
      routing: 'ok',
      nats: 'connected',
    });
    // The sender sees Viet Nam pending for a held alert, Kenya delivered.
    const last = ids[ids.length - 1]!;
    await eventually(
      async () => {
        const s = await recipientStates(last);
        return s[KE] === 'delivered' && s[VN] === 'pending' ? s : undefined;
      },
      30_000,
      'Kenya delivered, Viet Nam pending',
    );
    const trace = (await (
      await fetch(`${hub.router.url}/v1/audit/trace/${last}`, { headers: coordinator() })
    ).json()) as { summary: { pendingFor: { recipient: string }[] } };
    expect(trace.summary.pendingFor.map((p) => p.recipient)).toEqual([VN]);

    await restart(VN);
    const inbox = await inboxHolding(VN, ids);
    expect(inbox.length).toBe(first.length + ids.length);
    expect(new Set(inbox).size).toBe(inbox.length);
    await eventually(async () => (await heldGauge(VN)) === 0, 30_000, 'nothing held');
    expect((await readyz()).checks['feeds']).toBe('ok');
    await eventually(
      async () => (await recipientStates(last))[VN] === 'delivered',
      30_000,
      'Viet Nam delivered',
    );
    // Audit: one forward per copy and recipient, nothing twice; a "held" entry for each copy
    // that waited (at least the 4 beyond the quota).
    const counts = auditCounts(ids);
    for (const id of ids) {
      expect(counts.get(`${id} ${KE} forwarded`)).toBe(1);
      expect(counts.get(`${id} ${VN} forwarded`)).toBe(1);
      expect(counts.get(`${id} ${VN} held`) ?? 0).toBeLessThanOrEqual(1);
    }
    expect(ids.filter((id) => counts.get(`${id} ${VN} held`) === 1).length).toBeGreaterThanOrEqual(
      4,
    );
    // Every copy was stored by its gateway, so the stream (interest retention) holds none of them.
    await eventually(
      async () => (await feedMessages(nc)).every((m) => !ids.some((id) => m.msgId.startsWith(id))),
      30_000,
      'the feed stream emptied of stored copies',
    );
  }, 180_000);

  it('the feed stream filled to its byte limit: copies are held, routing goes on, nothing is lost once space returns', async () => {
    // Kenya away, and its feed filled with filler up to the stream's limit (what a long absence
    // with large alerts would do).
    await gw(KE).stop();
    delete restarted[KE];
    const js = jetstream(nc);
    let filled = 0;
    // Each size until the stream refuses it: then not even a small copy fits.
    for (const size of [200_000, 50_000, 10_000, 2_000, 500, 100]) {
      for (let i = 0; i < 1000; i++) {
        try {
          await js.publish(feedSubject(KE, NG, 'seizure-report'), new Uint8Array(size));
          filled++;
        } catch (err) {
          if (!isStreamFull(err)) throw err;
          break;
        }
      }
    }
    expect(filled).toBeGreaterThan(0);
    const ids = [await send(), await send()];
    // The router stays ready, holds every copy (the stream refuses even Viet Nam's), and the
    // inbound alerts are acknowledged: nothing waits in front of the router.
    await eventually(async () => (await heldGauge(VN)) === 2, 30_000, 'Viet Nam’s copies held');
    expect((await readyz()).status).toBe(200);
    await routerDrained(nc);
    // Kenya's gateway returns, stores (quarantines) the filler and the stream empties.
    await restart(KE);
    await inboxHolding(VN, ids);
    await inboxHolding(KE, ids);
    await eventually(
      async () => (await heldGauge(VN)) + (await heldGauge(KE)) === 0,
      30_000,
      'nothing held',
    );
    const counts = auditCounts(ids);
    for (const id of ids)
      for (const r of [VN, KE]) {
        expect(counts.get(`${id} ${r} forwarded`)).toBe(1);
        expect(counts.get(`${id} ${r} held`)).toBe(1);
      }
    const all = await inboxIds(VN);
    expect(new Set(all).size).toBe(all.length);
  }, 180_000);
});
