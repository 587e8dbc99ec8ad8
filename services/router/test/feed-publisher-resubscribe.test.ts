import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  PermissionViolationError,
  type NatsConnection,
} from '@nats-io/transport-node';
import { isTransientFailure } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { FeedPublisher, FeedRepliesDownError, type CopyAck } from '../src/feed-publisher.js';

// The publisher's user may subscribe to its own reply prefix (`_FEEDS`) and to the connection's
// request inbox (`_INBOX_R`); a reload takes `_FEEDS` away and gives it back.
const ALLOWED = '["_INBOX_R.>", "_FEEDS.>"]';
const DENIED = '["_INBOX_R.>"]';
const authorization = (subscribe: string) =>
  `authorization {\n  users = [ { user: router, password: router-pw, permissions: { publish: ">", subscribe: ${subscribe} } } ]\n}\n`;

const nats = useNatsServer({ config: authorization(ALLOWED) });
let nc: NatsConnection;
let feeds: FeedPublisher;

/** Rewrites the server's subscribe permission and makes it reload its configuration (SIGHUP). */
function reloadWith(subscribe: string): void {
  const file = join(nats.server.dir, 'nats-server.conf');
  const text = readFileSync(file, 'utf8');
  const from = subscribe === DENIED ? ALLOWED : DENIED;
  expect(text).toContain(from);
  writeFileSync(file, text.replace(from, subscribe));
  process.kill(nats.server.pid ?? 0, 'SIGHUP');
}

async function publishUntilStored(id: string, withinMs: number): Promise<CopyAck> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await feeds.publish('copies.x', new Uint8Array([1]), id);
    } catch (err) {
      if (!isTransientFailure(err) || Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

beforeAll(async () => {
  nc = await nats.connect({ user: 'router', pass: 'router-pw', inboxPrefix: '_INBOX_R' });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name: 'COPIES', subjects: ['copies.>'] });
  feeds = new FeedPublisher(nc, { inboxPrefix: '_FEEDS', timeoutMs: 1_000 });
});
afterAll(() => feeds?.close());

describe('feed publisher - its reply subscription comes back after it dies', () => {
  it('a subscription the server takes away (permissions reloaded) is made again once allowed: copies are stored again', async () => {
    expect((await feeds.publish('copies.x', new Uint8Array([1]), 'r-1')).seq).toBe(1);

    reloadWith(DENIED);
    // The server closes the subscription; the publisher sees it die and fails fast meanwhile.
    const deadline = Date.now() + 10_000;
    while (feeds.listening && Date.now() < deadline) await sleep(25);
    expect(feeds.listening).toBe(false);
    const down = await feeds
      .publish('copies.x', new Uint8Array([1]), 'r-2')
      .catch((e: unknown) => e);
    expect(down).toBeInstanceOf(Error);
    expect(down instanceof FeedRepliesDownError || down instanceof PermissionViolationError).toBe(
      true,
    );
    expect(isTransientFailure(down)).toBe(true);

    reloadWith(ALLOWED);
    const ack = await publishUntilStored('r-3', 15_000);
    expect(ack).toMatchObject({ stream: 'COPIES', duplicate: false });
    expect(feeds.listening).toBe(true);
    expect(feeds.resubscribed).toBeGreaterThan(0);
  });

  it('on a closed connection a publish fails at once with ClosedConnectionError, not after its timeout', async () => {
    const other = await nats.connect({
      user: 'router',
      pass: 'router-pw',
      inboxPrefix: '_INBOX_R',
    });
    const closing = new FeedPublisher(other, { inboxPrefix: '_FEEDS', timeoutMs: 60_000 });
    await other.close();
    const err = await closing
      .publish('copies.x', new Uint8Array([1]), 'c-1')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClosedConnectionError);
    expect(closing.listening).toBe(false);
    closing.close();
  });
});
