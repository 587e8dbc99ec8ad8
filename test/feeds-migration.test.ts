import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Streams, feedConsumerName, feedSubject } from '@alert-hub/core';
import { provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';

/**
 * A deployment made before the feed stream became a work queue: nats-server 2.9 cannot change a
 * stream's retention, so the stream keeps its own until `migrateFeeds` finds every copy read.
 */
const nats = useNatsServer();
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const WQ = { limits: { feedsRetention: 'workqueue' as const } };

describe('feeds migration - limits to work queue', () => {
  it('an existing limits stream keeps its retention (reported); with migrateFeeds it is replaced only once every copy was read', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    const old = await provisionHub(jsm, AGENCIES);
    expect(old).toMatchObject({ feedsRetention: 'limits', feedsRetentionMismatch: false });
    await jetstream(nc).publish(feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report'), 'copy', {
      msgID: 'a:VN-CUSTOMS:SG-NPARKS',
    });

    // Configured work queue, without migrateFeeds: kept and reported.
    const kept = await provisionHub(jsm, AGENCIES, WQ);
    expect(kept).toMatchObject({ feedsRetention: 'limits', feedsRetentionMismatch: true });
    // With migrateFeeds but a copy unread: kept, and the reason names the consumer.
    const unread = await provisionHub(jsm, AGENCIES, { ...WQ, migrateFeeds: true });
    expect(unread.feedsRetentionMismatch).toBe(true);
    expect(unread.feedsNotMigrated).toContain(`${feedConsumerName('VN-CUSTOMS')}: 1`);
    expect((await jsm.streams.info(Streams.Feeds)).state.messages).toBe(1);

    // The partner reads it: the stream is created anew as a work queue with its consumers.
    const consumer = await jetstream(nc).consumers.get(
      Streams.Feeds,
      feedConsumerName('VN-CUSTOMS'),
    );
    const m = await consumer.next({ expires: 5000 });
    expect(m?.string()).toBe('copy');
    await m!.ackAck();
    const migrated = await provisionHub(jsm, AGENCIES, { ...WQ, migrateFeeds: true });
    expect(migrated).toMatchObject({
      feedsRetention: 'workqueue',
      feedsRetentionMismatch: false,
      feedsMigrated: true,
    });
    const info = await jsm.streams.info(Streams.Feeds);
    expect([info.config.retention, info.config.deny_delete, info.config.deny_purge]).toEqual([
      'workqueue',
      true,
      true,
    ]);
    for (const a of AGENCIES)
      expect((await jsm.consumers.info(Streams.Feeds, feedConsumerName(a))).name).toBe(
        feedConsumerName(a),
      );
    // Once migrated, a further start changes nothing.
    expect(await provisionHub(jsm, AGENCIES, { ...WQ, migrateFeeds: true })).toMatchObject({
      feedsRetention: 'workqueue',
      feedsRetentionMismatch: false,
    });
  });

  it('in the work queue, an acknowledged copy leaves the stream; deny_delete still refuses a delete', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await provisionHub(jsm, AGENCIES, WQ);
    const js = jetstream(nc);
    const ack = await js.publish(feedSubject('SG-NPARKS', 'VN-CUSTOMS', 'seizure-report'), 'x', {
      msgID: 'b:SG-NPARKS:VN-CUSTOMS',
    });
    // JetStream's own refusal (err_code 10057), not any error.
    await expect(jsm.streams.deleteMessage(Streams.Feeds, ack.seq)).rejects.toThrow(
      /message delete not permitted/,
    );
    const consumer = await js.consumers.get(Streams.Feeds, feedConsumerName('SG-NPARKS'));
    const m = await consumer.next({ expires: 5000 });
    await m!.ackAck();
    expect(
      await jsm.streams.getMessage(Streams.Feeds, { seq: ack.seq }).catch(() => null),
    ).toBeNull();
  });
});
