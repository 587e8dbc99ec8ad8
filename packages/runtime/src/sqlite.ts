import { closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DataPermissionsError } from './errors.js';

export type SqliteDatabase = Database.Database;

/** better-sqlite3's error class (`SQLITE_BUSY` and the rest). */
export const SqliteError = Database.SqliteError;

/** How hard SQLite syncs: FULL survives power loss in WAL mode; NORMAL survives only a crash. */
export type SqliteSync = 'FULL' | 'NORMAL';

/**
 * Makes `file`'s directory (0700) and the file (0600) private, creating them so, and refuses
 * with `ERR_DATA_PERMISSIONS` a directory or file that group or others can access. SQLite gives
 * its `-wal` and `-shm` files the database file's mode.
 */
export function ensurePrivateFile(file: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const dirMode = statSync(dir).mode;
  if ((dirMode & 0o077) !== 0) throw new DataPermissionsError(dir, dirMode, 'directory');
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  const mode = statSync(file).mode;
  if ((mode & 0o077) !== 0) throw new DataPermissionsError(file, mode, 'file');
}

/**
 * Opens a SQLite database in WAL mode with the hub's pragmas. Every row a consumer acks to
 * JetStream is committed first, so with `FULL` (the default) an acknowledged alert survives
 * even a power cut. A writable database is private: see {@link ensurePrivateFile}.
 */
export function openDatabase(
  file: string,
  options: { synchronous?: SqliteSync; readonly?: boolean } = {},
): SqliteDatabase {
  if (!options.readonly && file !== ':memory:') ensurePrivateFile(file);
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
