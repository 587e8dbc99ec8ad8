#!/usr/bin/env node
// How long one audit checkpoint holds the event loop: appends N entries (the shape of a routed
// copy's entry) to a fresh log, then re-reads them as the router does before it signs: in slices
// (AuditAppender.precheck) and then the signing transaction. Prints, per round, the median and
// longest slice and the signing transaction's time. With `burst`, no slices: the signing
// transaction re-reads every entry itself, in one go, as every checkpoint did before the slices
// (less the row count, a scan of the whole log). Run after `npm run build`.
// Usage: node bench/scripts/checkpoint-stall.mjs [N=2000] [rounds=3] [sliced|burst]
import { Buffer } from 'node:buffer';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import { AuditAppender, AuditEvent } from '@alert-hub/audit';

const N = Number(process.argv[2] ?? 2000);
const rounds = Number(process.argv[3] ?? 3);
const burst = process.argv[4] === 'burst';
const dir = mkdtempSync(join(tmpdir(), 'ahub-checkpoint-stall-'));
try {
  const db = new Database(join(dir, 'audit.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  const log = new AuditAppender(db, 'router-a');
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
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
    const slices = [];
    if (!burst) await log.precheck({ onSlice: (ms) => slices.push(ms) });
    const started = performance.now();
    db.transaction(() => log.checkpoint(signer, signer.name)).immediate();
    const signing = performance.now() - started;
    slices.sort((a, b) => a - b);
    const sliced = burst
      ? 'no slices'
      : `${slices.length} slices, median ${slices[slices.length >> 1].toFixed(2)} ms, longest ${slices[slices.length - 1].toFixed(1)} ms, all ${slices.reduce((a, b) => a + b, 0).toFixed(1)} ms`;
    console.log(
      `round ${r}: ${N} entries since the last checkpoint: ${sliced}; signing transaction ${signing.toFixed(1)} ms`,
    );
  }
  db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
