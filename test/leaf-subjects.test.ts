import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  AGENCY_JS_API_PREFIX,
  LEAF_OUTBOX_CONSUMER,
  ROUTER_CONSUMER,
  Streams,
  auditCosignatureSubject,
  auditProofSubject,
  feedConsumerName,
  inboundStreamName,
  inboundSubject,
  leafJsApiPrefix,
  outboxStreamName,
} from '@alert-hub/core';
import { devPkiPaths } from '@alert-hub/operator';
import {
  LOCAL_ROUTER,
  eventually,
  seizureReport,
  startLocalHub,
  type LocalHub,
  scrapeMetrics,
} from '@alert-hub/testkit';
import { fakeLeaf } from './support/fake-leaf.js';

/**
 * An agency that runs a leaf node holds the leaf's certificate, and may run any software with it
 * instead of nats-server. Such software answers the routers' pull of its outbox as it likes:
 * another agency's subject, another outbox's ack, the hub's API as reply, JetStream's control
 * messages.
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
let hub: LocalHub;

beforeAll(async () => {
  hub = await startLocalHub({
    env: process.env,
    agencies: [SG, VN].map((id) => ({ id, name: id })),
    agreements: {
      agreements: [
        {
          id: 'SG-VN',
          version: 1,
          title: 'Singapore and Viet Nam',
          parties: ['SG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    },
    leaves: [SG],
  });
}, 120_000);
afterAll(async () => {
  await hub?.stop();
});

/** A leaf written by hand with Singapore's leaf certificate, on the hub's leaf listener. */
async function ownLeaf() {
  const cert = devPkiPaths(join(hub.certsDir, 'dev'), `${SG}.leaf`);
  return fakeLeaf({
    port: hub.leaves[SG]!.links[0]!.port,
    caFile: cert.caFile,
    certFile: cert.certFile,
    keyFile: cert.keyFile,
    account: SG,
  });
}

/** A counter of the router's, summed over the lines that hold every one of `labels`. */
async function routerMetric(name: string, ...labels: string[]): Promise<number> {
  const text = await scrapeMetrics(hub.router.url, hub.coordinatorToken);
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && labels.every((x) => l.includes(x)))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/**
 * A leaf of its own that has seen the routers' pull of its outbox (they ask every few seconds):
 * the reply subject of that request is where the hub takes its answers from.
 */
async function leafWithPull() {
  const leaf = await ownLeaf();
  leaf.subscribe(`${leafJsApiPrefix(SG)}.>`);
  const next = `${leafJsApiPrefix(SG)}.CONSUMER.MSG.NEXT.${outboxStreamName(SG)}.${LEAF_OUTBOX_CONSUMER}`;
  const pull = await eventually(
    () => leaf.requests().findLast((r) => r.subject === next),
    30_000,
    'a pull of the outbox',
  );
  return { leaf, pull: pull.reply };
}

/** Deliveries from Singapore's leaf the router refused, for `why`. */
const refusedFromSg = (why: 'reply' | 'subject') =>
  routerMetric('ahub_router_leaf_outbox_refused_total', `agency="${SG}"`, `why="${why}"`);

const junk = new TextEncoder().encode('junk');
const ack = (outbox: string, seq: number) =>
  `$JS.ACK.${outbox}.${LEAF_OUTBOX_CONSUMER}.1.${seq}.${seq}.${Date.now()}000000.0`;

describe('an agency’s own leaf software', () => {
  it('a delivery it forges under another agency’s subject, or acked on another outbox, is not taken: stored nowhere, nobody told, counted by the router', async () => {
    const token = { authorization: `Bearer ${hub.token}` };
    // An alert through the leaf, as the agency's gateway sends it: taken into the hub.
    const res = await fetch(`${hub.gateways[SG]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { ...token, 'content-type': 'application/json' },
      body: JSON.stringify(seizureReport(SG)),
    });
    expect(res.status).toBe(202);
    const router = await hub.connectAs(LOCAL_ROUTER);
    const jsm = await jetstreamManager(router);
    const held = async (agency: string) =>
      (await jsm.streams.info(inboundStreamName(agency))).state.messages;
    await eventually(async () => ((await held(SG)) === 1 ? true : undefined), 30_000, 'the alert');

    const { leaf, pull } = await leafWithPull();
    try {
      // The original subject of a JetStream delivery travels after "@" in the reply, which the
      // leaf writes: here Viet Nam's.
      leaf.publish(
        pull,
        `${ack(outboxStreamName(SG), 900)}@${inboundSubject(VN, 'seizure-report')}`,
        { 'Nats-Msg-Id': 'not-an-alert' },
        junk,
      );
      // Its own subject, with the ack of another agency's outbox: acked, the hub would never take
      // that agency's message.
      leaf.publish(
        pull,
        `${ack(outboxStreamName(VN), 901)}@${inboundSubject(SG, 'seizure-report')}`,
        { 'Nats-Msg-Id': 'not-an-alert-either' },
        junk,
      );
      await eventually(
        async () =>
          (await refusedFromSg('subject')) >= 1 && (await refusedFromSg('reply')) >= 1
            ? true
            : undefined,
        30_000,
        'both refused',
      );
      expect(await held(SG)).toBe(1);
      // (Viet Nam's stream holds its receipt of the alert, nothing under the forged subject.)
      expect(
        (await jsm.streams.info(inboundStreamName(VN), { subjects_filter: '>' })).state.subjects,
      ).not.toHaveProperty(inboundSubject(VN, 'seizure-report'));
      expect((await jsm.streams.info(Streams.DeadLetter)).state.messages).toBe(0);
      const refusals = async (agency: string) =>
        (
          (await (
            await fetch(`${hub.gateways[agency]!.url}/v1/refusals`, { headers: token })
          ).json()) as { items: { code: string }[] }
        ).items.map((i) => i.code);
      expect(await refusals(SG)).toEqual([]);
      expect(await refusals(VN)).toEqual([]);
    } finally {
      leaf.close();
      await router.close();
    }
  }, 120_000);

  it('flow control and heartbeats it forges are answered by nobody: no stream of the hub deleted (a stream sourcing the leaf answered them from inside the hub’s account)', async () => {
    const { leaf, pull } = await leafWithPull();
    const router = await hub.connectAs(LOCAL_ROUTER);
    try {
      const jsm = await jetstreamManager(router);
      const streams = async () => (await jsm.streams.names().next()).sort();
      const before = await streams();
      expect(before).toContain(Streams.DeadLetter);
      const refusedBefore = await refusedFromSg('reply');
      const deleteDeadLetters = `$JS.API.STREAM.DELETE.${Streams.DeadLetter}`;
      const nothing = new Uint8Array();
      // The recipe that deleted a stream when the hub's stream sourced the outbox, on the deliver
      // subject of every consumer of the outbox (the source's then: its operators list them on
      // their leaf), and on the routers' pull now: flow control asking for a reply...
      const ops = await hub.leaves[SG]!.connectAsOperator();
      const delivers: string[] = [];
      for await (const c of (await jetstreamManager(ops)).consumers.list(outboxStreamName(SG)))
        if (c.config.deliver_subject) delivers.push(c.config.deliver_subject);
      await ops.close();
      for (const subject of [pull, ...delivers]) {
        leaf.publish(subject, deleteDeadLetters, {}, nothing, '100 FlowControl Request');
        // ... and a heartbeat saying where the stalled consumer waits for one.
        leaf.publish(
          subject,
          '',
          { 'Nats-Consumer-Stalled': deleteDeadLetters },
          nothing,
          '100 Idle Heartbeat',
        );
      }
      // A delivery whose reply is the hub's API: an ack sent there would delete the stream.
      leaf.publish(pull, deleteDeadLetters, {}, junk);
      // One whose reply is the ack of the routers' own consumer of Viet Nam's stream: acked, Viet
      // Nam's alert there would never be routed.
      leaf.publish(
        pull,
        `$JS.ACK.${inboundStreamName(VN)}.${ROUTER_CONSUMER}.1.1.1.${Date.now()}000000.0@${inboundSubject(SG, 'seizure-report')}`,
        {},
        junk,
      );
      await eventually(
        async () => (await refusedFromSg('reply')) > refusedBefore || undefined,
        30_000,
        'the delivery refused',
      );
      await new Promise((r) => setTimeout(r, 2000));
      expect(await streams()).toEqual(before);
    } finally {
      leaf.close();
      await router.close();
    }
  }, 120_000);

  it('nothing else it sends reaches the hub: not the JetStream API (a stream deleted before), not the audit’s cosignature and proof subjects under another agency’s name', async () => {
    const leaf = await ownLeaf();
    const router = await hub.connectAs(LOCAL_ROUTER);
    try {
      const jsm = await jetstreamManager(router);
      const streams = async () => (await jsm.streams.names().next()).sort();
      const before = await streams();
      expect(before).toContain(Streams.DeadLetter);
      // What the stream holds as Viet Nam's cosignature (its witness writes its own meanwhile).
      const vnCosignature = async () =>
        jsm.streams
          .getMessage(Streams.AuditCosignatures, {
            last_by_subj: auditCosignatureSubject('hub', VN),
          })
          .then(
            (m) => m?.string(),
            () => undefined,
          );
      const lmsgs = () => leaf.received.join('').match(/^LMSG /gm)?.length ?? 0;
      const seen = lmsgs();
      const nothing = new Uint8Array();
      // Through the subject of its gateway's feed-consumer INFO, a request of the hub's
      // JetStream API under the subject after "@" (nats-server 2.9 dispatches it by that subject,
      // in the hub's account): this deleted the dead-letter stream when the leaf landed in its
      // agency's account.
      leaf.publish(
        `${AGENCY_JS_API_PREFIX}.CONSUMER.INFO.${Streams.Feeds}.${feedConsumerName(SG)}`,
        `$JS.ACK.X.Y.1.1.1.1.0@$JS.API.STREAM.DELETE.${Streams.DeadLetter}`,
        {},
        nothing,
      );
      // A proof request and a cosignature under Viet Nam's name.
      leaf.publish(
        auditProofSubject('hub', SG),
        `$JS.ACK.X.Y.1.1.1.1.0@${auditProofSubject('hub', VN)}`,
        {},
        new TextEncoder().encode('{"alertId":"0169fb6c-1a80-7000-8000-000000000001"}'),
      );
      leaf.publish(
        auditCosignatureSubject('hub', SG),
        `$JS.ACK.X.Y.1.1.1.1.0@${auditCosignatureSubject('hub', VN)}`,
        {},
        new TextEncoder().encode('not a cosignature'),
      );
      await new Promise((r) => setTimeout(r, 2000));
      expect(await streams()).toEqual(before);
      expect(await vnCosignature()).not.toBe('not a cosignature');
      // Nothing came back to the leaf.
      expect(lmsgs()).toBe(seen);
    } finally {
      leaf.close();
      await router.close();
    }
  }, 120_000);
});
