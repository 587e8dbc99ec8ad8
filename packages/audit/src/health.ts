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
  anchorTooOld,
  checkAnchor,
  describeAnchor,
  type AuditVerification,
  type VerifyOptions,
} from './verify.js';
import { verifyAuditLogInWorker, walkAuditLog, type WorkerWalk } from './verify-worker.js';

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
   * gets the last result (`mode: 'cached'`), unless that result lacked a usable anchor and the
   * anchor has changed since. Incremental runs are never limited.
   */
  readonly minFullIntervalMs?: number;
  /**
   * A full run is made again this long after the previous one (default 60 s), even when an
   * incremental run would do: what `data_version` cannot see (bytes of the file changed without
   * SQLite) is then found within this long.
   */
  readonly fullEveryMs?: number;
  readonly now?: () => Date;
  /**
   * Where a full walk runs: `worker` (the default for a database file) in a worker thread on its
   * own read-only connection, so the caller's event loop goes on meanwhile; `inline` on this
   * connection (the only choice for an in-memory database).
   */
  readonly fullWalk?: 'worker' | 'inline';
}

/** Leaves per block when the tree of a new clean state is computed, one block per turn. */
const PRIME_BLOCK = 4096;

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
 * exactly {@link verifyAuditLog}'s. Full runs are rate-limited ({@link AuditHealthOptions}), and
 * one is made again every `fullEveryMs` however sound the incremental runs were: a change to the
 * file's bytes made without SQLite leaves `data_version` alone and is found by that walk.
 *
 * Not covered, as with the appender: a change made through this very connection by the process
 * that holds it (which holds the hub key too).
 */
export class AuditHealthCheck {
  readonly #db: SqliteDatabase;
  readonly #minFullIntervalMs: number;
  readonly #fullEveryMs: number;
  readonly #now: () => Date;
  #clean: Clean | undefined;
  #last: { result: AuditVerification; at: Date; anchor: string } | undefined;
  #lastFull: Date | undefined;
  #inflight: Promise<{ verification: AuditVerification; run: HealthCheckRun }> | undefined;
  readonly #fullWalk: 'worker' | 'inline';
  /** Runs of each mode so far. */
  readonly runs = { full: 0, incremental: 0, cached: 0 };

  constructor(db: SqliteDatabase, options: AuditHealthOptions = {}) {
    this.#db = db;
    this.#minFullIntervalMs = options.minFullIntervalMs ?? 60_000;
    this.#fullEveryMs = options.fullEveryMs ?? 60_000;
    this.#now = options.now ?? (() => new Date());
    const file = db.memory ? '' : db.name;
    this.#fullWalk = file === '' ? 'inline' : (options.fullWalk ?? 'worker');
  }

  /**
   * {@link AuditHealthCheck.verify} under the first of `hubKeys` that signed the anchor (checked
   * first, which costs one signature each), or the first key when none did; returns its index.
   */
  verifyWithKeys(
    o: Omit<VerifyOptions, 'hubKey'>,
    hubKeys: readonly Buffer[],
  ): Promise<{ verification: AuditVerification; run: HealthCheckRun; key: number } | undefined> {
    if (hubKeys.length === 0) return Promise.resolve(undefined);
    let key = hubKeys.findIndex(
      (hubKey) =>
        !('code' in checkAnchor({ anchor: o.anchor, hubKey, witnesses: [], minWitnesses: 0 })),
    );
    if (key < 0) key = 0;
    return this.verify({ ...o, hubKey: hubKeys[key]! }).then((r) => ({ ...r, key }));
  }

  /**
   * Verifies the log against `o` (see {@link verifyAuditLog}); says what it read. An incremental
   * run happens at once, on this connection; a full walk runs in a worker thread (see
   * {@link AuditHealthOptions.fullWalk}), and calls meanwhile wait for the same walk.
   */
  verify(o: VerifyOptions): Promise<{ verification: AuditVerification; run: HealthCheckRun }> {
    const clean = this.#clean;
    const rewalk =
      this.#lastFull !== undefined &&
      this.#now().getTime() - this.#lastFull.getTime() >= this.#fullEveryMs;
    if (clean && clean.hubKey.equals(o.hubKey) && !rewalk) {
      const r = this.#db.transaction(() =>
        this.#dataVersion() === clean.dataVersion ? this.#incremental(o, clean) : undefined,
      )();
      if (r) {
        this.runs.incremental++;
        const at = this.#now();
        this.#last = { result: r.verification, at, anchor: o.anchor };
        this.#clean = r.clean;
        return Promise.resolve({
          verification: r.verification,
          run: { mode: 'incremental', from: clean.size, to: r.clean.size, checkedAt: at },
        });
      }
    }
    if (this.#inflight) return this.#inflight;
    const now = this.#now();
    if (
      this.#last &&
      this.#lastFull &&
      now.getTime() - this.#lastFull.getTime() < this.#minFullIntervalMs &&
      !this.#anchorNowUsable(o)
    ) {
      this.runs.cached++;
      return Promise.resolve({
        verification: this.#last.result,
        run: { mode: 'cached', from: 0, to: 0, checkedAt: this.#last.at },
      });
    }
    this.#clean = undefined;
    this.#lastFull = now;
    const walk = this.#full(o, now).finally(() => {
      this.#inflight = undefined;
    });
    this.#inflight = walk;
    return walk;
  }

  async #full(
    o: VerifyOptions,
    now: Date,
  ): Promise<{ verification: AuditVerification; run: HealthCheckRun }> {
    // Read before and after the walk: unchanged, every commit meanwhile came through this
    // connection (appends), so entries after the walk's end are read by the next run.
    const before = this.#dataVersion();
    const walked: WorkerWalk =
      this.#fullWalk === 'worker'
        ? await verifyAuditLogInWorker(this.#db.name, o)
        : walkAuditLog(this.#db, o);
    const { verification } = walked;
    this.runs.full++;
    this.#last = { result: verification, at: now, anchor: o.anchor };
    if (verification.problems.length === 0 && this.#dataVersion() === before) {
      const tree = this.#tree();
      await primeTree(tree, verification.entries);
      if (this.#dataVersion() === before)
        this.#clean = {
          dataVersion: before,
          hubKey: Buffer.from(o.hubKey),
          size: verification.entries,
          checkpointSize: walked.checkpointSize,
          tree,
        };
    }
    return {
      verification,
      run: { mode: 'full', from: 0, to: verification.entries, checkedAt: now },
    };
  }

  /**
   * The last answer was judged without a usable anchor (none yet: a hub before its first
   * checkpoint) and a new one has come: not a reason to wait for the next full walk.
   */
  #anchorNowUsable(o: VerifyOptions): boolean {
    const last = this.#last;
    if (!last || last.anchor === o.anchor) return false;
    return last.result.problems.some(
      (p) => p.code === 'ERR_ANCHOR_INVALID' || p.code === 'ERR_ANCHOR_NOT_WITNESSED',
    );
  }

  #dataVersion(): number {
    return this.#db.pragma('data_version', { simple: true }) as number;
  }

  #tree(): MerkleTree {
    const leaves = this.#db.prepare<[number, number], { hash: string }>(
      'SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq',
    );
    return new MerkleTree((start, end) =>
      leaves.all(start, end).map((r) => Buffer.from(r.hash, 'hex')),
    );
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
      // No head, entries past the anchor: the full check says the head was removed.
      if (!h && size > anchor.checkpoint.size) return undefined;
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
    // An anchor cosigned too long ago: the full check says so.
    if (anchorTooOld(o, anchor) !== undefined) return undefined;
    return {
      verification: {
        ok: true,
        entries: size,
        anchor: describeAnchor(anchor),
        witnessed: target.size,
        unwitnessed: Math.max(0, size - target.size),
        problems: [],
      },
      clean: { ...clean, size, checkpointSize },
    };
  }
}

/**
 * Computes the tree's complete blocks of {@link PRIME_BLOCK} leaves up to `size`, one block per
 * turn of the event loop, so that later roots cost O(log n) and computing them never holds the
 * loop for long.
 */
async function primeTree(tree: MerkleTree, size: number): Promise<void> {
  for (let start = 0; start + PRIME_BLOCK <= size; start += PRIME_BLOCK) {
    tree.hashRange(start, start + PRIME_BLOCK);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
