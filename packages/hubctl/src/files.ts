import { AlertHubError, type SchemaRegistry } from '@alert-hub/core';
import {
  loadAgreementsFile,
  type LoadedAgreements,
  type SqliteDatabase,
} from '@alert-hub/runtime/files';
import { HubctlError, HubctlErrorCode } from './errors.js';

/**
 * hubctl's reads and writes of files, each failure with its code as every failure of hubctl
 * (README: `hubctl: <what happened> [<ERR_CODE>]`): Node's own errors (ENOENT, EACCES, ENOTDIR),
 * a parser's (JSON, YAML) and SQLite's carry none. An alert-hub error passes unchanged: it has
 * its own code (`ERR_TRUST_STORE_INVALID`, `ERR_AGREEMENTS_INVALID`, ...).
 */

/**
 * `err` as a hubctl failure with `code`; the message names `file` when it does not already (a
 * parser's and SQLite's do not: `file is not a database`).
 */
function as(code: HubctlErrorCode, err: unknown, file?: string): unknown {
  if (err instanceof AlertHubError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new HubctlError(
    code,
    file === undefined || message.includes(file) ? message : `${file}: ${message}`,
  );
}

/**
 * `step`'s result, its failure thrown as `fail` makes it: of a step that returns a promise
 * (a database backup, certificates written), the promise's rejection too.
 */
function failingAs<T>(step: () => T, fail: (err: unknown) => unknown): T {
  let result: T;
  try {
    result = step();
  } catch (err) {
    throw fail(err);
  }
  if (!(result instanceof Promise)) return result;
  return result.catch((err: unknown) => {
    throw fail(err);
  }) as T;
}

/**
 * Reads a command's input: a file not there, not readable, or not what it must hold (not JSON,
 * YAML, a database) is `ERR_INPUT_INVALID`.
 */
export function reading<T>(read: () => T, file?: string): T {
  return failingAs(read, (err) => as(HubctlErrorCode.InputInvalid, err, file));
}

/**
 * Opens a database file a command reads, and reads its schema once: SQLite opens any file and
 * finds one that is not a database only when it first reads it, so that file is
 * `ERR_INPUT_INVALID` here, before the command does anything, and the database is closed.
 */
export function readingDatabase(open: () => SqliteDatabase, file: string): SqliteDatabase {
  return reading(() => {
    const db = open();
    try {
      db.prepare('SELECT count(*) FROM sqlite_master').get();
      return db;
    } catch (err) {
      db.close();
      throw err;
    }
  }, file);
}

/**
 * The agreements file, checked against the schemas and the trust store's `agencies`: a file not
 * there or not readable is `ERR_INPUT_INVALID`; one that is not YAML, or names an agreement that
 * is wrong, `ERR_AGREEMENTS_INVALID` (every place listed).
 */
export function readingAgreements(
  file: string,
  registry: SchemaRegistry,
  agencies: readonly string[],
): LoadedAgreements {
  return reading(() => loadAgreementsFile(file, registry, agencies), file);
}

/**
 * Writes what a command makes: a directory that cannot be made, a file that cannot be created,
 * written, renamed or removed is `ERR_OUTPUT_FAILED`.
 */
export function writing<T>(write: () => T, file?: string): T {
  return failingAs(write, (err) => as(HubctlErrorCode.OutputFailed, err, file));
}

/** The system calls that only read: listing a directory, reading, looking a file up. */
const READS = new Set(['scandir', 'opendir', 'read', 'stat', 'lstat', 'access', 'readlink']);

/**
 * A failure of a library call that reads what is there and then writes: failing to list or read
 * a directory or file, or a file that is not what it must be (JSON, a certificate), is
 * `ERR_INPUT_INVALID`; any other failure of the file system (making a directory, creating,
 * opening, renaming or changing a file: the libraries read only files they found there) is
 * `ERR_OUTPUT_FAILED`.
 */
function readOrWrite(err: unknown, dir: string | undefined): unknown {
  const syscall = (err as NodeJS.ErrnoException).syscall;
  return as(
    syscall === undefined || READS.has(syscall)
      ? HubctlErrorCode.InputInvalid
      : HubctlErrorCode.OutputFailed,
    err,
    dir,
  );
}

/**
 * `keys generate`, `rotate`, `revoke`: the trust store read, then keys and files written;
 * `certs dev`: the CA already there read, then certificates written.
 */
export function readingThenWriting<T>(step: () => T, dir?: string): T {
  return failingAs(step, (err) => readOrWrite(err, dir));
}
