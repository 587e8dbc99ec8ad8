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
import { InboundPuller, type PullSource } from '../src/inbound-puller.js';

const nats = useNatsServer();
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const lines: { msg?: string; source?: string; level?: number }[] = [];
const log = createLogger({
  name: 'fair-puller-test',
  destination: { write: (line: string) => void lines.push(JSON.parse(line) as never) },
});

beforeAll(async () => {
  nc = await nats.connect();
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

const pullers: InboundPuller[] = [];
afterAll(async () => {
  await Promise.all(pullers.map((p) => p.stop()));
});

/** A stream `name` on `name.>` with the consumer `router`. */
async function provision(name: string): Promise<void> {
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  await jsm.consumers.add(name, {
    durable_name: 'router',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: 30_000 * 1_000_000,
    max_deliver: -1,
  });
}

function source(name: string): PullSource {
  return { name, consumer: () => js.consumers.get(name, 'router') };
}

/** Publishes `n` small messages on `name.x`, 256 in flight. */
async function flood(name: string, n: number): Promise<void> {
  const body = new Uint8Array(200);
  for (let i = 0; i < n; i += 256)
    await Promise.all(
      Array.from({ length: Math.min(256, n - i) }, () => js.publish(`${name}.x`, body)),
    );
}

async function until(what: string, done: () => boolean | Promise<boolean>, ms = 20_000) {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const pending = async (name: string) => (await jsm.consumers.info(name, 'router')).num_pending;

describe('inbound puller - sources read in turn', () => {
  it("another source's message is handled while a flooding source still has most of its backlog pending, and held stays within the bound", async () => {
    await provision('FLOOD');
    await provision('QUIET');
    const BACKLOG = 5_000;
    await flood('FLOOD', BACKLOG);
    const MAX = 16;
    let handledFlood = 0;
    let floodWhenQuiet: number | undefined;
    let maxHeld = 0;
    let maxHeldFlood = 0;
    const puller: InboundPuller = new InboundPuller({
      sources: [source('FLOOD'), source('QUIET')],
      maxMessages: MAX,
      ackWaitMs: 30_000,
      room: (held) => MAX - held,
      log,
      onHeld: (held) => (maxHeld = Math.max(maxHeld, held)),
      handle: async (m: JsMsg) => {
        maxHeldFlood = Math.max(maxHeldFlood, puller.heldBy('FLOOD'));
        if (m.info.stream === 'QUIET') {
          floodWhenQuiet = handledFlood;
          m.ack();
          return;
        }
        // Junk refused at about a thousand a second by the router: here a few milliseconds each.
        await sleep(5);
        handledFlood++;
        m.ack();
      },
    });
    pullers.push(puller);
    puller.start();
    await until('the flood to be read', () => handledFlood >= 50);
    await js.publish('QUIET.alert', new Uint8Array([1]));
    await until('the quiet source to be read', () => floodWhenQuiet !== undefined);
    // Handed over while most of the flood still waits in its stream.
    expect(floodWhenQuiet!).toBeLessThan(BACKLOG / 2);
    expect(await pending('FLOOD')).toBeGreaterThan(BACKLOG / 2);
    // The documented bound: maxMessages plus one message per source.
    expect(maxHeld).toBeLessThanOrEqual(MAX + 2);
    expect(maxHeldFlood).toBeLessThanOrEqual(MAX);
    await puller.stop();
  });

  it('two sources with a backlog share the room: each holds about half, neither starves', async () => {
    await provision('SHAREA');
    await provision('SHAREB');
    await flood('SHAREA', 600);
    await flood('SHAREB', 600);
    const MAX = 8;
    const handled = { SHAREA: 0, SHAREB: 0 } as Record<string, number>;
    const order: string[] = [];
    let overShare = 0;
    const puller: InboundPuller = new InboundPuller({
      sources: [source('SHAREA'), source('SHAREB')],
      maxMessages: MAX,
      ackWaitMs: 30_000,
      room: (held) => MAX - held,
      log,
      handle: async (m) => {
        // Once both have a backlog, neither holds more than its half (plus its idle pull's one).
        if (handled['SHAREA']! > 50 && handled['SHAREB']! > 50)
          for (const s of ['SHAREA', 'SHAREB']) if (puller.heldBy(s) > MAX / 2 + 1) overShare++;
        await sleep(3);
        handled[m.info.stream]!++;
        order.push(m.info.stream);
        m.ack();
      },
    });
    pullers.push(puller);
    puller.start();
    await until('300 messages', () => order.length >= 300);
    await puller.stop();
    // Neither source waits for the other to drain: both progress at about the same pace.
    const first300 = order.slice(0, 300);
    const a = first300.filter((s) => s === 'SHAREA').length;
    expect(a).toBeGreaterThan(100);
    expect(a).toBeLessThan(200);
    expect(overShare).toBe(0);
  });

  it('room 0 fetches nothing; messages are fetched once room comes back', async () => {
    await provision('GATED');
    await flood('GATED', 10);
    let open = false;
    let handled = 0;
    const puller = new InboundPuller({
      sources: [source('GATED')],
      maxMessages: 4,
      ackWaitMs: 30_000,
      room: (held) => (open ? 4 - held : 0),
      log,
      handle: (m) => {
        handled++;
        m.ack();
        return Promise.resolve();
      },
    });
    pullers.push(puller);
    puller.start();
    await sleep(1_500);
    const info = await jsm.consumers.info('GATED', 'router');
    expect(handled).toBe(0);
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(10);
    open = true;
    puller.wake();
    await until('the gated messages', () => handled === 10);
    await puller.stop();
  });

  it('a source added later is read; a source whose consumer does not exist yet does not stop the others, and is read once provisioned; a source removed is no longer read', async () => {
    await provision('FIRST');
    const handled: string[] = [];
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const puller = new InboundPuller({
      sources: [source('FIRST'), source('NOTYET')],
      maxMessages: 8,
      ackWaitMs: 30_000,
      room: (held) => 8 - held,
      log,
      missingRetryMs: 200,
      handle: async (m) => {
        handled.push(m.info.stream);
        // The added source's message is held until its source was removed.
        if (m.info.stream === 'ADDED') await released;
        m.ack();
      },
    });
    pullers.push(puller);
    puller.start();
    await js.publish('FIRST.a', new Uint8Array([1]));
    await until('the first source', () => handled.includes('FIRST'));
    // Retried several times meanwhile, reported once.
    await sleep(1_000);
    expect(lines.filter((l) => l.source === 'NOTYET' && l.level === 40)).toHaveLength(1);
    await provision('NOTYET');
    await js.publish('NOTYET.a', new Uint8Array([1]));
    await until('the source provisioned late', () => handled.includes('NOTYET'));

    await provision('ADDED');
    await js.publish('ADDED.a', new Uint8Array([1]));
    puller.setSources([source('FIRST'), source('NOTYET'), source('ADDED')]);
    await until('the added source', () => handled.includes('ADDED'));
    expect(puller.sources.sort()).toEqual(['ADDED', 'FIRST', 'NOTYET']);
    // A source no longer listed is no longer read: what is stored after is not pulled, and the
    // message it holds finishes.
    puller.setSources([source('FIRST'), source('NOTYET')]);
    expect(puller.sources.sort()).toEqual(['FIRST', 'NOTYET']);
    release();
    await until(
      'the held message acknowledged',
      async () => (await jsm.consumers.info('ADDED', 'router')).num_ack_pending === 0,
    );
    await js.publish('ADDED.b', new Uint8Array([1]));
    await js.publish('FIRST.b', new Uint8Array([1]));
    await until('the first source again', () => handled.filter((s) => s === 'FIRST').length === 2);
    // A listed source has a pull waiting at all times (it would have been handed ADDED.b at once):
    // given a second more, the removed one still has none and was handed nothing.
    await sleep(1_000);
    expect(handled.filter((s) => s === 'ADDED')).toHaveLength(1);
    const added = await jsm.consumers.info('ADDED', 'router');
    expect(added.delivered.stream_seq).toBe(1);
    expect(added.num_pending).toBe(1);
    expect(added.num_waiting).toBe(0);
    await puller.stop();
  });

  it('a drained source is dropped when it says so', async () => {
    await provision('OLD');
    await flood('OLD', 3);
    let handled = 0;
    const puller = new InboundPuller({
      sources: [
        {
          ...source('OLD'),
          drained: async (c) => {
            const i = await c.info();
            return i.num_pending === 0 && i.num_ack_pending === 0;
          },
        },
      ],
      maxMessages: 8,
      ackWaitMs: 30_000,
      room: (held) => 8 - held,
      log,
      idlePullExpiresMs: 1_000,
      handle: (m) => {
        handled++;
        m.ack();
        return Promise.resolve();
      },
    });
    pullers.push(puller);
    puller.start();
    await until('the drained source to be dropped', () => puller.sources.length === 0);
    expect(handled).toBe(3);
    await puller.stop();
  });

  it('stop() waits for the held messages; nothing is fetched after it', async () => {
    await provision('STOPPING');
    await flood('STOPPING', 3);
    const release: (() => void)[] = [];
    const puller = new InboundPuller({
      sources: [source('STOPPING')],
      maxMessages: 8,
      ackWaitMs: 30_000,
      room: (held) => 8 - held,
      log,
      handle: async (m) => {
        await new Promise<void>((r) => release.push(r));
        m.ack();
      },
    });
    puller.start();
    await until('three held messages', () => release.length === 3);
    let stopped = false;
    const stopping = puller.stop().then(() => (stopped = true));
    await sleep(300);
    expect(stopped).toBe(false);
    for (const r of release) r();
    await stopping;
    expect(puller.held).toBe(0);
    // Each was acked by its handler (acks are asynchronous: the server may take a moment).
    await until('the acks', async () => {
      const info = await jsm.consumers.info('STOPPING', 'router');
      return info.num_ack_pending === 0 && info.num_pending === 0;
    });
    // A message published after stop() is not fetched: it waits in the stream.
    await js.publish('STOPPING.late', new Uint8Array([1]));
    await sleep(500);
    const after = await jsm.consumers.info('STOPPING', 'router');
    expect(after.num_pending).toBe(1);
    expect(after.num_ack_pending).toBe(0);
  });
});
