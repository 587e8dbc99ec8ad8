import { isJsonObject, parseRfc3339 } from '@alert-hub/core';
import {
  AuditEvent,
  HASHED_MEMBERS,
  NEAR_MISSES,
  hasRouteTable,
  toRecord,
  withRoutes,
  type AuditRecord,
  type AuditRow,
  type SqliteDatabase,
} from './audit.js';

/** A `since` or `until` that is not an RFC 3339 date-time. */
export class TimeFormatError extends Error {
  readonly code = 'ERR_TIME_INVALID';
  constructor(readonly value: string) {
    super(`${JSON.stringify(value)} is not an RFC 3339 date-time (e.g. 2026-11-28T09:00:00+01:00)`);
    this.name = 'TimeFormatError';
  }
}

/**
 * Parses an RFC 3339 date-time to the instant it names, as the ISO string of that instant in UTC
 * with milliseconds, which is how the audit log writes `at`; so text comparison of the two is
 * comparison of instants. The parsing is core's one RFC 3339 parser (`parseRfc3339`), the same
 * that reads alerts, agreements and keys: a time is read one way everywhere, a leap second
 * included. Throws {@link TimeFormatError} for anything else (a date alone, `yesterday`,
 * 2026-02-30, 24:00:00, `+08`, a lower-case `t` or `z`).
 */
export function parseInstant(value: string): string {
  const t = parseRfc3339(value);
  if (t === undefined) throw new TimeFormatError(value);
  return new Date(t).toISOString();
}

/** Filters of {@link queryAudit}. */
export interface AuditQuery {
  /** The sending agency. */
  readonly agency?: string;
  /** The partner: a recipient of a routing decision or a forward, or refused by a denial. */
  readonly partner?: string;
  readonly type?: string;
  /**
   * The event: routed, received, forwarded, denied, rejected, dead-lettered, held, delivered,
   * requeued, agreements-loaded. `received` also finds `routed` entries (a routing decision is
   * the alert received and routed), and `forwarded` also finds `routed` entries that put a copy
   * on a feed (with `partner`: that partner's copy), as `forwarded` entries did in older logs.
   */
  readonly outcome?: string;
  readonly alertId?: string;
  /** RFC 3339 bounds on the record time (inclusive since, exclusive until), parsed as instants. */
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
  // A partner is named as the recipient, or in a summary of refusals: among the `recipients` of
  // a "not a party" denial (or of an older summary by reason), or a key of a near-miss summary's
  // `codes`.
  // A routing decision names its recipients in `audit_routes` (a log from before it has none).
  const routes = hasRouteTable(db);
  if (q.partner !== undefined) {
    where.push(
      `(recipient = ? OR ${routes ? "(event = 'routed' AND EXISTS (SELECT 1 FROM audit_routes r WHERE r.seq = audit.seq AND r.recipient = ?)) OR " : ''}(event = 'denied' AND recipient IS NULL AND (EXISTS (SELECT 1 FROM json_each(audit.detail, '$.recipients') WHERE value = ?) OR EXISTS (SELECT 1 FROM json_each(audit.detail, '$.codes') WHERE key = ?))))`,
    );
    params.push(q.partner, ...(routes ? [q.partner] : []), q.partner, q.partner);
  }
  add('type = ?', q.type);
  if (q.outcome === AuditEvent.Received) where.push("event IN ('received', 'routed')");
  else if (q.outcome === AuditEvent.Forwarded) {
    // A decision's copy counts as forwarded once it is on its feed (a held copy is forwarded
    // later, in a `forwarded` entry of its own); with a partner, that partner's copy.
    where.push(
      routes
        ? `(event = 'forwarded' OR (event = 'routed' AND EXISTS (SELECT 1 FROM audit_routes r WHERE r.seq = audit.seq AND r.feed_seq IS NOT NULL${q.partner !== undefined ? ' AND r.recipient = ?' : ''})))`
        : "event = 'forwarded'",
    );
    if (routes && q.partner !== undefined) params.push(q.partner);
  } else add('event = ?', q.outcome);
  if (q.alertId !== undefined) {
    where.push('(alert_id = ? OR claimed_id = ?)');
    params.push(q.alertId, q.alertId);
  }
  add('at >= ?', q.since === undefined ? undefined : parseInstant(q.since));
  add('at < ?', q.until === undefined ? undefined : parseInstant(q.until));
  add('seq > ?', q.after);
  const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq LIMIT ?`;
  return withRoutes(
    db,
    (db.prepare(sql).all(...params, q.limit ?? 1000) as AuditRow[]).map(toRecord),
  );
}

/**
 * Every record about one alert, in order: its whole journey through the hub. Records of refused
 * messages that only claimed this id carry it in `claimedId` (never verified), not in `alertId`.
 */
export function traceAlert(db: SqliteDatabase, alertId: string): AuditRecord[] {
  return withRoutes(
    db,
    (
      db
        .prepare('SELECT * FROM audit WHERE alert_id = ? OR claimed_id = ? ORDER BY seq')
        .all(alertId, alertId) as AuditRow[]
    ).map(toRecord),
  );
}

/** A copy to one recipient, from a `forwarded` entry or from a routing decision's routes. */
export interface ForwardedCopy {
  readonly recipient: string;
  readonly agreementId: string | null;
  readonly agreementVersion: number | null;
  /** Null for a copy held (its feed full) and not forwarded yet. */
  readonly feedSeq: number | null;
  readonly at: string;
  readonly seq: number;
}

/**
 * The copies records (read with their routes) say were forwarded: each `forwarded` entry, and
 * each route of a `routed` entry whose copy reached its feed (a held copy is forwarded later, in
 * a `forwarded` entry of its own).
 */
export function forwardedCopies(records: readonly AuditRecord[]): ForwardedCopy[] {
  return records.flatMap((r): ForwardedCopy[] => {
    if (r.event === AuditEvent.Forwarded && r.recipient !== null)
      return [
        {
          recipient: r.recipient,
          agreementId: r.agreementId,
          agreementVersion: r.agreementVersion,
          feedSeq: r.feedSeq,
          at: r.at,
          seq: r.seq,
        },
      ];
    if (r.event !== AuditEvent.Routed) return [];
    return (r.routes ?? [])
      .filter((x) => x.feedSeq !== null)
      .map((x) => ({
        recipient: x.recipient,
        agreementId: x.agreementId,
        agreementVersion: x.agreementVersion,
        feedSeq: x.feedSeq,
        at: r.at,
        seq: r.seq,
      }));
  });
}

/** One recipient a `denied` record refuses, with the reason for that recipient. */
export interface DeniedRecipient {
  /** Null only for an older summary that did not list its recipients. */
  readonly recipient: string | null;
  /** The recipient's own `DENY_*` code (of a near-miss summary: its entry in `codes`). */
  readonly reasonCode: string | null;
  readonly reason: string | null;
}

/**
 * The recipients a `denied` record refuses: the one it names; or every one a summary lists, in
 * `detail.codes` (a near-miss summary, {@link NEAR_MISSES}: each recipient with its own code) or
 * in `detail.recipients` (a "not a party" summary, or an older summary of one reason, with each
 * one's reason from `detail.reasons` where it has them).
 */
export function deniedRecipients(r: AuditRecord): DeniedRecipient[] {
  if (r.recipient !== null || r.detail === null)
    return [{ recipient: r.recipient, reasonCode: r.reasonCode, reason: r.reason }];
  let detail: { recipients?: unknown; reasons?: unknown; codes?: unknown };
  try {
    detail = JSON.parse(r.detail) as typeof detail;
  } catch {
    return [{ recipient: null, reasonCode: r.reasonCode, reason: r.reason }];
  }
  const object = (v: unknown) => (isJsonObject(v) ? v : undefined);
  const codes = r.reasonCode === NEAR_MISSES ? object(detail.codes) : undefined;
  if (codes)
    return Object.entries(codes)
      .filter((e): e is [string, string] => typeof e[1] === 'string')
      .map(([recipient, code]) => ({ recipient, reasonCode: code, reason: r.reason }));
  const reasons = object(detail.reasons) ?? {};
  if (!Array.isArray(detail.recipients))
    return [{ recipient: null, reasonCode: r.reasonCode, reason: r.reason }];
  return detail.recipients
    .filter((x): x is string => typeof x === 'string')
    .map((recipient) => {
      const own = reasons[recipient];
      return {
        recipient,
        reasonCode: r.reasonCode,
        reason: typeof own === 'string' ? own : r.reason,
      };
    });
}

/**
 * Who a summary of refusals (one entry for several recipients) names, each with its own code
 * where it differs from the entry's (a near-miss summary: every one), every one of them: a
 * coordinator asks "refused to whom and why", and an answer that only counts them is none.
 * `hubctl audit trace` and the demo's trace print it.
 */
export function refusedNames(r: AuditRecord): string[] {
  return deniedRecipients(r).flatMap((d) =>
    d.recipient === null
      ? []
      : [d.reasonCode === r.reasonCode ? d.recipient : `${d.recipient} ${d.reasonCode}`],
  );
}

/**
 * A `denied` record as one line, after `who` (the recipient, or the names {@link refusedNames}
 * gives): `who: CODE reason`; when the names carry their own codes (a near-miss summary), the
 * entry's code and reason in parentheses after them, so that two codes never run together.
 */
export function describeRefusal(r: AuditRecord, who: string): string {
  const ownCodes =
    r.recipient === null && deniedRecipients(r).some((d) => d.reasonCode !== r.reasonCode);
  const text = `${r.reasonCode ?? ''}${r.reason ? `${r.reasonCode ? ' ' : ''}${r.reason}` : ''}`;
  return ownCodes
    ? `${who} (${r.reasonCode ?? ''}: ${r.reason ?? ''})`
    : `${who}: ${text}`.trimEnd();
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
  // Forwards are `forwarded` entries (older logs; held copies sent later) and the routes of
  // routing decisions whose copy reached its feed.
  const since = q.since === undefined ? '' : parseInstant(q.since);
  const until = q.until === undefined ? '9999' : parseInstant(q.until);
  const routes = hasRouteTable(db);
  return db
    .prepare(
      `SELECT day, origin, recipient, type, count(*) AS count FROM (
         SELECT substr(at, 1, 10) AS day, origin, recipient, type FROM audit
          WHERE event = 'forwarded' AND at >= ? AND at < ?
         ${
           routes
             ? `UNION ALL
         SELECT substr(a.at, 1, 10) AS day, a.origin, r.recipient, a.type FROM audit a
           JOIN audit_routes r ON r.seq = a.seq
          WHERE a.event = 'routed' AND a.at >= ? AND a.at < ? AND r.feed_seq IS NOT NULL`
             : ''
         })
       GROUP BY day, origin, recipient, type ORDER BY day, origin, recipient, type`,
    )
    .all(...(routes ? [since, until, since, until] : [since, until])) as FlowCount[];
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

/**
 * The CSV header: {@link AUDIT_COLUMNS}, then `routes`, a routing decision's recipients as JSON
 * (`[{"recipient", "agreement": "<id>@<version>", "feedSeq"}, ...]`, empty for other entries).
 */
export const CSV_HEADER = [...AUDIT_COLUMNS, 'routes'].join(',');

const csvField = (v: string | number | null): string => {
  if (v === null) return '';
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One CSV line (RFC 4180 quoting), columns as {@link CSV_HEADER}. */
export function toCsvLine(r: AuditRecord): string {
  const routes = r.routes
    ? JSON.stringify(
        r.routes.map((x) => ({
          recipient: x.recipient,
          agreement: `${x.agreementId}@${x.agreementVersion}`,
          feedSeq: x.feedSeq,
        })),
      )
    : null;
  return [...AUDIT_COLUMNS.map((c) => csvField(r[c])), csvField(routes)].join(',');
}
