import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JetStreamManager } from '@nats-io/jetstream';
import { NOTICE_TOKEN, Streams, inboundStreamName } from '@alert-hub/core';
import { provisionHub } from '@alert-hub/runtime';
import {
  eventually,
  streamReplicasCurrent,
  startChaosHub,
  type ChaosHub,
} from '@alert-hub/testkit';

/**
 * Chaos on the hub's NATS cluster: three real nats-server processes with routes over mutual
 * TLS and every stream at R3, the router and three gateways as processes, alerts submitted
 * over HTTP the way an agency's systems do (retrying a refused submission with the same alert).
 */
const ORIGIN = 'SG-NPARKS';
const RECIPIENTS = ['VN-CUSTOMS', 'CN-GACC'] as const;
/** The origin's inbound stream, where the alerts of these tests are stored first. */
const INBOUND = inboundStreamName(ORIGIN);

/** Retention from the router's configuration (`streams.maxAgeMs`), applied by provisioning. */
const RETENTION_MS = 7 * 24 * 3600_000;
let chaos: ChaosHub;
let jsm: JetStreamManager;
const sent: string[] = [];

beforeAll(async () => {
  chaos = await startChaosHub({
    origin: ORIGIN,
    recipients: RECIPIENTS,
    env: process.env,
    clusterSize: 3,
    routerConfig: {
      consumer: { ackWaitMs: 3000, maxMessages: 64 },
      streams: { replicas: 3, maxAgeMs: RETENTION_MS },
    },
  });
  jsm = chaos.jsm;
}, 120_000);
afterAll(async () => {
  await chaos?.stop();
});

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

describe('hub cluster - chaos', () => {
  it('provisioning puts every stream at R3 across the three nodes, with the configured retention', async () => {
    const inbound = [ORIGIN, ...RECIPIENTS].map(inboundStreamName);
    for (const s of [...inbound, Streams.Feeds, Streams.DeadLetter])
      await eventually(() => streamReplicasCurrent(jsm, s), 30_000, `${s} at R3`);
    for (const s of [...inbound, Streams.Feeds])
      expect((await jsm.streams.info(s)).config.max_age).toBe(RETENTION_MS * 1_000_000);
  });

  it('kill -9 of the inbound stream leader while alerts flow: 0 lost, 0 duplicated, audit complete, the node catches up', async () => {
    const leader = (await jsm.streams.info(INBOUND)).cluster!.leader!;
    const victim = chaos.hub.cluster!.nodes.find((n) => n.dir.endsWith(leader))!;
    expect(victim).toBeDefined();
    let killed: Promise<void> | undefined;
    const ids = await chaos.submit(300, {
      retry503: true,
      onAccepted: (n) => {
        if (n === 60) killed = victim.kill();
      },
    });
    await killed;
    sent.push(...ids);
    await chaos.checkDeliveredOnce(sent);
    chaos.checkAuditComplete(sent);

    await victim.restart();
    for (const s of [INBOUND, Streams.Feeds])
      await eventually(() => streamReplicasCurrent(jsm, s), 60_000, `${s} caught up on ${leader}`);
    // The restarted node's own copy holds every message (its monitoring endpoint, asked alone):
    // at least up to the stream's last message now (receipts and notices may still arrive).
    const inbound = await jsm.streams.info(INBOUND);
    await eventually(
      async () =>
        ((await localLastSeq(victim.monitorUrl, INBOUND)) ?? -1) >= inbound.state.last_seq,
      60_000,
      `${leader}'s own copy of the inbound stream`,
    );
  }, 240_000);

  it('the whole cluster killed and restarted: nothing lost, and it routes again', async () => {
    // Alert copies on the feeds, without the hub's notices: those are delivered at least once
    // and may still be on their way (receipts of the last alerts) when the cluster is killed.
    const copies = async () => {
      const info = await jsm.streams.info(Streams.Feeds, {
        subjects_filter: `ahub.feed.*.*.${NOTICE_TOKEN}`,
      });
      const notices = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      return info.state.messages - notices;
    };
    const before = await copies();
    await chaos.hub.cluster!.restartAll();
    await eventually(() => streamReplicasCurrent(jsm, Streams.Feeds), 60_000, 'feeds back at R3');
    expect(await copies()).toBe(before);
    sent.push(...(await chaos.submit(50, { retry503: true })));
    await chaos.checkDeliveredOnce(sent);
    chaos.checkAuditComplete(sent);
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
    await eventually(() => streamReplicasCurrent(jsm, Streams.Feeds), 60_000, 'feeds back at R3');
    await eventually(() => streamReplicasCurrent(jsm, INBOUND), 60_000, 'inbound back at R3');
  }, 120_000);
});
