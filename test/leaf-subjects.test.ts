import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/transport-node';
import {
  AGENCY_JS_API_PREFIX,
  Streams,
  auditCosignatureSubject,
  auditProofSubject,
  feedConsumerName,
  inboundStreamName,
  outboxStreamName,
} from '@alert-hub/core';
import { devPkiPaths } from '@alert-hub/operator';
import {
  LOCAL_ROUTER,
  eventually,
  seizureReport,
  startLocalHub,
  type LocalHub,
} from '@alert-hub/testkit';
import { fakeLeaf } from './support/fake-leaf.js';

/**
 * An agency that runs a leaf node holds the leaf's certificate, and may run any software with it
 * instead of nats-server. The hub's stream that sources the leaf's outbox stores the subject the
 * leaf delivers, which such software chooses: here another agency's inbound subject.
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

describe('an agency’s own leaf software', () => {
  it('a message its leaf delivers under another agency’s subject is refused as its own: its dead letter, its notice, its audit entry', async () => {
    const token = { authorization: `Bearer ${hub.token}` };
    // The source consumer the hub made on the leaf, as the agency's operators see it there.
    const ops = await hub.leaves[SG]!.connectAsOperator();
    const outbox = outboxStreamName(SG);
    let delivered: Msg | undefined;
    let heartbeat: Msg | undefined;
    ops.subscribe(`ahub.leafsrc.${SG}.>`, {
      callback: (_e, m) => {
        if (m.reply?.startsWith(`$JS.ACK.${outbox}.`)) delivered = m;
        else heartbeat = m;
      },
    });
    const res = await fetch(`${hub.gateways[SG]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { ...token, 'content-type': 'application/json' },
      body: JSON.stringify(seizureReport(SG)),
    });
    expect(res.status).toBe(202);
    await eventually(() => (delivered && heartbeat ? true : undefined), 30_000, 'the source');
    // $JS.ACK.<stream>.<consumer>.<deliveries>.<stream seq>.<consumer seq>.<time>.<pending>
    const t = delivered!.reply!.split('.');
    const ack = `$JS.ACK.${outbox}.${t[3]}.1.${Number(t[5]) + 1}.${Number(t[6]) + 1}.${Date.now()}000000.0`;
    await ops.close();

    // A leaf of its own, with the agency's leaf certificate: the original subject of a
    // JetStream delivery travels after "@" in the reply, which it writes.
    const leaf = await ownLeaf();
    try {
      leaf.publish(
        heartbeat!.subject,
        `${ack}@ahub.in.${VN}.seizure-report`,
        { 'Nats-Msg-Id': 'not-an-alert' },
        new TextEncoder().encode('junk'),
      );
      // A publish on its own inbound subject reaches nothing: the leaf's account at the hub
      // imports nothing (before, its inbound stream stored this one too, under Viet Nam's
      // subject).
      leaf.publish(
        `ahub.in.${SG}.seizure-report`,
        `$JS.ACK.X.Y.1.1.1.1.0@ahub.in.${VN}.seizure-report`,
        { 'Nats-Msg-Id': 'not-an-alert-either' },
        new TextEncoder().encode('junk'),
      );
      const router = await hub.connectAs(LOCAL_ROUTER);
      try {
        const jsm = await jetstreamManager(router);
        // It reached the hub: stored in Singapore's stream under Viet Nam's subject.
        await eventually(
          async () =>
            (await jsm.streams.info(inboundStreamName(SG), { subjects_filter: '>' })).state
              .subjects?.[`ahub.in.${VN}.seizure-report`] === 1 || undefined,
          30_000,
          'the message in the stream',
        );
        const rejected = await eventually(
          async () => {
            const r = await fetch(`${hub.router.url}/v1/audit?outcome=rejected`, {
              headers: { authorization: `Bearer ${hub.coordinatorToken}` },
            });
            const body = (await r.json()) as { records: Record<string, unknown>[] };
            return body.records.length > 0 ? body.records : undefined;
          },
          30_000,
          'the refusal',
        );
        expect(rejected.map((r) => [r['origin'], r['reasonCode']])).toEqual([
          [SG, 'ERR_SUBJECT_MISMATCH'],
        ]);
        const dl = await jsm.streams.info(Streams.DeadLetter, { subjects_filter: '>' });
        expect(dl.state.subjects).toEqual({ [`ahub.dlq.${SG}`]: 1 });
        // The direct publish was never stored: the alert sent and the source's delivery.
        expect((await jsm.streams.info(inboundStreamName(SG))).state.messages).toBe(2);
      } finally {
        await router.close();
      }
      const refusals = async (agency: string) =>
        (
          (await (
            await fetch(`${hub.gateways[agency]!.url}/v1/refusals`, { headers: token })
          ).json()) as { items: { code: string }[] }
        ).items.map((i) => i.code);
      expect(
        await eventually(async () => ((await refusals(SG)).length > 0 ? refusals(SG) : undefined)),
      ).toEqual(['ERR_SUBJECT_MISMATCH']);
      // Viet Nam is told nothing of a message it never sent.
      expect(await refusals(VN)).toEqual([]);
    } finally {
      leaf.close();
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
