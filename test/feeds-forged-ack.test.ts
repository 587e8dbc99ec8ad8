import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { AGENCY_JS_API_PREFIX, Streams, feedConsumerName } from '@alert-hub/core';
import {
  eventually,
  feedMessages,
  seizureReport,
  startSeizureHub,
  type LocalHub,
} from '@alert-hub/testkit';

/**
 * The attack of a work-queue feed stream, replayed against the interest retention that replaced
 * it: real nats-server (mutual TLS, one account per agency), the router and Singapore's gateway
 * as processes. Kenya's gateway is not running, so its copies wait in the feed stream; Viet Nam,
 * with its own NATS credentials, acknowledges every stream sequence through its own consumer's
 * ack subject (which its account may publish). On nats-server 2.9.10 a work queue removed every
 * one of Kenya's copies that way; with interest retention they stay until Kenya acknowledges them.
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const SENT = 3;

let hub: LocalHub;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: [SG, VN, KE],
    agreement: { id: 'SG-VN-KE', title: 'Singapore, Viet Nam, Kenya' },
    gateways: [SG],
    routerConfig: { streams: { feedsRetention: 'interest' } },
  });
  nc = await hub.connectAs('HUB');
  jsm = await jetstreamManager(nc);
}, 120_000);

afterAll(async () => {
  await hub?.stop();
});

const copiesFor = async (agency: string) =>
  (await feedMessages(nc)).filter((m) => m.subject.startsWith(`ahub.feed.${agency}.`));

describe('feeds - forged acknowledgements', () => {
  it('an agency acking every stream sequence through its own consumer removes no other agency’s copy; the recipient’s own ack does', async () => {
    expect((await jsm.streams.info(Streams.Feeds)).config.retention).toBe('interest');
    for (let i = 0; i < SENT; i++) {
      const res = await fetch(`${hub.gateways[SG]!.url}/v1/alerts`, {
        method: 'POST',
        headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(seizureReport(SG)),
      });
      expect(res.status).toBe(202);
    }
    await eventually(
      async () => (await copiesFor(KE)).length === SENT && (await copiesFor(VN)).length === SENT,
      30_000,
      'a copy of each alert for Kenya and for Viet Nam',
    );
    const before = (await copiesFor(KE)).map((m) => m.seq);
    // Kenya has taken one copy and not acknowledged it yet (its gateway storing it): delivered,
    // pending its ack. The others have not been delivered at all.
    const keNc = await hub.connectAs(KE);
    const consumer = await jetstream(keNc, { apiPrefix: AGENCY_JS_API_PREFIX }).consumers.get(
      Streams.Feeds,
      feedConsumerName(KE),
    );
    const held = await consumer.next({ expires: 5000 });
    expect(held?.subject).toMatch(/^ahub\.feed\.KE-KWS\.SG-NPARKS\./);

    // Viet Nam forges acks: every sequence so far and some to come, with several delivery
    // sequences (nats-server moves a consumer's ack floor when one equals the floor plus one).
    const vn = await hub.connectAs(VN);
    const last = (await jsm.streams.info(Streams.Feeds)).state.last_seq;
    for (let seq = 1; seq <= last + 20; seq++)
      for (const dseq of [1, seq])
        vn.publish(`$JS.ACK.${Streams.Feeds}.${feedConsumerName(VN)}.1.${seq}.${dseq}.0.0`, '+ACK');
    await vn.flush();
    // A round trip through the hub's account after the acks: JetStream has handled them.
    const vnJsm = await jetstreamManager(vn, { checkAPI: false, apiPrefix: AGENCY_JS_API_PREFIX });
    await vnJsm.consumers.info(Streams.Feeds, feedConsumerName(VN));

    expect((await copiesFor(KE)).map((m) => m.seq)).toEqual(before);
    const ke = await jsm.consumers.info(Streams.Feeds, feedConsumerName(KE));
    expect([ke.num_ack_pending, ke.num_pending]).toEqual([1, SENT - 1]);
    // Further alerts still reach Kenya's feed (the forged future sequences removed nothing).
    await fetch(`${hub.gateways[SG]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
      body: JSON.stringify(seizureReport(SG)),
    });
    await eventually(
      async () => (await copiesFor(KE)).length === SENT + 1,
      30_000,
      'the next copy for Kenya kept',
    );
    await vn.close();

    // Kenya reads its own feed with its own credentials and acknowledges: its copies leave the
    // stream, as they do when its gateway has stored them.
    await held!.ackAck();
    const got: string[] = [held!.subject];
    while (got.length < SENT + 1) {
      const m = await consumer.next({ expires: 5000 });
      if (!m) break;
      if (m.subject.endsWith('.notice')) {
        await m.ackAck();
        continue;
      }
      got.push(m.subject);
      await m.ackAck();
    }
    expect(got).toHaveLength(SENT + 1);
    await eventually(
      async () => (await copiesFor(KE)).length === 0,
      30_000,
      'Kenya’s acknowledged copies removed',
    );
    await keNc.close();
  }, 120_000);
});
