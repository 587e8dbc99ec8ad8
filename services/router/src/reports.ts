import { countryOf, type Operation, type OperationReport } from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';

export type { OperationReport };

type AgencyCounts = { sent: number; received: number; delivered: number; outcomes: number };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/**
 * An alert that named the operation outside its period was refused to everyone
 * (`DENY_OPERATION_PERIOD`): the audit log, in the same database, records that decision beside
 * the routed row. Such an alert is no part of the operation's activity.
 */
const OUTSIDE_PERIOD = `EXISTS (SELECT 1 FROM audit a WHERE a.alert_id = r.alert_id AND a.origin = r.origin
  AND a.event = 'denied' AND a.reason_code = 'DENY_OPERATION_PERIOD')`;

/**
 * The report of one operation from the router's database: alerts that named it (and outcomes
 * answering them), their deliveries with receipt latency, outcomes by result, and seizures (from
 * seizure reports in the operation and seizure outcomes) by country and commodity. Alerts refused
 * because the operation was not in its period count in none of these: they are listed apart, by
 * sender (`refusedOutsidePeriod`).
 */
export function operationReport(db: SqliteDatabase, op: Operation): OperationReport {
  const countries = new Set<string>();
  const byType: Record<string, number> = {};
  const agencies = new Map<string, AgencyCounts>();
  const agency = (id: string): AgencyCounts => {
    let a = agencies.get(id);
    if (!a) agencies.set(id, (a = { sent: 0, received: 0, delivered: 0, outcomes: 0 }));
    return a;
  };
  const routed = db
    .prepare(
      `SELECT origin, type, count(*) AS n FROM routed_alerts r
       WHERE operation = ? AND NOT ${OUTSIDE_PERIOD} GROUP BY origin, type`,
    )
    .all(op.id) as { origin: string; type: string; n: number }[];
  const refusedOutsidePeriod = db
    .prepare(
      `SELECT origin AS agency, count(*) AS alerts FROM routed_alerts r
       WHERE operation = ? AND ${OUTSIDE_PERIOD} GROUP BY origin ORDER BY origin`,
    )
    .all(op.id) as { agency: string; alerts: number }[];
  for (const r of routed) {
    byType[r.type] = (byType[r.type] ?? 0) + r.n;
    countries.add(countryOf(r.origin));
    agency(r.origin).sent += r.n;
  }
  const outcomeRows = db
    .prepare(
      'SELECT reporter, result, count(*) AS n FROM outcomes WHERE operation = ? GROUP BY reporter, result',
    )
    .all(op.id) as { reporter: string; result: string; n: number }[];
  const outcomes: Record<string, number> = {};
  for (const o of outcomeRows) {
    outcomes[o.result] = (outcomes[o.result] ?? 0) + o.n;
    countries.add(countryOf(o.reporter));
    agency(o.reporter).outcomes += o.n;
  }
  if (outcomeRows.length > 0) byType['outcome'] = outcomeRows.reduce((n, o) => n + o.n, 0);
  const deliveries = db
    .prepare(
      `SELECT d.recipient, d.forwarded_at, d.delivered_at FROM alert_deliveries d
       JOIN routed_alerts r ON r.origin = d.origin AND r.alert_id = d.alert_id
       WHERE r.operation = ?`,
    )
    .all(op.id) as {
    recipient: string;
    forwarded_at: string | null;
    delivered_at: string | null;
  }[];
  const latencies: number[] = [];
  let delivered = 0;
  for (const d of deliveries) {
    countries.add(countryOf(d.recipient));
    agency(d.recipient).received++;
    if (d.delivered_at === null) continue;
    delivered++;
    agency(d.recipient).delivered++;
    if (d.forwarded_at !== null)
      latencies.push(Math.max(0, Date.parse(d.delivered_at) - Date.parse(d.forwarded_at)));
  }
  latencies.sort((a, b) => a - b);
  const seizures = (
    db
      .prepare(
        `SELECT country, commodity, unit, sum(value) AS quantity, count(DISTINCT alert_id) AS reports
         FROM seizures s WHERE operation = ? AND NOT EXISTS (SELECT 1 FROM audit a
           WHERE a.alert_id = s.alert_id AND a.event = 'denied' AND a.reason_code = 'DENY_OPERATION_PERIOD')
         GROUP BY country, commodity, unit ORDER BY country, commodity, unit`,
      )
      .all(op.id) as {
      country: string;
      commodity: string;
      unit: string;
      quantity: number;
      reports: number;
    }[]
  ).map((s) => ({ ...s }));
  return {
    operation: {
      id: op.id,
      version: op.version,
      name: op.name,
      period: op.period,
      members: op.members,
    },
    countries: [...countries].sort(),
    alertsByType: byType,
    deliveries: {
      forwarded: deliveries.length,
      delivered,
      pending: deliveries.length - delivered,
      latencyMs:
        latencies.length === 0
          ? null
          : {
              p50: percentile(latencies, 50),
              p95: percentile(latencies, 95),
              max: latencies[latencies.length - 1]!,
            },
    },
    outcomes,
    agencies: [...agencies]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, c]) => ({ agency: id, ...c })),
    seizures,
    refusedOutsidePeriod: refusedOutsidePeriod.map((x) => ({ ...x })),
  };
}
