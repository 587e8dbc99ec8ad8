import { countryOf, type Operation } from '@alert-hub/core';
import type { SqliteDatabase } from '@alert-hub/runtime';

/** What a coordinator publishes at the end of an operation. */
export interface OperationReport {
  readonly operation: {
    readonly id: string;
    readonly version: number;
    readonly name: string;
    readonly period: { readonly from: string; readonly until: string };
    readonly members: readonly string[];
  };
  /** Countries that sent or received an operation alert (or an outcome of one), sorted. */
  readonly countries: readonly string[];
  readonly alertsByType: Readonly<Record<string, number>>;
  readonly deliveries: {
    readonly forwarded: number;
    readonly delivered: number;
    readonly pending: number;
    /**
     * From the hub publishing the copy to the recipient's inbox commit (`committedAt` of its
     * signed receipt): two hosts' clocks, so skew between them shows here; and a receipt that
     * several commits share carries the last one's time, so a delivery may read up to the
     * gateway's `receipts.coalesceMs` late.
     */
    readonly latencyMs: { readonly p50: number; readonly p95: number; readonly max: number } | null;
  };
  readonly outcomes: Readonly<Record<string, number>>;
  /**
   * Per agency, sorted: operation alerts it sent, copies of them forwarded to it and delivered
   * (its signed receipt verified), and outcomes it reported on them.
   */
  readonly agencies: readonly {
    readonly agency: string;
    readonly sent: number;
    readonly received: number;
    readonly delivered: number;
    readonly outcomes: number;
  }[];
  readonly seizures: readonly {
    readonly country: string;
    readonly commodity: string;
    readonly unit: string;
    readonly quantity: number;
    readonly reports: number;
  }[];
}

type AgencyCounts = { sent: number; received: number; delivered: number; outcomes: number };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
}

/**
 * The report of one operation from the router's database: alerts that named it (and outcomes
 * answering them), their deliveries with receipt latency, outcomes by result, and seizures (from
 * seizure reports in the operation and seizure outcomes) by country and commodity.
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
      'SELECT origin, type, count(*) AS n FROM routed_alerts WHERE operation = ? GROUP BY origin, type',
    )
    .all(op.id) as { origin: string; type: string; n: number }[];
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
         FROM seizures WHERE operation = ? GROUP BY country, commodity, unit ORDER BY country, commodity, unit`,
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
  };
}
