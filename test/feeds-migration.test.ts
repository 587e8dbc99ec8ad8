import { describe, expect, it } from 'vitest';
import { AckPolicy, RetentionPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEAD_LETTER_ALL,
  FEEDS_ALL,
  Streams,
  deadLetterSubject,
  feedConsumerName,
  feedFilter,
  feedSubject,
} from '@alert-hub/core';
import { deadLettersPerOrigin, provisionHub } from '@alert-hub/runtime';
import { KEEP_READ_COPIES } from '@alert-hub/testkit';
import { useNatsServer } from '@alert-hub/testkit/harness';

/**
 * A deployment made with another feed retention: nats-server 2.9 cannot change a stream's
 * retention, so the stream keeps its own until `migrateFeeds` finds every copy read; a work queue
 * (which earlier versions offered) is refused outright until then.
 */
const nats = useNatsServer();
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const IN = { limits: { feedsRetention: 'interest' as const } };

describe('feeds migration - limits to interest', () => {
  it('an existing limits stream keeps its retention (reported); with migrateFeeds it is replaced only once every copy was read', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    const old = await provisionHub(jsm, AGENCIES, { limits: KEEP_READ_COPIES });
    expect(old).toMatchObject({ feedsRetention: 'limits', feedsRetentionMismatch: false });
    await jetstream(nc).publish(feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report'), 'copy', {
      msgID: 'a:VN-CUSTOMS:SG-NPARKS',
    });

    // Configured interest, without migrateFeeds: kept and reported.
    const kept = await provisionHub(jsm, AGENCIES, IN);
    expect(kept).toMatchObject({ feedsRetention: 'limits', feedsRetentionMismatch: true });
    // With migrateFeeds but a copy unread: kept, and the reason names the consumer.
    const unread = await provisionHub(jsm, AGENCIES, { ...IN, migrateFeeds: true });
    expect(unread.feedsRetentionMismatch).toBe(true);
    expect(unread.feedsNotMigrated).toContain(`${feedConsumerName('VN-CUSTOMS')}: 1`);
    expect((await jsm.streams.info(Streams.Feeds)).state.messages).toBe(1);

    // The partner reads it: the stream is created anew with interest retention and its consumers.
    const consumer = await jetstream(nc).consumers.get(
      Streams.Feeds,
      feedConsumerName('VN-CUSTOMS'),
    );
    const m = await consumer.next({ expires: 5000 });
    expect(m?.string()).toBe('copy');
    await m!.ackAck();
    const migrated = await provisionHub(jsm, AGENCIES, { ...IN, migrateFeeds: true });
    expect(migrated).toMatchObject({
      feedsRetention: 'interest',
      feedsRetentionMismatch: false,
      feedsMigrated: true,
    });
    const info = await jsm.streams.info(Streams.Feeds);
    expect([info.config.retention, info.config.deny_delete, info.config.deny_purge]).toEqual([
      'interest',
      true,
      true,
    ]);
    for (const a of AGENCIES)
      expect((await jsm.consumers.info(Streams.Feeds, feedConsumerName(a))).name).toBe(
        feedConsumerName(a),
      );
    // Once migrated, a further start changes nothing.
    expect(await provisionHub(jsm, AGENCIES, { ...IN, migrateFeeds: true })).toMatchObject({
      feedsRetention: 'interest',
      feedsRetentionMismatch: false,
    });
  });

  it('with interest retention, a copy its recipient acknowledged leaves the stream; deny_delete still refuses a delete', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await provisionHub(jsm, AGENCIES, IN);
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

  it('a work-queue feed stream (made by an earlier version) is refused with ERR_FEEDS_WORK_QUEUE until migrateFeeds replaces it, once read', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(Streams.Feeds);
    await jsm.streams.add({
      name: Streams.Feeds,
      subjects: [FEEDS_ALL],
      retention: RetentionPolicy.Workqueue,
      deny_delete: true,
      deny_purge: true,
    });
    await jsm.consumers.add(Streams.Feeds, {
      durable_name: feedConsumerName('VN-CUSTOMS'),
      filter_subject: feedFilter('VN-CUSTOMS'),
      ack_policy: AckPolicy.Explicit,
    });
    await jetstream(nc).publish(feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report'), 'wq', {
      msgID: 'c:VN-CUSTOMS:SG-NPARKS',
    });
    // Whatever is configured, the work queue is not kept: neither as it is nor with a copy unread.
    for (const options of [{}, IN, { ...IN, migrateFeeds: true }])
      await expect(provisionHub(jsm, AGENCIES, options)).rejects.toMatchObject({
        code: 'ERR_FEEDS_WORK_QUEUE',
      });
    await expect(provisionHub(jsm, AGENCIES, { ...IN, migrateFeeds: true })).rejects.toThrow(
      `${feedConsumerName('VN-CUSTOMS')}: 1`,
    );
    // The unread copy was not touched.
    expect((await jsm.streams.info(Streams.Feeds)).state.messages).toBe(1);
    const consumer = await jetstream(nc).consumers.get(
      Streams.Feeds,
      feedConsumerName('VN-CUSTOMS'),
    );
    const m = await consumer.next({ expires: 5000 });
    expect(m?.string()).toBe('wq');
    await m!.ackAck();
    expect(await provisionHub(jsm, AGENCIES, { ...IN, migrateFeeds: true })).toMatchObject({
      feedsRetention: 'interest',
      feedsMigrated: true,
    });
    expect((await jsm.streams.info(Streams.Feeds)).config.retention).toBe('interest');
  });
});

describe('dead letters - upgrade to per-origin limits', () => {
  it('a dead-letter stream made without a per-origin limit gets one, and a flooded origin keeps only its newest', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(Streams.DeadLetter).catch(() => undefined);
    await jsm.streams.add({
      name: Streams.DeadLetter,
      subjects: [DEAD_LETTER_ALL],
      deny_delete: true,
      deny_purge: true,
    });
    const js = jetstream(nc);
    const flood: number[] = [];
    for (let i = 0; i < 8; i++)
      flood.push((await js.publish(deadLetterSubject('VN-CUSTOMS'), `junk ${i}`)).seq);
    const other = (await js.publish(deadLetterSubject('SG-NPARKS'), 'kept')).seq;
    const maxBytes = 4 * 1024 * 1024;
    const perOrigin = deadLettersPerOrigin(maxBytes, AGENCIES.length);
    expect(perOrigin).toBeLessThan(flood.length);
    const report = await provisionHub(jsm, AGENCIES, { limits: { deadLetterMaxBytes: maxBytes } });
    expect(report.deadLettersPerOrigin).toBe(perOrigin);
    const info = await jsm.streams.info(Streams.DeadLetter, { subjects_filter: '>' });
    expect(info.config.max_msgs_per_subject).toBe(perOrigin);
    expect(info.state.subjects).toEqual({
      [deadLetterSubject('VN-CUSTOMS')]: perOrigin,
      [deadLetterSubject('SG-NPARKS')]: 1,
    });
    const left: number[] = [];
    for (const seq of [...flood, other])
      if (await jsm.streams.getMessage(Streams.DeadLetter, { seq }).catch(() => null))
        left.push(seq);
    expect(left).toEqual([...flood.slice(-perOrigin), other]);
  });

  it('an interest feed stream made on one replica is never scaled to several (ERR_FEEDS_INTEREST_REPLICAS): migrated to limits first', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(Streams.Feeds);
    // Made on the default of one replica: interest.
    expect(await provisionHub(jsm, AGENCIES)).toMatchObject({ feedsRetention: 'interest' });
    // Moved to a cluster without naming a retention (the default there is limits): the
    // interest stream is not scaled up, whatever happens to the rest.
    await expect(provisionHub(jsm, AGENCIES, { limits: { replicas: 3 } })).rejects.toMatchObject({
      code: 'ERR_FEEDS_INTEREST_REPLICAS',
    });
    const info = await jsm.streams.info(Streams.Feeds);
    expect([info.config.retention, info.config.num_replicas]).toEqual(['interest', 1]);
  });
});
