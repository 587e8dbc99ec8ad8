import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ROUTER_CONSUMER, Streams } from '@alert-hub/core';
import { openDatabase, provisionHub } from '@alert-hub/runtime';
import {
  eventually,
  feedMessages,
  seizureReport,
  startLocalHub,
  type LocalHub,
} from '@alert-hub/testkit';

/**
 * Chaos on the hub's NATS cluster: three real nats-server processes with routes over mutual
 * TLS and every stream at R3, the router and three gateways as processes, alerts submitted
 * over HTTP the way an agency's systems do (retrying a refused submission with the same alert).
 */
const ORIGIN = 'SG-NPARKS';
const RECIPIENTS = ['VN-CUSTOMS', 'CN-GACC'] as const;
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

/** Retention from the router's configuration (`streams.maxAgeMs`), applied by provisioning. */
const RETENTION_MS = 7 * 24 * 3600_000;
let hub: LocalHub;
let nc: NatsConnection;
let jsm: JetStreamManager;
const sent: string[] = [];

beforeAll(async () => {
  hub = await startLocalHub({
    agencies: [ORIGIN, ...RECIPIENTS].map((id) => ({ id, name: id })),
    agreements: AGREEMENTS,
    env: process.env,
    clusterSize: 3,
    routerConfig: {
      consumer: { ackWaitMs: 3000, maxMessages: 64 },
      streams: { replicas: 3, maxAgeMs: RETENTION_MS },
    },
  });
  nc = await hub.connectAs('HUB');
  jsm = await jetstreamManager(nc, { timeout: 10_000 });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await hub?.stop();
});

/** Submits `n` alerts through the origin's gateway, 4 at a time, each retried until it gets its 202. */
async function submit(n: number, onAccepted?: (count: number) => void): Promise<string[]> {
  const alerts = Array.from({ length: n }, () => seizureReport(ORIGIN));
  let next = 0;
  let accepted = 0;
  const refusals: number[] = [];
  const worker = async () => {
    for (let a = alerts[next++]; a; a = alerts[next++]) {
      for (let attempt = 0; ; attempt++) {
        const res = await fetch(`${hub.gateways[ORIGIN]!.url}/v1/alerts`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` },
          body: JSON.stringify(a),
        }).catch(() => undefined);
        if (res?.status === 202) break;
        refusals.push(res?.status ?? 0);
        // Only "try again later" is acceptable while a node is down.
        expect(res?.status).toBe(503);
        if (attempt > 100) throw new Error(`alert ${a.id} was never accepted`);
        await new Promise((r) => setTimeout(r, 250));
      }
      onAccepted?.(++accepted);
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

/** The last sequence of `stream` in the copy held by the node behind `monitorUrl`. */
async function localLastSeq(monitorUrl: string, stream: string): Promise<number | undefined> {
  const res = await fetch(`${monitorUrl}/jsz?accounts=true&streams=true`);
  const jsz = (await res.json()) as {
    account_details?: { stream_detail?: { name: string; state: { last_seq: number } }[] }[];
  };
  for (const a of jsz.account_details ?? [])
    for (const s of a.stream_detail ?? []) if (s.name === stream) return s.state.last_seq;
  return undefined;
}

async function streamReplicasCurrent(name: string): Promise<boolean> {
  const info = await jsm.streams.info(name);
  const replicas = info.cluster?.replicas ?? [];
  return (
    info.config.num_replicas === 3 &&
    info.cluster?.leader !== undefined &&
    replicas.length === 2 &&
    replicas.every((r) => r.current && !r.offline)
  );
}

describe('hub cluster - chaos', () => {
  it('provisioning puts every stream at R3 across the three nodes, with the configured retention', async () => {
    for (const s of [Streams.Inbound, Streams.Feeds, Streams.DeadLetter])
      await eventually(() => streamReplicasCurrent(s), 30_000, `${s} at R3`);
    for (const s of [Streams.Inbound, Streams.Feeds])
      expect((await jsm.streams.info(s)).config.max_age).toBe(RETENTION_MS * 1_000_000);
  });

  it('kill -9 of the inbound stream leader while alerts flow: 0 lost, 0 duplicated, audit complete, the node catches up', async () => {
    const leader = (await jsm.streams.info(Streams.Inbound)).cluster!.leader!;
    const victim = hub.cluster!.nodes.find((n) => n.dir.endsWith(leader))!;
    expect(victim).toBeDefined();
    let killed: Promise<void> | undefined;
    const ids = await submit(300, (n) => {
      if (n === 60) killed = victim.kill();
    });
    await killed;
    sent.push(...ids);
    await expectDeliveredOnce(sent);
    expectAuditComplete(sent);

    await victim.restart();
    for (const s of [Streams.Inbound, Streams.Feeds])
      await eventually(() => streamReplicasCurrent(s), 60_000, `${s} caught up on ${leader}`);
    // The restarted node's own copy holds every message (its monitoring endpoint, asked alone).
    const inbound = await jsm.streams.info(Streams.Inbound);
    await eventually(
      async () =>
        (await localLastSeq(victim.monitorUrl, Streams.Inbound)) === inbound.state.last_seq,
      60_000,
      `${leader}'s own copy of the inbound stream`,
    );
  }, 240_000);

  it('the whole cluster killed and restarted: nothing lost, and it routes again', async () => {
    const before = await jsm.streams.info(Streams.Feeds);
    await hub.cluster!.restartAll();
    await eventually(() => streamReplicasCurrent(Streams.Feeds), 60_000, 'feeds back at R3');
    const after = await jsm.streams.info(Streams.Feeds);
    expect(after.state.messages).toBe(before.state.messages);
    expect(after.state.last_seq).toBe(before.state.last_seq);
    sent.push(...(await submit(50)));
    await expectDeliveredOnce(sent);
    expectAuditComplete(sent);
  }, 240_000);

  it('provisioning moves existing streams to the configured replicas, down and back up', async () => {
    const agencies = [ORIGIN, ...RECIPIENTS];
    await provisionHub(jsm, agencies, { limits: { replicas: 1, maxAgeMs: RETENTION_MS } });
    expect((await jsm.streams.info(Streams.Feeds)).config.num_replicas).toBe(1);
    // The nodes release the storage reserved for the removed copies asynchronously: until then
    // nats-server refuses the placement ("insufficient storage"), and provisioning is retried.
    await eventually(
      () =>
        provisionHub(jsm, agencies, { limits: { replicas: 3, maxAgeMs: RETENTION_MS } }).then(
          () => true,
        ),
      60_000,
      'provisioning at R3 again',
    );
    await eventually(() => streamReplicasCurrent(Streams.Feeds), 60_000, 'feeds back at R3');
    await eventually(() => streamReplicasCurrent(Streams.Inbound), 60_000, 'inbound back at R3');
  }, 120_000);
});
