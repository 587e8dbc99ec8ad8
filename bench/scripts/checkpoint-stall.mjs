#!/usr/bin/env node
// How long one audit checkpoint holds the event loop: appends N entries to a fresh log, then
// signs a checkpoint as the router does. With `quiet` (the default) nothing else wrote to the
// file, so the appender signs without re-reading; with `other`, another connection commits to
// the file first, so the signing transaction counts the rows and re-reads and re-hashes the N
// entries, in one go. Prints, per round, the signing transaction's time. Run after
// `npm run build`.
// Usage: node bench/scripts/checkpoint-stall.mjs [N=2000] [rounds=3] [quiet|other]
import { Buffer } from 'node:buffer';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { AuditAppender, AuditEvent } from '@alert-hub/audit';
import { newKeyPair } from '@alert-hub/core';

const N = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 3);
const other = process.argv[4] === 'other';
const dir = mkdtempSync(join(tmpdir(), 'ahub-checkpoint-stall-'));
try {
  const db = new Database(join(dir, 'audit.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const log = new AuditAppender(db, 'router-a');
  db.exec('CREATE TABLE IF NOT EXISTS scratch (n INTEGER)');
  const another = new Database(join(dir, 'audit.db'));
  const { privateKey, publicKey } = newKeyPair('EdDSA');
  const signer = {
    name: 'alert-hub/audit/bench',
    privateKey,
    publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url'),
  };
  const detail = { copyId: 'x'.repeat(22), leaf: 'y'.repeat(120) };
  for (let r = 1; r <= rounds; r++) {
    db.transaction(() =>
      log.append(
        Array.from({ length: N }, (_, i) => ({
          event: AuditEvent.Forwarded,
          alertId: `alert-${r}-${i}`,
          origin: 'SG',
          type: 'seizure-report',
          recipient: 'VN',
          agreementId: 'BENCH',
          agreementVersion: 1,
          streamSeq: i,
          feedSeq: i,
          detail,
        })),
        new Date().toISOString(),
      ),
    ).immediate();
    if (other) another.prepare('INSERT INTO scratch (n) VALUES (?)').run(r);
    const started = performance.now();
    db.transaction(() => log.checkpoint(signer, signer.name)).immediate();
    const signing = performance.now() - started;
    console.log(
      `round ${r}: ${N} entries since the last checkpoint, ${other ? 'another connection wrote' : 'no other writer'}: signing transaction ${signing.toFixed(1)} ms`,
    );
  }
  another.close();
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
