import { openDatabase } from '@alert-hub/runtime';

/** What the audit log holds about one alert: how a test checks "exactly one entry per decision". */
export interface AlertAuditCounts {
  readonly alertId: string;
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
        `SELECT alert_id AS alertId, sum(event = 'routed') AS decisions,
                sum(event = 'received') AS received
           FROM audit WHERE alert_id IS NOT NULL GROUP BY alert_id`,
      )
      .all() as { alertId: string; decisions: number; received: number }[];
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

/**
 * Whether the log holds exactly one routing decision for the alert, and no `received` entry
 * beside it, naming each of `recipients` recipients once with its copy on its feed.
 */
export function isOneDecision(c: AlertAuditCounts | undefined, recipients: number): boolean {
  return (
    c?.decisions === 1 && c.received === 0 && c.copies === recipients && c.recipients === recipients
  );
}
