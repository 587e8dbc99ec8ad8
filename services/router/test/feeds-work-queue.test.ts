import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { RetentionPolicy, jetstreamManager } from '@nats-io/jetstream';
import { FEEDS_ALL, Streams } from '@alert-hub/core';
import { loadConfig, startRouter } from '@alert-hub/router';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { makeHubFixture, memoryLogger, writeConfig } from '@alert-hub/testkit';

/**
 * A hub whose feed stream an earlier version made a work queue, in which any agency's ack
 * removes any copy: the router does not start on it, and says why.
 */
const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
afterAll(() => fx.cleanup());

describe('router - a work-queue feed stream', () => {
  it('is refused at start with ERR_FEEDS_WORK_QUEUE, the stream left as it was; with migrateFeeds, once read, it is replaced', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({
      name: Streams.Feeds,
      subjects: [FEEDS_ALL],
      retention: RetentionPolicy.Workqueue,
    });
    const agreementsFile = join(fx.dir, 'agreements.yaml');
    writeFileSync(agreementsFile, toYaml({ agreements: [] }));
    const config = (migrateFeeds: boolean) =>
      loadConfig(
        {},
        writeConfig(fx.dir, `router-${migrateFeeds}`, {
          signingKey: fx.hubKeyFile,
          trustDir: fx.trustDir,
          agreementsFile,
          dataDir: join(fx.dir, 'router'),
          nats: { servers: [nats.url] },
          http: { port: 0 },
          streams: { feedsRetention: 'interest', migrateFeeds },
        }),
      );
    const { log } = memoryLogger('router-wq');
    await expect(startRouter(config(false), { log })).rejects.toMatchObject({
      code: 'ERR_FEEDS_WORK_QUEUE',
    });
    expect((await jsm.streams.info(Streams.Feeds)).config.retention).toBe('workqueue');
    // With migrateFeeds, and nothing unread: replaced, and the router starts.
    const router = await startRouter(config(true), { log });
    try {
      expect((await jsm.streams.info(Streams.Feeds)).config.retention).toBe('interest');
    } finally {
      await router.close();
    }
  });
});
