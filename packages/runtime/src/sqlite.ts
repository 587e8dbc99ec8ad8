import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type SqliteDatabase = Database.Database;

/** better-sqlite3's error class (`SQLITE_BUSY` and the rest). */
export const SqliteError = Database.SqliteError;

/** How hard SQLite syncs: FULL survives power loss in WAL mode; NORMAL survives only a crash. */
export type SqliteSync = 'FULL' | 'NORMAL';

/**
 * Opens a SQLite database in WAL mode with the hub's pragmas. Every row a consumer acks to
 * JetStream is committed first, so with `FULL` (the default) an acknowledged alert survives
 * even a power cut.
 */
export function openDatabase(
  file: string,
  options: { synchronous?: SqliteSync; readonly?: boolean } = {},
): SqliteDatabase {
  if (!options.readonly && file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, {
    readonly: options.readonly ?? false,
    fileMustExist: options.readonly ?? false,
  });
  if (!options.readonly) {
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${options.synchronous ?? 'FULL'}`);
  }
  db.pragma('busy_timeout = 5000');
  db.pragma('foreign_keys = ON');
  return db;
}
