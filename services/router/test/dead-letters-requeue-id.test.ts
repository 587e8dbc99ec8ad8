import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { deadLetterSubject } from '@alert-hub/core';
import { openDatabase, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { makeHubFixture, memoryLogger } from '@alert-hub/testkit';
import { DeadLetters } from '../src/dead-letters.js';
import { RouterStore } from '../src/store.js';

/**
 * The requeue's message id (`requeue:<dead-letter seq>:<digest>`): the digest covers a nonce the
 * router keeps with the requeue, so nobody who knows the bytes can take the id first; a requeue
 * table from before the nonce is upgraded at start and its rows keep their ids.
 */
const nats = useNatsServer();
const fx = makeHubFixture(['NG-CUSTOMS']);
afterAll(() => fx.cleanup());

describe('dead letters - a requeue table from before the requeue nonce', () => {
  it('gains the column at start: a requeue recorded before keeps its id, one made now has an id no one computes from the bytes', async () => {
    const file = join(fx.dir, 'router-before-nonce.db');
    const db = openDatabase(file);
    db.exec(`CREATE TABLE dead_letter_requeues (
      dead_letter_seq INTEGER PRIMARY KEY, subject TEXT NOT NULL, sha256 TEXT NOT NULL,
      origin TEXT, alert_id TEXT, requested_by TEXT NOT NULL, requested_at TEXT NOT NULL,
      inbound_seq INTEGER)`);
    const data = new Uint8Array([1, 2, 3]);
    const subject = 'ahub.in.NG-CUSTOMS.seizure-report';
    db.prepare(
      `INSERT INTO dead_letter_requeues VALUES (7, ?, ?, 'NG-CUSTOMS', NULL, 'hub-ops', '2026-01-01T00:00:00Z', 42)`,
    ).run(subject, createHash('sha256').update(data).digest('hex'));
    db.close();
    const reader = await nats.connect({ name: 'dead-letter-migration' });
    await provisionHub(await jetstreamManager(reader), ['NG-CUSTOMS']);
    const upgraded = new DeadLetters({
      js: jetstream(reader),
      jsm: await jetstreamManager(reader),
      store: new RouterStore(openDatabase(file), 'test'),
      log: memoryLogger('dead-letters-migration').log,
      publishTimeoutMs: 5_000,
    });
    const digestOnly = (seq: number, bytes: Uint8Array) =>
      `requeue:${seq}:${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}`;
    expect(upgraded.accepts(digestOnly(7, data), subject, data)).toBe(true);
    expect(upgraded.accepts(digestOnly(7, data), subject, new Uint8Array([1, 2, 4]))).toBe(false);
    expect(upgraded.accepts(digestOnly(7, data), 'ahub.in.NG-CUSTOMS.other', data)).toBe(false);

    // A requeue made now, on the upgraded table, carries an id no one computes from the bytes.
    const h = natsHeaders();
    h.set('Ahub-Reason-Code', 'ERR_KEY_UNKNOWN');
    h.set('Ahub-Original-Subject', subject);
    h.set('Ahub-Original-Sha256', createHash('sha256').update(data).digest('hex'));
    const dl = await jetstream(reader).publish(deadLetterSubject('NG-CUSTOMS'), data, {
      headers: h,
    });
    const r = await upgraded.requeue(dl.seq, 'hub-ops');
    expect(r.inboundSeq).toBeGreaterThan(0);
    expect(r.msgId).toMatch(new RegExp(`^requeue:${dl.seq}:[A-Za-z0-9_-]{22}$`));
    expect(r.msgId).not.toBe(digestOnly(dl.seq, data));
    expect(upgraded.accepts(r.msgId, subject, data)).toBe(true);
    expect(upgraded.accepts(digestOnly(dl.seq, data), subject, data)).toBe(false);
  });
});
