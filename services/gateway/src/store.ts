import { instantOf, mayRetract, type Alert } from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';

/** A verified alert received on the agency's feed. */
export interface ReceivedAlert {
  readonly alert: Alert;
  readonly envelope: Uint8Array;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly onward: boolean;
  readonly streamSeq: number;
  readonly receivedAt: string;
}

/** A feed message that failed verification: kept with its reason, never served. */
export interface QuarantinedMessage {
  readonly subject: string;
  readonly streamSeq: number;
  readonly code: string;
  readonly reason: string;
  readonly envelope: Uint8Array;
  readonly receivedAt: string;
}

/** The receipt of an alert this agency sent. */
export interface SentReceipt {
  readonly id: string;
  readonly sequence: number;
  readonly contentSha256: string;
  readonly acceptedAt: string;
  readonly type: string;
  readonly client: string;
}

/** One item of the feed as the HTTP API serves it. */
export interface FeedItem {
  readonly cursor: string;
  readonly id: string;
  readonly type: string;
  readonly origin: string;
  readonly handling: string;
  readonly issuedAt: string;
  readonly receivedAt: string;
  readonly status: 'active' | 'withdrawn' | 'corrected';
  readonly statusReason?: string;
  readonly correctedBy?: string;
  readonly retractedBy?: string;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly onwardSharing: boolean;
  readonly alert: Alert;
}

export type FeedWrite =
  { kind: 'alert'; item: ReceivedAlert } | { kind: 'quarantine'; item: QuarantinedMessage };

interface InboxRow {
  seq: number;
  alert_id: string;
  type: string;
  origin: string;
  handling: string;
  issued_at: string;
  received_at: string;
  agreement_id: string;
  agreement_version: number;
  onward: number;
  status: FeedItem['status'];
  status_reason: string | null;
  corrected_by: string | null;
  retracted_by: string | null;
  alert: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS inbox (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id          TEXT    NOT NULL UNIQUE,
  type              TEXT    NOT NULL,
  origin            TEXT    NOT NULL,
  handling          TEXT    NOT NULL,
  issued_at         TEXT    NOT NULL,
  received_at       TEXT    NOT NULL,
  stored_at         TEXT,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  stream_seq        INTEGER NOT NULL,
  retracts          TEXT,
  status            TEXT    NOT NULL DEFAULT 'active',
  status_reason     TEXT,
  corrected_by      TEXT,
  retracted_by      TEXT,
  alert             TEXT    NOT NULL,
  envelope          BLOB    NOT NULL,
  hide_after        TEXT
);
CREATE INDEX IF NOT EXISTS inbox_type_seq ON inbox (type, seq);
CREATE INDEX IF NOT EXISTS inbox_retracts ON inbox (retracts) WHERE retracts IS NOT NULL;
CREATE TABLE IF NOT EXISTS quarantine (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at TEXT    NOT NULL,
  subject     TEXT    NOT NULL,
  stream_seq  INTEGER NOT NULL,
  code        TEXT    NOT NULL,
  reason      TEXT    NOT NULL,
  envelope    BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS sent (
  alert_id       TEXT    PRIMARY KEY,
  sequence       INTEGER NOT NULL,
  content_sha256 TEXT    NOT NULL,
  accepted_at    TEXT    NOT NULL,
  type           TEXT    NOT NULL,
  client         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL);
`;

/**
 * The gateway's SQLite database: the inbox (verified feed, de-duplicated by alert id, in the
 * order rows were committed), the quarantine of messages that failed verification, and the
 * receipts of alerts this agency sent.
 */
export class GatewayStore {
  readonly #db: SqliteDatabase;
  readonly #insertInbox;
  readonly #insertQuarantine;
  readonly #applyRetraction;
  readonly #retractionFor;
  readonly #insertSent;
  readonly #getSent;
  readonly #page;
  readonly #pageByType;
  readonly #byId;
  readonly #anyById;
  readonly #writeBatch;
  readonly #putSentBatch;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    db.exec(SCHEMA);
    // Databases made before consignee flags could be hidden get the column (NULL: never hidden).
    const columns = db.prepare('PRAGMA table_info(inbox)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'hide_after'))
      db.exec('ALTER TABLE inbox ADD COLUMN hide_after TEXT');
    this.#insertInbox = db.prepare(
      `INSERT INTO inbox (alert_id, type, origin, handling, issued_at, received_at, stored_at, agreement_id, agreement_version, onward, stream_seq, retracts, alert, envelope, hide_after)
       VALUES (@alert_id, @type, @origin, @handling, @issued_at, @received_at, @stored_at, @agreement_id, @agreement_version, @onward, @stream_seq, @retracts, @alert, @envelope, @hide_after)
       ON CONFLICT (alert_id) DO NOTHING`,
    );
    this.#insertQuarantine = db.prepare(
      'INSERT INTO quarantine (received_at, subject, stream_seq, code, reason, envelope) VALUES (?, ?, ?, ?, ?, ?)',
    );
    // Who may retract what is core's rule (mayRetract); these statements only read and write.
    this.#applyRetraction = db.prepare(
      `UPDATE inbox SET status = @status, status_reason = @reason, corrected_by = @corrected_by, retracted_by = @retracted_by
       WHERE alert_id = @target`,
    );
    this.#retractionFor = db.prepare<[string], { alert: string }>(
      `SELECT alert FROM inbox WHERE retracts = ? ORDER BY seq DESC`,
    );
    this.#insertSent = db.prepare(
      'INSERT INTO sent (alert_id, sequence, content_sha256, accepted_at, type, client) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING',
    );
    this.#getSent = db.prepare<
      [string],
      {
        alert_id: string;
        sequence: number;
        content_sha256: string;
        accepted_at: string;
        type: string;
        client: string;
      }
    >('SELECT * FROM sent WHERE alert_id = ?');
    this.#page = db.prepare<[number, string, number], InboxRow>(
      `SELECT * FROM inbox WHERE seq > ? AND ${VISIBLE} ORDER BY seq LIMIT ?`,
    );
    this.#pageByType = db.prepare<[number, string, string, number], InboxRow>(
      `SELECT * FROM inbox WHERE seq > ? AND type = ? AND ${VISIBLE} ORDER BY seq LIMIT ?`,
    );
    // Hidden or not: a retraction still applies to a consignee flag past its review date.
    this.#anyById = db.prepare<[string], InboxRow>('SELECT * FROM inbox WHERE alert_id = ?');
    this.#byId = db.prepare<[string, string], InboxRow>(
      `SELECT * FROM inbox WHERE alert_id = ? AND ${VISIBLE}`,
    );
    this.#putSentBatch = db.transaction((receipts: readonly SentReceipt[]) => {
      for (const r of receipts)
        this.#insertSent.run(r.id, r.sequence, r.contentSha256, r.acceptedAt, r.type, r.client);
    });
    this.#writeBatch = db.transaction((writes: readonly FeedWrite[]) => {
      // One commit time per transaction: when the rows became durable (benchmarks measure to here).
      const storedAt = new Date().toISOString();
      let inserted = 0;
      for (const w of writes) {
        if (w.kind === 'quarantine') {
          const q = w.item;
          this.#insertQuarantine.run(
            q.receivedAt,
            q.subject,
            q.streamSeq,
            q.code,
            q.reason,
            q.envelope,
          );
        } else if (this.#insertOne(w.item, storedAt)) inserted++;
      }
      return inserted;
    });
  }

  #insertOne(r: ReceivedAlert, storedAt: string): boolean {
    const a = r.alert;
    const info = this.#insertInbox.run({
      alert_id: a.id,
      type: a.type,
      origin: a.origin,
      handling: a.handling,
      issued_at: a.issuedAt,
      received_at: r.receivedAt,
      stored_at: storedAt,
      agreement_id: r.agreement.id,
      agreement_version: r.agreement.version,
      onward: r.onward ? 1 : 0,
      stream_seq: r.streamSeq,
      retracts: a.type === 'retraction' ? (a.retracts ?? null) : null,
      alert: JSON.stringify(a),
      envelope: r.envelope,
      hide_after: hideAfter(a),
    });
    if (info.changes === 0) return false;
    if (a.type === 'retraction' && a.retracts) this.#retract(a);
    else {
      // A retraction may have arrived before the alert it retracts.
      const earlier = this.#retractionFor
        .all(a.id)
        .map((row) => JSON.parse(row.alert) as Alert)
        .find((r) => mayRetract(r, a));
      if (earlier) this.#retract(earlier);
    }
    return true;
  }

  #retract(r: Alert): void {
    const target = r.retracts === undefined ? undefined : this.#anyById.get(r.retracts);
    if (!target || !mayRetract(r, target)) return;
    this.#applyRetraction.run({
      status: r.action === 'correct' ? 'corrected' : 'withdrawn',
      reason: r.reason ?? null,
      corrected_by: r.correctedBy ?? null,
      retracted_by: r.id,
      target: r.retracts,
    });
  }

  /** Writes verified alerts and quarantined messages in one transaction; returns how many alerts were new. */
  write(writes: readonly FeedWrite[]): number {
    return this.#writeBatch(writes);
  }

  /**
   * Feed items after `after` (exclusive), oldest first. A consignee flag past its review date or
   * expiry is hidden: it names personal data the sender no longer vouches for.
   */
  listFeed(options: { after: number; type?: string; limit: number; now?: Date }): FeedItem[] {
    const now = (options.now ?? new Date()).toISOString();
    const rows = options.type
      ? this.#pageByType.all(options.after, options.type, now, options.limit)
      : this.#page.all(options.after, now, options.limit);
    return rows.map(toFeedItem);
  }

  /** A received alert by id; a hidden consignee flag (see {@link listFeed}) is not found. */
  receivedById(id: string, now = new Date()): FeedItem | undefined {
    const row = this.#byId.get(id, now.toISOString());
    return row ? toFeedItem(row) : undefined;
  }

  /** The stored envelope of a received alert, exactly as it came off the feed. */
  envelopeOf(id: string): Uint8Array | undefined {
    const row = this.#db.prepare('SELECT envelope FROM inbox WHERE alert_id = ?').get(id) as
      { envelope: Uint8Array } | undefined;
    return row?.envelope;
  }

  sentById(id: string): SentReceipt | undefined {
    const r = this.#getSent.get(id);
    return (
      r && {
        id: r.alert_id,
        sequence: r.sequence,
        contentSha256: r.content_sha256,
        acceptedAt: r.accepted_at,
        type: r.type,
        client: r.client,
      }
    );
  }

  /** Records receipts in one transaction; the first receipt for an id wins. */
  putSent(receipts: readonly SentReceipt[]): void {
    this.#putSentBatch(receipts);
  }

  quarantineCount(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM quarantine').get() as { n: number }).n;
  }

  quarantined(limit = 100): (QuarantinedMessage & { id: number })[] {
    return (
      this.#db
        .prepare(
          'SELECT id, received_at, subject, stream_seq, code, reason, envelope FROM quarantine ORDER BY id DESC LIMIT ?',
        )
        .all(limit) as {
        id: number;
        received_at: string;
        subject: string;
        stream_seq: number;
        code: string;
        reason: string;
        envelope: Buffer;
      }[]
    ).map((r) => ({
      id: r.id,
      receivedAt: r.received_at,
      subject: r.subject,
      streamSeq: r.stream_seq,
      code: r.code,
      reason: r.reason,
      envelope: r.envelope,
    }));
  }

  /** Proves the database is writable (for /readyz). */
  checkWritable(): void {
    this.#db
      .prepare(
        'INSERT INTO health (id, checked_at) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at',
      )
      .run(new Date().toISOString());
  }

  close(): void {
    this.#db.close();
  }
}

/** Rows shown to readers: never hidden, or hidden only after `?` (now, ISO 8601 UTC). */
const VISIBLE = '(hide_after IS NULL OR hide_after > ?)';

/**
 * When a received alert leaves partners' inboxes: a consignee flag (any version) at the earlier
 * of its `reviewBy` and `expiresAt`, as ISO 8601 UTC so that SQLite compares it as text.
 */
function hideAfter(a: Alert): string | null {
  if (a.type !== 'consignee-flag') return null;
  const instants = [a.reviewBy, a.expiresAt]
    .filter((t): t is string => typeof t === 'string')
    .map(instantOf)
    .filter((t) => !Number.isNaN(t));
  return instants.length > 0 ? new Date(Math.min(...instants)).toISOString() : null;
}

function toFeedItem(r: InboxRow): FeedItem {
  return {
    cursor: String(r.seq),
    id: r.alert_id,
    type: r.type,
    origin: r.origin,
    handling: r.handling,
    issuedAt: r.issued_at,
    receivedAt: r.received_at,
    status: r.status,
    ...(r.status_reason === null ? {} : { statusReason: r.status_reason }),
    ...(r.corrected_by === null ? {} : { correctedBy: r.corrected_by }),
    ...(r.retracted_by === null ? {} : { retractedBy: r.retracted_by }),
    agreement: { id: r.agreement_id, version: r.agreement_version },
    onwardSharing: r.onward === 1,
    alert: JSON.parse(r.alert) as Alert,
  };
}
