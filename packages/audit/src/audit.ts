import { canonicalJson, parseRouteLeaf, rootAndInclusionProofs } from '@alert-hub/core';
import type Database from 'better-sqlite3';
import { CompactRange, MerkleTree, hashLeaf, isHash, rootFromInclusionProof } from './merkle.js';
import { rowsInserter } from './rows.js';
import {
  formatCheckpoint,
  parseCheckpoint,
  parseNote,
  signNote,
  verifyNote,
  type Checkpoint,
  type NoteSigner,
} from './note.js';

/** An open better-sqlite3 database (the router's audit database, or a copy of it). */
export type SqliteDatabase = Database.Database;

/** What an audit entry says happened. */
export const AuditEvent = {
  Received: 'received',
  /**
   * A routing decision, in one entry whatever the number of recipients: the alert was received
   * and its copies granted to the recipients of the route tree its `detail` commits to (the
   * recipients themselves are in `audit_routes`, beside the entry). Refusals stay `denied`
   * summaries; logs written before it hold a `received` entry and one `forwarded` per recipient.
   */
  Routed: 'routed',
  Forwarded: 'forwarded',
  Denied: 'denied',
  Rejected: 'rejected',
  DeadLettered: 'dead-lettered',
  AgreementsLoaded: 'agreements-loaded',
  /** A recipient's signed delivery receipt for the alert was verified. */
  Delivered: 'delivered',
  /**
   * The copy for a recipient was decided but its feed had no room: the router holds it and
   * forwards it (a `forwarded` entry) once there is.
   */
  Held: 'held',
  /** An operator requeued a dead letter: the router published its bytes again for routing. */
  Requeued: 'requeued',
} as const;
export type AuditEvent = (typeof AuditEvent)[keyof typeof AuditEvent];

/**
 * The `reasonCode` of the one `denied` entry that sums up a routing decision's near misses
 * (agencies party to an agreement with the sender that does not allow this alert):
 * `detail` is `{"codes": {<recipient>: <DENY_* code>, ...}, "counts": {<DENY_* code>: n, ...}}`.
 */
export const NEAR_MISSES = 'DENY_NEAR_MISSES';

/** An audit entry before it is appended. */
export interface AuditEntry {
  readonly event: AuditEvent;
  /** The alert id, verified (the origin's signature checked). */
  readonly alertId?: string | undefined;
  /** The id a refused message claims, never verified. */
  readonly claimedId?: string | undefined;
  readonly origin?: string | undefined;
  readonly type?: string | undefined;
  readonly handling?: string | undefined;
  readonly recipient?: string | undefined;
  readonly agreementId?: string | undefined;
  readonly agreementVersion?: number | undefined;
  readonly reasonCode?: string | undefined;
  readonly reason?: string | undefined;
  readonly streamSeq?: number | undefined;
  readonly feedSeq?: number | undefined;
  readonly detail?: unknown;
  /**
   * A `routed` entry's route tree: its root (which the countersignature signed) and leaves in
   * tree order, each with the feed sequence of its copy (null while the copy is held). The
   * appender writes `detail` from it and the leaves into `audit_routes`.
   */
  readonly routeTree?: RouteTreeRecord | undefined;
}

/** The route tree of one routing decision, as its `routed` entry records it. */
export interface RouteTreeRecord {
  /** RFC 9162 root of the leaves (32 bytes). */
  readonly root: Buffer;
  readonly leaves: readonly {
    readonly recipient: string;
    /** The leaf's canonical JSON text (docs/protocol.md §3.2). */
    readonly text: string;
    readonly feedSeq: number | null;
  }[];
}

/** One recipient of a routing decision, as `audit_routes` holds it. */
export interface AuditRoute {
  /** The leaf's index in the decision's route tree. */
  readonly index: number;
  readonly recipient: string;
  readonly agreementId: string;
  readonly agreementVersion: number;
  readonly onward: boolean;
  /** The feed stream sequence of the copy, or null while it is held (a `held` entry says why). */
  readonly feedSeq: number | null;
  /** The leaf's canonical JSON text, as the recipient's copy carries it. */
  readonly leaf: string;
}

/** A stored audit entry: its place in the log (`seq`, leaf index `seq - 1`) and its leaf hash. */
export interface AuditRecord {
  readonly seq: number;
  readonly at: string;
  readonly instance: string;
  readonly event: AuditEvent;
  readonly alertId: string | null;
  readonly claimedId: string | null;
  readonly origin: string | null;
  readonly type: string | null;
  readonly handling: string | null;
  readonly recipient: string | null;
  readonly agreementId: string | null;
  readonly agreementVersion: number | null;
  readonly reasonCode: string | null;
  readonly reason: string | null;
  readonly streamSeq: number | null;
  readonly feedSeq: number | null;
  /** Canonical JSON text, or null. */
  readonly detail: string | null;
  /** Hex SHA-256(0x00 || entry bytes): the RFC 9162 leaf hash. */
  readonly hash: string;
  /** A `routed` entry's recipients, in tree order, when the reader asked for them. */
  readonly routes?: readonly AuditRoute[];
  /** Instead of `routes`: why its rows in `audit_routes` are not the leaves it commits to. */
  readonly routesError?: string;
}

/** The first element of every entry's JSON array: the format and its version. */
export const ENTRY_FORMAT = 'alert-hub/audit-entry/v1';

/** The members an entry's bytes hold, in order, after {@link ENTRY_FORMAT}. */
export const HASHED_MEMBERS = [
  'seq',
  'at',
  'instance',
  'event',
  'alertId',
  'claimedId',
  'origin',
  'type',
  'handling',
  'recipient',
  'agreementId',
  'agreementVersion',
  'reasonCode',
  'reason',
  'streamSeq',
  'feedSeq',
  'detail',
] as const;

/**
 * The bytes of an entry, the Merkle tree's leaf: the UTF-8 of the JSON array
 * `[ENTRY_FORMAT, seq, at, instance, event, alertId, claimedId, origin, type, handling, recipient,
 * agreementId, agreementVersion, reasonCode, reason, streamSeq, feedSeq, detail]`, absent members
 * as `null`, serialised as RFC 8785 (JCS) does (no spaces; strings as JSON.stringify writes them).
 */
export function entryBytes(r: Omit<AuditRecord, 'hash' | 'routes' | 'routesError'>): Buffer {
  return Buffer.from(
    JSON.stringify([
      ENTRY_FORMAT,
      r.seq,
      r.at,
      r.instance,
      r.event,
      r.alertId,
      r.claimedId,
      r.origin,
      r.type,
      r.handling,
      r.recipient,
      r.agreementId,
      r.agreementVersion,
      r.reasonCode,
      r.reason,
      r.streamSeq,
      r.feedSeq,
      r.detail,
    ]),
    'utf8',
  );
}

/** The leaf hash of an entry (hex). */
export function hashRecord(r: Omit<AuditRecord, 'hash' | 'routes' | 'routesError'>): string {
  return hashLeaf(entryBytes(r)).toString('hex');
}

/**
 * The schema the router creates, object by object, exactly as SQLite stores it in
 * `sqlite_master`. `verifyAuditLog` refuses a database holding any trigger, view or index that is
 * not here, or any of these with other SQL.
 */
export const AUDIT_SCHEMA: readonly { type: string; name: string; table: string; sql: string }[] = [
  {
    type: 'table',
    name: 'audit',
    table: 'audit',
    sql: `CREATE TABLE audit (
  seq               INTEGER PRIMARY KEY,
  at                TEXT    NOT NULL,
  instance          TEXT    NOT NULL,
  event             TEXT    NOT NULL,
  alert_id          TEXT,
  claimed_id        TEXT,
  origin            TEXT,
  type              TEXT,
  handling          TEXT,
  recipient         TEXT,
  agreement_id      TEXT,
  agreement_version INTEGER,
  reason_code       TEXT,
  reason            TEXT,
  stream_seq        INTEGER,
  feed_seq          INTEGER,
  detail            TEXT,
  hash              TEXT    NOT NULL
)`,
  },
  {
    type: 'index',
    name: 'audit_alert',
    table: 'audit',
    sql: 'CREATE INDEX audit_alert ON audit (alert_id)',
  },
  {
    type: 'index',
    name: 'audit_claimed',
    table: 'audit',
    sql: 'CREATE INDEX audit_claimed ON audit (claimed_id)',
  },
  { type: 'index', name: 'audit_at', table: 'audit', sql: 'CREATE INDEX audit_at ON audit (at)' },
  {
    type: 'index',
    name: 'audit_origin',
    table: 'audit',
    sql: 'CREATE INDEX audit_origin ON audit (origin, at)',
  },
  {
    type: 'index',
    name: 'audit_recipient',
    table: 'audit',
    sql: 'CREATE INDEX audit_recipient ON audit (recipient, at)',
  },
  {
    type: 'table',
    name: 'checkpoints',
    table: 'checkpoints',
    sql: `CREATE TABLE checkpoints (
  size INTEGER PRIMARY KEY,
  note TEXT    NOT NULL
)`,
  },
  {
    type: 'table',
    name: 'audit_head',
    table: 'audit_head',
    sql: `CREATE TABLE audit_head (
  id   INTEGER PRIMARY KEY CHECK (id = 1),
  note TEXT    NOT NULL
)`,
  },
  {
    type: 'table',
    name: 'audit_routes',
    table: 'audit_routes',
    sql: `CREATE TABLE audit_routes (
  seq       INTEGER NOT NULL,
  idx       INTEGER NOT NULL,
  recipient TEXT    NOT NULL,
  feed_seq  INTEGER,
  leaf      TEXT    NOT NULL,
  PRIMARY KEY (seq, idx)
) WITHOUT ROWID`,
  },
];

/** Whether the database has table `name` (a log written before a table was added has not). */
export function hasTable(db: SqliteDatabase, name: string): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !==
    undefined
  );
}

/** Whether the database has the table of routing decisions' recipients (logs before it do not). */
export function hasRouteTable(db: SqliteDatabase): boolean {
  return hasTable(db, 'audit_routes');
}

function hasRoutingDecisions(db: SqliteDatabase): boolean {
  try {
    return db.prepare("SELECT 1 FROM audit WHERE event = 'routed' LIMIT 1").get() !== undefined;
  } catch {
    return false; // no audit table: reported as missing anyway
  }
}

/** The tables of the log (not the router's own state): what {@link checkSchema} guards. */
const LOG_TABLES = new Set(AUDIT_SCHEMA.filter((o) => o.type === 'table').map((o) => o.name));

/** Names of SQLite's table-valued functions, which a table of the same name would shadow. */
const SHADOWING = /^(json_each|json_tree|generate_series|dbstat|pragma_.*)$/i;

/**
 * Checks the database's schema against the router's, object by object: the log's tables and
 * indexes exactly as {@link AUDIT_SCHEMA}, no trigger, no view, no other index on the log's
 * tables, no virtual table and no table named as one of SQLite's table-valued functions. Returns
 * what is wrong (empty when nothing is).
 */
export function checkSchema(db: SqliteDatabase): string[] {
  const problems: string[] = [];
  const rows = db
    .prepare('SELECT type, name, tbl_name AS tbl, sql FROM sqlite_master ORDER BY type, name')
    .all() as { type: string; name: string; tbl: string; sql: string | null }[];
  const expected = new Map(AUDIT_SCHEMA.map((o) => [o.name, o]));
  for (const r of rows) {
    const want = expected.get(r.name);
    if (want) {
      if (want.type !== r.type || want.sql !== r.sql)
        problems.push(`${r.type} ${r.name} is not defined as the router defines it`);
      expected.delete(r.name);
      continue;
    }
    if (r.type === 'trigger')
      problems.push(`trigger ${r.name} on ${r.tbl}: the router creates no trigger`);
    else if (r.type === 'view') problems.push(`view ${r.name}: the router creates no view`);
    else if (r.type === 'index') {
      // The router's own state tables (routed alerts, deliveries, decisions) may have indexes of
      // their own; on the log's tables only the router's are allowed.
      if (LOG_TABLES.has(r.tbl))
        problems.push(`index ${r.name} on ${r.tbl}: not an index the router creates`);
    } else if (r.type === 'table' && (r.name.startsWith('audit') || r.name === 'checkpoints'))
      problems.push(`table ${r.name}: not a table the router creates`);
    else if (r.type === 'table' && SHADOWING.test(r.name))
      // A table takes the name of SQLite's table-valued function in every query that uses it:
      // `json_each` would make `query --partner` fail, or answer from the table's rows.
      problems.push(`table ${r.name}: shadows SQLite's function of that name`);
    else if (r.type === 'table' && /^\s*CREATE\s+VIRTUAL\b/i.test(r.sql ?? ''))
      problems.push(`virtual table ${r.name}: the router creates none`);
  }
  // A log written before routing decisions were one entry has no audit_routes: that is its
  // schema, as long as it holds no routing decision.
  if (expected.has('audit_routes') && !hasRoutingDecisions(db)) expected.delete('audit_routes');
  // A log written before the signed head has none; the router creates it at its next start (and
  // refuses a log whose unpublished entries no head covers).
  expected.delete('audit_head');
  for (const o of expected.values()) problems.push(`${o.type} ${o.name} is missing`);
  return problems;
}

/**
 * Creates the log's tables that are missing, each with its indexes (a database from before
 * `audit_routes` gets that table). An index missing from a table that exists is NOT created: the
 * schema check then refuses the database, since someone removed it.
 */
export function initAuditSchema(db: SqliteDatabase): void {
  const have = new Set(
    (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    ).map((r) => r.name),
  );
  const missing = AUDIT_SCHEMA.filter((o) => !have.has(o.table));
  if (missing.length === 0) return;
  db.transaction(() => {
    for (const o of missing) db.exec(o.sql);
  })();
}

/** A row of the `audit` table as SQLite returns it. */
export interface AuditRow {
  seq: number;
  at: string;
  instance: string;
  event: AuditEvent;
  alert_id: string | null;
  claimed_id: string | null;
  origin: string | null;
  type: string | null;
  handling: string | null;
  recipient: string | null;
  agreement_id: string | null;
  agreement_version: number | null;
  reason_code: string | null;
  reason: string | null;
  stream_seq: number | null;
  feed_seq: number | null;
  detail: string | null;
  hash: string;
}

export function toRecord(r: AuditRow): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    instance: r.instance,
    event: r.event,
    alertId: r.alert_id,
    claimedId: r.claimed_id,
    origin: r.origin,
    type: r.type,
    handling: r.handling,
    recipient: r.recipient,
    agreementId: r.agreement_id,
    agreementVersion: r.agreement_version,
    reasonCode: r.reason_code,
    reason: r.reason,
    streamSeq: r.stream_seq,
    feedSeq: r.feed_seq,
    detail: r.detail,
    hash: r.hash,
  };
}

function iterateRecordRows(db: SqliteDatabase, afterSeq: number): IterableIterator<AuditRow> {
  return db
    .prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq')
    .iterate(afterSeq) as IterableIterator<AuditRow>;
}

/** Reads every record in seq order without loading them all at once. */
export function iterateRecords(db: SqliteDatabase, afterSeq = 0): IterableIterator<AuditRecord> {
  const it = db
    .prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq')
    .iterate(afterSeq) as IterableIterator<AuditRow>;
  return (function* () {
    for (const r of it) yield toRecord(r);
  })();
}

/**
 * The database no longer holds what this router wrote or signed: an insert did not land, an
 * entry changed, entries vanished or appeared. The router stops routing and signs nothing more.
 */
export class AuditIntegrityError extends Error {
  readonly code = 'ERR_AUDIT_INTEGRITY';
  constructor(message: string) {
    super(message);
    this.name = 'AuditIntegrityError';
  }
}

/**
 * Appends entries to the log and signs checkpoints. It keeps the tree's right edge in memory,
 * built from the entries it verified at start and those it appended, so what it signs is what it
 * wrote, never what the file says now. Call {@link AuditAppender.append} inside a transaction
 * opened with `BEGIN IMMEDIATE`: routers on one host may share the database, and an appender
 * takes in the other's entries (hashing them from their content) before appending its own.
 */
export class AuditAppender {
  readonly #db: SqliteDatabase;
  readonly #instance: string;
  readonly #insert;
  readonly #insertRoutes;
  readonly #head;
  readonly #count;
  readonly #insertCheckpoint;
  readonly #storedCheckpoint;
  readonly #countAll;
  readonly #writeHead;
  readonly #readHead;
  readonly #headSigner: (() => { signer: NoteSigner; origin: string }) | undefined;
  readonly #vouchingKeys: ((fresh: boolean) => readonly Buffer[]) | undefined;
  #range = new CompactRange();
  /** Leaf hashes appended (or taken in) since the last checkpoint, by seq. */
  #pending = new Map<number, string>();
  #lastCheckpoint: Checkpoint | undefined;
  /**
   * SQLite's `data_version` as it was at the last full check of the database (at load, at a
   * checkpoint). It changes only when ANOTHER connection commits: while it is unchanged, every
   * change to the file came through this connection, i.e. through this appender's inserts, each
   * checked to have landed, so the row count is still right and every entry reads as written.
   */
  #quietVersion = Number.NaN;
  readonly #dataVersion: () => number;
  /** Proof computation over the stored leaf hashes, which start-up verified against content. */
  readonly tree: MerkleTree;

  /** False only to measure what the transparency log costs: no hashes, no checks, no checkpoints. */
  readonly transparency: boolean;

  constructor(
    db: SqliteDatabase,
    instance: string,
    options: {
      transparency?: boolean;
      /**
       * Signs the log's head (its size and root, as a checkpoint note stored in `audit_head`) in
       * the transaction of every append: entries a router did not write, appended while it was
       * stopped, are then told from those it wrote before a crash (see {@link AuditAppender.head}).
       */
      head?: () => { signer: NoteSigner; origin: string };
      /**
       * The hub keys that vouch for entries another router sharing the file appended (those the
       * router holds and the trust store counts; `fresh`: read again, asked once more before
       * failing, as a router sharing the file may have rotated first). With `head`, entries taken
       * in at run time must be covered by a head one of them signed, naming exactly the log with
       * them, size and root: rows inserted through SQLite by anyone else, hashes recomputed and
       * under another router's name, are refused before they could be signed into a checkpoint.
       */
      vouchingKeys?: (fresh: boolean) => readonly Buffer[];
    } = {},
  ) {
    this.#db = db;
    this.#instance = instance;
    this.transparency = options.transparency ?? true;
    this.#headSigner = options.head;
    this.#vouchingKeys = options.vouchingKeys;
    initAuditSchema(db);
    this.#insert = db.prepare(
      `INSERT INTO audit (seq, at, instance, event, alert_id, claimed_id, origin, type, handling, recipient, agreement_id, agreement_version, reason_code, reason, stream_seq, feed_seq, detail, hash)
       VALUES (@seq, @at, @instance, @event, @alertId, @claimedId, @origin, @type, @handling, @recipient, @agreementId, @agreementVersion, @reasonCode, @reason, @streamSeq, @feedSeq, @detail, @hash)`,
    );
    this.#insertRoutes = rowsInserter(
      db,
      'INSERT INTO audit_routes (seq, idx, recipient, feed_seq, leaf)',
      5,
    );
    this.#head = db.prepare<[], { seq: number | null }>('SELECT max(seq) AS seq FROM audit');
    this.#count = db.prepare<[number], { n: number; last: number | null }>(
      'SELECT count(*) AS n, max(seq) AS last FROM audit WHERE seq > ?',
    );
    this.#insertCheckpoint = db.prepare('INSERT INTO checkpoints (size, note) VALUES (?, ?)');
    this.#storedCheckpoint = db.prepare<[number], { note: string }>(
      'SELECT note FROM checkpoints WHERE size = ?',
    );
    // Every row, whatever its seq: an entry at seq 0 or below is outside every range read.
    this.#countAll = db.prepare<[], { n: number; first: number | null; last: number | null }>(
      'SELECT count(*) AS n, min(seq) AS first, max(seq) AS last FROM audit',
    );
    this.#writeHead = db.prepare(
      'INSERT INTO audit_head (id, note) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET note = excluded.note',
    );
    this.#readHead = db.prepare<[], { note: string }>('SELECT note FROM audit_head WHERE id = 1');
    this.#dataVersion = () => db.pragma('data_version', { simple: true }) as number;
    const leaves = db.prepare<[number, number], { hash: string }>(
      'SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq',
    );
    this.tree = new MerkleTree((start, end) =>
      leaves.all(start, end).map((r) => Buffer.from(r.hash, 'hex')),
    );
    if (this.transparency) {
      // A trigger, view or index of someone else's making, or an older format: refuse at once.
      const problems = checkSchema(db);
      if (problems.length > 0)
        throw new AuditIntegrityError(
          `the audit database's schema is not the one the router creates: ${problems.join('; ')}`,
        );
      this.#load();
    }
  }

  /** Reads the whole log once, checking every entry against its hash and its place. */
  #load(): void {
    this.#quietVersion = this.#dataVersion();
    const before = entryBeforeFirst(this.#db);
    if (before !== undefined)
      throw new AuditIntegrityError(`audit entry ${before}: ${BEFORE_FIRST}`);
    const range = new CompactRange();
    const routes = routeReader(this.#db);
    for (const r of iterateRecords(this.#db)) {
      const problem =
        checkRecord(r, range.size + 1) ??
        (r.event === AuditEvent.Routed ? checkRoutes(r, routes(r.seq)) : undefined);
      if (problem) throw new AuditIntegrityError(`audit entry ${problem.seq}: ${problem.problem}`);
      range.append(Buffer.from(r.hash, 'hex'));
    }
    const orphan = orphanRoute(this.#db);
    if (orphan !== undefined)
      throw new AuditIntegrityError(
        `audit entry ${orphan.seq}: ${orphan.pastEnd ? ROUTES_PAST_END : ORPHAN_ROUTES}`,
      );
    this.#range = range;
  }

  /** The number of entries this appender vouches for. */
  get size(): number {
    return this.#range.size;
  }

  /** The root hash of the log as this appender knows it. */
  root(): Buffer {
    return this.#range.root();
  }

  /** The last checkpoint this appender signed or was told about. */
  get lastCheckpoint(): Checkpoint | undefined {
    return this.#lastCheckpoint;
  }

  /**
   * Checks the database against a checkpoint published earlier (at start: the last one on
   * NATS, or the empty tree when none was ever published): the log must hold at least its size
   * and have its root there.
   */
  checkAgainst(c: Checkpoint): void {
    if (this.size < c.size)
      throw new AuditIntegrityError(
        `the database holds ${this.size} entries but checkpoint ${c.size} was published: entries were removed`,
      );
    if (!this.tree.root(c.size).equals(c.root))
      throw new AuditIntegrityError(
        `the first ${c.size} entries do not have the root of the published checkpoint: the log was rewritten`,
      );
    this.#lastCheckpoint = c;
    // Entries after it were verified against their content at load. The quiet version stays the
    // one read at load: a write by another connection since then makes the next checkpoint
    // check everything since this one.
    this.#pending = new Map();
    for (const r of iterateRecords(this.#db, c.size)) this.#pending.set(r.seq, r.hash);
  }

  /**
   * Takes in, checking each against its hash, the entries another router sharing the file
   * appended since this appender last read it (at start, before comparing the log with what was
   * published: that router may have published more meanwhile). Run inside a transaction.
   */
  takeIn(): void {
    if (this.transparency && (this.#head.get()?.seq ?? 0) > this.size) this.#catchUp();
  }

  /**
   * Takes in entries other routers sharing this database appended after ours: each must hash to
   * what it holds, and (with a head signer and vouching keys) the head stored with them must be
   * signed by a vouching hub key and name exactly the log with them, as a router writes it in the
   * transaction of its append. Nothing is taken in unless all of it passes.
   */
  #catchUp(): void {
    const range = this.#range.clone();
    const added: [number, string][] = [];
    for (const r of iterateRecords(this.#db, range.size)) {
      if (r.instance === this.#instance)
        throw new AuditIntegrityError(
          `audit entry ${r.seq} claims to be this router's (${this.#instance}) but it never wrote it`,
        );
      const problem = checkRecord(r, range.size + 1);
      if (problem) throw new AuditIntegrityError(`audit entry ${problem.seq}: ${problem.problem}`);
      range.append(Buffer.from(r.hash, 'hex'));
      added.push([r.seq, r.hash]);
    }
    if (added.length > 0 && this.#headSigner && this.#vouchingKeys) {
      const origin = headOrigin(this.#headSigner().origin);
      const text = this.head();
      const covers = (keys: readonly Buffer[]) => {
        const head = text === undefined ? undefined : hubCheckpoint(text, origin, keys);
        return head !== undefined && head.size === range.size && head.root.equals(range.root());
      };
      if (!covers(this.#vouchingKeys(false)) && !covers(this.#vouchingKeys(true)))
        throw new AuditIntegrityError(
          `audit entries ${this.size + 1}..${range.size} appeared under another router's name but no head signed by a hub key this router holds covers them: they were not written by a router`,
        );
    }
    this.#range = range;
    for (const [seq, hash] of added) this.#pending.set(seq, hash);
  }

  /** Appends entries after the current head; must run inside an immediate transaction. */
  append(entries: readonly AuditEntry[], at: string): void {
    if (!this.transparency) return this.#appendPlain(entries, at);
    const head = this.#head.get()?.seq ?? 0;
    if (head < this.size)
      throw new AuditIntegrityError(
        `the database ends at entry ${head} but this router holds ${this.size}: entries were removed`,
      );
    if (head > this.size) this.#catchUp();
    const first = this.size + 1;
    const range = this.#range.clone();
    const added: [number, string][] = [];
    for (const e of entries) {
      const base = {
        seq: range.size + 1,
        at,
        instance: this.#instance,
        event: e.event,
        alertId: e.alertId ?? null,
        claimedId: e.claimedId ?? null,
        origin: e.origin ?? null,
        type: e.type ?? null,
        handling: e.handling ?? null,
        recipient: e.recipient ?? null,
        agreementId: e.agreementId ?? null,
        agreementVersion: e.agreementVersion ?? null,
        reasonCode: e.reasonCode ?? null,
        reason: e.reason ?? null,
        streamSeq: e.streamSeq ?? null,
        feedSeq: e.feedSeq ?? null,
        detail: entryDetail(e),
      };
      const leaf = hashLeaf(entryBytes(base));
      const hash = leaf.toString('hex');
      if (this.#insert.run({ ...base, hash }).changes !== 1)
        throw new AuditIntegrityError(`audit entry ${base.seq} was not stored (a trigger?)`);
      const leaves = e.routeTree?.leaves ?? [];
      const stored = this.#insertRoutes(
        leaves.map((l, i) => [base.seq, i, l.recipient, l.feedSeq, l.text]),
      );
      if (stored !== leaves.length)
        throw new AuditIntegrityError(
          `${stored} of the ${leaves.length} routes of audit entry ${base.seq} were stored (a trigger?)`,
        );
      range.append(leaf);
      added.push([base.seq, hash]);
    }
    // Every insert landed, and nothing else appeared or vanished behind them.
    const c = this.#count.get(first - 1);
    if (c?.n !== entries.length || (entries.length > 0 && c.last !== range.size))
      throw new AuditIntegrityError(
        `after appending entries ${first}..${range.size} the database holds ${c?.n ?? 0} entries from ${first}: an insert did not land as written`,
      );
    if (this.#headSigner) {
      const { signer, origin } = this.#headSigner();
      const name = headOrigin(origin);
      const text = formatCheckpoint({ origin: name, size: range.size, root: range.root() });
      if (this.#writeHead.run(signNote(text, { ...signer, name })).changes !== 1)
        throw new AuditIntegrityError(`the head of audit entry ${range.size} was not stored`);
    }
    this.#range = range;
    for (const [s, h] of added) this.#pending.set(s, h);
  }

  /**
   * The signed head stored with the last append (a note of the log's size and root under the
   * origin {@link headOrigin}, never published), or undefined for a log written before heads or
   * with none yet.
   */
  head(): string | undefined {
    return this.#readHead.get()?.note;
  }

  /**
   * Checks the log against its signed head (at start, and run inside an immediate transaction):
   * entries another router sharing the file appended meanwhile are taken in first, then the head
   * must be a note of log `origin` signed by one of `hubKeys` naming exactly the log's size and
   * root. Without a head, only a log whose every entry is in the checkpoint published last
   * (`published` entries) passes: one written before heads. Throws {@link AuditIntegrityError}.
   */
  checkHead(origin: string, hubKeys: readonly Buffer[], published: number): void {
    if (!this.transparency) return;
    if ((this.#head.get()?.seq ?? 0) > this.size) this.#catchUp();
    const text = this.head();
    if (text === undefined) {
      if (this.size === published) return;
      throw new AuditIntegrityError(
        `entries ${published + 1}..${this.size} were never published and no head signed by a hub key covers them: they were not written by a router`,
      );
    }
    const head = hubCheckpoint(text, headOrigin(origin), hubKeys);
    if (head === undefined)
      throw new AuditIntegrityError(
        'the stored head is not signed by a hub key: the audit_head table was written by someone else',
      );
    if (head.size < this.size)
      throw new AuditIntegrityError(
        `entries ${head.size + 1}..${this.size} were appended after the last head a router signed: not written by a router`,
      );
    if (head.size > this.size)
      throw new AuditIntegrityError(
        `the head a router signed holds ${head.size} entries but the log ${this.size}: entries were removed`,
      );
    if (!head.root.equals(this.root()))
      throw new AuditIntegrityError(
        `the ${this.size} entries do not have the root of the head a router signed: an entry was changed`,
      );
  }

  /** The benchmark's baseline: the same rows, without leaf hashes or checks. */
  #appendPlain(entries: readonly AuditEntry[], at: string): void {
    let seq = this.#head.get()?.seq ?? 0;
    for (const e of entries) {
      this.#insertRoutes(
        (e.routeTree?.leaves ?? []).map((l, i) => [seq + 1, i, l.recipient, l.feedSeq, l.text]),
      );
      this.#insert.run({
        seq: ++seq,
        at,
        instance: this.#instance,
        event: e.event,
        alertId: e.alertId ?? null,
        claimedId: e.claimedId ?? null,
        origin: e.origin ?? null,
        type: e.type ?? null,
        handling: e.handling ?? null,
        recipient: e.recipient ?? null,
        agreementId: e.agreementId ?? null,
        agreementVersion: e.agreementVersion ?? null,
        reasonCode: e.reasonCode ?? null,
        reason: e.reason ?? null,
        streamSeq: e.streamSeq ?? null,
        feedSeq: e.feedSeq ?? null,
        detail: entryDetail(e),
        hash: '',
      });
    }
  }

  /** Entries appended since the last checkpoint. */
  get sinceCheckpoint(): number {
    return this.#pending.size;
  }

  /** Checks that entries `from + 1 .. to` are in the database, in order, exactly as written. */
  #checkEntries(rows: IterableIterator<AuditRow>, from: number, to: number): void {
    let seq = from;
    for (const row of rows) {
      const r = toRecord(row);
      const expected = this.#pending.get(r.seq);
      const problem = checkRecord(r, seq + 1);
      if (problem || expected === undefined || expected !== r.hash)
        throw new AuditIntegrityError(
          `audit entry ${problem?.seq ?? r.seq} changed after it was written: ${problem?.problem ?? 'its hash differs'}`,
        );
      seq = r.seq;
    }
    if (seq !== to)
      throw new AuditIntegrityError(
        `audit entries ${seq + 1}..${to} are missing: removed after they were written`,
      );
  }

  /**
   * Signs a checkpoint of the log as this appender knows it and stores the note, after checking
   * the database when it may hold what this appender did not write. Must run inside an immediate
   * transaction. Returns the signed note, or undefined when there is nothing new.
   *
   * If another connection committed to the file since the last full check (SQLite's
   * `data_version`, read here under the transaction's lock, changed: another process, another
   * router sharing the file), it counts the rows and re-reads and re-hashes every entry since the
   * last checkpoint before it signs. If none did, every change since then came through this
   * appender's own inserts, each checked to have landed, and there is nothing to re-read. Either
   * way it signs the tree it holds in memory, never what the file says.
   */
  checkpoint(
    signer: NoteSigner,
    origin: string,
    /**
     * The hub's checkpoint keys (raw Ed25519): a checkpoint already stored at this size must be
     * signed by one of them (another router sharing the database), or the router fails closed.
     * Without it, the signer's own key.
     */
    hubKeys: readonly Buffer[] = [signer.publicKey],
  ): { checkpoint: Checkpoint; note: string } | undefined {
    if (!this.transparency) return undefined;
    const version = this.#dataVersion();
    const head = this.#head.get()?.seq ?? 0;
    if (head > this.size) this.#catchUp();
    const since = this.#lastCheckpoint?.size ?? 0;
    if (this.size === since || this.size === 0) return undefined;
    if (version !== this.#quietVersion) {
      const c = this.#countAll.get();
      if (c?.n !== this.size || c.last !== this.size || c.first !== 1)
        throw new AuditIntegrityError(
          `the database holds ${c?.n ?? 0} entries (last ${c?.last ?? 0}) where ${this.size} were written: entries were removed or inserted`,
        );
      this.#checkEntries(iterateRecordRows(this.#db, since), since, this.size);
      this.#quietVersion = version;
    }
    const checkpoint = { origin, size: this.size, root: this.root() };
    const existing = this.#storedCheckpoint.get(checkpoint.size);
    if (existing) {
      // Another router sharing this database signed this very size: it must be a hub-signed
      // checkpoint of this log, of this tree. Anything else was put there by someone without the
      // hub key (to keep this size from ever being published): the router fails closed.
      const stored = hubCheckpoint(existing.note, origin, hubKeys);
      if (stored === undefined || stored.size !== checkpoint.size)
        throw new AuditIntegrityError(
          `the checkpoint stored at size ${checkpoint.size} is not signed by a hub key: the checkpoints table was written by someone else`,
        );
      if (!stored.root.equals(checkpoint.root))
        throw new AuditIntegrityError(
          `a checkpoint of size ${checkpoint.size} with another root is stored: the log forked`,
        );
      this.#lastCheckpoint = checkpoint;
      this.#pending = new Map();
      return undefined;
    }
    const note = signNote(formatCheckpoint(checkpoint), signer);
    this.#insertCheckpoint.run(checkpoint.size, note);
    this.#lastCheckpoint = checkpoint;
    this.#pending = new Map();
    return { checkpoint, note };
  }

  get db(): SqliteDatabase {
    return this.#db;
  }
}

/**
 * The origin of the log's head (`<origin>/head`): signed like a checkpoint, under another name,
 * so that neither can stand in for the other.
 */
export function headOrigin(origin: string): string {
  return `${origin}/head`;
}

/** What {@link entryBeforeFirst} found. */
export const BEFORE_FIRST =
  'an entry numbered before the first (seq 0 or below) is outside the log: inserted';

/** The lowest seq below 1 in the log, if any: entry 1 is the first, always. */
export function entryBeforeFirst(db: SqliteDatabase): number | undefined {
  const r = db.prepare('SELECT min(seq) AS s FROM audit WHERE seq < 1').get() as {
    s: number | null;
  };
  return r.s ?? undefined;
}

/**
 * The checkpoint a note holds if it is one of log `origin` signed by one of `hubKeys` (raw
 * Ed25519), else undefined.
 */
export function hubCheckpoint(
  text: string,
  origin: string,
  hubKeys: readonly Buffer[],
): Checkpoint | undefined {
  try {
    const note = parseNote(text);
    const cp = parseCheckpoint(note.text);
    if (cp.origin !== origin) return undefined;
    for (const publicKey of hubKeys) {
      try {
        verifyNote(note, { name: origin, publicKey });
        return cp;
      } catch {
        // not this key
      }
    }
    return undefined;
  } catch {
    return undefined;
  }
}

/** What is wrong with a record read at position `expectedSeq`, if anything. */
export function checkRecord(
  r: AuditRecord,
  expectedSeq: number,
): { seq: number; problem: string } | undefined {
  if (r.seq !== expectedSeq)
    return r.seq > expectedSeq
      ? { seq: expectedSeq, problem: `missing (the next entry is ${r.seq}): deleted` }
      : { seq: r.seq, problem: `out of order (expected ${expectedSeq})` };
  if (hashRecord(r) !== r.hash)
    return { seq: r.seq, problem: 'its content does not match its leaf hash: edited' };
  return undefined;
}

/**
 * An entry's `detail` column: canonical JSON of its detail, or for a `routed` entry of its route
 * tree, `{"feeds": [...], "root": "<base64url>", "size": n}` (no `root` when `size` is 0).
 */
function entryDetail(e: AuditEntry): string | null {
  if (e.routeTree !== undefined || e.event === AuditEvent.Routed) {
    const leaves = e.routeTree?.leaves ?? [];
    return canonicalJson(
      leaves.length === 0
        ? { feeds: [], size: 0 }
        : {
            feeds: leaves.map((l) => l.feedSeq),
            root: e.routeTree!.root.toString('base64url'),
            size: leaves.length,
          },
    );
  }
  return e.detail === undefined ? null : canonicalJson(e.detail);
}

/** A row of `audit_routes` as SQLite returns it. */
export interface AuditRouteRow {
  idx: number;
  recipient: string;
  feed_seq: number | null;
  leaf: string;
}

/** Reads the `audit_routes` rows of one entry, in tree order. */
export function routeReader(db: SqliteDatabase): (seq: number) => AuditRouteRow[] {
  if (!hasRouteTable(db)) return () => [];
  const st = db.prepare<[number], AuditRouteRow>(
    'SELECT idx, recipient, feed_seq, leaf FROM audit_routes WHERE seq = ? ORDER BY idx',
  );
  return (seq) => st.all(seq);
}

/** The recipients of a `routed` entry from its rows (leaves parsed; call after {@link checkRoutes}). */
export function toRoutes(rows: readonly AuditRouteRow[]): AuditRoute[] {
  return rows.map((row) => {
    const leaf = parseRouteLeaf(Buffer.from(row.leaf, 'utf8'));
    return {
      index: row.idx,
      recipient: row.recipient,
      agreementId: leaf.agreement.id,
      agreementVersion: leaf.agreement.version,
      onward: leaf.onward,
      feedSeq: row.feed_seq,
      leaf: row.leaf,
    };
  });
}

/** Attaches their recipients to the `routed` records among `records`. */
export function withRoutes(db: SqliteDatabase, records: readonly AuditRecord[]): AuditRecord[] {
  if (!records.some((r) => r.event === AuditEvent.Routed)) return [...records];
  const read = routeReader(db);
  return records.map((r) => {
    if (r.event !== AuditEvent.Routed) return r;
    // A route that does not read as one is shown as such, never as "no recipient".
    const rows = read(r.seq);
    const problem = checkRoutes(r, rows);
    return problem ? { ...r, routesError: problem.problem } : { ...r, routes: toRoutes(rows) };
  });
}

/** What {@link orphanRoute} found. */
export const ORPHAN_ROUTES = 'a route in audit_routes belongs to no routed entry: inserted';
/** What {@link orphanRoute} found past the log's last entry. */
export const ROUTES_PAST_END =
  'routes remain of entries past the end of the log: entries were removed from the end';

/**
 * The first row of `audit_routes` that belongs to no `routed` entry, if there is one: within the
 * log (a route inserted, or an entry's event changed), or past its last entry (what is left of
 * entries removed from the end).
 */
export function orphanRoute(db: SqliteDatabase): { seq: number; pastEnd: boolean } | undefined {
  if (!hasRouteTable(db)) return undefined;
  const row = db
    .prepare(
      `SELECT r.seq AS seq, r.seq > (SELECT coalesce(max(seq), 0) FROM audit) AS pastEnd
         FROM audit_routes r LEFT JOIN audit a ON a.seq = r.seq
        WHERE a.event IS NOT 'routed' ORDER BY r.seq LIMIT 1`,
    )
    .get() as { seq: number; pastEnd: number } | undefined;
  return row && { seq: row.seq, pastEnd: row.pastEnd === 1 };
}

/** What a `routed` entry's `detail` holds (docs/protocol.md §8.1). */
export interface RoutedDetail {
  readonly feeds: readonly (number | null)[];
  /** Base64url of the route tree's root; absent when `size` is 0. */
  readonly root?: string;
  readonly size: number;
}

/**
 * A `routed` record's detail, read and shape-checked: `size` a non-negative integer, `feeds` an
 * array of `size` items, `root` a string exactly when `size` is not 0. Undefined for anything
 * else (the hashed detail then does not describe a route tree).
 */
export function routedDetail(r: Pick<AuditRecord, 'detail'>): RoutedDetail | undefined {
  let d: { feeds?: unknown; root?: unknown; size?: unknown } | null;
  try {
    d = JSON.parse(r.detail ?? 'null') as typeof d;
  } catch {
    return undefined;
  }
  if (typeof d !== 'object' || d === null || Array.isArray(d)) return undefined;
  const { feeds, root, size } = d;
  if (
    typeof size !== 'number' ||
    !Number.isSafeInteger(size) ||
    size < 0 ||
    !Array.isArray(feeds) ||
    feeds.length !== size ||
    (size === 0 ? root !== undefined : typeof root !== 'string')
  )
    return undefined;
  return d as RoutedDetail;
}

/**
 * What is wrong with a `routed` entry's recipients, if anything: the rows in `audit_routes`
 * must be exactly the leaves of the tree its (hashed) `detail` commits to: as many as `size`,
 * indexes 0..size-1, each leaf canonical (docs/protocol.md §3.2) with its own index and the row's
 * recipient, in recipient order, each row's feed sequence the one `detail.feeds` lists, and the
 * leaves' RFC 9162 root equal to `detail.root`. Entries of other events have no routes.
 */
export function checkRoutes(
  r: AuditRecord,
  rows: readonly AuditRouteRow[],
): { seq: number; problem: string } | undefined {
  const bad = (problem: string) => ({ seq: r.seq, problem });
  if (r.event !== AuditEvent.Routed)
    return rows.length === 0
      ? undefined
      : bad('audit_routes holds routes for an entry that is not a routing decision: inserted');
  const detail = routedDetail(r);
  if (!detail) return bad('its detail is not {feeds, root, size} of a route tree');
  const { size } = detail;
  if (rows.length !== size)
    return bad(
      `its route tree has ${size} leaves but audit_routes holds ${rows.length}: routes were removed or inserted`,
    );
  const range = new CompactRange();
  let previous: string | undefined;
  for (const [i, row] of rows.entries()) {
    if (row.idx !== i) return bad(`route ${i} is missing from audit_routes`);
    let leaf;
    try {
      leaf = parseRouteLeaf(Buffer.from(row.leaf, 'utf8'));
    } catch {
      return bad(`route ${i}: its leaf is not a canonical route leaf: edited`);
    }
    if (leaf.index !== i || leaf.recipient !== row.recipient)
      return bad(`route ${i}: its leaf names another index or recipient than its row: edited`);
    if (previous !== undefined && !(previous < row.recipient))
      return bad(`route ${i}: the leaves are not in recipient order`);
    previous = row.recipient;
    if (row.feed_seq !== detail.feeds[i])
      return bad(`route ${i}: its feed sequence is not the one the entry records: edited`);
    range.append(hashLeaf(Buffer.from(row.leaf, 'utf8')));
  }
  if (size > 0 && range.root().toString('base64url') !== detail.root)
    return bad('its routes do not hash to the route tree root it records: edited');
  return undefined;
}

/**
 * A recipient's proof that a routing decision granted it its copy: its leaf (the one its copy
 * carries), the leaf's index, and the inclusion path of the leaf in the decision's route tree,
 * whose root the `routed` entry records. Together with the entry's own inclusion proof in the
 * log it is a two-level proof that shows the recipient no other recipient.
 */
export interface RouteInclusion {
  readonly leaf: string;
  readonly index: number;
  /** Base64 (standard) hashes, in RFC 9162 order. */
  readonly path: readonly string[];
}

/**
 * The route inclusion proof of `recipient` in the `routed` entry `seq`, if the decision put a copy
 * for it on its feed (a held copy's forward is a `forwarded` entry of its own, later).
 */
export function routeInclusion(
  db: SqliteDatabase,
  seq: number,
  recipient: string,
): RouteInclusion | undefined {
  const rows = routeReader(db)(seq);
  const index = rows.findIndex((r) => r.recipient === recipient);
  if (index < 0 || rows[index]!.feed_seq === null) return undefined;
  const { proofs } = rootAndInclusionProofs(rows.map((r) => hashLeaf(Buffer.from(r.leaf, 'utf8'))));
  return {
    leaf: rows[index]!.leaf,
    index,
    path: proofs[index]!.map((h) => h.toString('base64')),
  };
}

/**
 * Checks a {@link RouteInclusion} against a `routed` record: the leaf is canonical, names
 * `recipient` at `index`, and its path leads to the root the record's detail holds. Returns what
 * is wrong, or undefined.
 */
export function verifyRouteInclusion(
  record: AuditRecord,
  proof: RouteInclusion,
  recipient: string,
): string | undefined {
  if (record.event !== AuditEvent.Routed) return 'the entry is not a routing decision';
  const detail = routedDetail(record);
  if (detail?.root === undefined) return 'the entry records no route tree';
  try {
    const leafBytes = Buffer.from(proof.leaf, 'utf8');
    const leaf = parseRouteLeaf(leafBytes);
    if (leaf.recipient !== recipient || leaf.index !== proof.index)
      return 'the leaf names another recipient or index';
    if (!proof.path.every(isHash))
      return 'a hash of the path is not 32 bytes in canonical padded base64';
    const root = rootFromInclusionProof(
      proof.index,
      detail.size,
      hashLeaf(leafBytes),
      proof.path.map((h) => Buffer.from(h, 'base64')),
    );
    return root.toString('base64url') === detail.root
      ? undefined
      : "the leaf and path do not lead to the entry's route tree root";
  } catch (err) {
    return (err as Error).message;
  }
}
