import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { hasTable, type SqliteDatabase } from './audit.js';
import { verifyAuditLog, type AuditVerification, type VerifyOptions } from './verify.js';

/** What the worker sends back. */
export interface WorkerWalk {
  readonly verification: AuditVerification;
  /** The largest checkpoint size stored when it walked. */
  readonly checkpointSize: number;
}

interface WorkerInput {
  readonly file: string;
  readonly options: VerifyOptions;
}

/**
 * This module, compiled: tests run the TypeScript sources, which a worker thread cannot load, so
 * from a source file the worker runs the build beside it (`npm run build` makes it).
 */
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../dist/verify-worker.js', import.meta.url)
  : new URL(import.meta.url);

/**
 * Runs {@link verifyAuditLog} over the database `file` in a worker thread, on its own read-only
 * connection: the walk costs the whole log, and the caller's event loop (the router's routing)
 * must not wait for it.
 */
export function verifyAuditLogInWorker(file: string, options: VerifyOptions): Promise<WorkerWalk> {
  return new Promise((resolve, reject) => {
    const w = new Worker(WORKER_URL, {
      // None of the parent's flags: a test runner's `--conditions` would send the build's
      // imports back to the sources.
      execArgv: [],
      workerData: { file, options } satisfies WorkerInput,
    });
    let settled = false;
    w.once('message', (m: WorkerWalk) => {
      settled = true;
      resolve(m);
    });
    w.once('error', (err) => {
      settled = true;
      reject(err);
    });
    w.once('exit', (code) => {
      if (!settled) reject(new Error(`the audit verification worker exited with code ${code}`));
    });
  });
}

/** The walk and the largest stored checkpoint, in one read transaction. */
export function walkAuditLog(db: SqliteDatabase, options: VerifyOptions): WorkerWalk {
  return db.transaction(() => {
    const verification = verifyAuditLog(db, options);
    const r = hasTable(db, 'checkpoints')
      ? (db.prepare('SELECT max(size) AS s FROM checkpoints').get() as { s: number | null })
      : undefined;
    return { verification, checkpointSize: r?.s ?? 0 };
  })();
}

if (!isMainThread && parentPort) {
  const input = workerData as WorkerInput;
  const o = input.options;
  const db = new Database(input.file, { readonly: true, fileMustExist: true });
  try {
    parentPort.postMessage(
      // Every option as given; only the keys, cloned as plain bytes, are Buffers again.
      walkAuditLog(db, {
        ...o,
        hubKey: Buffer.from(o.hubKey),
        witnesses: o.witnesses.map((w) => ({ ...w, publicKey: Buffer.from(w.publicKey) })),
      }),
    );
  } finally {
    db.close();
  }
}
