import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { openDatabase } from '@alert-hub/runtime/files';
import { readingDatabase, writing } from '../files.js';
import { print } from '../output.js';

/**
 * `hubctl backup`: a consistent copy of a gateway inbox or router audit database while the
 * service runs (SQLite's online backup API: the copy is one point in time, WAL included), checked
 * with `PRAGMA integrity_check` before it is reported. The copy is one file (rollback-journal
 * mode): nothing beside it to forget.
 */
export function registerBackup(program: Command): void {
  program
    .command('backup')
    .description(
      'copy a gateway inbox or router audit database while the service runs (SQLite online backup), then check the copy',
    )
    .requiredOption('--db <file>', 'the live database (gateway-<agency>.db, audit.db)')
    .requiredOption('--out <file>', 'where the copy goes (must not exist)')
    .option('--json', 'print JSON')
    .action(async (o: { db: string; out: string; json?: boolean }) => {
      if (!existsSync(o.db))
        throw new HubctlError(HubctlErrorCode.Prerequisite, `no database at ${o.db}`);
      if (existsSync(o.out))
        throw new HubctlError(
          HubctlErrorCode.InputInvalid,
          `${o.out} exists: a backup never overwrites`,
        );
      // A file that is not a database is the input's fault, found before anything is written.
      const src = readingDatabase(() => openDatabase(o.db, { readonly: true }), o.db);
      try {
        await writing(async () => {
          mkdirSync(dirname(o.out), { recursive: true, mode: 0o700 });
          await src.backup(o.out);
        }, o.out);
      } finally {
        src.close();
      }
      // The copy holds alert text and audit records: private like the original.
      writing(() => chmodSync(o.out, 0o600), o.out);
      // One file to keep: the copy leaves WAL mode (which the source's header passed on), so that
      // checking it leaves no empty `-wal`/`-shm` beside it. A service opening a restored copy
      // puts it back in WAL mode.
      const copy = writing(() => {
        const db = openDatabase(o.out);
        db.pragma('journal_mode = DELETE');
        return db;
      }, o.out);
      try {
        const check = copy.pragma('integrity_check', { simple: true });
        const tables = (
          copy
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .all() as {
            name: string;
          }[]
        ).map((t) => t.name);
        const rows = Object.fromEntries(
          tables.map((t) => [
            t,
            (
              copy.prepare(`SELECT count(*) AS n FROM "${t.replace(/"/g, '""')}"`).get() as {
                n: number;
              }
            ).n,
          ]),
        );
        print(o.json, { db: o.db, out: o.out, integrity: check, rows }, [
          `backed up ${o.db} to ${o.out}: integrity ${String(check)}`,
          ...Object.entries(rows).map(([t, n]) => `  ${t}: ${n} rows`),
        ]);
        if (check !== 'ok') process.exitCode = 1;
      } finally {
        copy.close();
      }
    });
}
