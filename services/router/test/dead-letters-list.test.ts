import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { deadLetterSubject } from '@alert-hub/core';
import { deadLettersPerOrigin, openDatabase, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { DeadLetters, MAX_LIST_LIMIT } from '../src/dead-letters.js';
import { RouterStore } from '../src/store.js';

const nats = useNatsServer();
const fx = makeHubFixture(['NG-CUSTOMS', 'KE-KWS']);
let deadLetters: DeadLetters;
/** The dead letters of NG-CUSTOMS, by stream sequence: a few, far apart. */
const ngSeqs: number[] = [];
const OTHERS = 2_000;

/** Messages the dead-letter reader's connection has sent so far (the server's `/connz`). */
async function apiRequests(): Promise<number> {
  const res = await fetch(`${nats.server.monitorUrl}/connz`);
  const { connections } = (await res.json()) as {
    connections: { name?: string; in_msgs: number }[];
  };
  const reader = connections.find((c) => c.name === 'dead-letter-reader');
  if (!reader) throw new Error('the reader is not connected');
  return reader.in_msgs;
}

beforeAll(async () => {
  const nc = await nats.connect();
  const jsm = await jetstreamManager(nc);
  // Each origin keeps at most its share of the stream (deadLettersPerOrigin): the 2,000 others
  // come from ten origins, each within its share of a 768 MiB stream.
  const origins = Array.from({ length: 10 }, (_, k) => `KE-KWS${k}`);
  const deadLetterMaxBytes = 768 * 1024 ** 2;
  expect(deadLettersPerOrigin(deadLetterMaxBytes, origins.length + 1)).toBeGreaterThan(
    OTHERS / origins.length,
  );
  await provisionHub(jsm, ['NG-CUSTOMS', ...origins], {
    // Eleven agencies: their inbound streams and the feeds made small, as a hub this size might.
    limits: { deadLetterMaxBytes, inboundMaxBytes: 64 * 1024 ** 2, feedsMaxBytes: 64 * 1024 ** 2 },
  });
  const js = jetstream(nc);
  const deadLetter = (origin: string, i: number) => {
    const h = natsHeaders();
    h.set('Ahub-Reason-Code', 'ERR_KEY_UNKNOWN');
    h.set('Ahub-Original-Subject', `ahub.in.${origin}.seizure-report`);
    return js.publish(deadLetterSubject(origin), new Uint8Array([i % 256]), { headers: h });
  };
  // NG's dead letters at the start, in the middle and at the end of 2,000 of KE's.
  for (const at of [0, OTHERS / 2, OTHERS]) {
    ngSeqs.push((await deadLetter('NG-CUSTOMS', at)).seq);
    if (at === OTHERS) break;
    for (let i = 0; i < OTHERS / 2; i += 100)
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          deadLetter(origins[(i + j) % origins.length]!, i + j),
        ),
      );
  }
  // The reader has a connection of its own, so the server counts its requests alone.
  const reader = await nats.connect({ name: 'dead-letter-reader' });
  deadLetters = new DeadLetters({
    js: jetstream(reader),
    jsm: await jetstreamManager(reader),
    store: new RouterStore(openDatabase(join(fx.dir, 'router.db')), 'test'),
    log: memoryLogger('dead-letters-test').log,
    publishTimeoutMs: 5_000,
  });
});

describe('dead letters - listing is paged and bounded by the page', () => {
  it('an origin filter reads only that origin’s dead letters: a page of 2 reads 3 messages, not the 1,000 between them', async () => {
    const before = await apiRequests();
    const page = await deadLetters.list({ origin: 'NG-CUSTOMS', limit: 2 });
    const used = (await apiRequests()) - before;
    expect(page.items.map((s) => s.seq)).toEqual(ngSeqs.slice(0, 2));
    expect(page.items.every((s) => s.origin === 'NG-CUSTOMS' && s.code === 'ERR_KEY_UNKNOWN')).toBe(
      true,
    );
    expect(page.next).toBe(ngSeqs[1]);
    expect(used).toBeLessThanOrEqual(3);

    const last = await deadLetters.list({ origin: 'NG-CUSTOMS', limit: 2, after: page.next });
    expect(last.items.map((s) => s.seq)).toEqual(ngSeqs.slice(2));
    expect(last.next).toBeUndefined();
  });

  it('following next walks every dead letter once, in order, each request reading at most its page and one more', async () => {
    const seen: number[] = [];
    let after: number | undefined;
    let pages = 0;
    for (;;) {
      const before = await apiRequests();
      const page = await deadLetters.list({ limit: 300, ...(after ? { after } : {}) });
      expect((await apiRequests()) - before).toBeLessThanOrEqual(301);
      seen.push(...page.items.map((s) => s.seq));
      pages++;
      if (page.next === undefined) break;
      after = page.next;
    }
    expect(seen).toHaveLength(OTHERS + 3);
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(new Set(seen).size).toBe(seen.length);
    expect(pages).toBe(Math.ceil((OTHERS + 3) / 300));
  });

  it('a limit over the maximum is cut to it; nothing after the last is an empty page', async () => {
    const page = await deadLetters.list({ limit: MAX_LIST_LIMIT + 500 });
    expect(page.items).toHaveLength(MAX_LIST_LIMIT);
    expect(page.next).toBe(page.items.at(-1)?.seq);
    expect(await deadLetters.list({ after: ngSeqs[2] })).toEqual({ items: [] });
  });
});
