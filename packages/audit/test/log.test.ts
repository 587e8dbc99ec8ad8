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
  it('a reopened log whose content no longer matches its hashes is refused at load', () => {
    const { db, log } = openLog('reopen.db');
    append(log, 3);
    db.prepare("UPDATE audit SET recipient = 'X' WHERE seq = 3").run();
    expect(code(() => new AuditAppender(db, 'router-a'))).toBe('ERR_AUDIT_INTEGRITY');
  });
});
