import type {
  Alert,
  AgreementRef,
  Allowed,
  Denied,
  NoticeEvent,
  RoutedDenied,
  ReceiptDelivery,
  RoutedTo,
} from '@alert-hub/core';
import { DenyReason, isJsonObject, Streams } from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';
import {
  AuditAppender,
  AuditEvent,
  NEAR_MISSES,
  rowsInserter,
  type AuditEntry,
  type NoteSigner,
} from '@alert-hub/audit';
import { bounded } from './refusal-text.js';
import { rekeyTables } from './store-rekey.js';

/** What the router decided about one message; written with its audit records in one transaction. */
export type Outcome =
  | {
      readonly kind: 'routed';
      readonly alert: Alert;
      /** The inbound stream that stored the message, and its sequence there. */
      readonly stream: string;
      readonly streamSeq: number;
      readonly forwards: readonly (RoutedTo & {
        readonly feedSeq: number;
        readonly envelopeSha256: string;
        /** When the copy was published (receipt latency runs from here). */
        readonly forwardedAt?: string;
      })[];
      readonly denied: readonly Denied[];
      /** The operation the alert named, and whether it was in its period. */
      readonly operation?: {
        readonly id: string;
        readonly version: number;
        readonly inPeriod: boolean;
      };
      /** For an outcome: the origin of the alert it answers (who receives it). */
      readonly answersOrigin?: string;
      /** Copies the recipient's feed had no room for: held in the database, sent later. */
      readonly held?: readonly HeldCopy[];
      /**
       * The decision's route tree (what the countersignature signed): its root and its leaves in
       * tree order. The audit entry of the decision commits to it (docs/protocol.md §8.1).
       */
      readonly routeTree: {
        readonly root: Buffer;
        readonly leaves: readonly { readonly recipient: string; readonly text: string }[];
      };
    }
  | {
      /** A held copy was published at last (`id` of its row). */
      readonly kind: 'released';
      readonly id: number;
      readonly feedSeq: number;
      readonly forwardedAt: string;
    }
  | {
      readonly kind: 'receipt';
      readonly stream: string;
      readonly streamSeq: number;
      readonly receipt: string;
      readonly agency: string;
      readonly kid: string;
      readonly committedAt: string;
      readonly receiptSha256: string;
      readonly deliveries: readonly ReceiptDelivery[];
    }
  | {
      readonly kind: 'rejected';
      readonly stream: string;
      readonly streamSeq: number;
      readonly subject: string;
      /**
       * The subject as the audit log keeps it (refusal-text.ts `recordedSubject`: no sender's text
       * beyond a known form); the refusal notice tells the sender its `subject` (§9.2).
       */
      readonly auditSubject?: string | undefined;
      readonly claimedOrigin?: string | undefined;
      readonly alertId?: string | undefined;
      /** The id the message claims when it could not be verified. */
      readonly claimedId?: string | undefined;
      readonly type?: string | undefined;
      readonly code: string;
      readonly reason: string;
      /** Absent when dead-lettering failed repeatedly: the refusal is audited all the same. */
      readonly deadLetterSeq?: number | undefined;
      /** Tell the publishing agency (the subject's), when it is a known agency. */
      readonly notify?: string | undefined;
      readonly receipt?: string | undefined;
    }
  | {
      readonly kind: 'agreements';
      /** The file's base name (`agreements.yaml`): the host's paths stay out of the audit. */
      readonly file: string;
      readonly sha256: string;
      readonly agreements: readonly AgreementRef[];
      /** Each agreement's and operation's terms digest, by label (core's `termsDigests`). */
      readonly terms: Readonly<Record<string, string>>;
    };

/** An inbound stream as the router opens it. */
export interface InboundStreamMark {
  /** Its creation time as JetStream gives it. */
  readonly created: string;
  /** Its last sequence (0: it never held a message). */
  readonly anchorSeq: number;
  /** When JetStream stored that message (`last_ts`), in nanoseconds since the epoch. */
  readonly anchorNs?: bigint | undefined;
}

/** An inbound stream as the router recorded it, and how far it decided its messages. */
export interface KnownInboundStream {
  readonly created: string;
  readonly anchorSeq: number;
  readonly anchorNs?: bigint;
  /** The highest sequence decided under the stream's name (0: none). */
  readonly decidedUpTo: number;
}

/** A copy the router decided to forward but its recipient's feed had no room for. */
export interface HeldCopy extends RoutedTo {
  readonly subject: string;
  readonly msgId: string;
  /** The countersigned envelope, published later exactly as it is. */
  readonly envelope: Uint8Array;
  readonly envelopeSha256: string;
  /** Why it was held (the recipient's quota, or the stream's own refusal). */
  readonly reason: string;
  /**
   * Held because its origin's budget in the feed stream was spent (origin-budget.ts), not for
   * want of room on the recipient's side: other origins' copies do not wait behind it.
   */
  readonly forBudget?: boolean;
}

/** One origin's held copies for one recipient: how many, and of them held for its budget. */
export interface HeldFrom {
  n: number;
  forBudget: number;
}

/** A held copy as stored, in the order it is to be sent. */
export interface HeldRow {
  readonly id: number;
  readonly origin: string;
  readonly alertId: string;
  readonly recipient: string;
  readonly subject: string;
  readonly msgId: string;
  readonly envelope: Uint8Array;
  readonly heldAt: string;
}

/** A routed alert the router remembers: its id is never routed twice. */
export interface RoutedState {
  /** The inbound stream it was routed from (`AHUB_INBOUND` for rows older than per-agency streams). */
  readonly stream: string;
  readonly streamSeq: number;
  readonly origin: string;
}

// An inbound sequence is a stream's: each agency's inbound stream (AHUB_IN_<agency>) numbers its
// own messages from 1, and the legacy shared stream AHUB_INBOUND numbered everyone's. Every
// inbound sequence stored here is qualified by its stream; rows written before that have the
// legacy stream (the column's default), which is where they came from.
// An alert is identified by (origin, id): one agency's id never shadows another's. Databases
// made before that (tables "routed" and "deliveries", keyed by id alone) are carried over once.
// Indexes on these state tables are the router's to add (below, and after migrate); on the
// log's own tables `hubctl audit verify` refuses any it does not know (`checkSchema`).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS routed_alerts (
  origin     TEXT    NOT NULL,
  alert_id   TEXT    NOT NULL,
  stream_seq INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  at         TEXT    NOT NULL,
  operation  TEXT,
  stream     TEXT    NOT NULL DEFAULT '${Streams.Inbound}',
  PRIMARY KEY (origin, alert_id)
);
CREATE TABLE IF NOT EXISTS decisions (
  stream_seq INTEGER NOT NULL,
  at         TEXT    NOT NULL,
  stream     TEXT    NOT NULL DEFAULT '${Streams.Inbound}',
  PRIMARY KEY (stream, stream_seq)
);
CREATE TABLE IF NOT EXISTS alert_deliveries (
  origin            TEXT    NOT NULL,
  alert_id          TEXT    NOT NULL,
  recipient         TEXT    NOT NULL,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  feed_seq          INTEGER NOT NULL,
  forwarded_at      TEXT,
  envelope_sha256   TEXT,
  delivered_at      TEXT,
  receipt_id        TEXT,
  PRIMARY KEY (origin, alert_id, recipient)
);
CREATE TABLE IF NOT EXISTS held_copies (
  id                INTEGER PRIMARY KEY AUTOINCREMENT,
  origin            TEXT    NOT NULL,
  alert_id          TEXT    NOT NULL,
  type              TEXT    NOT NULL,
  handling          TEXT,
  stream_seq        INTEGER NOT NULL,
  recipient         TEXT    NOT NULL,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  subject           TEXT    NOT NULL,
  msg_id            TEXT    NOT NULL,
  envelope          BLOB    NOT NULL,
  envelope_sha256   TEXT    NOT NULL,
  reason            TEXT    NOT NULL,
  held_at           TEXT    NOT NULL,
  -- 1: held because its origin's budget in the feed stream was spent (origin-budget.ts), not for
  -- want of room on the recipient's side: other origins' copies do not wait behind it
  for_budget        INTEGER NOT NULL DEFAULT 0,
  UNIQUE (origin, alert_id, recipient)
);
-- a recipient's held copies in order, and one origin's of them (released round by round)
CREATE INDEX IF NOT EXISTS held_copies_recipient ON held_copies (recipient, id);
CREATE INDEX IF NOT EXISTS held_copies_origin ON held_copies (origin, recipient, id);
CREATE TABLE IF NOT EXISTS receipts (
  receipt_id    TEXT    NOT NULL,
  agency        TEXT    NOT NULL,
  stream_seq    INTEGER NOT NULL,
  kid           TEXT    NOT NULL,
  committed_at  TEXT    NOT NULL,
  receipt_sha256 TEXT   NOT NULL,
  verified_at   TEXT    NOT NULL,
  stream        TEXT    NOT NULL DEFAULT '${Streams.Inbound}',
  PRIMARY KEY (agency, receipt_id)
);
CREATE TABLE IF NOT EXISTS inbound_streams (
  stream  TEXT PRIMARY KEY,
  created TEXT NOT NULL,
  -- the latest message of the stream the router saw (0: none), and when JetStream stored it
  -- (nanoseconds since the epoch): what a stream made again under the same name does not hold
  anchor_seq INTEGER NOT NULL DEFAULT 0,
  anchor_ts  TEXT
);
CREATE TABLE IF NOT EXISTS outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  agency     TEXT    NOT NULL,
  event      TEXT    NOT NULL,
  -- bytes of the feed stream already charged for this event (a delivered event, paid by what its
  -- copy reserved or by the partner whose receipt made it): not charged to agency again
  precharged INTEGER NOT NULL DEFAULT 0
);
-- per agency: an agency whose feed has no room may hold many rows the others' reads must skip
CREATE INDEX IF NOT EXISTS outbox_agency ON outbox (agency, id);
-- bytes the router stored in the feed stream per agency charged (origin-budget.ts), per time
-- bucket ending at until (ms since the epoch); rows whose bucket has aged out are deleted
CREATE TABLE IF NOT EXISTS origin_charges (
  agency TEXT    NOT NULL,
  until  INTEGER NOT NULL,
  bytes  INTEGER NOT NULL,
  PRIMARY KEY (agency, until)
);
-- charges a partner owes for delivered notices outliving their copies' charges (origin-budget.ts
-- OriginBudget.delivered), per agency, bucket end and lateness class: they count from starts
-- (ms) until the bucket ending at until ages out; rows whose bucket has aged out are deleted
CREATE TABLE IF NOT EXISTS origin_late_charges (
  agency TEXT    NOT NULL,
  until  INTEGER NOT NULL,
  class  INTEGER NOT NULL,
  starts INTEGER NOT NULL,
  bytes  INTEGER NOT NULL,
  PRIMARY KEY (agency, until, class)
);
CREATE TABLE IF NOT EXISTS outcomes (
  reporter  TEXT NOT NULL,
  alert_id  TEXT NOT NULL,
  answers   TEXT NOT NULL,
  result    TEXT NOT NULL,
  operation TEXT,
  at        TEXT NOT NULL,
  PRIMARY KEY (reporter, alert_id)
);
CREATE TABLE IF NOT EXISTS seizures (
  alert_id  TEXT    NOT NULL,
  operation TEXT,
  country   TEXT    NOT NULL,
  commodity TEXT    NOT NULL,
  value     REAL    NOT NULL,
  unit      TEXT    NOT NULL
);
`;

/** The type of a `stream` column added to an older table: its rows came from the legacy stream. */
const LEGACY_STREAM_COLUMN = `TEXT NOT NULL DEFAULT '${Streams.Inbound}'`;

/** Columns added after the first release, created on an older database at start. */
const COLUMNS: Readonly<Record<string, readonly { column: string; type: string }[]>> = {
  routed: [{ column: 'operation', type: 'TEXT' }],
  routed_alerts: [
    { column: 'operation', type: 'TEXT' },
    { column: 'stream', type: LEGACY_STREAM_COLUMN },
  ],
  receipts: [{ column: 'stream', type: LEGACY_STREAM_COLUMN }],
  deliveries: [
    { column: 'forwarded_at', type: 'TEXT' },
    { column: 'envelope_sha256', type: 'TEXT' },
    { column: 'delivered_at', type: 'TEXT' },
    { column: 'receipt_id', type: 'TEXT' },
  ],
  alert_deliveries: [
    { column: 'forwarded_at', type: 'TEXT' },
    { column: 'envelope_sha256', type: 'TEXT' },
    { column: 'delivered_at', type: 'TEXT' },
    { column: 'receipt_id', type: 'TEXT' },
  ],
  outbox: [{ column: 'precharged', type: 'INTEGER NOT NULL DEFAULT 0' }],
  held_copies: [{ column: 'for_budget', type: 'INTEGER NOT NULL DEFAULT 0' }],
  inbound_streams: [
    { column: 'anchor_seq', type: 'INTEGER NOT NULL DEFAULT 0' },
    { column: 'anchor_ts', type: 'TEXT' },
  ],
};

/**
 * Brings an older database to the current tables: receipts and outcomes get their current keys
 * (store-rekey.ts), missing columns are added, and the id-only tables `routed` / `deliveries`
 * are carried over once into the (origin, id) tables.
 */
function migrate(db: SqliteDatabase): void {
  const has = (t: string) =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !==
    undefined;
  const addColumns = (table: string) => {
    if (!has(table)) return;
    const cols = db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[];
    for (const c of COLUMNS[table] ?? [])
      if (!cols.some((x) => x.name === c.column))
        db.exec(`ALTER TABLE ${table} ADD COLUMN ${c.column} ${c.type}`);
  };
  db.transaction(() => {
    rekeyTables(db, SCHEMA);
    for (const table of Object.keys(COLUMNS)) addColumns(table);
    if (has('routed')) {
      db.exec(`INSERT OR IGNORE INTO routed_alerts (origin, alert_id, stream_seq, type, at, operation)
               SELECT origin, alert_id, stream_seq, type, at, operation FROM routed; DROP TABLE routed;`);
    }
    if (has('deliveries')) {
      db.exec(`INSERT OR IGNORE INTO alert_deliveries (origin, alert_id, recipient, agreement_id,
                 agreement_version, onward, feed_seq, forwarded_at, envelope_sha256, delivered_at, receipt_id)
               SELECT r.origin, d.alert_id, d.recipient, d.agreement_id, d.agreement_version, d.onward,
                 d.feed_seq, d.forwarded_at, d.envelope_sha256, d.delivered_at, d.receipt_id
               FROM deliveries d JOIN routed_alerts r ON r.alert_id = d.alert_id; DROP TABLE deliveries;`);
    }
  }).immediate();
}

/** A delivery as the router recorded it. */
export interface DeliveryState {
  readonly alertId: string;
  readonly origin: string;
  readonly recipient: string;
  readonly envelopeSha256: string | null;
  readonly forwardedAt: string | null;
  readonly deliveredAt: string | null;
  readonly receiptId: string | null;
}

/** Bytes stored in the feed stream charged to `agency` in the time bucket ending at `until` (ms). */
export interface OriginCharge {
  readonly agency: string;
  readonly until: number;
  readonly bytes: number;
}

/**
 * A charge of `agency`'s in the bucket ending at `until` that counts only from `starts` (ms);
 * `lateness` is its class (OriginBudget.delivered).
 */
export interface OriginDeferredCharge extends OriginCharge {
  readonly starts: number;
  readonly lateness: number;
}

/** An outbox row: a notice event waiting to be signed and sent to `agency`. */
export interface OutboxRow {
  readonly id: number;
  readonly agency: string;
  readonly event: NoticeEvent;
  /** UTF-8 bytes of the event's JSON as stored (what it adds to a notice). */
  readonly bytes: number;
  /**
   * Bytes of the feed stream already charged for it (a `delivered` event: see
   * {@link RouterStore.chargeDelivered}); 0 when the notifier charges its addressee.
   */
  readonly precharged: number;
}

/**
 * What one notice event is charged in the feed stream when it is paid for apart from its notice: its
 * JSON in the notice's base64url payload, plus a whole notice's fixed part (the hub's signature
 * and protected header, the notice's own fields, subject and message id), as if it went alone.
 */
export function noticeEventCharge(eventBytes: number): number {
  return Math.ceil(((eventBytes + 1) * 4) / 3) + NOTICE_FIXED_BYTES;
}

/** The fixed part of a notice on the feed stream, rounded up (see {@link noticeEventCharge}). */
export const NOTICE_FIXED_BYTES = 2048;

/**
 * The most notice events counted waiting for one agency ({@link RouterStore.outboxCount}); at it,
 * `/readyz` says "or more" and the gauge stays at it (1.2-4.5 ms of counting, not a scan).
 */
export const NOTICE_EVENTS_COUNTED = 10_000;

/**
 * The router's database: the audit chain, plus the alerts it routed and who received each.
 * An outcome's audit records and state change commit together, before the message is acked.
 */
export class RouterStore {
  readonly audit: AuditAppender;
  readonly #routed;
  readonly #routedAnyOrigin;
  readonly #insertRouted;
  readonly #deliveriesOf;
  readonly #insertDelivery;
  /** The same for a routing decision's forwards, several rows per statement. */
  readonly #insertDeliveries;
  readonly #decide;
  readonly #knownInboundStream: (stream: string) => KnownInboundStream | undefined;
  readonly #noteInboundAnchor: (
    stream: string,
    created: string,
    seq: number,
    storedNs: bigint,
  ) => void;
  readonly #noteInboundStream: (
    stream: string,
    seen: InboundStreamMark,
    remadeSince: string | undefined,
  ) => string | undefined;
  readonly #write;
  readonly #db: SqliteDatabase;
  readonly #groupRefusals: boolean;
  readonly #delivery;
  readonly #markDelivered;
  readonly #receiptSeq;
  readonly #insertReceipt;
  readonly #insertOutbox;
  readonly #outboxAgencies;
  readonly #outboxOf;
  readonly #outboxCount;
  readonly #insertOutcome;
  readonly #insertSeizure;
  readonly #insertHeld;
  readonly #heldRow;
  readonly #deleteHeld;

  constructor(
    db: SqliteDatabase,
    instance: string,
    options: {
      transparency?: boolean;
      /** Refusals with the same code and reason as one notice item (default true). */
      groupRefusals?: boolean;
      /** Signs the audit log's head with every append (the hub key; see AuditAppender). */
      auditHead?: () => { signer: NoteSigner; origin: string };
      /** The hub keys that vouch for entries another router appended (see AuditAppender). */
      auditVouchingKeys?: (fresh: boolean) => readonly Buffer[];
    } = {},
  ) {
    this.#db = db;
    this.#groupRefusals = options.groupRefusals ?? true;
    db.exec(SCHEMA);
    migrate(db);
    // After migrate, which adds for_budget to an older table: held copies counted per recipient
    // and origin (heldOrigins) from the index alone, never reading past the envelopes.
    db.exec(
      'CREATE INDEX IF NOT EXISTS held_copies_budget ON held_copies (recipient, origin, for_budget)',
    );
    // Every alert is checked against the ids its sender was delivered (ERR_ALERT_ID_REUSED): by
    // alert id alone, which the (origin, alert_id) key does not serve (a scan of every routed
    // alert, per alert).
    db.exec('CREATE INDEX IF NOT EXISTS routed_alerts_by_id ON routed_alerts (alert_id)');
    this.#delivery = db.prepare<
      [string, string, string],
      {
        alert_id: string;
        origin: string;
        recipient: string;
        envelope_sha256: string | null;
        forwarded_at: string | null;
        delivered_at: string | null;
        receipt_id: string | null;
      }
    >(
      `SELECT alert_id, origin, recipient, envelope_sha256, forwarded_at, delivered_at, receipt_id
       FROM alert_deliveries WHERE origin = ? AND alert_id = ? AND recipient = ?`,
    );
    this.#markDelivered = db.prepare(
      'UPDATE alert_deliveries SET delivered_at = ?, receipt_id = ? WHERE origin = ? AND alert_id = ? AND recipient = ? AND delivered_at IS NULL',
    );
    this.#receiptSeq = db.prepare<
      [string, string],
      { stream: string; stream_seq: number; receipt_sha256: string }
    >(
      'SELECT stream, stream_seq, receipt_sha256 FROM receipts WHERE agency = ? AND receipt_id = ?',
    );
    this.#insertReceipt = db.prepare(
      'INSERT INTO receipts (receipt_id, agency, stream, stream_seq, kid, committed_at, receipt_sha256, verified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#insertOutbox = db.prepare(
      'INSERT INTO outbox (agency, event, precharged) VALUES (?, ?, ?)',
    );
    // The agencies with rows, each found by one step of the index (a skip scan), not by a scan.
    this.#outboxAgencies = db.prepare(
      `WITH RECURSIVE a(agency) AS (
         SELECT MIN(agency) FROM outbox
         UNION ALL
         SELECT (SELECT MIN(agency) FROM outbox WHERE agency > a.agency) FROM a WHERE a.agency IS NOT NULL
       ) SELECT agency FROM a WHERE agency IS NOT NULL`,
    );
    this.#outboxCount = db.prepare(
      'SELECT COUNT(*) AS n FROM (SELECT 1 FROM outbox WHERE agency = ? LIMIT ?)',
    );
    this.#outboxOf = db.prepare(
      'SELECT id, agency, event, precharged FROM outbox WHERE agency = ? ORDER BY id LIMIT ?',
    );
    this.#insertOutcome = db.prepare(
      'INSERT INTO outcomes (reporter, alert_id, answers, result, operation, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#insertSeizure = db.prepare(
      'INSERT INTO seizures (alert_id, operation, country, commodity, value, unit) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.#insertHeld = db.prepare(
      `INSERT INTO held_copies (origin, alert_id, type, handling, stream_seq, recipient, agreement_id,
         agreement_version, onward, subject, msg_id, envelope, envelope_sha256, reason, held_at, for_budget)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.#heldRow = db.prepare<
      [number],
      {
        origin: string;
        alert_id: string;
        type: string;
        handling: string | null;
        stream_seq: number;
        recipient: string;
        agreement_id: string;
        agreement_version: number;
        onward: number;
        envelope_sha256: string;
        reason: string;
        held_at: string;
      }
    >(
      `SELECT origin, alert_id, type, handling, stream_seq, recipient, agreement_id, agreement_version,
         onward, envelope_sha256, reason, held_at FROM held_copies WHERE id = ?`,
    );
    this.#deleteHeld = db.prepare('DELETE FROM held_copies WHERE id = ?');
    this.audit = new AuditAppender(db, instance, {
      ...(options.transparency === undefined ? {} : { transparency: options.transparency }),
      ...(options.auditHead ? { head: options.auditHead } : {}),
      ...(options.auditVouchingKeys ? { vouchingKeys: options.auditVouchingKeys } : {}),
    });
    this.#routed = db.prepare<
      [string, string],
      { stream: string; stream_seq: number; origin: string }
    >('SELECT stream, stream_seq, origin FROM routed_alerts WHERE origin = ? AND alert_id = ?');
    this.#routedAnyOrigin = db.prepare<
      [string],
      { stream: string; stream_seq: number; origin: string }
    >('SELECT stream, stream_seq, origin FROM routed_alerts WHERE alert_id = ? ORDER BY origin');
    this.#insertRouted = db.prepare(
      'INSERT INTO routed_alerts (origin, alert_id, stream, stream_seq, type, at, operation) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#deliveriesOf = db.prepare<
      [string, string, string, string],
      { recipient: string; agreement_id: string; agreement_version: number; onward: number }
    >(
      // Held copies count: the decision was to send them, they are only waiting for room.
      `SELECT recipient, agreement_id, agreement_version, onward FROM alert_deliveries WHERE origin = ? AND alert_id = ?
       UNION SELECT recipient, agreement_id, agreement_version, onward FROM held_copies WHERE origin = ? AND alert_id = ?
       ORDER BY recipient`,
    );
    this.#insertDelivery = db.prepare(
      'INSERT INTO alert_deliveries (origin, alert_id, recipient, agreement_id, agreement_version, onward, feed_seq, forwarded_at, envelope_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#insertDeliveries = rowsInserter(
      db,
      'INSERT INTO alert_deliveries (origin, alert_id, recipient, agreement_id, agreement_version, onward, feed_seq, forwarded_at, envelope_sha256)',
      9,
      'ON CONFLICT DO NOTHING',
    );
    this.#decide = db.prepare(
      'INSERT INTO decisions (stream, stream_seq, at) VALUES (?, ?, ?) ON CONFLICT (stream, stream_seq) DO NOTHING',
    );
    const knownStream = db.prepare<
      [string],
      { created: string; anchor_seq: number; anchor_ts: string | null }
    >('SELECT created, anchor_seq, anchor_ts FROM inbound_streams WHERE stream = ?');
    const decidedUpTo = db.prepare<[string], { seq: number | null }>(
      'SELECT MAX(stream_seq) AS seq FROM decisions WHERE stream = ?',
    );
    this.#knownInboundStream = (stream) => {
      const r = knownStream.get(stream);
      return (
        r && {
          created: r.created,
          anchorSeq: r.anchor_seq,
          ...(r.anchor_ts !== null && /^\d+$/.test(r.anchor_ts)
            ? { anchorNs: BigInt(r.anchor_ts) }
            : {}),
          decidedUpTo: decidedUpTo.get(stream)?.seq ?? 0,
        }
      );
    };
    const setSeen = db.prepare(
      `INSERT INTO inbound_streams (stream, created, anchor_seq, anchor_ts) VALUES (?, ?, ?, ?)
       ON CONFLICT (stream) DO UPDATE SET created = excluded.created, anchor_seq = excluded.anchor_seq, anchor_ts = excluded.anchor_ts`,
    );
    const relabel = ['decisions', 'routed_alerts', 'receipts'].map((table) =>
      db.prepare(`UPDATE ${table} SET stream = ? WHERE stream = ?`),
    );
    const note = db.transaction(
      (stream: string, seen: InboundStreamMark, remadeSince: string | undefined) => {
        const before = knownStream.get(stream)?.created;
        // Relabelled once: another router sharing this database may have done it meanwhile.
        const remade = remadeSince !== undefined && before === remadeSince;
        if (remade) for (const r of relabel) r.run(`${stream}@${before}`, stream);
        setSeen.run(stream, seen.created, seen.anchorSeq, seen.anchorNs?.toString() ?? null);
        return remade ? before : undefined;
      },
    );
    this.#noteInboundStream = (stream, seen, remadeSince) =>
      note.immediate(stream, seen, remadeSince);
    // Only under the creation time the stream was opened with: what a router saw of a stream
    // made again since (or another router sharing the database) is not this stream's.
    const setAnchor = db.prepare(
      'UPDATE inbound_streams SET anchor_seq = ?, anchor_ts = ? WHERE stream = ? AND created = ? AND anchor_seq <= ?',
    );
    this.#noteInboundAnchor = (stream, created, seq, storedNs) =>
      void setAnchor.run(seq, storedNs.toString(), stream, created, seq);
    this.#write = db.transaction((outcomes: readonly Outcome[], at: string) => {
      const entries: AuditEntry[] = [];
      for (const o of outcomes) {
        // One decision per inbound message, whatever JetStream redelivers and whichever router
        // sharing this database handles it: a second outcome for a (stream, sequence) writes nothing.
        // (A released copy belongs to a decision recorded before.)
        if (
          o.kind !== 'agreements' &&
          o.kind !== 'released' &&
          this.#decide.run(o.stream, o.streamSeq, at).changes === 0
        )
          continue;
        entries.push(...this.#apply(o, at));
      }
      this.audit.append(entries, at);
    });
  }

  /**
   * What the router recorded of the inbound stream `stream` when it last opened it, and the
   * highest sequence of it decided under its name (0: none); undefined when never opened.
   */
  knownInboundStream(stream: string): KnownInboundStream | undefined {
    return this.#knownInboundStream(stream);
  }

  /**
   * Records the inbound stream `stream` as the router opens it: its creation time as JetStream
   * gives it and its last message (`seen`). A stream deleted and made again under the same name
   * numbers its messages from 1 again, so its (stream, sequence) pairs would be taken for
   * messages decided before (a new alert skipped as "already decided" after its copies went out,
   * never audited). With `remadeSince` (the creation time recorded, when the caller found the
   * stream made again: routing-loop.ts `inboundStreamRemade`), every row of the earlier stream is
   * relabelled `<stream>@<its created>` first, in one transaction: its history stays, under a
   * name no message of the new stream has. A creation time that changed alone is not enough:
   * nats-server 2.9.10 rewrites it on a stream never deleted. Returns the earlier creation time
   * when it relabelled.
   */
  noteInboundStream(
    stream: string,
    seen: InboundStreamMark,
    remadeSince?: string,
  ): string | undefined {
    return this.#noteInboundStream(stream, seen, remadeSince);
  }

  /**
   * Records message `seq` of the inbound stream `stream`, stored at `storedNs` (nanoseconds since
   * the epoch), as the latest the router saw of it, unless it recorded a later one or the stream
   * recorded is no longer the one opened with creation time `created`.
   */
  noteInboundAnchor(stream: string, created: string, seq: number, storedNs: bigint): void {
    this.#noteInboundAnchor(stream, created, seq, storedNs);
  }

  /** The routed state of `origin`'s alert `alertId`, if it was routed before. */
  routed(origin: string, alertId: string): RoutedState | undefined {
    const r = this.#routed.get(origin, alertId);
    return r && { stream: r.stream, streamSeq: r.stream_seq, origin: r.origin };
  }

  /** Every agency whose alert `alertId` was routed (to tell a retraction of another's alert). */
  routedByAnyOrigin(alertId: string): RoutedState[] {
    return this.#routedAnyOrigin
      .all(alertId)
      .map((r) => ({ stream: r.stream, streamSeq: r.stream_seq, origin: r.origin }));
  }

  /** Who received `origin`'s alert `alertId`, under which agreement. */
  deliveriesOf(origin: string, alertId: string): Allowed[] {
    return this.#deliveriesOf.all(origin, alertId, origin, alertId).map((d) => ({
      recipient: d.recipient,
      agreement: { id: d.agreement_id, version: d.agreement_version },
      onward: d.onward === 1,
    }));
  }

  /** One delivery of `origin`'s alert to a recipient, if the router forwarded it. */
  delivery(origin: string, alertId: string, recipient: string): DeliveryState | undefined {
    const d = this.#delivery.get(origin, alertId, recipient);
    return (
      d && {
        alertId: d.alert_id,
        origin: d.origin,
        recipient: d.recipient,
        envelopeSha256: d.envelope_sha256,
        forwardedAt: d.forwarded_at,
        deliveredAt: d.delivered_at,
        receiptId: d.receipt_id,
      }
    );
  }

  /** The inbound stream and sequence `agency`'s receipt `receiptId` was accepted from, if it was. */
  receiptSeq(
    agency: string,
    receiptId: string,
  ): { stream: string; streamSeq: number; receiptSha256: string } | undefined {
    const r = this.#receiptSeq.get(agency, receiptId);
    return r && { stream: r.stream, streamSeq: r.stream_seq, receiptSha256: r.receipt_sha256 };
  }

  /**
   * Notice events waiting to be sent, each agency's oldest first, at most `limit` in all, and none
   * to the agencies `except` (whose feeds have no room). Read agency by agency through the
   * `(agency, id)` index: the rows of an agency that waits, however many, are never scanned.
   */
  outbox(limit = 2000, except: ReadonlySet<string> = new Set()): OutboxRow[] {
    const rows: { id: number; agency: string; event: string; precharged: number }[] = [];
    for (const agency of this.#outboxAgencies.all() as { agency: string }[]) {
      if (rows.length >= limit) break;
      if (except.has(agency.agency)) continue;
      rows.push(
        ...(this.#outboxOf.all(agency.agency, limit - rows.length) as {
          id: number;
          agency: string;
          event: string;
          precharged: number;
        }[]),
      );
    }
    return rows.map((r) => ({
      id: r.id,
      agency: r.agency,
      event: JSON.parse(r.event) as NoticeEvent,
      bytes: Buffer.byteLength(r.event),
      precharged: r.precharged,
    }));
  }

  /**
   * How many notice events wait in the outbox for `agency` (through the `(agency, id)` index),
   * counted up to {@link NOTICE_EVENTS_COUNTED}: every `/readyz` and metrics scrape asks, and an
   * agency may leave millions (its inbound quota of junk, one refusal each), whose full count
   * took 0.36-0.56 s at 3,000,000 rows (2-vCPU VM), the router's event loop stopped meanwhile.
   */
  outboxCount(agency: string): number {
    return (this.#outboxCount.get(agency, NOTICE_EVENTS_COUNTED) as { n: number }).n;
  }

  /** Removes sent outbox rows. */
  removeOutbox(ids: readonly number[]): void {
    const del = this.#db.prepare('DELETE FROM outbox WHERE id = ?');
    this.#db.transaction(() => {
      for (const id of ids) del.run(id);
    })();
  }

  /** Forwarded copies without a verified receipt, forwarded before `before`. */
  undelivered(before: string, limit = 1000): (DeliveryState & { type: string })[] {
    return (
      this.#db
        .prepare(
          `SELECT d.alert_id, r.origin, r.type, d.recipient, d.envelope_sha256, d.forwarded_at
           FROM alert_deliveries d JOIN routed_alerts r ON r.origin = d.origin AND r.alert_id = d.alert_id
           WHERE d.delivered_at IS NULL AND d.forwarded_at IS NOT NULL AND d.forwarded_at < ?
           ORDER BY d.forwarded_at LIMIT ?`,
        )
        .all(before, limit) as {
        alert_id: string;
        origin: string;
        type: string;
        recipient: string;
        envelope_sha256: string | null;
        forwarded_at: string;
      }[]
    ).map((r) => ({
      alertId: r.alert_id,
      origin: r.origin,
      type: r.type,
      recipient: r.recipient,
      envelopeSha256: r.envelope_sha256,
      forwardedAt: r.forwarded_at,
      deliveredAt: null,
      receiptId: null,
    }));
  }

  /**
   * The terms digest of every agreement and operation label this audit log recorded as loaded
   * (the latest per label; entries written before digests were recorded give none).
   */
  recordedTerms(): Map<string, string> {
    const out = new Map<string, string>();
    const rows = this.db
      .prepare(`SELECT detail FROM audit WHERE event = ? AND detail IS NOT NULL ORDER BY seq`)
      .all(AuditEvent.AgreementsLoaded) as { detail: string }[];
    for (const { detail } of rows) {
      let terms: unknown;
      try {
        terms = (JSON.parse(detail) as { terms?: unknown }).terms;
      } catch {
        continue; // not what the router wrote: the log's own checks say so, not this
      }
      if (typeof terms !== 'object' || terms === null) continue;
      for (const [label, d] of Object.entries(terms)) if (typeof d === 'string') out.set(label, d);
    }
    return out;
  }

  /** How many forwarded copies have no verified receipt and were forwarded before `before`. */
  countUndelivered(before: string): number {
    return (
      this.#db
        .prepare(
          'SELECT count(*) AS n FROM alert_deliveries WHERE delivered_at IS NULL AND forwarded_at IS NOT NULL AND forwarded_at < ?',
        )
        .get(before) as { n: number }
    ).n;
  }

  /** Held copies for `recipient`, oldest first; none of the origins in `except`. */
  heldFor(recipient: string, limit = 256, except: ReadonlySet<string> = new Set()): HeldRow[] {
    type Row = {
      id: number;
      origin: string;
      alert_id: string;
      recipient: string;
      subject: string;
      msg_id: string;
      envelope: Buffer;
      held_at: string;
    };
    const cols = 'id, origin, alert_id, recipient, subject, msg_id, envelope, held_at';
    let rows: Row[];
    if (except.size === 0)
      rows = this.#db
        .prepare(`SELECT ${cols} FROM held_copies WHERE recipient = ? ORDER BY id LIMIT ?`)
        .all(recipient, limit) as Row[];
    else {
      // Origin by origin through the (origin, recipient, id) index: the rows of the origins
      // skipped (a flood held for its spent budget, however many) are never scanned.
      // The origins with held copies, each found by one step of the index (a skip scan).
      const origins = (
        this.#db
          .prepare(
            `WITH RECURSIVE o(origin) AS (
               SELECT MIN(origin) FROM held_copies
               UNION ALL
               SELECT (SELECT MIN(origin) FROM held_copies WHERE origin > o.origin) FROM o WHERE o.origin IS NOT NULL
             ) SELECT origin FROM o WHERE origin IS NOT NULL`,
          )
          .all() as { origin: string }[]
      ).filter((o) => !except.has(o.origin));
      // Ids first (from the index alone), then only the rows chosen: envelopes are large.
      const ids = this.#db.prepare(
        'SELECT id FROM held_copies WHERE origin = ? AND recipient = ? ORDER BY id LIMIT ?',
      );
      const chosen = origins
        .flatMap((o) => (ids.all(o.origin, recipient, limit) as { id: number }[]).map((r) => r.id))
        .sort((a, b) => a - b)
        .slice(0, limit);
      const byId = this.#db.prepare(`SELECT ${cols} FROM held_copies WHERE id = ?`);
      rows = chosen.flatMap((id) => {
        const r = byId.get(id) as Row | undefined;
        return r ? [r] : [];
      });
    }
    return rows.map((r) => ({
      id: r.id,
      origin: r.origin,
      alertId: r.alert_id,
      recipient: r.recipient,
      subject: r.subject,
      msgId: r.msg_id,
      envelope: new Uint8Array(r.envelope),
      heldAt: r.held_at,
    }));
  }

  /**
   * The origin budget's charges whose bucket ends after `since` (ms), oldest first. A row may be
   * below zero: what was taken back from a bucket that also holds late charges that started
   * (those are in `origin_late_charges`); the two add up to what the bucket held.
   */
  originCharges(since: number): OriginCharge[] {
    return this.#db
      .prepare(
        'SELECT agency, until, bytes FROM origin_charges WHERE until > ? AND bytes != 0 ORDER BY agency, until',
      )
      .all(since) as OriginCharge[];
  }

  /** The origin budget's deferred charges whose bucket ends after `since` (ms), oldest first. */
  originDeferred(since: number): OriginDeferredCharge[] {
    return this.#db
      .prepare(
        'SELECT agency, until, class AS lateness, starts, bytes FROM origin_late_charges WHERE until > ? AND bytes > 0 ORDER BY agency, until, class',
      )
      .all(since) as OriginDeferredCharge[];
  }

  /**
   * Adds `charges` and `deferred` to the stored ones (several routers sharing the database add
   * up; a deferred charge keeps the earliest start) and deletes the buckets that ended at or
   * before `expired` (ms), in one transaction.
   */
  addOriginCharges(
    charges: readonly OriginCharge[],
    deferred: readonly OriginDeferredCharge[],
    expired: number,
  ): void {
    const add = this.#db.prepare(
      'INSERT INTO origin_charges (agency, until, bytes) VALUES (?, ?, ?) ON CONFLICT (agency, until) DO UPDATE SET bytes = bytes + excluded.bytes',
    );
    const defer = this.#db.prepare(
      'INSERT INTO origin_late_charges (agency, until, class, starts, bytes) VALUES (?, ?, ?, ?, ?) ON CONFLICT (agency, until, class) DO UPDATE SET bytes = bytes + excluded.bytes, starts = MIN(starts, excluded.starts)',
    );
    const drop = this.#db.prepare('DELETE FROM origin_charges WHERE until <= ?');
    const dropDeferred = this.#db.prepare('DELETE FROM origin_late_charges WHERE until <= ?');
    this.#db.transaction(() => {
      for (const c of charges) add.run(c.agency, c.until, c.bytes);
      for (const d of deferred) defer.run(d.agency, d.until, d.lateness, d.starts, d.bytes);
      drop.run(expired);
      dropDeferred.run(expired);
    })();
  }

  /** Held copies per recipient, with the oldest's time. */
  heldCounts(): Map<string, { count: number; since: string }> {
    const rows = this.#db
      .prepare(
        'SELECT recipient, count(*) AS n, min(held_at) AS since FROM held_copies GROUP BY recipient ORDER BY recipient',
      )
      .all() as { recipient: string; n: number; since: string }[];
    return new Map(rows.map((r) => [r.recipient, { count: r.n, since: r.since }]));
  }

  /** Held copies per recipient and origin. */
  heldOrigins(): Map<string, Map<string, HeldFrom>> {
    const rows = this.#db
      .prepare(
        'SELECT recipient, origin, count(*) AS n, sum(for_budget) AS forBudget FROM held_copies GROUP BY recipient, origin',
      )
      .all() as { recipient: string; origin: string; n: number; forBudget: number }[];
    const out = new Map<string, Map<string, HeldFrom>>();
    for (const r of rows) {
      let from = out.get(r.recipient);
      if (!from) out.set(r.recipient, (from = new Map<string, HeldFrom>()));
      from.set(r.origin, { n: r.n, forBudget: r.forBudget });
    }
    return out;
  }

  /** The recipients of `origin`'s alert whose copies are held, with since when. */
  heldOf(origin: string, alertId: string): { recipient: string; since: string; reason: string }[] {
    return this.#db
      .prepare(
        'SELECT recipient, held_at AS since, reason FROM held_copies WHERE origin = ? AND alert_id = ? ORDER BY recipient',
      )
      .all(origin, alertId) as { recipient: string; since: string; reason: string }[];
  }

  /** The database, for read-only reports. */
  get db(): SqliteDatabase {
    return this.#db;
  }

  /**
   * Called, once its transaction commits, for each `delivered` event a partner's receipt queues
   * for an alert's sender (`origin`): `bytes` of the feed stream, paid in advance by the copy forwarded at
   * `forwardedAt`, and by the partner (`receipter`) for the time the notice outlives that charge
   * (`OriginBudget.delivered`). The notifier does not charge the sender for them again. Set by the
   * router when budgets are in force.
   */
  chargeDelivered:
    | ((origin: string, forwardedAt: string | null, receipter: string, bytes: number) => void)
    | undefined;

  #notify(
    agency: string | undefined,
    event: NoticeEvent,
    delivered?: { readonly receipter: string; readonly forwardedAt: string | null },
  ): void {
    if (!agency) return;
    const json = JSON.stringify(event);
    let precharged = 0;
    if (delivered !== undefined && delivered.receipter !== agency && this.chargeDelivered) {
      precharged = noticeEventCharge(Buffer.byteLength(json));
      this.#charges.push([agency, delivered.forwardedAt, delivered.receipter, precharged]);
    }
    this.#insertOutbox.run(agency, json, precharged);
  }

  /** Commits outcomes and their audit records in one immediate transaction. */
  write(outcomes: readonly Outcome[], at = new Date().toISOString()): void {
    // Charges for notice events are made once the transaction holding them commits: a batch
    // that rolls back (and its receipts, redelivered, written again) charges nothing.
    this.#charges = [];
    try {
      this.#write.immediate(outcomes, at);
    } catch (err) {
      this.#charges = [];
      throw err;
    }
    const charges = this.#charges;
    this.#charges = [];
    for (const [origin, forwardedAt, receipter, bytes] of charges)
      this.chargeDelivered?.(origin, forwardedAt, receipter, bytes);
  }

  /** Charges for `delivered` events queued by the transaction under way (see {@link write}). */
  #charges: [origin: string, forwardedAt: string | null, receipter: string, bytes: number][] = [];

  #apply(o: Outcome, at: string): AuditEntry[] {
    if (o.kind === 'agreements') {
      return [
        {
          event: AuditEvent.AgreementsLoaded,
          reason: o.file,
          detail: {
            sha256: o.sha256,
            agreements: o.agreements.map((a) => `${a.id}@${a.version}`),
            terms: o.terms,
          },
        },
      ];
    }
    if (o.kind === 'rejected') {
      const reason = bounded(o.reason);
      const who = {
        alertId: o.alertId,
        claimedId: o.alertId === undefined ? o.claimedId : undefined,
        origin: o.claimedOrigin,
        type: o.type,
        streamSeq: o.streamSeq,
      };
      this.#notify(o.notify, {
        event: 'refused',
        ...(o.alertId && o.type !== 'receipt' ? { alertId: o.alertId } : {}),
        ...(o.receipt ? { receipt: o.receipt } : {}),
        // notice.v1 bounds both: a subject is an agency's to choose, up to nats-server's limit
        subject: Array.from(o.subject).slice(0, 300).join(''),
        streamSeq: o.streamSeq,
        at,
        code: o.code,
        reason,
      });
      return [
        { event: AuditEvent.Received, ...who, detail: { subject: o.auditSubject ?? o.subject } },
        { event: AuditEvent.Rejected, ...who, reasonCode: o.code, reason },
        ...(o.deadLetterSeq === undefined
          ? []
          : [
              {
                event: AuditEvent.DeadLettered,
                ...who,
                reasonCode: o.code,
                feedSeq: o.deadLetterSeq,
              },
            ]),
      ];
    }
    if (o.kind === 'receipt') return this.#applyReceipt(o, at);
    if (o.kind === 'released') return this.#applyReleased(o);
    const a = o.alert;
    // An alert naming an operation that its terms send to nobody (a type or a handling label it
    // does not cover) is no part of the operation: recorded without it, so that the operation's
    // report counts it nowhere. A sender no member of it never gets here (ERR_OPERATION_UNKNOWN).
    // One named outside the period keeps it: the report lists it apart.
    const routedUnder =
      o.operation && !o.denied.some((d) => REFUSED_BY_OPERATION.has(d.reason))
        ? o.operation.id
        : null;
    this.#insertRouted.run(a.origin, a.id, o.stream, o.streamSeq, a.type, at, routedUnder);
    this.#recordOutcome(a, o.answersOrigin, routedUnder, at);
    const who = {
      alertId: a.id,
      origin: a.origin,
      type: a.type,
      handling: a.handling,
      streamSeq: o.streamSeq,
    };
    const feedSeqOf = new Map(o.forwards.map((f) => [f.recipient, f.feedSeq]));
    // One entry for the whole decision (docs/protocol.md §8.1): it commits to the route tree,
    // whose leaves (each recipient with its agreement) go into audit_routes beside it.
    // Why the recipients are who they are, for the decision as a whole (held copies included):
    // an operation's membership, or (a retraction, an outcome) the original's recipients.
    const granted = [...o.forwards, ...(o.held ?? [])];
    const operation = granted.find((f) => f.operation)?.operation;
    const viaOriginal = granted.filter((f) => f.viaOriginal).length;
    const entries: AuditEntry[] = [
      {
        event: AuditEvent.Routed,
        ...who,
        ...(operation
          ? { reason: `operation ${operation}` }
          : viaOriginal > 0
            ? {
                reason:
                  a.type === 'outcome'
                    ? 'outcome sent to the origin of the alert it answers'
                    : viaOriginal === granted.length
                      ? 'retraction sent to every recipient of the original'
                      : `retraction sent to every recipient of the original (${viaOriginal} of the ${granted.length} recipients), the others under the agreements`,
              }
            : {}),
        routeTree: {
          root: o.routeTree.root,
          leaves: o.routeTree.leaves.map((l) => ({
            ...l,
            feedSeq: feedSeqOf.get(l.recipient) ?? null,
          })),
        },
      },
    ];
    this.#insertDeliveries(
      o.forwards.map((f) => [
        a.origin,
        a.id,
        f.recipient,
        f.agreement.id,
        f.agreement.version,
        f.onward ? 1 : 0,
        f.feedSeq,
        f.forwardedAt ?? at,
        f.envelopeSha256,
      ]),
    );
    for (const h of o.held ?? []) {
      this.#insertHeld.run(
        a.origin,
        a.id,
        a.type,
        a.handling ?? null,
        o.streamSeq,
        h.recipient,
        h.agreement.id,
        h.agreement.version,
        h.onward ? 1 : 0,
        h.subject,
        h.msgId,
        Buffer.from(h.envelope.buffer, h.envelope.byteOffset, h.envelope.byteLength),
        h.envelopeSha256,
        h.reason,
        at,
        h.forBudget ? 1 : 0,
      );
      entries.push({
        event: AuditEvent.Held,
        ...who,
        recipient: h.recipient,
        agreementId: h.agreement.id,
        agreementVersion: h.agreement.version,
        reason: h.reason,
      });
    }
    if (o.operation && !o.operation.inPeriod)
      entries.push({
        event: AuditEvent.Denied,
        ...who,
        reasonCode: DenyReason.OperationPeriod,
        reason: `operation ${o.operation.id}@${o.operation.version} is not in its period: the alert goes to nobody`,
      });
    // A held copy's recipient is listed too: for the sender it is pending until its receipt.
    for (const event of routedNotices(
      { alertId: a.id, at, ...(o.operation ? { operation: o.operation.id } : {}) },
      [...o.forwards, ...(o.held ?? [])].map((f) => f.recipient),
      o.denied
        .filter((d) => d.reason !== DenyReason.NotParty)
        .map((d) => ({ recipient: d.recipient, code: d.reason, reason: d.detail.slice(0, 1000) })),
      this.#groupRefusals,
    ))
      this.#notify(a.origin, event);
    for (const d of summariseRefusals(a.origin, o.denied))
      entries.push({ event: AuditEvent.Denied, ...who, ...d });
    return entries;
  }

  /** A held copy went out: it becomes a delivery like any other, and leaves the held table. */
  #applyReleased(o: Extract<Outcome, { kind: 'released' }>): AuditEntry[] {
    const h = this.#heldRow.get(o.id);
    if (!h) return [];
    this.#deleteHeld.run(o.id);
    this.#insertDelivery.run(
      h.origin,
      h.alert_id,
      h.recipient,
      h.agreement_id,
      h.agreement_version,
      h.onward,
      o.feedSeq,
      o.forwardedAt,
      h.envelope_sha256,
    );
    return [
      {
        event: AuditEvent.Forwarded,
        alertId: h.alert_id,
        origin: h.origin,
        type: h.type,
        handling: h.handling ?? undefined,
        streamSeq: h.stream_seq,
        recipient: h.recipient,
        agreementId: h.agreement_id,
        agreementVersion: h.agreement_version,
        feedSeq: o.feedSeq,
        reason: `held since ${h.held_at}: ${h.reason}`,
      },
    ];
  }

  #recordOutcome(
    a: Alert,
    answersOrigin: string | undefined,
    routedUnder: string | null,
    at: string,
  ): void {
    let operation = routedUnder;
    let seizure: unknown;
    if (a.type === 'outcome' && a.answers && answersOrigin) {
      operation =
        (
          this.#db
            .prepare('SELECT operation FROM routed_alerts WHERE origin = ? AND alert_id = ?')
            .get(answersOrigin, a.answers) as { operation: string | null } | undefined
        )?.operation ?? null;
      this.#insertOutcome.run(a.origin, a.id, a.answers, String(a.result), operation, at);
      if (a.result === 'seizure') seizure = a['seizure'];
    } else if (a.type === 'seizure-report') seizure = a['seizure'];
    for (const s of seizedQuantities(seizure))
      this.#insertSeizure.run(a.id, operation, s.country, s.commodity, s.value, s.unit);
  }

  #applyReceipt(o: Extract<Outcome, { kind: 'receipt' }>, at: string): AuditEntry[] {
    this.#insertReceipt.run(
      o.receipt,
      o.agency,
      o.stream,
      o.streamSeq,
      o.kid,
      o.committedAt,
      o.receiptSha256,
      at,
    );
    const entries: AuditEntry[] = [];
    for (const d of o.deliveries) {
      // Receipted already, by another router sharing the database (one router's loop never writes
      // two receipts of a delivery together; it warns when this happens): one delivered entry and
      // one notice per delivery, never more.
      if (
        this.#markDelivered.run(o.committedAt, o.receipt, d.origin, d.alertId, o.agency).changes ===
        0
      )
        continue;
      entries.push({
        event: AuditEvent.Delivered,
        alertId: d.alertId,
        origin: d.origin,
        recipient: o.agency,
        streamSeq: o.streamSeq,
        reason: `receipt ${o.receipt}`,
        detail: {
          receipt: o.receipt,
          receiptSha256: o.receiptSha256,
          kid: o.kid,
          envelopeSha256: d.envelopeSha256,
          committedAt: o.committedAt,
        },
      });
      this.#notify(
        d.origin,
        {
          event: 'delivered',
          alertId: d.alertId,
          recipient: o.agency,
          committedAt: o.committedAt,
          verifiedAt: at,
          envelopeSha256: d.envelopeSha256,
          receipt: o.receipt,
          receiptSha256: o.receiptSha256,
          kid: o.kid,
        },
        // Paid in advance by the copy, and by the receipt's sender for its lateness: see
        // chargeDelivered.
        {
          receipter: o.agency,
          forwardedAt: this.#delivery.get(d.origin, d.alertId, o.agency)?.forwarded_at ?? null,
        },
      );
    }
    return entries;
  }
}

/** Most items a `routed` notice event lists in `recipients` or in `denied` (notice.v1's maxItems). */
export const NOTICE_MAX_ITEMS = 1000;
/**
 * Most bytes (JSON) of the `denied` items of one `routed` event: with 1,000 recipients beside
 * them an event stays far below the envelope limit, so the notifier can always send it.
 */
export const NOTICE_MAX_DENIED_BYTES = 64 * 1024;

/**
 * The `routed` notice events of one decision: one, unless its lists exceed what one event may
 * hold ({@link NOTICE_MAX_ITEMS} recipients or refusals, {@link NOTICE_MAX_DENIED_BYTES} of
 * refusals); then several events for the same alert, each with part of the lists, which the
 * sender's gateway merges (docs/protocol.md §9.2). Nothing is dropped. Refusals with the same
 * code and reason (the near misses no agreement of both covers, an operation's terms) are one
 * item listing their `recipients`: an alert of a sender with hundreds of bilateral agreements for
 * other types names each agency once, not with a sentence each. `group` false (the router's
 * `noticeGroupRefusals`): one item per recipient, for gateways older than the grouped form.
 */
export function routedNotices(
  base: { readonly alertId: string; readonly at: string; readonly operation?: string },
  recipients: readonly string[],
  denied: readonly { recipient: string; code: string; reason: string }[],
  group = true,
): NoticeEvent[] {
  const deniedChunks: RoutedDenied[][] = [];
  let chunk: RoutedDenied[] = [];
  let bytes = 0;
  for (const d of group ? groupRefusals(denied) : denied) {
    const size = Buffer.byteLength(JSON.stringify(d)) + 1;
    if (
      chunk.length === NOTICE_MAX_ITEMS ||
      (chunk.length > 0 && bytes + size > NOTICE_MAX_DENIED_BYTES)
    ) {
      deniedChunks.push(chunk);
      chunk = [];
      bytes = 0;
    }
    chunk.push(d);
    bytes += size;
  }
  if (chunk.length > 0) deniedChunks.push(chunk);
  const events = Math.max(1, Math.ceil(recipients.length / NOTICE_MAX_ITEMS), deniedChunks.length);
  return Array.from({ length: events }, (_, i) => ({
    event: 'routed' as const,
    ...base,
    recipients: recipients.slice(i * NOTICE_MAX_ITEMS, (i + 1) * NOTICE_MAX_ITEMS),
    denied: deniedChunks[i] ?? [],
  }));
}

/**
 * Refusals with the same code and reason as one item (in the order of their first recipient),
 * at most {@link NOTICE_MAX_ITEMS} recipients each; a refusal shared with nobody stays one
 * recipient's item.
 */
function groupRefusals(
  denied: readonly { recipient: string; code: string; reason: string }[],
): RoutedDenied[] {
  const groups: { code: string; reason: string; recipients: string[] }[] = [];
  const byCode = new Map<string, Map<string, string[]>>();
  const seen = new Set<string>();
  for (const d of denied) {
    // A recipient is refused once; a group's recipients are distinct (notice.v1).
    if (seen.has(d.recipient)) continue;
    seen.add(d.recipient);
    let byReason = byCode.get(d.code);
    if (!byReason) byCode.set(d.code, (byReason = new Map<string, string[]>()));
    const recipients = byReason.get(d.reason);
    if (recipients) recipients.push(d.recipient);
    else {
      const g = { code: d.code, reason: d.reason, recipients: [d.recipient] };
      byReason.set(d.reason, g.recipients);
      groups.push(g);
    }
  }
  return groups.flatMap(({ code, reason, recipients }) => {
    const parts: RoutedDenied[] = [];
    for (let i = 0; i < recipients.length; i += NOTICE_MAX_ITEMS) {
      const part = recipients.slice(i, i + NOTICE_MAX_ITEMS);
      parts.push(
        part.length === 1
          ? { recipient: part[0]!, code, reason }
          : { recipients: part, code, reason },
      );
    }
    return parts;
  });
}

/** Refusals an operation's terms make to every member: the alert is no part of the operation. */
const REFUSED_BY_OPERATION: ReadonlySet<string> = new Set([
  DenyReason.OperationType,
  DenyReason.OperationHandling,
]);

/**
 * The `denied` entries of one routing decision: at most two, whatever the number of agreements
 * and agencies. The near misses (agencies party to an agreement with the sender that does not
 * allow this alert) are ONE entry, `reasonCode` {@link NEAR_MISSES}, with each recipient's own
 * `DENY_*` code in `detail.codes` and how many per code in `detail.counts`; never a text per
 * agreement (`hubctl route --dry-run` explains one recipient in full). The non-parties
 * (`DENY_NOT_PARTY`) come last, as one entry listing them in `detail.recipients`. A query for one
 * partner finds either (`queryAudit`), and `deniedRecipients` gives each recipient its code.
 */
export function summariseRefusals(
  origin: string,
  denied: readonly Denied[],
): { reasonCode: string; reason: string; detail: unknown }[] {
  const codes: Record<string, string> = {};
  const counts: Record<string, number> = {};
  const nonParties: string[] = [];
  let near = 0;
  for (const d of denied) {
    if (d.reason === DenyReason.NotParty) {
      nonParties.push(d.recipient);
      continue;
    }
    codes[d.recipient] = d.reason;
    counts[d.reason] = (counts[d.reason] ?? 0) + 1;
    near++;
  }
  const out: { reasonCode: string; reason: string; detail: unknown }[] = [];
  if (near > 0) {
    const byCode = Object.entries(counts)
      .map(([code, n]) => `${code} ${n}`)
      .join(', ');
    out.push({
      reasonCode: NEAR_MISSES,
      reason: `${near} ${near === 1 ? 'agency' : 'agencies'} refused under an agreement, a schema version or an operation's terms (${byCode}); each one's code in detail.codes`,
      detail: { codes, counts },
    });
  }
  if (nonParties.length > 0)
    out.push({
      reasonCode: DenyReason.NotParty,
      reason: `no agreement (or operation membership) includes ${origin} and ${nonParties.length === 1 ? nonParties[0] : `any of ${nonParties.length} other agencies`}`,
      // Every non-party is listed, so that a query for one partner finds its refusals.
      detail: { recipients: nonParties },
    });
  return out;
}

/**
 * What a seizure (of a seizure report or a seizure outcome, any schema version) seized: one row
 * per commodity and quantity. Reads defensively (the alert was validated, but versions differ):
 * a member it does not know is skipped, never an error.
 */
function seizedQuantities(
  seizure: unknown,
): { country: string; commodity: string; value: number; unit: string }[] {
  const obj = (v: unknown): Record<string, unknown> | undefined =>
    isJsonObject(v) ? v : undefined;
  const s = obj(seizure);
  const country = obj(s?.['location'])?.['country'];
  const commodities = s?.['commodities'];
  if (typeof country !== 'string' || !Array.isArray(commodities)) return [];
  const out: { country: string; commodity: string; value: number; unit: string }[] = [];
  for (const item of commodities) {
    const c = obj(item);
    if (!c) continue;
    const taxon = obj(c['taxon'])?.['scientificName'];
    const what =
      typeof taxon === 'string'
        ? taxon
        : typeof c['family'] === 'string'
          ? c['family']
          : 'unspecified';
    const product = typeof c['product'] === 'string' ? ` (${c['product']})` : '';
    const quantities = [
      c['quantity'],
      ...(Array.isArray(c['quantities']) ? (c['quantities'] as unknown[]) : []),
    ];
    for (const q of quantities.map(obj)) {
      if (q && typeof q['value'] === 'number' && typeof q['unit'] === 'string')
        out.push({ country, commodity: `${what}${product}`, value: q['value'], unit: q['unit'] });
    }
  }
  return out;
}
