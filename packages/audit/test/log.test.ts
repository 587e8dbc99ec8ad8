import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import {
  AuditAppender,
  AuditEvent,
  Witness,
  cosignCheckpoint,
  headOrigin,
  hubCheckpoint,
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
  // As the router does: the head signed with every append.
  const head = () => ({ signer: oldHub, origin: ORIGIN });
  return { db, log: new AuditAppender(db, 'router-a', { head }) };
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
  it("a witness's cosignature dated more than ten minutes on (or beyond what a Date holds) does not count; one a little ahead reads as now", () => {
    const { db, log } = openLog('future-cosignature.db');
    append(log, 4);
    const signed = log.checkpoint(oldHub, ORIGIN)!;
    append(log, 2);
    const text = signed.note.slice(0, signed.note.indexOf('\n\n') + 1);
    const now = Date.parse('2026-12-02T03:00:00Z');
    const cosignedAt = (t: number) => `${signed.note}${cosignCheckpoint(text, witness, t)}\n`;
    const o = {
      hubKey: oldHub.publicKey,
      witnesses: [witness],
      minWitnesses: 1,
      maxAnchorAgeSeconds: 900,
      now,
    };
    const codes = (anchor: string) =>
      verifyAuditLog(db, { ...o, anchor }).problems.map((p) => p.code);
    // Year 287,000 and more: no Date holds it, and it is no cosignature.
    expect(codes(cosignedAt(9_000_000_000_000))).toEqual(['ERR_ANCHOR_NOT_WITNESSED']);
    expect(codes(cosignedAt(now / 1000 + 3_600))).toEqual(['ERR_ANCHOR_NOT_WITNESSED']);
    // Five minutes ahead (a clock): counted, as cosigned now.
    const ahead = verifyAuditLog(db, { ...o, anchor: cosignedAt(now / 1000 + 300) });
    expect(ahead.problems).toEqual([]);
    expect(ahead.anchor?.cosignedAt).toBe('2026-12-02T03:00:00.000Z');
    expect(ahead.unwitnessed).toBe(2);
    // With no witness required (the dashboard's health check), nothing throws either.
    expect(
      verifyAuditLog(db, { ...o, minWitnesses: 0, anchor: cosignedAt(9_000_000_000_000) }).ok,
    ).toBe(false);
  });
  it('an insert a trigger swallows is noticed at once', () => {
    const { db, log } = openLog('trigger.db');
    append(log, 3);
    db.exec('CREATE TRIGGER drop_all BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END');
    expect(code(() => append(log, 1))).toBe('ERR_AUDIT_INTEGRITY');
  });
  it('an entry edited by another connection after it was written is refused before the next checkpoint is signed', () => {
    const { db, log } = openLog('edited.db');
    const other = new Database(db.name);
    append(log, 3);
    other.prepare("UPDATE audit SET reason = 'x' WHERE seq = 2").run();
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - an entry edited by another connection after many were appended is refused, wherever it is', () => {
    const { db, log } = openLog('edited-after-many.db');
    const other = new Database(db.name);
    append(log, 10);
    log.checkpoint(oldHub, ORIGIN);
    append(log, 300);
    other.prepare("UPDATE audit SET reason = 'x' WHERE seq = 12").run();
    append(log, 3);
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - an entry before the last checkpoint deleted by another connection is refused at the next one', () => {
    const { db, log } = openLog('deleted-old.db');
    const other = new Database(db.name);
    append(log, 10);
    log.checkpoint(oldHub, ORIGIN);
    other.prepare('DELETE FROM audit WHERE seq = 2').run();
    append(log, 5);
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    other.close();
  });
  it('checkpoint - with no other writer nothing is re-read, and what it signs is the tree as written: an edit through its own connection is never signed, and verify finds it', () => {
    const { db, log } = openLog('own-connection.db');
    append(log, 10);
    const honest = log.root();
    // Only the router's own process could do this (it holds the connection, and the hub key).
    db.prepare("UPDATE audit SET reason = 'x' WHERE seq = 4").run();
    const signed = db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate()!;
    expect(signed.checkpoint.root.equals(honest)).toBe(true);
    const v = verifyAuditLog(db, {
      anchor: signed.note,
      hubKey: oldHub.publicKey,
      witnesses: [],
      minWitnesses: 0,
    });
    expect(v.ok).toBe(false);
    expect(v.firstBad?.seq).toBe(4);
  });
  it('a reopened log whose content no longer matches its hashes is refused at load', () => {
    const { db, log } = openLog('reopen.db');
    append(log, 3);
    db.prepare("UPDATE audit SET recipient = 'X' WHERE seq = 3").run();
    expect(code(() => new AuditAppender(db, 'router-a'))).toBe('ERR_AUDIT_INTEGRITY');
  });
  it('an entry numbered 0 or below, outside every range read, is refused at load and before the next checkpoint', () => {
    const { db, log } = openLog('seq-zero.db');
    const other = new Database(db.name);
    append(log, 3);
    log.checkpoint(oldHub, ORIGIN);
    const r = other.prepare('SELECT * FROM audit WHERE seq = 2').get() as Record<string, unknown>;
    other
      .prepare('INSERT INTO audit (seq, at, instance, event, hash) VALUES (0, ?, ?, ?, ?)')
      .run(r['at'], r['instance'], 'forwarded', r['hash']);
    append(log, 1);
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
    expect(code(() => new AuditAppender(db, 'router-a'))).toBe('ERR_AUDIT_INTEGRITY');
    other.close();
  });
  it('a checkpoint row not signed by a hub key at the size to sign: refused, never skipped', () => {
    const { db, log } = openLog('squatted.db');
    append(log, 3);
    db.prepare('INSERT INTO checkpoints (size, note) VALUES (3, ?)').run('garbage');
    expect(code(() => db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate())).toBe(
      'ERR_AUDIT_INTEGRITY',
    );
  });
  it('the head: every append stores a note of the size and root signed with the hub key', () => {
    const db = new Database(join(dir, 'head.db'));
    const log = new AuditAppender(db, 'router-a', {
      head: () => ({ signer: oldHub, origin: ORIGIN }),
    });
    expect(log.head()).toBeUndefined();
    append(log, 4);
    const head = hubCheckpoint(log.head()!, headOrigin(ORIGIN), [oldHub.publicKey]);
    expect(head?.size).toBe(4);
    expect(head?.root.equals(log.root())).toBe(true);
    expect(hubCheckpoint(log.head()!, headOrigin(ORIGIN), [newHub.publicKey])).toBeUndefined();
    // A head is not a checkpoint, nor a checkpoint a head: one cannot stand in for the other.
    expect(hubCheckpoint(log.head()!, ORIGIN, [oldHub.publicKey])).toBeUndefined();
    const checkHead = () =>
      code(() => db.transaction(() => log.checkHead(ORIGIN, [oldHub.publicKey], 2)).immediate());
    expect(checkHead()).toBe('ok');
    const published = db.transaction(() => log.checkpoint(oldHub, ORIGIN)).immediate()!;
    db.prepare('UPDATE audit_head SET note = ?').run(published.note);
    expect(checkHead()).toBe('ERR_AUDIT_INTEGRITY');
    // The head back, then the unpublished tail cut back: the head still names it.
    append(log, 2);
    db.prepare('DELETE FROM audit WHERE seq > 4').run();
    const reopened = new AuditAppender(db, 'router-a');
    expect(
      code(() =>
        db.transaction(() => reopened.checkHead(ORIGIN, [oldHub.publicKey], 4)).immediate(),
      ),
    ).toBe('ERR_AUDIT_INTEGRITY');
  });
  it('checkHead first takes in what another router sharing the file appended since this one loaded it', () => {
    const head = () => ({ signer: oldHub, origin: ORIGIN });
    const dbA = new Database(join(dir, 'shared-head.db'));
    const a = new AuditAppender(dbA, 'router-a', { head });
    append(a, 3);
    const dbB = new Database(dbA.name);
    const b = new AuditAppender(dbB, 'router-b', { head });
    append(a, 2); // while router B was starting
    expect(
      code(() => dbB.transaction(() => b.checkHead(ORIGIN, [oldHub.publicKey], 0)).immediate()),
    ).toBe('ok');
    expect(b.size).toBe(5);
    dbB.close();
  });
  it('a checkpoint a sharing router published after this one read the file is no removal once its entries are taken in', () => {
    const dbA = new Database(join(dir, 'shared-published.db'));
    const a = new AuditAppender(dbA, 'router-a');
    append(a, 3);
    const dbB = new Database(dbA.name);
    const b = new AuditAppender(dbB, 'router-b');
    append(a, 2);
    const published = dbA.transaction(() => a.checkpoint(oldHub, ORIGIN)).immediate()!;
    expect(code(() => b.checkAgainst(published.checkpoint))).toBe('ERR_AUDIT_INTEGRITY');
    expect(
      code(() =>
        dbB
          .transaction(() => {
            b.takeIn();
            b.checkAgainst(published.checkpoint);
          })
          .immediate(),
      ),
    ).toBe('ok');
    dbB.close();
  });
});
