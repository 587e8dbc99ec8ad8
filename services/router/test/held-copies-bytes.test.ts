import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager, type JetStreamClient } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, feedConsumerName, noticeSubject } from '@alert-hub/core';
import { openDatabase, provisionHub, type BatchWriter } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { HeldCopies, feedMessageBytes } from '../src/held-copies.js';
import { createRouterMetrics } from '../src/metrics.js';
import { RouterStore, type Outcome } from '../src/store.js';

/**
 * A recipient's byte quota in the feed stream, against a real nats-server: what left the stream
 * without moving the consumer's ack floor (expired unread, acknowledged behind a message the
 * gateway keeps refusing) stops counting, and a feed consumer that cannot be read keeps the counts
 * that stand (the quota fails closed).
 */
// one recipient per test: each has its own feed consumer, so no test sees another's messages
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS', 'TZ-WD'];
const QUOTA = 1000;
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);

/** Nothing is held in these tests: the writer of released copies is never called. */
const noWriter = {
  enqueue: () => Promise.reject(new Error('not used')),
} as unknown as BatchWriter<Outcome>;

async function setUp(
  nc: NatsConnection,
  name: string,
  recipient: string,
  maxAgeMs?: number,
): Promise<{ admit: (i: number, size?: number) => Promise<string> }> {
  const jsm = await jetstreamManager(nc);
  await provisionHub(
    jsm,
    AGENCIES,
    maxAgeMs ? { limits: { maxAgeMs, duplicateWindowMs: maxAgeMs / 2 } } : {},
  );
  const js: JetStreamClient = jetstream(nc);
  const held = new HeldCopies({
    js,
    jsm,
    store: new RouterStore(openDatabase(join(fx.dir, `${name}.db`)), 'test'),
    writer: noWriter,
    metrics: createRouterMetrics('test'),
    log: memoryLogger(name).log,
    publishTimeoutMs: 5000,
    recipientMaxCopies: 20_000,
    recipientMaxBytes: () => QUOTA,
    retryMs: 60_000,
    refreshMs: 0,
  });
  const subject = noticeSubject(recipient, 'HUB');
  const admit = async (i: number, size = 300) => {
    const data = new Uint8Array(size);
    const msgId = `${name}-${i}`;
    const r = await held.admit(recipient, feedMessageBytes(subject, data, msgId), () =>
      js.publish(subject, data, { msgID: msgId }),
    );
    return 'ack' in r ? 'stored' : 'full';
  };
  return { admit };
}

describe('held copies - the byte quota counts what waits, never more', () => {
  it('messages that expired unread leave the count: the partner is not blocked for ever', async () => {
    const nc = await nats.connect();
    const { admit } = await setUp(nc, 'expiry', 'VN-CUSTOMS', 2000);
    // ~390 bytes each against 1,000: two fit, the third waits.
    expect([await admit(1), await admit(2), await admit(3)]).toEqual(['stored', 'stored', 'full']);
    // Nobody read them; they expire (the ack floor does not move on nats-server 2.9.10).
    const jsm = await jetstreamManager(nc);
    for (let i = 0; i < 50 && (await jsm.streams.info(Streams.Feeds)).state.messages > 0; i++)
      await new Promise((r) => setTimeout(r, 200));
    expect((await jsm.streams.info(Streams.Feeds)).state.messages).toBe(0);
    expect(await admit(4)).toBe('stored');
    await nc.close();
  }, 30_000);

  it('a message the gateway never acknowledges holds back no more than its own bytes', async () => {
    const nc = await nats.connect();
    const { admit } = await setUp(nc, 'stuck', 'KE-KWS');
    const consumer = await jetstream(nc).consumers.get(Streams.Feeds, feedConsumerName('KE-KWS'));
    let stuck: number | undefined;
    // The partner reads everything but leaves the first message unacknowledged (its gateway
    // keeps failing on it): the ack floor stays below it while the others leave the stream.
    for (let i = 1; i <= 12; i++) {
      expect(await admit(i), `message ${i}`).toBe('stored');
      for await (const m of await consumer.fetch({ max_messages: 10, expires: 1000 })) {
        stuck ??= m.seq;
        if (m.seq !== stuck) await m.ackAck();
        if (m.info.pending === 0) break;
      }
    }
    const c = await (
      await jetstreamManager(nc)
    ).consumers.info(Streams.Feeds, feedConsumerName('KE-KWS'));
    expect(c.ack_floor.stream_seq).toBeLessThan(stuck!);
    expect(c.num_ack_pending + c.num_pending).toBe(1);
    await nc.close();
  }, 60_000);

  it('a feed consumer that cannot be read: the counts kept so far stand (the quota fails closed)', async () => {
    const nc = await nats.connect();
    const { admit } = await setUp(nc, 'unreadable', 'TZ-WD');
    expect(await admit(1)).toBe('stored');
    await (await jetstreamManager(nc)).consumers.delete(Streams.Feeds, feedConsumerName('TZ-WD'));
    expect([await admit(2), await admit(3), await admit(4)]).toEqual(['stored', 'full', 'full']);
    await nc.close();
  }, 30_000);

  it('an agency that acknowledges only its small messages is held at its quota all the same: what it leaves waiting counts at its heaviest', async () => {
    const nc = await nats.connect();
    const { admit } = await setUp(nc, 'selective', 'SG-NPARKS');
    const consumer = await jetstream(nc).consumers.get(
      Streams.Feeds,
      feedConsumerName('SG-NPARKS'),
    );
    /**
     * Reads what waits and acknowledges all but the messages of more than 500 bytes. A new
     * message always waits, so the pull ends as soon as it is delivered; its expiry only bounds
     * a slow server (at 1 s a loaded machine once ended it before the new message came).
     */
    const ackSmall = async () => {
      for await (const m of await consumer.fetch({ max_messages: 20, expires: 10_000 })) {
        if (m.data.byteLength < 500) await m.ackAck();
        if (m.info.pending === 0) break;
      }
    };
    // A large message (~700 bytes counted), then ten small ones, each acknowledged at once.
    expect(await admit(0, 600)).toBe('stored');
    for (let i = 1; i <= 10; i++) {
      expect(await admit(i, 50), `small message ${i}`).toBe('stored');
      await ackSmall();
    }
    // The large one still waits: another large one would pass the 1,000 bytes.
    expect(await admit(11, 600)).toBe('full');
    const c = await (
      await jetstreamManager(nc)
    ).consumers.info(Streams.Feeds, feedConsumerName('SG-NPARKS'));
    expect(c.num_pending + c.num_ack_pending).toBe(1);
    await nc.close();
  }, 60_000);
});
