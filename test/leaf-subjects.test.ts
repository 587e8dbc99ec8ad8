import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Msg } from '@nats-io/transport-node';
import { Streams, inboundStreamName, outboxStreamName } from '@alert-hub/core';
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
    const cert = devPkiPaths(join(hub.certsDir, 'dev'), `${SG}.leaf`);
    const leaf = await fakeLeaf({
      port: hub.leaves[SG]!.links[0]!.port,
      caFile: cert.caFile,
      certFile: cert.certFile,
      keyFile: cert.keyFile,
      account: SG,
    });
    try {
      leaf.publish(
        heartbeat!.subject,
        `${ack}@ahub.in.${VN}.seizure-report`,
        { 'Nats-Msg-Id': 'not-an-alert' },
        new TextEncoder().encode('junk'),
      );
      // Simpler still: a publish on its own inbound subject, the stored subject after "@".
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
              .subjects?.[`ahub.in.${VN}.seizure-report`] === 2 || undefined,
          30_000,
          'the message in the stream',
        );
        const rejected = await eventually(
          async () => {
            const r = await fetch(`${hub.router.url}/v1/audit?outcome=rejected`, {
              headers: { authorization: `Bearer ${hub.coordinatorToken}` },
            });
            const body = (await r.json()) as { records: Record<string, unknown>[] };
            return body.records.length > 1 ? body.records : undefined;
          },
          30_000,
          'the refusal',
        );
        expect(rejected.map((r) => [r['origin'], r['reasonCode']])).toEqual([
          [SG, 'ERR_SUBJECT_MISMATCH'],
          [SG, 'ERR_SUBJECT_MISMATCH'],
        ]);
        const dl = await jsm.streams.info(Streams.DeadLetter, { subjects_filter: '>' });
        expect(dl.state.subjects).toEqual({ [`ahub.dlq.${SG}`]: 2 });
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
        await eventually(async () => ((await refusals(SG)).length > 1 ? refusals(SG) : undefined)),
      ).toEqual(['ERR_SUBJECT_MISMATCH', 'ERR_SUBJECT_MISMATCH']);
      // Viet Nam is told nothing of a message it never sent.
      expect(await refusals(VN)).toEqual([]);
    } finally {
      leaf.close();
    }
  }, 120_000);
});
