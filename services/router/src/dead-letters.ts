import { createHash, randomBytes } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, StoredMsg } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  DEAD_LETTER_ALL,
  Streams,
  decodeEnvelope,
  isJsonObject,
  parseInboundSubject,
  parseJsonBytes,
  type GeneralJws,
} from '@alert-hub/core';
import { AuditEvent } from '@alert-hub/audit';
import { HttpError, HttpErrorCode, type Logger } from '@alert-hub/runtime';
import { claimedAlertId } from './routing-loop.js';
import type { RouterStore } from './store.js';

/**
 * Dead letters for operators: list and read the `AHUB_DEADLETTER` stream, and requeue one once
 * its cause is fixed (a trust store updated, an agreement added). The router does the requeue,
 * because it owns the audit log: it appends a `requeued` entry, marks the dead letter in its
 * database, and publishes the original bytes again on their inbound subject under the message id
 * {@link requeueMsgId}. The routing loop then takes that message like any other, with
 * {@link DeadLetters.accepts} standing in for the usual message id check; its duplicate check by
 * (origin, id) still refuses an alert that was routed in the meantime, so nothing is forwarded twice.
 * The dead letter itself stays in its stream (which refuses deletes and purges).
 */

/** The requeue table: one row per requeued dead letter, kept for ever (like the audit). */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS dead_letter_requeues (
  dead_letter_seq INTEGER PRIMARY KEY,
  subject         TEXT    NOT NULL,
  sha256          TEXT    NOT NULL,
  origin          TEXT,
  alert_id        TEXT,
  requested_by    TEXT    NOT NULL,
  requested_at    TEXT    NOT NULL,
  inbound_seq     INTEGER,
  nonce           TEXT,
  inbound_stream  TEXT
);
`;

/**
 * How many dead letters one list request returns at most. Each is one JetStream get (the next
 * message on the filter's subjects at or after a sequence, so messages of other origins are never
 * read), and one more tells whether there is a next page: a request reads at most
 * `MAX_LIST_LIMIT + 1` messages, whatever the stream holds.
 */
export const MAX_LIST_LIMIT = 1000;

/**
 * JetStream message id of a requeued dead letter: `requeue:<dead-letter seq>:<digest>`, the
 * digest the first 22 characters of the base64url SHA-256 of the requeue's secret nonce and the
 * bytes. The nonce (kept in the requeue's row, made when the operator asks) makes the id one
 * nobody can compute ahead of the router, the dead letter's origin included, who knows the
 * bytes: JetStream keeps the first message under an id for its duplicate window, so an id known
 * in advance could be taken and the requeue's publish dropped as a duplicate. A row from before
 * the nonce has none: its id is the digest of the bytes alone.
 */
export function requeueMsgId(
  deadLetterSeq: number,
  data: Uint8Array,
  nonce: string | null = null,
): string {
  const h = createHash('sha256');
  if (nonce !== null) h.update(`${nonce}:`);
  const digest = h.update(data).digest('base64url').slice(0, 22);
  return `requeue:${deadLetterSeq}:${digest}`;
}

const REQUEUE_ID = /^requeue:(\d{1,15}):([A-Za-z0-9_-]{22})$/;

/** What the list says about one dead letter: never the alert's content. */
export interface DeadLetterSummary {
  /** Its sequence in `AHUB_DEADLETTER`. */
  readonly seq: number;
  /** When the router dead-lettered it. */
  readonly at: string;
  /** The agency its subject claimed (`unknown` when it claimed none). */
  readonly origin: string;
  /** The alert id the envelope's header claims, unverified; absent when it has none. */
  readonly claimedAlertId?: string;
  readonly code: string;
  readonly reason: string;
  readonly originalSubject: string;
  /**
   * The inbound stream that stored it: an agency's own (`AHUB_IN_<agency>`), or `AHUB_INBOUND`
   * (the legacy shared stream, and every dead letter from before per-agency streams).
   */
  readonly originalStream: string;
  /** Its sequence in {@link originalStream}. */
  readonly originalSeq: number | null;
  readonly bytes: number;
  readonly truncated: boolean;
  readonly requeued?: {
    readonly at: string;
    readonly by: string;
    readonly inboundSeq: number | null;
    /** The inbound stream the requeued message went to (null: published before it was recorded). */
    readonly inboundStream: string | null;
  };
}

/** One dead letter in full: headers, the envelope's protected headers and, if asked, the alert. */
export interface DeadLetterDetail extends DeadLetterSummary {
  readonly headers: Readonly<Record<string, string>>;
  readonly sha256: string;
  /** The decoded envelope's protected headers and payload size; absent when it does not decode. */
  readonly envelope?: {
    readonly signatures: readonly Record<string, unknown>[];
    readonly payloadBytes: number;
  };
  /** Why the envelope could not be decoded (a poison message). */
  readonly undecodable?: string;
  /** The alert (the payload's JSON), only for an operator who asked for it. */
  readonly alert?: unknown;
  /** The message bytes as base64, only for an operator who asked, when they are not an envelope. */
  readonly raw?: string;
}

export interface RequeueResult {
  readonly deadLetterSeq: number;
  readonly subject: string;
  readonly msgId: string;
  readonly inboundSeq: number;
  /** The inbound stream that stored it (its subject's agency's own stream, or the legacy one). */
  readonly inboundStream: string;
  /** The `requeued` audit entry (0 when an earlier attempt appended it and failed to publish). */
  readonly auditSeq: number;
}

export interface DeadLettersDeps {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly store: RouterStore;
  readonly log: Logger;
  readonly publishTimeoutMs: number;
  readonly now?: () => Date;
}

interface RequeueRow {
  dead_letter_seq: number;
  subject: string;
  sha256: string;
  origin: string | null;
  alert_id: string | null;
  requested_by: string;
  requested_at: string;
  inbound_seq: number | null;
  nonce: string | null;
  inbound_stream: string | null;
}

function header(m: StoredMsg, name: string): string {
  try {
    return m.header.get(name) ?? '';
  } catch {
    return '';
  }
}

function decodeHeaders(jws: GeneralJws): Record<string, unknown>[] {
  return jws.signatures.map((s) => {
    try {
      const h = parseJsonBytes(Buffer.from(s.protected, 'base64url'));
      return isJsonObject(h) ? h : { invalid: 'the protected header is not a JSON object' };
    } catch (err) {
      return { invalid: (err as Error).message };
    }
  });
}

export class DeadLetters {
  readonly #d: DeadLettersDeps;
  readonly #row;
  readonly #insert;
  readonly #setInbound;

  constructor(deps: DeadLettersDeps) {
    this.#d = deps;
    const db = deps.store.db;
    db.exec(SCHEMA);
    // A table from before the requeue's nonce gains the column; its rows keep their ids. Under
    // the write lock: routers sharing the database may start at the same moment.
    db.transaction(() => {
      if (
        !db
          .prepare("SELECT 1 FROM pragma_table_info('dead_letter_requeues') WHERE name = 'nonce'")
          .get()
      )
        db.exec('ALTER TABLE dead_letter_requeues ADD COLUMN nonce TEXT');
      // The stream a requeue was stored in (an inbound sequence is its stream's).
      if (
        !db
          .prepare(
            "SELECT 1 FROM pragma_table_info('dead_letter_requeues') WHERE name = 'inbound_stream'",
          )
          .get()
      )
        db.exec('ALTER TABLE dead_letter_requeues ADD COLUMN inbound_stream TEXT');
    }).immediate();
    this.#row = db.prepare<[number], RequeueRow>(
      'SELECT * FROM dead_letter_requeues WHERE dead_letter_seq = ?',
    );
    this.#insert = db.prepare(
      `INSERT INTO dead_letter_requeues (dead_letter_seq, subject, sha256, origin, alert_id, requested_by, requested_at, nonce)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
    );
    this.#setInbound = db.prepare(
      'UPDATE dead_letter_requeues SET inbound_seq = ?, inbound_stream = ? WHERE dead_letter_seq = ?',
    );
  }

  /**
   * Whether an inbound message is a dead letter an operator requeued: its message id is the
   * requeue id of a dead letter marked requeued, on that dead letter's subject, with its bytes.
   */
  accepts(msgId: string, subject: string, data: Uint8Array): boolean {
    const m = REQUEUE_ID.exec(msgId);
    if (!m) return false;
    const row = this.#row.get(Number(m[1]));
    if (!row || row.subject !== subject) return false;
    return (
      requeueMsgId(row.dead_letter_seq, data, row.nonce) === msgId &&
      createHash('sha256').update(data).digest('hex') === row.sha256
    );
  }

  async #get(seq: number): Promise<StoredMsg> {
    const m = await this.#d.jsm.streams.getMessage(Streams.DeadLetter, { seq });
    if (!m) throw new HttpError(HttpErrorCode.NotFound, `no dead letter ${seq}`);
    return m;
  }

  #summary(m: StoredMsg): DeadLetterSummary {
    const row = this.#row.get(m.seq);
    const originalSeq = Number(header(m, 'Ahub-Original-Seq'));
    const claimed = claimedAlertId(m.data);
    const truncated = header(m, 'Ahub-Truncated') !== '';
    return {
      seq: m.seq,
      at: m.time.toISOString(),
      origin: m.subject.split('.')[2] ?? 'unknown',
      ...(claimed ? { claimedAlertId: claimed } : {}),
      code: header(m, 'Ahub-Reason-Code'),
      reason: header(m, 'Ahub-Reason'),
      originalSubject: header(m, 'Ahub-Original-Subject'),
      originalStream: header(m, 'Ahub-Original-Stream') || Streams.Inbound,
      originalSeq: Number.isSafeInteger(originalSeq) && originalSeq > 0 ? originalSeq : null,
      bytes: Number(header(m, 'Ahub-Original-Bytes')) || m.data.byteLength,
      truncated,
      ...(row
        ? {
            requeued: {
              at: row.requested_at,
              by: row.requested_by,
              inboundSeq: row.inbound_seq,
              inboundStream: row.inbound_stream,
            },
          }
        : {}),
    };
  }

  /**
   * Dead letters after stream sequence `after`, oldest first, optionally of one claimed origin:
   * at most `limit` ({@link MAX_LIST_LIMIT} at most), and `next` (the `after` of the next page)
   * when more follow. Reads `limit + 1` messages at most, never the ones in between.
   */
  async list(q: { after?: number; limit?: number; origin?: string }): Promise<{
    items: DeadLetterSummary[];
    next?: number;
  }> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), MAX_LIST_LIMIT);
    // The origin was checked to be one subject token (letters, digits, '-', '_').
    const filter = q.origin === undefined ? DEAD_LETTER_ALL : `ahub.dlq.${q.origin}`;
    const items: DeadLetterSummary[] = [];
    let seq = (q.after ?? 0) + 1;
    for (;;) {
      const m = await this.#next(seq, filter);
      if (!m) return { items };
      if (items.length === limit) return { items, next: seq - 1 };
      items.push(this.#summary(m));
      seq = m.seq + 1;
    }
  }

  /** The first dead letter at or after `seq` on a subject `filter` matches, or null. */
  async #next(seq: number, filter: string): Promise<StoredMsg | null> {
    // nats.js types a stream get by sequence or last subject only; nats-server (2.9 too) also
    // answers `next_by_subj`, which skips the messages on other subjects server-side.
    const query = { seq, next_by_subj: filter } as unknown as { seq: number };
    return this.#d.jsm.streams.getMessage(Streams.DeadLetter, query);
  }

  /** One dead letter; the alert (or raw bytes) only with `withBody`, for operators. */
  async show(seq: number, withBody: boolean): Promise<DeadLetterDetail> {
    const m = await this.#get(seq);
    const headers: Record<string, string> = {};
    for (const k of m.header.keys()) headers[k] = m.header.get(k);
    const base = {
      ...this.#summary(m),
      headers,
      sha256: createHash('sha256').update(m.data).digest('hex'),
    };
    let jws: GeneralJws;
    try {
      jws = decodeEnvelope(m.data);
    } catch (err) {
      return {
        ...base,
        undecodable: (err as Error).message,
        ...(withBody ? { raw: Buffer.from(m.data).toString('base64') } : {}),
      };
    }
    const payload = Buffer.from(jws.payload, 'base64url');
    let alert: unknown;
    if (withBody) {
      try {
        alert = parseJsonBytes(payload);
      } catch {
        alert = undefined;
      }
    }
    return {
      ...base,
      envelope: { signatures: decodeHeaders(jws), payloadBytes: payload.byteLength },
      ...(withBody && alert !== undefined ? { alert } : {}),
      ...(withBody && alert === undefined ? { raw: Buffer.from(m.data).toString('base64') } : {}),
    };
  }

  /**
   * Requeues dead letter `seq` for `by` (the operator's name): checks it can go back, marks it and
   * appends the `requeued` audit entry in one transaction, then publishes the original bytes on
   * the original subject. A publish that failed can be retried by requeueing again; a requeue that
   * was published is never repeated (`ERR_DEADLETTER_REQUEUED`).
   */
  async requeue(seq: number, by: string): Promise<RequeueResult> {
    const { store, log } = this.#d;
    const m = await this.#get(seq);
    const s = this.#summary(m);
    const sha256 = createHash('sha256').update(m.data).digest('hex');
    const claim = parseInboundSubject(s.originalSubject);
    if (s.truncated)
      throw new HttpError(
        HttpErrorCode.DeadLetterNotRequeueable,
        `dead letter ${seq} holds only the first bytes of a message too large to route`,
      );
    if (!claim)
      throw new HttpError(
        HttpErrorCode.DeadLetterNotRequeueable,
        `dead letter ${seq} did not come from an inbound subject (${JSON.stringify(s.originalSubject)})`,
      );
    if (header(m, 'Ahub-Original-Sha256') !== sha256)
      throw new HttpError(
        HttpErrorCode.DeadLetterNotRequeueable,
        `dead letter ${seq}: its bytes do not have the SHA-256 recorded when it was refused`,
      );
    const existing = this.#row.get(seq);
    if (existing?.inbound_seq != null)
      throw new HttpError(
        HttpErrorCode.DeadLetterRequeued,
        `dead letter ${seq} was requeued by ${existing.requested_by} at ${existing.requested_at} (inbound sequence ${existing.inbound_seq}${existing.inbound_stream ? ` of ${existing.inbound_stream}` : ''})`,
      );
    const routed = s.claimedAlertId ? store.routed(claim.origin, s.claimedAlertId) : undefined;
    if (routed)
      throw new HttpError(
        HttpErrorCode.AlertAlreadyRouted,
        `alert ${s.claimedAlertId} of ${claim.origin} was routed since (inbound sequence ${routed.streamSeq} of ${routed.stream}); requeueing it would forward it twice`,
      );
    // A requeue published before (its acknowledgement lost) is published again under its own id.
    const nonce = existing ? existing.nonce : randomBytes(16).toString('base64url');
    const msgId = requeueMsgId(seq, m.data, nonce);
    let auditSeq = 0;
    if (!existing) {
      const at = (this.#d.now ?? (() => new Date()))().toISOString();
      // The verified id where the audit has one for this dead letter, else the claimed one.
      const verified =
        s.claimedAlertId &&
        (
          store.db
            .prepare(
              `SELECT alert_id FROM audit WHERE alert_id = ? AND event = 'dead-lettered' AND feed_seq = ? LIMIT 1`,
            )
            .get(s.claimedAlertId, seq) as { alert_id: string } | undefined
        )?.alert_id;
      store.db
        .transaction(() => {
          if (
            this.#insert.run(
              seq,
              s.originalSubject,
              sha256,
              claim.origin,
              s.claimedAlertId ?? null,
              by,
              at,
              nonce,
            ).changes !== 1
          )
            throw new HttpError(
              HttpErrorCode.DeadLetterRequeued,
              `dead letter ${seq} is being requeued`,
            );
          // The row first: an append that lands must never be rolled back behind the appender.
          store.audit.append(
            [
              {
                event: AuditEvent.Requeued,
                ...(verified
                  ? { alertId: verified }
                  : { claimedId: s.claimedAlertId ?? undefined }),
                origin: claim.origin,
                type: claim.type,
                reasonCode: s.code,
                reason: `dead letter ${seq} requeued by ${by}`,
                streamSeq: s.originalSeq ?? undefined,
                feedSeq: seq,
                detail: { deadLetterSeq: seq, requestedBy: by, msgId, sha256 },
              },
            ],
            at,
          );
          auditSeq = (
            store.db.prepare('SELECT max(seq) AS seq FROM audit').get() as { seq: number }
          ).seq;
        })
        .immediate();
    }
    const h = natsHeaders();
    h.set('Ahub-Requeue-Of', String(seq));
    let inboundSeq: number;
    let inboundStream: string;
    try {
      const ack = await this.#d.js.publish(s.originalSubject, m.data, {
        msgID: msgId,
        headers: h,
        timeout: this.#d.publishTimeoutMs,
      });
      inboundSeq = ack.seq;
      inboundStream = ack.stream;
    } catch (err) {
      log.warn(
        { deadLetterSeq: seq, err: (err as Error).message },
        'requeue recorded but not published; requeue it again',
      );
      throw new HttpError(
        HttpErrorCode.NatsUnavailable,
        `dead letter ${seq} is marked requeued but could not be published: requeue it again`,
        undefined,
        { cause: err },
      );
    }
    this.#setInbound.run(inboundSeq, inboundStream, seq);
    log.info(
      {
        deadLetterSeq: seq,
        subject: s.originalSubject,
        claimedAlertId: s.claimedAlertId,
        inboundStream,
        inboundSeq,
        by,
      },
      'dead letter requeued',
    );
    return {
      deadLetterSeq: seq,
      subject: s.originalSubject,
      msgId,
      inboundSeq,
      inboundStream,
      auditSeq,
    };
  }
}
