#!/usr/bin/env node
// How long one durable SQLite commit blocks a service's main thread on this machine: the wall
// time of N one-row transactions (a 4 KB row and three indexes, about what a gateway's inbox
// commit writes) through @alert-hub/runtime's openDatabase (WAL), with synchronous=FULL (the
// services' default) and NORMAL. Every hop of the hub's path (intake, router, partner inbox)
// waits for one such commit, so its tail bounds the end-to-end p99 from below.
// Usage: node bench/scripts/commit-latency.mjs [N=2000]. Run after `npm run build`.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase } from '@alert-hub/runtime';

const n = Number(process.argv[2] ?? 2000);
const dir = mkdtempSync(join(tmpdir(), 'ahub-commit-latency-'));
try {
  for (const synchronous of ['FULL', 'NORMAL']) {
    const db = openDatabase(join(dir, `${synchronous}.db`), { synchronous });
    db.exec(`CREATE TABLE t (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, type TEXT, at TEXT, body BLOB);
      CREATE INDEX t_type ON t (type, seq); CREATE INDEX t_at ON t (at);`);
    const insert = db.prepare('INSERT INTO t (id, type, at, body) VALUES (?, ?, ?, ?)');
    const commit = db.transaction((i) =>
      insert.run(
        randomBytes(16).toString('hex'),
        `type-${i % 5}`,
        new Date().toISOString(),
        randomBytes(4096),
      ),
    );
    const ms = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      commit(i);
      ms.push(performance.now() - t0);
    }
    db.close();
    ms.sort((a, b) => a - b);
    const q = (p) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(2);
    console.log(
      `synchronous=${synchronous.padEnd(6)} ${n} commits: p50 ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${ms[ms.length - 1].toFixed(1)} ms`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
