import { openDatabase } from '@alert-hub/runtime';

/** What the audit log holds about one alert: how a test checks "exactly one entry per decision". */
export interface AlertAuditCounts {
  readonly alertId: string;
  /** Entries naming the alert (its decision, refusals, receipts ...). */
  readonly entries: number;
  /** `routed` entries: routing decisions. */
  readonly decisions: number;
  /** `received` entries (older logs, and refused messages). */
  readonly received: number;
  /** Copies that reached a feed: routes of its decisions with a feed sequence, plus `forwarded` entries. */
  readonly copies: number;
  /** Distinct recipients among those copies. */
  readonly recipients: number;
}

/** Per alert, what the audit database at `file` holds (read-only). */
export function auditCountsByAlert(file: string): Map<string, AlertAuditCounts> {
  const db = openDatabase(file, { readonly: true });
  try {
    const rows = db
      .prepare(
        `SELECT a.alert_id AS alertId, count(*) AS entries,
                sum(a.event = 'routed') AS decisions, sum(a.event = 'received') AS received,
                sum(a.event = 'forwarded') AS forwarded
           FROM audit a WHERE a.alert_id IS NOT NULL GROUP BY a.alert_id`,
      )
      .all() as {
      alertId: string;
      entries: number;
      decisions: number;
      received: number;
      forwarded: number;
    }[];
    const routes = db.prepare(
      `SELECT r.recipient FROM audit_routes r JOIN audit a ON a.seq = r.seq
        WHERE a.alert_id = ? AND a.event = 'routed' AND r.feed_seq IS NOT NULL
       UNION ALL
       SELECT recipient FROM audit WHERE alert_id = ? AND event = 'forwarded'`,
    );
    return new Map(
      rows.map((r) => {
        const to = (routes.all(r.alertId, r.alertId) as { recipient: string }[]).map(
          (x) => x.recipient,
        );
        return [
          r.alertId,
          {
            alertId: r.alertId,
            entries: r.entries,
            decisions: r.decisions,
            received: r.received,
            copies: to.length,
            recipients: new Set(to).size,
          },
        ];
      }),
    );
  } finally {
    db.close();
  }
}
