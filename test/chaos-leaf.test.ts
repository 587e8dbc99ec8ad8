import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ROUTER_CONSUMER, Streams, outboxStreamName } from '@alert-hub/core';
import { openDatabase } from '@alert-hub/runtime';
import {
  eventually,
  hubctl,
  feedMessages,
  seizureReport,
  startLocalHub,
  type LocalHub,
} from '@alert-hub/testkit';

/**
 * Store and forward across an agency's leaf node: the origin (Singapore) and one partner (Viet
 * Nam) each run their own nats-server as a leaf node of the hub, in their own JetStream domain,
 * bound to their own account; the other partner (China) connects to the hub directly. The test
 * cuts both leaf links with TCP proxies it controls, as a line that goes down.
 */
const ORIGIN = 'SG-NPARKS';
const LEAF_PARTNER = 'VN-CUSTOMS';
const RECIPIENTS = [LEAF_PARTNER, 'CN-GACC'] as const;
const CUT_MS = 20_000;
const AGREEMENTS = {
  agreements: [
    {
      id: 'WEN-ASIA',
      version: 1,
      title: 'Asia',
      parties: ['SG', 'VN', 'CN'],
      alertTypes: ['seizure-report'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
  ],
};

let hub: LocalHub;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  hub = await startLocalHub({
    agencies: [ORIGIN, ...RECIPIENTS].map((id) => ({ id, name: id })),
    agreements: AGREEMENTS,
    env: process.env,
    leaves: [ORIGIN, LEAF_PARTNER],
    routerConfig: { consumer: { ackWaitMs: 3000, maxMessages: 64 } },
  });
  nc = await hub.connectAs('HUB');
  jsm = await jetstreamManager(nc, { timeout: 10_000 });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await hub?.stop();
});

/** Submits `n` alerts through the origin's gateway, 4 at a time; every one must get its 202 at once. */
async function submit(n: number): Promise<string[]> {
  const alerts = Array.from({ length: n }, () => seizureReport(ORIGIN));
  let next = 0;
  const worker = async () => {
    for (let a = alerts[next++]; a; a = alerts[next++]) {
      const res = await fetch(`${hub.gateways[ORIGIN]!.url}/v1/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` },
        body: JSON.stringify(a),
      });
      expect(res.status).toBe(202);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return alerts.map((a) => a.id);
}
async function inboxIds(agency: string): Promise<string[]> {
  const ids: string[] = [];
  let after = '0';
  for (;;) {
    const res = await fetch(`${hub.gateways[agency]!.url}/v1/feed?after=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${hub.token}` },
    });
    const page = (await res.json()) as { items: { id: string }[]; next: string; hasMore: boolean };
    ids.push(...page.items.map((i) => i.id));
    after = page.next;
    if (!page.hasMore) return ids;
  }
}

/** Every partner's inbox holds exactly the alerts sent, each once; so does the feeds stream. */
async function expectDeliveredOnce(ids: readonly string[]): Promise<void> {
  for (const agency of RECIPIENTS) {
    const got = await eventually(
      async () => {
        const inbox = await inboxIds(agency);
        return inbox.length >= ids.length ? inbox : undefined;
      },
      90_000,
      `${agency}'s inbox to hold ${ids.length} alerts`,
    );
    expect(got.length).toBe(ids.length);
    expect(new Set(got)).toEqual(new Set(ids));
  }
  await eventually(
    async () => {
      const c = await jsm.consumers.info(Streams.Inbound, ROUTER_CONSUMER);
      return c.num_pending === 0 && c.num_ack_pending === 0;
    },
    60_000,
    'the router to drain the inbound stream',
  );
  const feeds = (await feedMessages(nc)).map((m) => m.msgId);
  expect(feeds.length).toBe(ids.length * RECIPIENTS.length);
  expect(new Set(feeds).size).toBe(feeds.length);
}

/** The audit log: one "received" and one "forwarded" per recipient for every alert, no more. */
function expectAuditComplete(ids: readonly string[]): void {
  const db = openDatabase(hub.auditDb, { readonly: true });
  try {
    const rows = db
      .prepare(
        "SELECT alert_id, sum(event = 'received') AS r, sum(event = 'forwarded') AS f FROM audit WHERE alert_id IS NOT NULL GROUP BY alert_id",
      )
      .all() as { alert_id: string; r: number; f: number }[];
    const byId = new Map(rows.map((r) => [r.alert_id, r]));
    for (const id of ids) {
      expect(byId.get(id)?.r, `received ${id}`).toBe(1);
      expect(byId.get(id)?.f, `forwarded ${id}`).toBe(RECIPIENTS.length);
    }
    expect(rows.length).toBe(ids.length);
  } finally {
    db.close();
  }
}

/** The origin's messages in the hub's inbound stream (partners publish there too: receipts). */
async function originAtHub(): Promise<number> {
  const info = await jsm.streams.info(Streams.Inbound, { subjects_filter: `ahub.in.${ORIGIN}.>` });
  return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0);
}

async function outboxCount(): Promise<number> {
  const leaf = await hub.leaves[ORIGIN]!.connectAsOperator();
  try {
    return (await (await jetstreamManager(leaf)).streams.info(outboxStreamName(ORIGIN))).state
      .messages;
  } finally {
    await leaf.close();
  }
}

describe('leaf node - store and forward', () => {
  const sent: string[] = [];

  it('alerts go through the leaf: stored in its outbox, sourced by the hub, delivered once', async () => {
    sent.push(...(await submit(20)));
    await expectDeliveredOnce(sent);
    expect(await outboxCount()).toBe(20);
    expectAuditComplete(sent);
  }, 120_000);

  it('link cut for 20 s: the gateway keeps answering 202, alerts queue on the leaf, then each is delivered once', async () => {
    const cutAt = Date.now();
    hub.leaves[ORIGIN]!.cut();
    hub.leaves[LEAF_PARTNER]!.cut();
    const during = await submit(40);
    sent.push(...during);
    // Stored at the agency, not at the hub.
    expect(await outboxCount()).toBe(sent.length);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await originAtHub()).toBe(sent.length - during.length);
    await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (Date.now() - cutAt))));
    hub.leaves[ORIGIN]!.restore();
    hub.leaves[LEAF_PARTNER]!.restore();
    await expectDeliveredOnce(sent);
    expect(await originAtHub()).toBe(sent.length);
    expectAuditComplete(sent);
  }, 240_000);

  it("hubctl leaf provision sets the outbox's retention on the agency's leaf, as its operators", async () => {
    const r = await hubctl([
      'leaf',
      'provision',
      '--agency',
      ORIGIN,
      '--server',
      hub.leaves[ORIGIN]!.nats.url,
      '--certs',
      hub.certsDir,
      '--max-age-ms',
      String(14 * 24 * 3600_000),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stream: outboxStreamName(ORIGIN),
      subjects: [`ahub.in.${ORIGIN}.>`],
      maxAgeMs: 14 * 24 * 3600_000,
    });
    // The alerts it held are still there.
    expect(await outboxCount()).toBe(sent.length);
  }, 60_000);
});
