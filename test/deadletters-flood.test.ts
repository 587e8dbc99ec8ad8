import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, deadLetterSubject, inboundSubject } from '@alert-hub/core';
import { deadLettersPerOrigin } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  routerDrained,
  startSeizureHub,
  type LocalHub,
} from '@alert-hub/testkit';

/**
 * One agency's refused messages never crowd out another's dead letters: real nats-server (mutual
 * TLS, one account per agency) and the router as a process, with a small dead-letter stream.
 * Kenya, with its own NATS credentials, floods its own inbound subject with junk worth more than
 * the whole dead-letter stream; each is refused and dead-lettered on `ahub.dlq.KE-KWS`. Viet Nam's
 * refused message afterwards is still kept.
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const AGENCIES = [SG, VN, KE];
const DLQ_BYTES = 4 * 1024 * 1024;
const JUNK_BYTES = 200_000;

let hub: LocalHub;
let hubNc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: AGENCIES,
    agreement: { id: 'SG-VN-KE', title: 'Singapore, Viet Nam, Kenya' },
    gateways: [],
    routerConfig: { streams: { deadLetterMaxBytes: DLQ_BYTES } },
  });
  hubNc = await hub.connectAs(LOCAL_ROUTER);
  jsm = await jetstreamManager(hubNc);
}, 120_000);

afterAll(async () => {
  await hubNc?.close();
  await hub?.stop();
});

async function dlqSubjects(): Promise<Record<string, number>> {
  const info = await jsm.streams.info(Streams.DeadLetter, { subjects_filter: '>' });
  return info.state.subjects ?? {};
}

describe('dead letters - one agency’s flood', () => {
  it('an agency’s junk beyond the stream’s size evicts only its own older dead letters; another agency’s refused message is still kept', async () => {
    const perOrigin = deadLettersPerOrigin(DLQ_BYTES, AGENCIES.length);
    const info = await jsm.streams.info(Streams.DeadLetter);
    expect(info.config.max_msgs_per_subject).toBe(perOrigin);
    expect(info.config.discard).toBe('new');
    // Enough junk to fill the stream several times over without the per-origin limit.
    const flood = Math.ceil((2 * DLQ_BYTES) / JUNK_BYTES);
    expect(flood).toBeGreaterThan(perOrigin);

    const ke = await hub.connectAs(KE);
    const junk = new Uint8Array(JUNK_BYTES).fill(0x41);
    const keSeqs: number[] = [];
    for (let i = 0; i < flood; i++) {
      const r = await ke.request(inboundSubject(KE, 'seizure-report'), junk, { timeout: 5000 });
      keSeqs.push(r.json<{ seq: number }>().seq);
    }
    await ke.close();
    await routerDrained(hubNc, 60_000);
    await eventually(
      async () => (await dlqSubjects())[deadLetterSubject(KE)] === perOrigin,
      30_000,
      'Kenya holds its share of dead letters',
    );
    // The ones kept are Kenya's newest.
    const kept: number[] = [];
    const state = (await jsm.streams.info(Streams.DeadLetter)).state;
    for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(Streams.DeadLetter, { seq }).catch(() => null);
      if (m?.subject === deadLetterSubject(KE))
        kept.push(Number(m.header.get('Ahub-Original-Seq')));
    }
    expect(kept).toEqual(keSeqs.slice(-perOrigin));
    expect(state.bytes).toBeLessThan(DLQ_BYTES);

    // Viet Nam's refused message is dead-lettered, whole.
    const vn = await hub.connectAs(VN);
    const vnJunk = new Uint8Array(20_000).fill(0x42);
    const vnSeq = (
      await vn.request(inboundSubject(VN, 'seizure-report'), vnJunk, { timeout: 5000 })
    ).json<{ seq: number }>().seq;
    await vn.close();
    await routerDrained(hubNc, 60_000);
    const dl = await eventually(
      async () =>
        jsm.streams
          .getMessage(Streams.DeadLetter, { last_by_subj: deadLetterSubject(VN) })
          .catch(() => undefined),
      30_000,
      'Viet Nam’s dead letter',
    );
    expect(dl.header.get('Ahub-Original-Seq')).toBe(String(vnSeq));
    expect(dl.data.byteLength).toBe(vnJunk.byteLength);
    expect((await dlqSubjects())[deadLetterSubject(KE)]).toBe(perOrigin);
  }, 180_000);
});
