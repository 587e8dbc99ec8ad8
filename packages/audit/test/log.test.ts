import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import {
  AuditAppender,
  AuditEvent,
  Witness,
  type AuditIntegrityError,
  verifyAuditLog,
} from '@alert-hub/audit';
import { HUB_SEED, WITNESS, WITNESS_SEED, keyFromSeed } from './vectors.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-audit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ORIGIN = 'alert-hub/audit/unit';
const oldHub = { name: ORIGIN, ...keyFromSeed(HUB_SEED) };
const newHub = { name: ORIGIN, ...keyFromSeed('11'.repeat(32)) };
const witness = { name: WITNESS, ...keyFromSeed(WITNESS_SEED) };

function openLog(name: string) {
  const db = new Database(join(dir, name));
  return { db, log: new AuditAppender(db, 'router-a') };
}
function append(a: AuditAppender, n: number, at = new Date().toISOString()) {
  a.db
    .transaction(() =>
      a.append(
        Array.from({ length: n }, (_, i) => ({ event: AuditEvent.Received, streamSeq: i })),
        at,
      ),
    )
    .immediate();
}
function code(f: () => unknown): string {
  try {
    f();
    return 'ok';
  } catch (err) {
    return (err as AuditIntegrityError).code;
  }
}

describe('audit log - library', () => {
  it('a hub key superseded midway: the honest log verifies against an anchor signed by the new key', () => {
    const { db, log } = openLog('rotated.db');
    append(log, 10);
    expect(log.checkpoint(oldHub, ORIGIN)?.checkpoint.size).toBe(10);
    append(log, 5);
    const signed = log.checkpoint(newHub, ORIGIN)!;
    const w = new Witness({
      signer: witness,
      hubKeys: () => [newHub.publicKey],
      store: { load: () => undefined, save: () => undefined, keepEvidence: () => undefined },
    });
    const out = w.observe(Buffer.from(JSON.stringify({ checkpoint: signed.note, proofs: [] })));
    expect(out.kind).toBe('cosigned');
    const v = verifyAuditLog(db, {
      anchor: out.kind === 'cosigned' ? out.note : '',
      hubKey: newHub.publicKey,
      witnesses: [witness],
      minWitnesses: 1,
    });
    expect(v.problems).toEqual([]);
    expect(v.witnessed).toBe(15);
  });
  it('an insert a trigger swallows is noticed at once', () => {
    const { db, log } = openLog('trigger.db');
    append(log, 3);
    db.exec('CREATE TRIGGER drop_all BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END');
    expect(code(() => append(log, 1))).toBe('ERR_AUDIT_INTEGRITY');
  });
  it('an entry edited after it was written is refused before the next checkpoint is signed', () => {
    const { db, log } = openLog('edited.db');
    append(log, 3);
    db.prepare("UPDATE audit SET reason = 'x' WHERE seq = 2").run();
    expect(code(() => log.checkpoint(oldHub, ORIGIN))).toBe('ERR_AUDIT_INTEGRITY');
  });
  it('checkpoint - the re-read runs in slices that yield to the event loop, and signs the same tree', async () => {
    const sliced = openLog('sliced.db');
    const burst = openLog('burst.db');
    for (const { log } of [sliced, burst]) {
      append(log, 10, '2026-11-29T08:00:00.000Z');
      log.checkpoint(oldHub, ORIGIN);
      append(log, 300, '2026-11-29T08:00:05.000Z');
    }
    let yields = 0;
    const slices: number[] = [];
    await sliced.log.precheck({
      slice: 64,
      yield: async () => void yields++,
      onSlice: (ms) => slices.push(ms),
    });
    expect(slices).toHaveLength(5); // 300 entries: 64 + 64 + 64 + 64 + 44
    expect(yields).toBe(4);
    const a = sliced.log.checkpoint(oldHub, ORIGIN)!;
    const b = burst.log.checkpoint(oldHub, ORIGIN)!;
    expect(a.checkpoint.size).toBe(310);
    expect(a.note).toBe(b.note);
  });
  it('checkpoint - an entry edited by another connection after its slice was checked is refused before signing', async () => {
    const { db, log } = openLog('edited-after-slice.db');
    const other = new Database(db.name);
    append(log, 10);
    log.checkpoint(oldHub, ORIGIN);
    append(log, 100);
    await log.precheck({ slice: 64 });
    other.prepare("UPDATE audit SET reason = 'x' WHERE seq = 12").run();
    append(log, 3);
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - an entry edited by another connection between two slices is refused before signing', async () => {
    const { db, log } = openLog('edited-between-slices.db');
    const other = new Database(db.name);
    append(log, 100);
    let slices = 0;
    await log.precheck({
      slice: 10,
      onSlice: () => slices++,
      yield: async () => {
        if (slices === 2) other.prepare("UPDATE audit SET reason = 'x' WHERE seq = 5").run();
      },
    });
    expect(slices).toBe(3); // the third slice sees the file changed and leaves the rest to checkpoint
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - an entry before the last checkpoint deleted by another connection is refused at the next one', async () => {
    const { db, log } = openLog('deleted-old.db');
    const other = new Database(db.name);
    append(log, 10);
    log.checkpoint(oldHub, ORIGIN);
    other.prepare('DELETE FROM audit WHERE seq = 2').run();
    append(log, 5);
    await log.precheck();
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - the sliced re-read refuses an entry edited after it was written', async () => {
    const { db, log } = openLog('edited-precheck.db');
    append(log, 100);
    db.prepare("UPDATE audit SET recipient = 'X' WHERE seq = 70").run();
    await expect(log.precheck({ slice: 64 })).rejects.toMatchObject({
      code: 'ERR_AUDIT_INTEGRITY',
    });
  });
  it('a reopened log whose content no longer matches its hashes is refused at load', () => {
    const { db, log } = openLog('reopen.db');
    append(log, 3);
    db.prepare("UPDATE audit SET recipient = 'X' WHERE seq = 3").run();
    expect(code(() => new AuditAppender(db, 'router-a'))).toBe('ERR_AUDIT_INTEGRITY');
  });
});
