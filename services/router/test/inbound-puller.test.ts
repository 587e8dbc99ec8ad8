import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createLogger } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { InboundPuller, mayHoldMessages } from '../src/inbound-puller.js';

const ACK_WAIT_MS = 2_000;
const nats = useNatsServer();
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const lines: { code?: string; streamSeq?: number }[] = [];
const log = createLogger({
  name: 'puller-test',
  destination: { write: (line: string) => void lines.push(JSON.parse(line) as never) },
});

beforeAll(async () => {
  nc = await nats.connect();
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

/** A stream and consumer of their own per test, with a 2 s ack wait. */
async function consumerFor(name: string) {
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  await jsm.consumers.add(name, {
    durable_name: 'puller',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ACK_WAIT_MS * 1_000_000,
    max_deliver: -1,
  });
  return js.consumers.get(name, 'puller');
}

const pullers: InboundPuller[] = [];
/** Handlers held on purpose, let go before the pullers stop (which waits for every handler). */
const stuck: (() => void)[] = [];
afterAll(async () => {
  for (const release of stuck) release();
  await Promise.all(pullers.map((p) => p.stop()));
});

/** A puller of 4 messages on a consumer of its own, the ack wait above, started. */
async function startPuller(
  name: string,
  maxKeepAliveMs: number,
  handle: (m: JsMsg) => Promise<void>,
): Promise<InboundPuller> {
  const consumer = await consumerFor(name);
  const puller = new InboundPuller({
    sources: [{ name, consumer: () => Promise.resolve(consumer) }],
    maxMessages: 4,
    ackWaitMs: ACK_WAIT_MS,
    room: (held) => 4 - held,
    log,
    maxKeepAliveMs,
    handle,
  });
  pullers.push(puller);
  puller.start();
  return puller;
}

describe('inbound puller - whether a source may hold messages', () => {
  it('only a stream or consumer that does not exist, or nothing unhandled, leaves it out; a failed lookup does not', async () => {
    expect(await mayHoldMessages(js, 'NO_SUCH_STREAM', 'puller', false)).toBe(false);
    await consumerFor('HOLDS');
    expect(await mayHoldMessages(js, 'HOLDS', 'no-such-consumer', false)).toBe(false);
    expect(await mayHoldMessages(js, 'HOLDS', 'puller', false)).toBe(true);
    expect(await mayHoldMessages(js, 'HOLDS', 'puller', true)).toBe(false);
    await js.publish('HOLDS.one', 'x');
    expect(await mayHoldMessages(js, 'HOLDS', 'puller', true)).toBe(true);
    // A JetStream API that does not answer (no responders: a 503, as while a cluster restarts)
    // is no proof that the stream is gone.
    const unanswered = jetstream(nc, { apiPrefix: '$NOBODY.API' });
    await expect(unanswered.consumers.get('HOLDS', 'puller')).rejects.toBeDefined();
    expect(await mayHoldMessages(unanswered, 'HOLDS', 'puller', false)).toBe(true);
    expect(await mayHoldMessages(unanswered, 'HOLDS', 'puller', true)).toBe(true);
  });
});

describe('inbound puller - keep-alive within a cap', () => {
  it('a message whose handler takes longer than the ack wait is kept alive: delivered once', async () => {
    const deliveries: number[] = [];
    await startPuller('SLOW', 30_000, async (m) => {
      deliveries.push(m.info.deliveryCount);
      await sleep(2.5 * ACK_WAIT_MS);
      m.ack();
    });
    await js.publish('SLOW.a', new Uint8Array([1]));
    const deadline = Date.now() + 20_000;
    while (
      (await jsm.consumers.info('SLOW', 'puller')).num_ack_pending > 0 ||
      deliveries.length === 0
    ) {
      if (Date.now() > deadline) throw new Error('the message was never acked');
      await sleep(100);
    }
    expect(deliveries).toEqual([1]);
  });

  it('a handler stuck past the cap is no longer kept alive: JetStream redelivers its message, and the router logs it', async () => {
    const deliveries: number[] = [];
    await startPuller('STUCK', 2 * ACK_WAIT_MS, async (m) => {
      deliveries.push(m.info.deliveryCount);
      // The first delivery's handler does not end until the file is done.
      if (m.info.deliveryCount === 1) await new Promise<void>((r) => stuck.push(r));
      m.ack();
    });
    const { seq } = await js.publish('STUCK.a', new Uint8Array([1]));
    const deadline = Date.now() + 20_000;
    while (deliveries.length < 2 && Date.now() < deadline) await sleep(100);
    expect(deliveries).toEqual([1, 2]);
    expect(lines.some((l) => l.streamSeq === seq && l.code === 'ERR_MESSAGE_STUCK')).toBe(true);
  });
});
