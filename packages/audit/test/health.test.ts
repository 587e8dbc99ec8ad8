import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import {
  AuditAppender,
  AuditEvent,
  AuditHealthCheck,
  VerifyProblem,
  verifyAuditLog,
  type VerifyOptions,
} from '@alert-hub/audit';
import { HUB_SEED, keyFromSeed } from './vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-health-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ORIGIN = 'alert-hub/audit/health';
const hub = { name: ORIGIN, ...keyFromSeed(HUB_SEED) };
const otherHub = { name: ORIGIN, ...keyFromSeed('22'.repeat(32)) };

/** The head a router signs with every append: entries past the anchor without one were removed. */
const signedHead = () => ({ signer: hub, origin: ORIGIN });

function append(a: AuditAppender, n: number) {
  a.db
    .transaction(() =>
      a.append(
        Array.from({ length: n }, (_, i) => ({ event: AuditEvent.Received, streamSeq: i })),
        new Date().toISOString(),
      ),
    )
    .immediate();
}
function checkpoint(a: AuditAppender): string {
  return a.db.transaction(() => a.checkpoint(hub, ORIGIN))()!.note;
}

describe('audit health check - incremental', () => {
  it('after a sound full run, a call reads only what was appended since, and answers as a full verification would', async () => {
    const db = new Database(join(dir, 'grow.db'));
    const log = new AuditAppender(db, 'router-a', { head: signedHead });
    append(log, 300);
    let anchor = checkpoint(log);
    let clock = Date.parse('2026-11-29T21:00:00Z');
    const check = new AuditHealthCheck(db, { now: () => new Date(clock) });
    const opts = (): VerifyOptions => ({
      anchor,
      hubKey: hub.publicKey,
      witnesses: [],
      minWitnesses: 0,
    });

    const first = await check.verify(opts());
    expect(first.run).toMatchObject({ mode: 'full', from: 0, to: 300 });
    expect(first.verification).toEqual(verifyAuditLog(db, opts()));
    expect(first.verification.ok).toBe(true);

    // Nothing appended: nothing read.
    clock += 1000;
    const again = await check.verify(opts());
    expect(again.run).toMatchObject({ mode: 'incremental', from: 300, to: 300 });
    expect(again.verification).toEqual(verifyAuditLog(db, opts()));

    // Appended, with a checkpoint and then without one: only the new entries are read.
    append(log, 40);
    anchor = checkpoint(log);
    append(log, 7);
    const grown = await check.verify(opts());
    expect(grown.run).toMatchObject({ mode: 'incremental', from: 300, to: 347 });
    expect(grown.verification).toEqual(verifyAuditLog(db, opts()));
    expect(grown.verification).toMatchObject({ ok: true, witnessed: 340, unwitnessed: 7 });
    // An anchor of a size read in an earlier run is checked too.
    append(log, 1);
    const later = await check.verify(opts());
    expect(later.run).toMatchObject({ mode: 'incremental', from: 347, to: 348 });
    expect(later.verification).toEqual(verifyAuditLog(db, opts()));
    expect(check.runs).toEqual({ full: 1, incremental: 3, cached: 0 });
  });

  it('an entry edited by another connection: the next run is a full one (at most once per interval) and finds it', async () => {
    const db = new Database(join(dir, 'tampered.db'));
    const log = new AuditAppender(db, 'router-a');
    append(log, 50);
    const anchor = checkpoint(log);
    let clock = Date.parse('2026-11-29T21:00:00Z');
    const check = new AuditHealthCheck(db, {
      now: () => new Date(clock),
      minFullIntervalMs: 60_000,
    });
    const o = { anchor, hubKey: hub.publicKey, witnesses: [], minWitnesses: 0 };
    expect((await check.verify(o)).verification.ok).toBe(true);

    const other = new Database(db.name);
    other.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = 4").run();
    other.close();
    // Within the interval: the last result, said to be one.
    clock += 10_000;
    const cached = await check.verify(o);
    expect(cached.run.mode).toBe('cached');
    expect(cached.run.checkedAt.getTime()).toBe(clock - 10_000);
    // Once due: the whole log, and the edit found.
    clock += 60_000;
    const full = await check.verify(o);
    expect(full.run).toMatchObject({ mode: 'full', from: 0, to: 50 });
    expect(full.verification.ok).toBe(false);
    expect(full.verification.firstBad?.seq).toBe(4);
    expect(full.verification.problems.map((p) => p.code)).toContain(VerifyProblem.Entry);
    // A log found wanting is never continued incrementally.
    clock += 60_000;
    expect((await check.verify(o)).run.mode).toBe('full');
  });

  it('bytes of the file changed without SQLite after a sound full run (data_version unchanged) are found by the full run made fullEveryMs later', async () => {
    const file = join(dir, 'bytes.db');
    const db = new Database(file);
    const log = new AuditAppender(db, 'router-a');
    append(log, 20);
    db.transaction(() =>
      log.append(
        [{ event: AuditEvent.Denied, reason: 'refused under agreement A' }],
        '2026-11-29T21:00:00.000Z',
      ),
    ).immediate();
    append(log, 20);
    const anchor = checkpoint(log);
    let clock = Date.parse('2026-11-29T21:00:00Z');
    const check = new AuditHealthCheck(db, { now: () => new Date(clock), fullEveryMs: 60_000 });
    const o = { anchor, hubKey: hub.publicKey, witnesses: [], minWitnesses: 0 };
    expect((await check.verify(o)).verification.ok).toBe(true);

    // The reason rewritten in the file itself: no SQLite commit, so data_version stays.
    const bytes = readFileSync(file);
    const places: number[] = [];
    for (let at = bytes.indexOf('agreement A'); at >= 0; at = bytes.indexOf('agreement A', at + 1))
      places.push(at);
    expect(places.length).toBeGreaterThan(0);
    const fd = openSync(file, 'r+');
    for (const at of places) writeSync(fd, Buffer.from('agreement B'), 0, 11, at);
    closeSync(fd);
    clock += 10_000;
    const quick = await check.verify(o);
    expect(quick.run.mode).toBe('incremental');
    // A minute after the last full run: the whole log again, and the edit found.
    clock += 50_000;
    const full = await check.verify(o);
    expect(full.run).toMatchObject({ mode: 'full', from: 0, to: 41 });
    expect(full.verification.ok).toBe(false);
    expect(full.verification.firstBad?.seq).toBe(21);
  });

  it('a row appended by another connection, hashes and all, is found: its writer changed data_version', async () => {
    const db = new Database(join(dir, 'appended.db'));
    const log = new AuditAppender(db, 'router-a');
    append(log, 20);
    const anchor = checkpoint(log);
    const check = new AuditHealthCheck(db, { minFullIntervalMs: 0, fullWalk: 'inline' });
    const o = { anchor, hubKey: hub.publicKey, witnesses: [], minWitnesses: 0 };
    expect((await check.verify(o)).run.mode).toBe('full');
    expect((await check.verify(o)).run.mode).toBe('incremental');
    // Another router's appender on the same file, without the hub's head key: a well-formed
    // entry with its leaf hash, after the head the hub signed.
    const other = new Database(db.name);
    append(new AuditAppender(other, 'router-b'), 1);
    other.close();
    const r = await check.verify(o);
    expect(r.run.mode).toBe('full');
    expect(r.verification).toEqual(verifyAuditLog(db, o));
  });

  it('verifyWithKeys picks the key that signed the anchor, whatever its place', async () => {
    const db = new Database(join(dir, 'keys.db'));
    const log = new AuditAppender(db, 'router-a');
    append(log, 5);
    const anchor = checkpoint(log);
    const check = new AuditHealthCheck(db);
    const r = await check.verifyWithKeys({ anchor, witnesses: [], minWitnesses: 0 }, [
      otherHub.publicKey,
      hub.publicKey,
    ]);
    expect(r?.key).toBe(1);
    expect(r?.verification.ok).toBe(true);
    expect(
      await check.verifyWithKeys({ anchor, witnesses: [], minWitnesses: 0 }, []),
    ).toBeUndefined();
  });

  it('a first call before any checkpoint (no anchor) does not hold the answer for a minute once the first checkpoint comes', async () => {
    const db = new Database(join(dir, 'first.db'));
    const log = new AuditAppender(db, 'router-a', { head: signedHead });
    append(log, 5);
    const clock = Date.parse('2026-11-29T21:00:00Z');
    const check = new AuditHealthCheck(db, { now: () => new Date(clock) });
    const none = await check.verify({
      anchor: '',
      hubKey: hub.publicKey,
      witnesses: [],
      minWitnesses: 0,
    });
    expect(none.verification.problems.map((p) => p.code)).toEqual([VerifyProblem.AnchorInvalid]);
    const o = { anchor: checkpoint(log), hubKey: hub.publicKey, witnesses: [], minWitnesses: 0 };
    const r = await check.verify(o);
    expect(r.run.mode).toBe('full');
    expect(r.verification.ok).toBe(true);
    expect((await check.verify(o)).run.mode).toBe('incremental');
  });
});
