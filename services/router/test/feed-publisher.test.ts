import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamApiError } from '@nats-io/jetstream';
import { NoRespondersError, TimeoutError, type NatsConnection } from '@nats-io/transport-node';
import { DEFAULT_MAX_ENVELOPE_BYTES, Streams, feedSubject, forwardMsgId } from '@alert-hub/core';
import { isTransientFailure } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { provision } from '@alert-hub/testkit';
import { FeedPublisher } from '../src/feed-publisher.js';

const nats = useNatsServer();
let nc: NatsConnection;
let feeds: FeedPublisher;

beforeAll(async () => {
  nc = await nats.connect();
  await provision(nc, ['SG-NPARKS', 'VN-CUSTOMS']);
  feeds = new FeedPublisher(nc, { timeoutMs: 500 });
});
afterAll(() => feeds?.close());

const subject = feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report');

describe('feed publisher - acks collected on one subscription, with js.publish guarantees', () => {
  it('a stored copy answers with the feeds stream and its sequence; the same message id again is a duplicate', async () => {
    const id = forwardMsgId('SG-NPARKS', 'a-1', 'VN-CUSTOMS');
    const first = await feeds.publish(subject, new Uint8Array([1, 2, 3]), id);
    expect(first).toMatchObject({ stream: Streams.Feeds, duplicate: false });
    expect(first.seq).toBeGreaterThan(0);
    const again = await feeds.publish(subject, new Uint8Array([1, 2, 3]), id);
    expect(again).toEqual({ ...first, duplicate: true });
  });

  it('many copies at once each get their own answer', async () => {
    const acks = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        feeds.publish(
          subject,
          new Uint8Array([i % 256]),
          forwardMsgId('SG-NPARKS', `b-${i}`, 'VN-CUSTOMS'),
        ),
      ),
    );
    expect(new Set(acks.map((a) => a.seq)).size).toBe(200);
  });

  it('JetStream refusing the copy is a JetStreamApiError; no stream is NoResponders; no answer is a timeout: all retried, never lost', async () => {
    const tooBig = new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 8192);
    const refused = await feeds.publish(subject, tooBig, 'c-1').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JetStreamApiError);
    const nowhere = await feeds
      .publish('ahub.nowhere.x', new Uint8Array([1]), 'c-2')
      .catch((e: unknown) => e);
    expect(nowhere).toBeInstanceOf(NoRespondersError);
    const silent = nc.subscribe('ahub.silent.x'); // a responder that never answers
    const late = await feeds
      .publish('ahub.silent.x', new Uint8Array([1]), 'c-3')
      .catch((e: unknown) => e);
    silent.unsubscribe();
    expect(late).toBeInstanceOf(TimeoutError);
    for (const err of [refused, nowhere, late]) expect(isTransientFailure(err)).toBe(true);
  });
});
