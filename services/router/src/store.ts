import type { Alert, AgreementRef, Allowed, Denied } from '@alert-hub/core';
import { DenyReason } from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';
import { AuditAppender, AuditEvent, type AuditEntry } from '@alert-hub/audit';

/** What the router decided about one message; written with its audit records in one transaction. */
export type Outcome =
  | {
      readonly kind: 'routed';
      readonly alert: Alert;
      readonly streamSeq: number;
      readonly forwards: readonly (Allowed & {
        readonly feedSeq: number;
        readonly viaOriginal: boolean;
      })[];
      readonly denied: readonly Denied[];
    }
  | {
      readonly kind: 'rejected';
      readonly streamSeq: number;
      readonly subject: string;
      readonly claimedOrigin?: string | undefined;
      readonly alertId?: string | undefined;
      /** The id the message claims when it could not be verified. */
      readonly claimedId?: string | undefined;
      readonly type?: string | undefined;
      readonly code: string;
      readonly reason: string;
      /** Absent when dead-lettering failed repeatedly: the refusal is audited all the same. */
      readonly deadLetterSeq?: number;
    }
  | {
      readonly kind: 'agreements';
      readonly file: string;
      readonly sha256: string;
      readonly agreements: readonly AgreementRef[];
    };

/** A routed alert the router remembers: its id is never routed twice. */
export interface RoutedState {
  readonly streamSeq: number;
  readonly origin: string;
}

// An alert is identified by (origin, id): one agency's id never shadows another's. Databases
// made before that (tables "routed" and "deliveries", keyed by id alone) are carried over once.
// No index of our own: `hubctl audit verify` refuses indexes it does not know (only retractions
// look an id up across origins, a scan).
const SCHEMA = `
CREATE TABLE IF NOT EXISTS routed_alerts (
  origin     TEXT    NOT NULL,
  alert_id   TEXT    NOT NULL,
  stream_seq INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  at         TEXT    NOT NULL,
  PRIMARY KEY (origin, alert_id)
);
CREATE TABLE IF NOT EXISTS decisions (
  stream_seq INTEGER PRIMARY KEY,
  at         TEXT    NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_deliveries (
  origin            TEXT    NOT NULL,
  alert_id          TEXT    NOT NULL,
  recipient         TEXT    NOT NULL,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  feed_seq          INTEGER NOT NULL,
  PRIMARY KEY (origin, alert_id, recipient)
);
`;

function migrateIdOnlyTables(db: SqliteDatabase): void {
  const has = (t: string) =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t) !==
    undefined;
  db.transaction(() => {
    if (has('routed')) {
      db.exec(`INSERT OR IGNORE INTO routed_alerts (origin, alert_id, stream_seq, type, at)
               SELECT origin, alert_id, stream_seq, type, at FROM routed; DROP TABLE routed;`);
    }
    if (has('deliveries')) {
      db.exec(`INSERT OR IGNORE INTO alert_deliveries
               SELECT r.origin, d.alert_id, d.recipient, d.agreement_id, d.agreement_version, d.onward, d.feed_seq
               FROM deliveries d JOIN routed_alerts r ON r.alert_id = d.alert_id; DROP TABLE deliveries;`);
    }
  }).immediate();
}

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
  readonly #decide;
  readonly #write;

  constructor(db: SqliteDatabase, instance: string, options: { transparency?: boolean } = {}) {
    db.exec(SCHEMA);
    migrateIdOnlyTables(db);
    this.audit = new AuditAppender(db, instance, options);
    this.#routed = db.prepare<[string, string], { stream_seq: number; origin: string }>(
      'SELECT stream_seq, origin FROM routed_alerts WHERE origin = ? AND alert_id = ?',
    );
    this.#routedAnyOrigin = db.prepare<[string], { stream_seq: number; origin: string }>(
      'SELECT stream_seq, origin FROM routed_alerts WHERE alert_id = ? ORDER BY origin',
    );
    this.#insertRouted = db.prepare(
      'INSERT INTO routed_alerts (origin, alert_id, stream_seq, type, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#deliveriesOf = db.prepare<
      [string, string],
      { recipient: string; agreement_id: string; agreement_version: number; onward: number }
    >(
      'SELECT recipient, agreement_id, agreement_version, onward FROM alert_deliveries WHERE origin = ? AND alert_id = ? ORDER BY recipient',
    );
    this.#insertDelivery = db.prepare(
      'INSERT INTO alert_deliveries (origin, alert_id, recipient, agreement_id, agreement_version, onward, feed_seq) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    );
    this.#decide = db.prepare(
      'INSERT INTO decisions (stream_seq, at) VALUES (?, ?) ON CONFLICT (stream_seq) DO NOTHING',
    );
    this.#write = db.transaction((outcomes: readonly Outcome[], at: string) => {
      const entries: AuditEntry[] = [];
      for (const o of outcomes) {
        // One decision per inbound message, whatever JetStream redelivers and whichever router
        // sharing this database handles it: a second outcome for a sequence writes nothing.
        if (o.kind !== 'agreements' && this.#decide.run(o.streamSeq, at).changes === 0) continue;
        entries.push(...this.#apply(o, at));
      }
      this.audit.append(entries, at);
    });
  }

  /** The routed state of `origin`'s alert `alertId`, if it was routed before. */
  routed(origin: string, alertId: string): RoutedState | undefined {
    const r = this.#routed.get(origin, alertId);
    return r && { streamSeq: r.stream_seq, origin: r.origin };
  }

  /** Every agency whose alert `alertId` was routed (to tell a retraction of another's alert). */
  routedByAnyOrigin(alertId: string): RoutedState[] {
    return this.#routedAnyOrigin
      .all(alertId)
      .map((r) => ({ streamSeq: r.stream_seq, origin: r.origin }));
  }

  /** Who received `origin`'s alert `alertId`, under which agreement. */
  deliveriesOf(origin: string, alertId: string): Allowed[] {
    return this.#deliveriesOf.all(origin, alertId).map((d) => ({
      recipient: d.recipient,
      agreement: { id: d.agreement_id, version: d.agreement_version },
      onward: d.onward === 1,
    }));
  }

  /** Commits outcomes and their audit records in one immediate transaction. */
  write(outcomes: readonly Outcome[], at = new Date().toISOString()): void {
    this.#write.immediate(outcomes, at);
  }

  #apply(o: Outcome, at: string): AuditEntry[] {
    if (o.kind === 'agreements') {
      return [
        {
          event: AuditEvent.AgreementsLoaded,
          reason: o.file,
          detail: { sha256: o.sha256, agreements: o.agreements.map((a) => `${a.id}@${a.version}`) },
        },
      ];
    }
    if (o.kind === 'rejected') {
      const who = {
        alertId: o.alertId,
        claimedId: o.alertId === undefined ? o.claimedId : undefined,
        origin: o.claimedOrigin,
        type: o.type,
        streamSeq: o.streamSeq,
      };
      return [
        { event: AuditEvent.Received, ...who, detail: { subject: o.subject } },
        { event: AuditEvent.Rejected, ...who, reasonCode: o.code, reason: o.reason },
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
    const a = o.alert;
    this.#insertRouted.run(a.origin, a.id, o.streamSeq, a.type, at);
    const who = {
      alertId: a.id,
      origin: a.origin,
      type: a.type,
      handling: a.handling,
      streamSeq: o.streamSeq,
    };
    const entries: AuditEntry[] = [{ event: AuditEvent.Received, ...who }];
    for (const f of o.forwards) {
      this.#insertDelivery.run(
        a.origin,
        a.id,
        f.recipient,
        f.agreement.id,
        f.agreement.version,
        f.onward ? 1 : 0,
        f.feedSeq,
      );
      entries.push({
        event: AuditEvent.Forwarded,
        ...who,
        recipient: f.recipient,
        agreementId: f.agreement.id,
        agreementVersion: f.agreement.version,
        feedSeq: f.feedSeq,
        ...(f.viaOriginal ? { reason: 'retraction sent to every recipient of the original' } : {}),
      });
    }
    const nonParties = o.denied
      .filter((d) => d.reason === DenyReason.NotParty)
      .map((d) => d.recipient);
    for (const d of o.denied) {
      if (d.reason !== DenyReason.NotParty)
        entries.push({
          event: AuditEvent.Denied,
          ...who,
          recipient: d.recipient,
          reasonCode: d.reason,
          reason: d.detail,
        });
    }
    if (nonParties.length > 0) {
      entries.push({
        event: AuditEvent.Denied,
        ...who,
        reasonCode: DenyReason.NotParty,
        reason: `no agreement includes ${a.origin} and ${nonParties.length === 1 ? nonParties[0] : `any of ${nonParties.length} other agencies`}`,
        // Every non-party is listed, so that a query for one partner finds its refusals.
        detail: { recipients: nonParties },
      });
    }
    return entries;
  }
}
