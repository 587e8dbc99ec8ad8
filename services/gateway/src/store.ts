import {
  instantOf,
  mayRetract,
  MAX_RECEIPT_DELIVERIES,
  newAlertId,
  inboundStreamName,
  parseInboundSubject,
  routedRefusals,
  Streams,
  type Alert,
  type DeliveryReceipt,
  type NoticeEvent,
  type AlertStatus as WireAlertStatus,
  type RecipientStatus,
} from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';

/** A verified alert received on the agency's feed. */
export interface ReceivedAlert {
  readonly alert: Alert;
  readonly envelope: Uint8Array;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly onward: boolean;
  readonly streamSeq: number;
  readonly receivedAt: string;
  /** Hex SHA-256 of `envelope`: what the delivery receipt names it by. */
  readonly envelopeSha256: string;
}

export type { RecipientStatus };

/** Outcomes a status lists at most (the newest); `outcomesTotal` counts them all. */
export const MAX_STATUS_OUTCOMES = 100;

/** What became of an alert this agency sent (the outcomes partners reported in full). */
export type AlertStatus = WireAlertStatus<Alert>;

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
  /**
   * The stream that acknowledged the alert at `sequence`: the agency's inbound stream at the hub
   * (`AHUB_IN_<agency>`; `AHUB_INBOUND` on a hub before the upgrade), or the agency's leaf outbox
   * (whose sequences are not the inbound stream's).
   */
  readonly stream?: string;
  readonly contentSha256: string;
  readonly acceptedAt: string;
  readonly type: string;
  readonly client: string;
  /** For an outcome: the id of the received alert it answers, and its result. */
  readonly answers?: string;
  readonly result?: string;
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
  | { kind: 'alert'; item: ReceivedAlert }
  | { kind: 'quarantine'; item: QuarantinedMessage }
  | { kind: 'notice'; events: readonly NoticeEvent[] };

/** A sealed delivery receipt waiting to be published. */
export interface PendingReceipt {
  readonly receipt: DeliveryReceipt;
  /**
   * The signed envelope, once the sender has signed the receipt (absent before its first send):
   * every later send publishes exactly these bytes.
   */
  readonly signed?: Uint8Array;
}

export interface GatewayStoreOptions {
  /** The agency whose inbox this is (it signs the receipts). */
  readonly agency?: string;
  /** Queue one delivery receipt per commit that stored new alerts. */
  readonly receipts?: boolean;
}

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

/**
 * The inbox table. A received alert is identified by (origin, id): two agencies' alerts with the
 * same id are two rows, and neither hides the other. `seq` is the feed cursor.
 */
function inboxTable(name: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${name} (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id          TEXT    NOT NULL,
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
  answers           TEXT,
  status            TEXT    NOT NULL DEFAULT 'active',
  status_reason     TEXT,
  corrected_by      TEXT,
  retracted_by      TEXT,
  alert             TEXT    NOT NULL,
  envelope          BLOB    NOT NULL,
  hide_after        TEXT,
  UNIQUE (alert_id, origin)
);`;
}

const SCHEMA = `${inboxTable('inbox')}
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
  client         TEXT    NOT NULL,
  answers        TEXT,
  result         TEXT,
  stream         TEXT
);
CREATE TABLE IF NOT EXISTS receipt_out (
  receipt_id TEXT PRIMARY KEY,
  receipt    TEXT NOT NULL,
  -- 0 while commits may still add deliveries; 1 once the sender took it (never changed again).
  sealed     INTEGER NOT NULL DEFAULT 1,
  -- The signed envelope, stored before it is first published (NULL until then; never changed).
  signed     BLOB
);
CREATE TABLE IF NOT EXISTS sent_status (
  alert_id  TEXT PRIMARY KEY,
  state     TEXT NOT NULL,
  at        TEXT NOT NULL,
  operation TEXT,
  code      TEXT,
  reason    TEXT
);
CREATE TABLE IF NOT EXISTS sent_recipients (
  alert_id     TEXT NOT NULL,
  recipient    TEXT NOT NULL,
  state        TEXT NOT NULL,
  since        TEXT NOT NULL,
  delivered_at TEXT,
  receipt_id   TEXT,
  code         TEXT,
  reason       TEXT,
  PRIMARY KEY (alert_id, recipient)
);
CREATE INDEX IF NOT EXISTS sent_recipients_pending ON sent_recipients (since) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS refusals (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  at         TEXT    NOT NULL,
  alert_id   TEXT,
  receipt_id TEXT,
  subject    TEXT    NOT NULL,
  stream_seq INTEGER NOT NULL,
  code       TEXT    NOT NULL,
  reason     TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS health (id INTEGER PRIMARY KEY CHECK (id = 1), checked_at TEXT NOT NULL);
`;

/**
 * The gateway's SQLite database: the inbox (verified feed, de-duplicated by (origin, alert id), in the
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
  readonly #anyByKey;
  readonly #writeBatch;
  readonly #putSentBatch;
  readonly #options: GatewayStoreOptions;
  readonly #insertReceiptOut;
  readonly #openReceipt;
  readonly #extendReceipt;
  readonly #sealReceipts;
  readonly #deleteReceipt;
  readonly #storeSigned;
  readonly #signedOf;
  readonly #receiptsSentTx;
  readonly #applyEventsTx;
  /** What a hub notice's events write: prepared once, as a notice follows every alert sent. */
  readonly #events;
  readonly #pendingReceipts;

  constructor(db: SqliteDatabase, options: GatewayStoreOptions = {}) {
    this.#db = db;
    this.#options = options;
    migrateInbox(db);
    db.exec(SCHEMA);
    db.exec(
      'CREATE INDEX IF NOT EXISTS inbox_answers ON inbox (answers) WHERE answers IS NOT NULL',
    );
    // Databases made before the console listed the outcomes an agency reported get the column.
    const sentColumns = db.prepare('PRAGMA table_info(sent)').all() as { name: string }[];
    if (!sentColumns.some((c) => c.name === 'answers'))
      db.exec('ALTER TABLE sent ADD COLUMN answers TEXT; ALTER TABLE sent ADD COLUMN result TEXT');
    // Databases made before a refusal was matched to the alert by its sequence: their rows name no
    // stream, so no refusal is matched to them.
    if (!sentColumns.some((c) => c.name === 'stream'))
      db.exec('ALTER TABLE sent ADD COLUMN stream TEXT');
    db.exec('CREATE INDEX IF NOT EXISTS sent_answers ON sent (answers) WHERE answers IS NOT NULL');
    db.exec(
      'CREATE INDEX IF NOT EXISTS sent_sequence ON sent (sequence, stream) WHERE stream IS NOT NULL',
    );
    // Databases made before receipts were coalesced: their receipts may have been sent already,
    // so they count as sealed (never extended).
    const receiptColumns = db.prepare('PRAGMA table_info(receipt_out)').all() as {
      name: string;
    }[];
    if (!receiptColumns.some((c) => c.name === 'sealed'))
      db.exec('ALTER TABLE receipt_out ADD COLUMN sealed INTEGER NOT NULL DEFAULT 1');
    // Databases made before receipts were stored signed: their rows are signed at their next send.
    if (!receiptColumns.some((c) => c.name === 'signed'))
      db.exec('ALTER TABLE receipt_out ADD COLUMN signed BLOB');
    this.#insertReceiptOut = db.prepare(
      'INSERT INTO receipt_out (receipt_id, receipt, sealed) VALUES (?, ?, 0)',
    );
    this.#openReceipt = db.prepare<[], { receipt_id: string; receipt: string }>(
      'SELECT receipt_id, receipt FROM receipt_out WHERE sealed = 0 ORDER BY rowid DESC LIMIT 1',
    );
    this.#extendReceipt = db.prepare(
      'UPDATE receipt_out SET receipt = ? WHERE receipt_id = ? AND sealed = 0',
    );
    this.#sealReceipts = db.prepare('UPDATE receipt_out SET sealed = 1 WHERE sealed = 0');
    this.#deleteReceipt = db.prepare('DELETE FROM receipt_out WHERE receipt_id = ?');
    // Only a sealed receipt is signed, and only once: the first bytes stored stay.
    this.#storeSigned = db.prepare(
      'UPDATE receipt_out SET signed = ? WHERE receipt_id = ? AND sealed = 1 AND signed IS NULL',
    );
    this.#signedOf = db.prepare<[string], { signed: Uint8Array | null }>(
      'SELECT signed FROM receipt_out WHERE receipt_id = ? AND sealed = 1',
    );
    this.#receiptsSentTx = db.transaction((sent: readonly string[], seal: boolean) => {
      for (const id of sent) this.#deleteReceipt.run(id);
      if (seal) this.#sealReceipts.run();
    });
    this.#applyEventsTx = db.transaction((events: readonly NoticeEvent[]) =>
      this.#applyEvents(events),
    );
    // An alert's state: `routed` once any decision routed it (a dead letter requeued and routed
    // after its refusal included); `refused` while none has (a refusal of a later copy under the
    // same id, a duplicate, does not hide that it was routed).
    this.#events = {
      routed: db.prepare(
        `INSERT INTO sent_status (alert_id, state, at, operation, code, reason) VALUES (?, 'routed', ?, ?, NULL, NULL)
         ON CONFLICT (alert_id) DO UPDATE SET state = 'routed', at = excluded.at, operation = excluded.operation, code = NULL, reason = NULL`,
      ),
      sentAt: db.prepare<[number, string], { alert_id: string; type: string }>(
        'SELECT alert_id, type FROM sent WHERE sequence = ? AND stream = ?',
      ),
      pending: db.prepare(
        `INSERT INTO sent_recipients (alert_id, recipient, state, since) VALUES (?, ?, 'pending', ?) ON CONFLICT DO NOTHING`,
      ),
      denied: db.prepare(
        `INSERT INTO sent_recipients (alert_id, recipient, state, since, code, reason) VALUES (?, ?, 'refused', ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      delivered: db.prepare(
        `INSERT INTO sent_recipients (alert_id, recipient, state, since, delivered_at, receipt_id) VALUES (?, ?, 'delivered', ?, ?, ?)
         ON CONFLICT DO UPDATE SET state = 'delivered', delivered_at = excluded.delivered_at, receipt_id = excluded.receipt_id`,
      ),
      refusal: db.prepare(
        'INSERT INTO refusals (at, alert_id, receipt_id, subject, stream_seq, code, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      refused: db.prepare(
        `INSERT INTO sent_status (alert_id, state, at, code, reason) VALUES (?, 'refused', ?, ?, ?)
         ON CONFLICT (alert_id) DO UPDATE SET state = 'refused', at = excluded.at, code = excluded.code, reason = excluded.reason
         WHERE state <> 'routed'`,
      ),
    };
    this.#pendingReceipts = db.prepare<[number], { receipt: string; signed: Uint8Array | null }>(
      'SELECT receipt, signed FROM receipt_out WHERE sealed = 1 ORDER BY rowid LIMIT ?',
    );
    this.#insertInbox = db.prepare(
      `INSERT INTO inbox (alert_id, type, origin, handling, issued_at, received_at, stored_at, agreement_id, agreement_version, onward, stream_seq, retracts, answers, alert, envelope, hide_after)
       VALUES (@alert_id, @type, @origin, @handling, @issued_at, @received_at, @stored_at, @agreement_id, @agreement_version, @onward, @stream_seq, @retracts, @answers, @alert, @envelope, @hide_after)
       ON CONFLICT (alert_id, origin) DO NOTHING`,
    );
    this.#insertQuarantine = db.prepare(
      'INSERT INTO quarantine (received_at, subject, stream_seq, code, reason, envelope) VALUES (?, ?, ?, ?, ?, ?)',
    );
    // Who may retract what is core's rule (mayRetract); these statements only read and write.
    // A retraction names an id of its own origin's: the target is (the retraction's origin, id).
    this.#applyRetraction = db.prepare(
      `UPDATE inbox SET status = @status, status_reason = @reason, corrected_by = @corrected_by, retracted_by = @retracted_by
       WHERE alert_id = @target AND origin = @origin`,
    );
    this.#retractionFor = db.prepare<[string, string], { alert: string }>(
      `SELECT alert FROM inbox WHERE retracts = ? AND origin = ? ORDER BY seq DESC`,
    );
    this.#insertSent = db.prepare(
      'INSERT INTO sent (alert_id, sequence, content_sha256, accepted_at, type, client, answers, result, stream) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING',
    );
    this.#getSent = db.prepare<[string], SentRow>('SELECT * FROM sent WHERE alert_id = ?');
    this.#page = db.prepare<[number, string, number], InboxRow>(
      `SELECT * FROM inbox WHERE seq > ? AND ${VISIBLE} ORDER BY seq LIMIT ?`,
    );
    this.#pageByType = db.prepare<[number, string, string, number], InboxRow>(
      `SELECT * FROM inbox WHERE seq > ? AND type = ? AND ${VISIBLE} ORDER BY seq LIMIT ?`,
    );
    // Hidden or not: a retraction still applies to a consignee flag past its review date.
    this.#anyByKey = db.prepare<[string, string], InboxRow>(
      'SELECT * FROM inbox WHERE alert_id = ? AND origin = ?',
    );
    this.#byId = db.prepare<[string, string], InboxRow>(
      `SELECT * FROM inbox WHERE alert_id = ? AND ${VISIBLE} ORDER BY seq`,
    );
    this.#putSentBatch = db.transaction((receipts: readonly SentReceipt[]) => {
      for (const r of receipts)
        this.#insertSent.run(
          r.id,
          r.sequence,
          r.contentSha256,
          r.acceptedAt,
          r.type,
          r.client,
          r.answers ?? null,
          r.result ?? null,
          r.stream ?? null,
        );
    });
    this.#writeBatch = db.transaction((writes: readonly FeedWrite[]) => {
      // One commit time per transaction: when the rows became durable (benchmarks measure to here).
      const storedAt = new Date().toISOString();
      let inserted = 0;
      const delivered: ReceivedAlert[] = [];
      for (const w of writes) {
        if (w.kind === 'notice') {
          this.#applyEvents(w.events);
        } else if (w.kind === 'quarantine') {
          const q = w.item;
          this.#insertQuarantine.run(
            q.receivedAt,
            q.subject,
            q.streamSeq,
            q.code,
            q.reason,
            q.envelope,
          );
        } else if (this.#insertOne(w.item, storedAt)) {
          inserted++;
          delivered.push(w.item);
        }
      }
      // The receipt owed is written in the same transaction: a crash never loses one. Commits
      // made before the receipt sender takes the open receipt (it waits receipts.coalesceMs)
      // add to it, up to the 1,000 deliveries a receipt may list; `committedAt` is then the
      // last commit's, when every delivery it lists was durable.
      if (this.#options.receipts && this.#options.agency && delivered.length > 0) {
        const deliveries = delivered.map((d) => ({
          alertId: d.alert.id,
          origin: d.alert.origin,
          envelopeSha256: d.envelopeSha256,
        }));
        const open = this.#openReceipt.get();
        const prior = open && (JSON.parse(open.receipt) as DeliveryReceipt);
        if (prior && prior.deliveries.length + deliveries.length <= MAX_RECEIPT_DELIVERIES) {
          const receipt: DeliveryReceipt = {
            ...prior,
            committedAt: storedAt,
            deliveries: [...prior.deliveries, ...deliveries],
          };
          this.#extendReceipt.run(JSON.stringify(receipt), prior.receipt);
        } else {
          // A commit larger than a receipt may list (the feed's batches are not) spans several.
          for (let i = 0; i < deliveries.length; i += MAX_RECEIPT_DELIVERIES) {
            const receipt: DeliveryReceipt = {
              receipt: newAlertId(),
              agency: this.#options.agency,
              committedAt: storedAt,
              deliveries: deliveries.slice(i, i + MAX_RECEIPT_DELIVERIES),
            };
            this.#insertReceiptOut.run(receipt.receipt, JSON.stringify(receipt));
          }
        }
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
      answers: a.type === 'outcome' ? (a.answers ?? null) : null,
      alert: JSON.stringify(a),
      envelope: r.envelope,
      hide_after: hideAfter(a),
    });
    if (info.changes === 0) return false;
    if (a.type === 'retraction' && a.retracts) this.#retract(a);
    else {
      // A retraction may have arrived before the alert it retracts.
      const earlier = this.#retractionFor
        .all(a.id, a.origin)
        .map((row) => JSON.parse(row.alert) as Alert)
        .find((r) => mayRetract(r, a));
      if (earlier) this.#retract(earlier);
    }
    return true;
  }

  #retract(r: Alert): void {
    const target = r.retracts === undefined ? undefined : this.#anyByKey.get(r.retracts, r.origin);
    if (!target || !mayRetract(r, target)) return;
    this.#applyRetraction.run({
      status: r.action === 'correct' ? 'corrected' : 'withdrawn',
      reason: r.reason ?? null,
      corrected_by: r.correctedBy ?? null,
      retracted_by: r.id,
      target: r.retracts,
      origin: target.origin,
    });
  }

  #applyEvents(events: readonly NoticeEvent[]): void {
    const q = this.#events;
    for (const e of events) {
      if (e.event === 'routed') {
        q.routed.run(e.alertId, e.at, e.operation ?? null);
        for (const r of e.recipients) q.pending.run(e.alertId, r, e.at);
        for (const d of routedRefusals(e.denied))
          q.denied.run(e.alertId, d.recipient, e.at, d.code, d.reason);
      } else if (e.event === 'delivered') {
        q.delivered.run(e.alertId, e.recipient, e.committedAt, e.committedAt, e.receipt);
      } else {
        // A message the router could not verify has no alert id it would vouch for. This gateway
        // knows which alert it published at that inbound sequence, on that subject: that alert
        // was refused (the notice is the hub's, signed; the sequence is the inbound stream's).
        const alertId =
          e.alertId ?? (e.receipt === undefined ? this.#sentAt(e.subject, e.streamSeq) : undefined);
        q.refusal.run(
          e.at,
          alertId ?? null,
          e.receipt ?? null,
          e.subject,
          e.streamSeq,
          e.code,
          e.reason,
        );
        if (alertId) q.refused.run(alertId, e.at, e.code, e.reason);
      }
    }
  }

  /**
   * The alert this gateway published on `subject` at inbound sequence `streamSeq`, if it did. The
   * sequence is its agency's inbound stream's (`AHUB_IN_<agency>`), or, for a message published
   * before the hub's upgrade, the shared `AHUB_INBOUND`'s; a refusal does not say which. When
   * this gateway sent a message at that sequence into both, it cannot tell, and matches neither.
   */
  #sentAt(subject: string, streamSeq: number | null | undefined): string | undefined {
    const claim = parseInboundSubject(subject);
    if (typeof streamSeq !== 'number' || !claim) return undefined;
    const own = this.#events.sentAt.get(streamSeq, inboundStreamName(claim.origin));
    const legacy = this.#events.sentAt.get(streamSeq, Streams.Inbound);
    const r = own && legacy ? undefined : (own ?? legacy);
    return r && claim.type === r.type ? r.alert_id : undefined;
  }

  /** Applies hub notice events in one transaction (idempotent: a repeated notice changes nothing). */
  applyNotice(events: readonly NoticeEvent[]): void {
    this.#applyEventsTx(events);
  }

  /**
   * Sealed receipts waiting to be published, oldest first, with their signed envelope once they
   * have one. A sealed receipt never changes again, and it is signed once
   * ({@link storeSignedReceipt}, before its first publish): a resend after a crash is the same
   * bytes under the same message id whatever the key's algorithm (an ES256 signature differs each
   * time it is made, an Ed25519 one does not), which JetStream drops as a duplicate within its
   * window.
   */
  pendingReceipts(limit = 100): PendingReceipt[] {
    return this.#pendingReceipts.all(limit).map((r) => ({
      receipt: JSON.parse(r.receipt) as DeliveryReceipt,
      ...(r.signed === null ? {} : { signed: r.signed }),
    }));
  }

  /**
   * Stores the signed envelope of a sealed receipt that has none yet, and returns the envelope
   * the receipt now has: `envelope`, or the one stored before (the first stored never changes);
   * undefined when no sealed receipt has this id (an open one is never signed). The sender
   * stores it before publishing it, so that every send publishes the same bytes.
   */
  storeSignedReceipt(receiptId: string, envelope: Uint8Array): Uint8Array | undefined {
    this.#storeSigned.run(envelope, receiptId);
    return this.#signedOf.get(receiptId)?.signed ?? undefined;
  }

  /**
   * In one transaction: removes the receipts JetStream acknowledged and, with `seal`, seals the
   * open one (no later commit adds to it).
   */
  receiptsSent(receiptIds: readonly string[], seal = false): void {
    if (receiptIds.length > 0 || seal) this.#receiptsSentTx(receiptIds, seal);
  }

  /** What became of an alert this agency sent; undefined if it did not send it. */
  statusOf(id: string, now: number, pendingAlertMs: number): AlertStatus | undefined {
    const sent = this.sentById(id);
    if (!sent) return undefined;
    const st = this.#db.prepare('SELECT * FROM sent_status WHERE alert_id = ?').get(id) as
      | {
          state: 'routed' | 'refused';
          at: string;
          operation: string | null;
          code: string | null;
          reason: string | null;
        }
      | undefined;
    const rows = this.#db
      .prepare('SELECT * FROM sent_recipients WHERE alert_id = ? ORDER BY recipient')
      .all(id) as {
      recipient: string;
      state: RecipientStatus['state'];
      since: string;
      delivered_at: string | null;
      receipt_id: string | null;
      code: string | null;
      reason: string | null;
    }[];
    const recipients: RecipientStatus[] = rows.map((r) => {
      if (r.state === 'delivered')
        return {
          recipient: r.recipient,
          state: r.state,
          deliveredAt: r.delivered_at ?? r.since,
          receiptVerified: true,
          ...(r.receipt_id ? { receipt: r.receipt_id } : {}),
        };
      if (r.state === 'refused')
        return {
          recipient: r.recipient,
          state: r.state,
          code: r.code ?? 'ERR_INTERNAL',
          reason: r.reason ?? '',
        };
      return {
        recipient: r.recipient,
        state: r.state,
        since: r.since,
        overdue: now - Date.parse(r.since) > pendingAlertMs,
      };
    });
    // The newest MAX_STATUS_OUTCOMES, oldest first: a partner may report any number.
    const outcomesTotal = (
      this.#db.prepare('SELECT count(*) AS n FROM inbox WHERE answers = ?').get(id) as {
        n: number;
      }
    ).n;
    const outcomes = (
      this.#db
        .prepare(
          'SELECT alert_id, origin, issued_at, alert FROM inbox WHERE answers = ? ORDER BY seq DESC LIMIT ?',
        )
        .all(id, MAX_STATUS_OUTCOMES) as {
        alert_id: string;
        origin: string;
        issued_at: string;
        alert: string;
      }[]
    )
      .reverse()
      .map((o) => {
        const outcome = JSON.parse(o.alert) as Alert;
        return {
          id: o.alert_id,
          from: o.origin,
          result: String(outcome.result),
          issuedAt: o.issued_at,
          outcome,
        };
      });
    return {
      id,
      type: sent.type,
      state: st?.state ?? 'accepted',
      acceptedAt: sent.acceptedAt,
      ...(st?.state === 'routed' ? { routedAt: st.at } : {}),
      ...(st?.operation ? { operation: st.operation } : {}),
      ...(st?.state === 'refused'
        ? { refused: { code: st.code ?? 'ERR_INTERNAL', reason: st.reason ?? '', at: st.at } }
        : {}),
      recipients,
      outcomes,
      outcomesTotal,
    };
  }

  /**
   * Alerts this agency sent, stored at a sequence below `firstSeq` of the stream that acknowledged
   * them (the leaf's outbox), of which the hub has said nothing (neither routed nor refused): they
   * left the outbox before the hub had them. Oldest first, at most `limit`, with the total.
   */
  sentGoneUnrouted(firstSeq: number, limit = 20): { ids: string[]; count: number } {
    const where =
      'FROM sent s WHERE s.sequence < ? AND NOT EXISTS (SELECT 1 FROM sent_status st WHERE st.alert_id = s.alert_id)';
    const ids = (
      this.#db
        .prepare(`SELECT s.alert_id ${where} ORDER BY s.sequence LIMIT ?`)
        .all(firstSeq, limit) as { alert_id: string }[]
    ).map((r) => r.alert_id);
    const count = (this.#db.prepare(`SELECT count(*) AS n ${where}`).get(firstSeq) as { n: number })
      .n;
    return { ids, count };
  }

  /** Recipients pending longer than `pendingAlertMs`. */
  overdueCount(now: number, pendingAlertMs: number): number {
    return (
      this.#db
        .prepare("SELECT count(*) AS n FROM sent_recipients WHERE state = 'pending' AND since < ?")
        .get(new Date(now - pendingAlertMs).toISOString()) as { n: number }
    ).n;
  }

  /** Refusal notices received, newest first (forged receipts, refused alerts, ...). */
  refusals(limit = 100): {
    at: string;
    alertId: string | null;
    receipt: string | null;
    subject: string;
    code: string;
    reason: string;
  }[] {
    return (
      this.#db
        .prepare(
          'SELECT at, alert_id, receipt_id, subject, code, reason FROM refusals ORDER BY id DESC LIMIT ?',
        )
        .all(limit) as {
        at: string;
        alert_id: string | null;
        receipt_id: string | null;
        subject: string;
        code: string;
        reason: string;
      }[]
    ).map((r) => ({
      at: r.at,
      alertId: r.alert_id,
      receipt: r.receipt_id,
      subject: r.subject,
      code: r.code,
      reason: r.reason,
    }));
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

  /** The newest cursor in the inbox ('0' when it is empty). */
  lastCursor(): string {
    const r = this.#db.prepare('SELECT max(seq) AS n FROM inbox').get() as { n: number | null };
    return String(r.n ?? 0);
  }

  /**
   * Every received alert with this id, one per origin, oldest first (an alert is identified by
   * (origin, id)); a hidden consignee flag (see {@link listFeed}) is not found.
   */
  receivedWithId(id: string, now = new Date()): FeedItem[] {
    return this.#byId.all(id, now.toISOString()).map(toFeedItem);
  }

  /**
   * The received alert with this id when exactly one origin sent one (undefined when none or
   * several did: use {@link receivedWithId} or filter by origin then).
   */
  receivedById(id: string, now = new Date()): FeedItem | undefined {
    const rows = this.receivedWithId(id, now);
    return rows.length === 1 ? rows[0] : undefined;
  }

  /** The origins this agency received an alert with id `id` from (hidden ones too), sorted. */
  originsOfReceived(id: string): string[] {
    return (
      this.#db
        .prepare('SELECT DISTINCT origin FROM inbox WHERE alert_id = ? ORDER BY origin')
        .all(id) as { origin: string }[]
    ).map((r) => r.origin);
  }

  /** The stored envelope of `origin`'s alert `id`, exactly as it came off the feed. */
  envelopeOf(origin: string, id: string): Uint8Array | undefined {
    const row = this.#db
      .prepare('SELECT envelope FROM inbox WHERE alert_id = ? AND origin = ?')
      .get(id, origin) as { envelope: Uint8Array } | undefined;
    return row?.envelope;
  }

  sentById(id: string): SentReceipt | undefined {
    const r = this.#getSent.get(id);
    return r && toSentReceipt(r);
  }

  /** Alerts this agency sent, newest first. */
  listSent(limit: number): SentReceipt[] {
    return (
      this.#db
        .prepare('SELECT * FROM sent ORDER BY accepted_at DESC, rowid DESC LIMIT ?')
        .all(limit) as SentRow[]
    ).map(toSentReceipt);
  }

  /** Outcomes this agency sent that answer the received alert `id`, oldest first. */
  sentAnswering(id: string): SentReceipt[] {
    return (
      this.#db
        .prepare('SELECT * FROM sent WHERE answers = ? ORDER BY accepted_at, rowid')
        .all(id) as SentRow[]
    ).map(toSentReceipt);
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

/** The inbox's columns, in the order of {@link inboxTable}. */
const INBOX_COLUMNS = [
  'seq',
  'alert_id',
  'type',
  'origin',
  'handling',
  'issued_at',
  'received_at',
  'stored_at',
  'agreement_id',
  'agreement_version',
  'onward',
  'stream_seq',
  'retracts',
  'answers',
  'status',
  'status_reason',
  'corrected_by',
  'retracted_by',
  'alert',
  'envelope',
  'hide_after',
] as const;

/**
 * Brings an inbox made by an earlier release to the current table, in one transaction, keeping
 * every row and its `seq` (feed cursors stay valid): an inbox keyed by the alert id alone
 * (`alert_id UNIQUE`, where a second agency's alert with the same id was never stored) is
 * rebuilt keyed by (alert id, origin); columns added since (`stored_at`, `answers`,
 * `hide_after`) are NULL in old rows. A current inbox is left as it is.
 */
export function migrateInbox(db: SqliteDatabase): void {
  const columns = (db.prepare('PRAGMA table_info(inbox)').all() as { name: string }[]).map(
    (c) => c.name,
  );
  if (columns.length === 0) return;
  const keyedByIdAlone = (
    db.prepare('PRAGMA index_list(inbox)').all() as { name: string; unique: number }[]
  ).some(
    (i) =>
      i.unique === 1 &&
      (db.prepare(`PRAGMA index_info("${i.name.replace(/"/g, '""')}")`).all() as { name: string }[])
        .map((c) => c.name)
        .join(',') === 'alert_id',
  );
  const missing = INBOX_COLUMNS.filter((c) => !columns.includes(c));
  if (!keyedByIdAlone && missing.length === 0) return;
  db.transaction(() => {
    if (!keyedByIdAlone) {
      for (const c of missing) db.exec(`ALTER TABLE inbox ADD COLUMN ${c} TEXT`);
      return;
    }
    const kept = INBOX_COLUMNS.filter((c) => columns.includes(c)).join(', ');
    const last = db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'inbox'").get() as
      { seq: number } | undefined;
    db.exec(`DROP TABLE IF EXISTS inbox_by_origin;
      ${inboxTable('inbox_by_origin')}
      INSERT INTO inbox_by_origin (${kept}) SELECT ${kept} FROM inbox ORDER BY seq;
      DROP TABLE inbox;
      ALTER TABLE inbox_by_origin RENAME TO inbox;`);
    // AUTOINCREMENT: a cursor once handed out is never reused, rows deleted or not.
    if (last) {
      db.prepare("DELETE FROM sqlite_sequence WHERE name = 'inbox'").run();
      db.prepare(
        "INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox', max(?, coalesce(max(seq), 0)) FROM inbox",
      ).run(last.seq);
    }
  }).immediate();
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

interface SentRow {
  alert_id: string;
  sequence: number;
  content_sha256: string;
  accepted_at: string;
  type: string;
  client: string;
  answers: string | null;
  result: string | null;
}

function toSentReceipt(r: SentRow): SentReceipt {
  return {
    id: r.alert_id,
    sequence: r.sequence,
    contentSha256: r.content_sha256,
    acceptedAt: r.accepted_at,
    type: r.type,
    client: r.client,
    ...(r.answers === null ? {} : { answers: r.answers }),
    ...(r.result === null ? {} : { result: r.result }),
  };
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
