import {
  checkRecord,
  checkRoutes,
  checkSchema,
  entryBeforeFirst,
  hasTable,
  headOrigin,
  hubCheckpoint,
  iterateRecords,
  routeReader,
  type SqliteDatabase,
} from './audit.js';
import { MerkleTree } from './merkle.js';
import {
  checkAnchor,
  verifyAuditLog,
  type AuditVerification,
  type VerifyOptions,
} from './verify.js';

/** What one {@link AuditHealthCheck.verify} call read. */
export interface HealthCheckRun {
  /**
   * `full`: the whole log, as {@link verifyAuditLog}; `incremental`: only the entries appended
   * since the last run, and the checkpoints stored since; `cached`: nothing, the last full run's
   * result is returned because a full run is not due yet.
   */
  readonly mode: 'full' | 'incremental' | 'cached';
  /** Entries read by this run: `from` (exclusive) to `to` (inclusive); none when `cached`. */
  readonly from: number;
  readonly to: number;
  /** When the result was computed (for `cached`, by an earlier run). */
  readonly checkedAt: Date;
}

export interface AuditHealthOptions {
  /**
   * Full runs happen at most this often (default 60 s); in between, a call that would need one
   * gets the last result (`mode: 'cached'`). Incremental runs are never limited.
   */
  readonly minFullIntervalMs?: number;
  readonly now?: () => Date;
}

/** The state after a run whose log verified with no problem at all. */
interface Clean {
  readonly dataVersion: number;
  readonly hubKey: Buffer;
  readonly size: number;
  /** Largest checkpoint size seen stored (the router stores checkpoints in growing size). */
  readonly checkpointSize: number;
  readonly tree: MerkleTree;
}

/**
 * {@link verifyAuditLog} for a process that asks again and again (the dashboard's health check),
 * at a cost in the new entries rather than in the whole log.
 *
 * After a run that found the log sound, the next one reads only what was appended since, as long
 * as SQLite's `data_version` on this connection is unchanged: it changes whenever ANOTHER
 * connection commits (another process, another router sharing the file, someone editing it), so
 * while it holds, every change came through this connection, i.e. through the router's own
 * appender, which only inserts and checks each insert landed. Then the entries verified before
 * are as they were, and the new ones are checked as a full run checks them (content against leaf
 * hash, place, a routing decision's recipients); the anchor, the head the hub signed and the
 * checkpoints stored since are checked against the tree's roots, computed over leaf hashes the
 * runs verified (complete subtrees remembered, so a root costs O(log n)). Anything unusual
 * (another writer, a problem, a new hub key) makes the next run a full one, whose report is
 * exactly {@link verifyAuditLog}'s. Full runs are rate-limited ({@link AuditHealthOptions}).
 *
 * Not covered, as with the appender: a change made through this very connection by the process
 * that holds it (which holds the hub key too).
 */
export class AuditHealthCheck {
  readonly #db: SqliteDatabase;
  readonly #minFullIntervalMs: number;
  readonly #now: () => Date;
  #clean: Clean | undefined;
  #last: { result: AuditVerification; at: Date } | undefined;
  #lastFull: Date | undefined;
  /** Runs of each mode so far. */
  readonly runs = { full: 0, incremental: 0, cached: 0 };

  constructor(db: SqliteDatabase, options: AuditHealthOptions = {}) {
    this.#db = db;
    this.#minFullIntervalMs = options.minFullIntervalMs ?? 60_000;
    this.#now = options.now ?? (() => new Date());
  }

  /**
   * {@link AuditHealthCheck.verify} under the first of `hubKeys` that signed the anchor (checked
   * first, which costs one signature each), or the first key when none did; returns its index.
   */
  verifyWithKeys(
    o: Omit<VerifyOptions, 'hubKey'>,
    hubKeys: readonly Buffer[],
  ): { verification: AuditVerification; run: HealthCheckRun; key: number } | undefined {
    if (hubKeys.length === 0) return undefined;
    let key = hubKeys.findIndex(
      (hubKey) =>
        !('code' in checkAnchor({ anchor: o.anchor, hubKey, witnesses: [], minWitnesses: 0 })),
    );
    if (key < 0) key = 0;
    return { ...this.verify({ ...o, hubKey: hubKeys[key]! }), key };
  }

  /** Verifies the log against `o` (see {@link verifyAuditLog}); says what it read. */
  verify(o: VerifyOptions): { verification: AuditVerification; run: HealthCheckRun } {
    return this.#db.transaction(() => this.#verify(o))();
  }

  #verify(o: VerifyOptions): { verification: AuditVerification; run: HealthCheckRun } {
    const dataVersion = this.#db.pragma('data_version', { simple: true }) as number;
    const clean = this.#clean;
    if (clean && clean.dataVersion === dataVersion && clean.hubKey.equals(o.hubKey)) {
      const r = this.#incremental(o, clean);
      if (r) {
        this.runs.incremental++;
        const at = this.#now();
        this.#last = { result: r.verification, at };
        this.#clean = r.clean;
        return {
          verification: r.verification,
          run: { mode: 'incremental', from: clean.size, to: r.clean.size, checkedAt: at },
        };
      }
    }
    const now = this.#now();
    if (
      this.#last &&
      this.#lastFull &&
      now.getTime() - this.#lastFull.getTime() < this.#minFullIntervalMs
    ) {
      this.runs.cached++;
      return {
        verification: this.#last.result,
        run: { mode: 'cached', from: 0, to: 0, checkedAt: this.#last.at },
      };
    }
    const verification = verifyAuditLog(this.#db, o);
    this.runs.full++;
    this.#lastFull = now;
    this.#last = { result: verification, at: now };
    this.#clean =
      verification.problems.length === 0
        ? {
            dataVersion,
            hubKey: Buffer.from(o.hubKey),
            size: verification.entries,
            checkpointSize: this.#maxCheckpointSize(),
            tree: this.#tree(),
          }
        : undefined;
    return {
      verification,
      run: { mode: 'full', from: 0, to: verification.entries, checkedAt: now },
    };
  }

  #tree(): MerkleTree {
    const leaves = this.#db.prepare<[number, number], { hash: string }>(
      'SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq',
    );
    return new MerkleTree((start, end) =>
      leaves.all(start, end).map((r) => Buffer.from(r.hash, 'hex')),
    );
  }

  #maxCheckpointSize(): number {
    const r = this.#db.prepare('SELECT max(size) AS s FROM checkpoints').get() as {
      s: number | null;
    };
    return r.s ?? 0;
  }

  /** The run after a clean one, or undefined when a full run must decide. */
  #incremental(
    o: VerifyOptions,
    clean: Clean,
  ): { verification: AuditVerification; clean: Clean } | undefined {
    const anchor = checkAnchor(o);
    if ('code' in anchor) return undefined;
    if (checkSchema(this.#db).length > 0) return undefined;
    if (entryBeforeFirst(this.#db) !== undefined) return undefined;
    let size = clean.size;
    const routes = routeReader(this.#db);
    for (const r of iterateRecords(this.#db, clean.size)) {
      if (checkRecord(r, size + 1)) return undefined;
      if (r.event === 'routed' && checkRoutes(r, routes(r.seq))) return undefined;
      size = r.seq;
    }
    const { tree } = clean;
    const matches = (cp: { size: number; root: Buffer }) =>
      cp.size <= size && tree.root(cp.size).equals(cp.root);
    const origin = anchor.checkpoint.origin;
    // The head the hub signed with its last append: the log ends there, with its root.
    if (hasTable(this.#db, 'audit_head')) {
      const h = this.#db.prepare('SELECT note FROM audit_head').get() as
        { note: string } | undefined;
      const head = h && hubCheckpoint(h.note, headOrigin(origin), [o.hubKey]);
      if (head && (head.size !== size || !matches(head))) return undefined;
    }
    // Checkpoints stored since: those the hub key signed must be roots of this tree.
    let checkpointSize = clean.checkpointSize;
    for (const c of this.#db
      .prepare('SELECT size, note FROM checkpoints WHERE size > ? ORDER BY size')
      .all(clean.checkpointSize) as { size: number; note: string }[]) {
      const cp = hubCheckpoint(c.note, origin, [o.hubKey]);
      if (cp && (cp.size !== c.size || !matches(cp))) return undefined;
      checkpointSize = c.size;
    }
    const target = anchor.checkpoint;
    if (!matches(target)) return undefined;
    return {
      verification: {
        ok: true,
        entries: size,
        anchor: {
          origin: target.origin,
          size: target.size,
          root: target.root.toString('base64'),
          witnesses: anchor.witnesses,
        },
        witnessed: target.size,
        unwitnessed: Math.max(0, size - target.size),
        problems: [],
      },
      clean: { ...clean, size, checkpointSize },
    };
  }
}
