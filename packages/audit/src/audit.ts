import { createHash } from 'node:crypto';
import {
  canonicalJson,
  signSync,
  verifySync,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import type Database from 'better-sqlite3';

/** An open better-sqlite3 database (the router's audit database, or a copy of it). */
export type SqliteDatabase = Database.Database;

/** What an audit record says happened. */
export const AuditEvent = {
  Received: 'received',
  Forwarded: 'forwarded',
  Denied: 'denied',
  Rejected: 'rejected',
  DeadLettered: 'dead-lettered',
  AgreementsLoaded: 'agreements-loaded',
} as const;
export type AuditEvent = (typeof AuditEvent)[keyof typeof AuditEvent];

/** An audit record before it is chained. */
export interface AuditEntry {
  readonly event: AuditEvent;
  readonly alertId?: string | undefined;
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
}

/** A stored audit record: the entry, its place in the chain, and the hashes that link it. */
export interface AuditRecord {
  readonly seq: number;
  readonly at: string;
  readonly instance: string;
  readonly event: AuditEvent;
  readonly alertId: string | null;
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
  readonly prevHash: string;
  readonly hash: string;
}

/** `prev_hash` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS audit (
  seq               INTEGER PRIMARY KEY,
  at                TEXT    NOT NULL,
  instance          TEXT    NOT NULL,
  event             TEXT    NOT NULL,
  alert_id          TEXT,
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
  prev_hash         TEXT    NOT NULL,
  hash              TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_alert ON audit (alert_id);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at);
CREATE INDEX IF NOT EXISTS audit_origin ON audit (origin, at);
CREATE INDEX IF NOT EXISTS audit_recipient ON audit (recipient, at);
CREATE TABLE IF NOT EXISTS checkpoints (
  id        INTEGER PRIMARY KEY AUTOINCREMENT,
  instance  TEXT    NOT NULL,
  seq       INTEGER NOT NULL,
  hash      TEXT    NOT NULL,
  at        TEXT    NOT NULL,
  principal TEXT    NOT NULL,
  kid       TEXT    NOT NULL,
  signature TEXT    NOT NULL
);
`;

interface Row {
  seq: number;
  at: string;
  instance: string;
  event: AuditEvent;
  alert_id: string | null;
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
  prev_hash: string;
  hash: string;
}

function toRecord(r: Row): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    instance: r.instance,
    event: r.event,
    alertId: r.alert_id,
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
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/**
 * The hash of a record: SHA-256 over the JSON array of every member but `hash` itself, in the
 * order of {@link HASHED_MEMBERS} (absent members as null), `seq` and `prevHash` included, so
 * that editing, inserting, deleting or reordering a record breaks the chain at that record.
 * A fixed-order array is as unambiguous as canonical JSON for a flat record, and cheaper.
 */
export function hashRecord(r: Omit<AuditRecord, 'hash'>): string {
  return createHash('sha256')
    .update(
      JSON.stringify([
        r.seq,
        r.at,
        r.instance,
        r.event,
        r.alertId,
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
        r.prevHash,
      ]),
    )
    .digest('hex');
}

/** The members a record's hash covers, in order (documentation for independent verifiers). */
export const HASHED_MEMBERS = [
  'seq',
  'at',
  'instance',
  'event',
  'alertId',
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
  'prevHash',
] as const;

/** Creates the audit tables if missing. */
export function initAuditSchema(db: SqliteDatabase): void {
  db.exec(SCHEMA);
}

/** A signed statement by a router that the chain had `hash` at `seq` at time `at`. */
interface Checkpoint {
  readonly instance: string;
  readonly seq: number;
  readonly hash: string;
  readonly at: string;
  readonly principal: string;
  readonly kid: string;
  readonly signature: string;
}

function checkpointPayload(c: Omit<Checkpoint, 'signature'>): Buffer {
  return Buffer.from(
    canonicalJson({
      instance: c.instance,
      seq: c.seq,
      hash: c.hash,
      at: c.at,
      principal: c.principal,
      kid: c.kid,
    }),
    'utf8',
  );
}

/**
 * Appends to the chain. Call {@link AuditAppender.append} inside a transaction opened with
 * `BEGIN IMMEDIATE` (the caller's `db.transaction(...).immediate()`): it reads the head and
 * appends under the write lock, so routers on one host can share the database and still form
 * one chain.
 */
export class AuditAppender {
  readonly #db: SqliteDatabase;
  readonly #instance: string;
  readonly #insert;
  readonly #head;
  readonly #insertCheckpoint;
  #sinceCheckpoint = 0;

  constructor(db: SqliteDatabase, instance: string) {
    this.#db = db;
    this.#instance = instance;
    initAuditSchema(db);
    this.#insert = db.prepare(
      `INSERT INTO audit (seq, at, instance, event, alert_id, origin, type, handling, recipient, agreement_id, agreement_version, reason_code, reason, stream_seq, feed_seq, detail, prev_hash, hash)
       VALUES (@seq, @at, @instance, @event, @alertId, @origin, @type, @handling, @recipient, @agreementId, @agreementVersion, @reasonCode, @reason, @streamSeq, @feedSeq, @detail, @prevHash, @hash)`,
    );
    this.#head = db.prepare<[], { seq: number; hash: string }>(
      'SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1',
    );
    this.#insertCheckpoint = db.prepare(
      'INSERT INTO checkpoints (instance, seq, hash, at, principal, kid, signature) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
  }

  /** The last record's seq and hash (0 and the genesis hash when empty). */
  head(): { seq: number; hash: string } {
    return this.#head.get() ?? { seq: 0, hash: GENESIS_HASH };
  }

  /** Appends entries, chained after the current head; must run inside an immediate transaction. */
  append(entries: readonly AuditEntry[], at: string): void {
    let { seq, hash } = this.head();
    for (const e of entries) {
      const base = {
        seq: seq + 1,
        at,
        instance: this.#instance,
        event: e.event,
        alertId: e.alertId ?? null,
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
        detail: e.detail === undefined ? null : canonicalJson(e.detail),
        prevHash: hash,
      };
      hash = hashRecord(base);
      seq = base.seq;
      this.#insert.run({ ...base, hash });
    }
    this.#sinceCheckpoint += entries.length;
  }

  /** Records appended since the last checkpoint. */
  get sinceCheckpoint(): number {
    return this.#sinceCheckpoint;
  }

  /**
   * Signs the current head with the router's key and stores the checkpoint. A hash chain alone
   * can be recomputed by whoever can write the file; a signed checkpoint cannot.
   */
  checkpoint(key: SigningKey, at: string): { seq: number; hash: string } | undefined {
    const head = this.head();
    if (head.seq === 0) return undefined;
    const c = {
      instance: this.#instance,
      seq: head.seq,
      hash: head.hash,
      at,
      principal: key.principal,
      kid: key.kid,
    };
    const signature = signSync(key.alg, checkpointPayload(c), key.privateKey).toString('base64url');
    this.#insertCheckpoint.run(c.instance, c.seq, c.hash, c.at, c.principal, c.kid, signature);
    this.#sinceCheckpoint = 0;
    return head;
  }

  get db(): SqliteDatabase {
    return this.#db;
  }
}

/** The outcome of {@link verifyAuditChain}. */
export interface ChainVerification {
  readonly ok: boolean;
  readonly records: number;
  readonly head: { readonly seq: number; readonly hash: string };
  /** The first record that is not what the chain says it must be. */
  readonly firstBad?: { readonly seq: number; readonly problem: string };
  readonly checkpoints: { readonly verified: number; readonly lastSignedSeq: number };
  /** Records after the last signed checkpoint: chained, but not yet vouched for by a signature. */
  readonly unsignedTail: number;
  readonly problems: readonly string[];
}

/**
 * Walks the chain from the first record: every seq present in order, every `prev_hash` the
 * hash of the record before, every hash recomputed; then every signed checkpoint checked
 * against the router's key in the trust store and against the chain at its seq.
 */
export function verifyAuditChain(
  db: SqliteDatabase,
  trust?: TrustStore,
  expectHead?: { seq: number; hash: string },
): ChainVerification {
  initAuditSchemaIfWritable(db);
  const problems: string[] = [];
  let firstBad: { seq: number; problem: string } | undefined;
  const bad = (seq: number, problem: string) => {
    firstBad ??= { seq, problem };
    problems.push(`record ${seq}: ${problem}`);
  };
  const hashes = new Map<number, string>();
  let expected = 1;
  let prev = GENESIS_HASH;
  let count = 0;
  for (const row of db
    .prepare('SELECT * FROM audit ORDER BY seq')
    .iterate() as IterableIterator<Row>) {
    const r = toRecord(row);
    count++;
    if (r.seq !== expected) {
      bad(
        expected,
        r.seq > expected
          ? `missing (the next record is ${r.seq}): deleted`
          : `out of order (found ${r.seq})`,
      );
    }
    if (r.prevHash !== prev)
      bad(
        r.seq,
        `prev_hash does not match the hash of record ${r.seq - 1}: a record before it was deleted, inserted or changed`,
      );
    const h = hashRecord(r);
    if (h !== r.hash) bad(r.seq, 'content does not match its hash: edited');
    hashes.set(r.seq, r.hash);
    prev = r.hash;
    expected = r.seq + 1;
  }
  const head = { seq: expected - 1, hash: prev };
  let verified = 0;
  let lastSignedSeq = 0;
  const cps = db.prepare('SELECT * FROM checkpoints ORDER BY seq, id').all() as Checkpoint[];
  for (const c of cps) {
    if (hashes.get(c.seq) !== c.hash) {
      bad(
        c.seq,
        `differs from the checkpoint signed by ${c.instance} at ${c.at}: the chain was rewritten up to here`,
      );
      continue;
    }
    if (trust) {
      try {
        const key = trust.resolve(c.kid, c.principal, 'router', new Date(c.at));
        const ok = verifySync(
          key.alg,
          checkpointPayload(c),
          key.publicKey,
          Buffer.from(c.signature, 'base64url'),
        );
        if (!ok) {
          problems.push(`checkpoint at record ${c.seq}: signature does not verify`);
          continue;
        }
      } catch (err) {
        problems.push(`checkpoint at record ${c.seq}: ${(err as Error).message}`);
        continue;
      }
    }
    verified++;
    lastSignedSeq = Math.max(lastSignedSeq, c.seq);
  }
  if (expectHead && hashes.get(expectHead.seq) !== expectHead.hash) {
    problems.push(
      `the expected head ${expectHead.seq}:${expectHead.hash.slice(0, 16)}… is not in the chain: records were removed from the end or rewritten`,
    );
    firstBad ??= { seq: expectHead.seq, problem: 'expected head not found' };
  }
  return {
    ok: problems.length === 0,
    records: count,
    head,
    ...(firstBad ? { firstBad } : {}),
    checkpoints: { verified, lastSignedSeq },
    unsignedTail: head.seq - lastSignedSeq,
    problems,
  };
}

function initAuditSchemaIfWritable(db: SqliteDatabase): void {
  if (!db.readonly) initAuditSchema(db);
}

/** Filters of {@link queryAudit}. */
export interface AuditQuery {
  /** The sending agency. */
  readonly agency?: string;
  /** The partner: the recipient of a forward or of a denial. */
  readonly partner?: string;
  readonly type?: string;
  /** The event: received, forwarded, denied, rejected, dead-lettered. */
  readonly outcome?: string;
  readonly alertId?: string;
  /** RFC 3339 bounds on the record time (inclusive since, exclusive until). */
  readonly since?: string;
  readonly until?: string;
  /** Only records after this seq (pagination). */
  readonly after?: number;
  readonly limit?: number;
}

/** Records matching the filters, oldest first. */
export function queryAudit(db: SqliteDatabase, q: AuditQuery): AuditRecord[] {
  const where: string[] = [];
  const params: (string | number)[] = [];
  const add = (sql: string, v: string | number | undefined) => {
    if (v === undefined) return;
    where.push(sql);
    params.push(v);
  };
  add('origin = ?', q.agency);
  add('recipient = ?', q.partner);
  add('type = ?', q.type);
  add('event = ?', q.outcome);
  add('alert_id = ?', q.alertId);
  add('at >= ?', q.since);
  add('at < ?', q.until);
  add('seq > ?', q.after);
  const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
  return (db.prepare(sql).all(...params, q.limit ?? 1000) as Row[]).map(toRecord);
}

/** Every record about one alert, in order: its whole journey through the hub. */
export function traceAlert(db: SqliteDatabase, alertId: string): AuditRecord[] {
  return (
    db.prepare('SELECT * FROM audit WHERE alert_id = ? ORDER BY seq').all(alertId) as Row[]
  ).map(toRecord);
}

/** Forwards per sender, recipient, type and day. */
export interface FlowCount {
  readonly day: string;
  readonly origin: string;
  readonly recipient: string;
  readonly type: string;
  readonly count: number;
}

export function flowStats(
  db: SqliteDatabase,
  q: { since?: string; until?: string } = {},
): FlowCount[] {
  return db
    .prepare(
      `SELECT substr(at, 1, 10) AS day, origin, recipient, type, count(*) AS count FROM audit
       WHERE event = 'forwarded' AND at >= ? AND at < ?
       GROUP BY day, origin, recipient, type ORDER BY day, origin, recipient, type`,
    )
    .all(q.since ?? '', q.until ?? '9999') as FlowCount[];
}

/** Merges records of several databases (routers on several hosts) into one time-ordered view. */
export function mergeRecords(lists: readonly AuditRecord[][], limit: number): AuditRecord[] {
  return lists
    .flat()
    .sort((a, b) =>
      a.at < b.at
        ? -1
        : a.at > b.at
          ? 1
          : a.instance < b.instance
            ? -1
            : a.instance > b.instance
              ? 1
              : a.seq - b.seq,
    )
    .slice(0, limit);
}

/** CSV columns of an export, in order: the hashed members, then the hash. */
export const AUDIT_COLUMNS = [...HASHED_MEMBERS, 'hash'] as const;

/** One CSV line (RFC 4180 quoting). */
export function toCsvLine(r: AuditRecord): string {
  return AUDIT_COLUMNS.map((c) => {
    const v = r[c];
    if (v === null) return '';
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  }).join(',');
}
