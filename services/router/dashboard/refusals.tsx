import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { callApi, t } from '@alert-hub/web';
import { sinceOf, type Period } from './flows';

/** An audit record as `/v1/audit` serves it (the members the dashboard reads). */
export interface AuditRecord {
  readonly seq: number;
  readonly at: string;
  readonly instance: string;
  readonly event: string;
  readonly alertId: string | null;
  readonly origin: string | null;
  readonly type: string | null;
  readonly recipient: string | null;
  readonly agreementId: string | null;
  readonly agreementVersion: number | null;
  readonly reasonCode: string | null;
  readonly reason: string | null;
  /**
   * JSON; a denial that sums up several recipients lists them in `recipients` (non-parties) or
   * `codes` (near misses, with `counts` per code).
   */
  readonly detail?: string | null;
  /** A routing decision's recipients, each with the agreement that allowed its copy. */
  readonly routes?: readonly {
    readonly recipient: string;
    readonly agreementId: string;
    readonly agreementVersion: number;
  }[];
}

/** The code of the one entry that sums up a decision's near misses (`@alert-hub/audit`). */
const NEAR_MISSES = 'DENY_NEAR_MISSES';
const PAGE = 5000;
const MAX_PAGES = 20;
const REFRESH_MS = 10_000;
const HOUR_S = 3600;
/** Distinguishable on white, and for the commonest colour-vision deficiencies (Okabe-Ito). */
const COLOURS = [
  '#E69F00',
  '#56B4E9',
  '#009E73',
  '#D55E00',
  '#0072B2',
  '#CC79A7',
  '#000000',
  '#F0E442',
];

/** Every record of one outcome in the period, page by page (at most MAX_PAGES × PAGE). */
async function fetchAll(outcome: string, since: string | undefined): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  let after = 0;
  for (let i = 0; i < MAX_PAGES; i++) {
    const q = new URLSearchParams({ outcome, limit: String(PAGE), after: String(after) });
    if (since) q.set('since', since);
    const r = await callApi<{ records: AuditRecord[] }>(`/v1/audit?${q.toString()}`);
    if (!r.ok) break;
    out.push(...r.body.records);
    const last = r.body.records[r.body.records.length - 1];
    if (r.body.records.length < PAGE || !last) break;
    after = last.seq;
  }
  return out;
}

/**
 * Refusals (denied by the agreements, rejected at verification) per hour and reason, as a
 * uPlot bar chart, with the same numbers in a table for keyboard and screen-reader users.
 */
export function Refusals(props: { period: Period; type: string }) {
  const [records, setRecords] = useState<readonly AuditRecord[] | undefined>(undefined);
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let stopped = false;
    const load = async () => {
      const since = sinceOf(props.period);
      const [denied, rejected] = await Promise.all([
        fetchAll('denied', since),
        fetchAll('rejected', since),
      ]);
      if (!stopped) setRecords([...denied, ...rejected]);
    };
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [props.period]);

  const shown = (records ?? []).filter((r) => props.type === '' || r.type === props.type);
  // Each reason once per record: a decision's near-miss summary counts once for each code in it.
  const reasonsOf = (r: AuditRecord): string[] => {
    if (r.reasonCode === NEAR_MISSES && r.detail) {
      try {
        const counts = (JSON.parse(r.detail) as { counts?: Record<string, unknown> }).counts;
        if (counts && typeof counts === 'object') return Object.keys(counts);
      } catch {
        // not a summary this dashboard knows: counted under its own code
      }
    }
    return [r.reasonCode ?? r.event];
  };
  const hours = new Map<number, Map<string, number>>();
  const byReason = new Map<string, number>();
  for (const r of shown) {
    const h = Math.floor(Date.parse(r.at) / 1000 / HOUR_S) * HOUR_S;
    const m = hours.get(h) ?? new Map<string, number>();
    for (const reason of reasonsOf(r)) {
      m.set(reason, (m.get(reason) ?? 0) + 1);
      byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
    }
    hours.set(h, m);
  }
  const reasons = [...byReason.keys()].sort();
  const xs = [...hours.keys()].sort((a, b) => a - b);
  const totals = reasons.map((reason) => byReason.get(reason) ?? 0);

  useEffect(() => {
    const el = box.current;
    if (!el || xs.length === 0) return undefined;
    // Stacked bars: series i carries the sum of reasons 0..i and is drawn before the smaller
    // sums, so each reason shows as its own band. The table below gives the exact numbers.
    const stacked = reasons.map((_, i) =>
      xs.map((x) => reasons.slice(0, i + 1).reduce((a, r) => a + (hours.get(x)?.get(r) ?? 0), 0)),
    );
    const order = reasons.map((_, i) => i).reverse();
    const data: uPlot.AlignedData = [xs, ...order.map((i) => stacked[i]!)];
    const bars = uPlot.paths.bars!({ size: [0.8, 40] });
    const plot = new uPlot(
      {
        width: Math.max(320, el.clientWidth),
        height: 240,
        legend: { show: false },
        // UTC, like every time on the dashboard.
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
        scales: {
          // Half an hour either side: the hour ticks fall on the bars, none on the edges, where
          // its label would be cut off.
          x: {
            time: true,
            range: () => [xs[0]! - HOUR_S / 2, xs[xs.length - 1]! + HOUR_S / 2],
          },
          y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
        },
        axes: [
          // Whole hours in UTC, the same in every language: `hh:mm`, with the day (`MM-DD hh:mm`)
          // on the first tick and where the day changes. Ticks at least 80 px apart, so that the
          // labels never run into each other (they did at uPlot's default spacing).
          {
            space: 80,
            incrs: [1, 2, 3, 6, 12, 24, 48, 168].map((h) => h * HOUR_S),
            values: (_u, splits) => hourLabels(splits),
          },
          { label: t('dash.refusals.caption') },
        ],
        series: [
          {},
          ...order.map((i) => ({
            label: reasons[i]!,
            stroke: COLOURS[i % COLOURS.length]!,
            fill: COLOURS[i % COLOURS.length]!,
            paths: bars,
            points: { show: false },
          })),
        ],
      },
      data,
      el,
    );
    return () => plot.destroy();
  }, [records, props.type]);

  return (
    <section class="panel" aria-labelledby="refusals-title">
      <h2 id="refusals-title">{t('dash.refusals')}</h2>
      {records && shown.length === 0 && <p class="notice">{t('dash.refusals.empty')}</p>}
      <div
        ref={box}
        class={shown.length > 0 ? 'chart' : ''}
        id="refusals-chart"
        aria-hidden="true"
      />
      {shown.length > 0 && (
        <table id="refusals">
          <thead>
            <tr>
              <th scope="col">{t('col.reason')}</th>
              <th scope="col">{t('dash.total')}</th>
            </tr>
          </thead>
          <tbody>
            {reasons.map((reason, i) => (
              <tr key={reason} data-reason={reason}>
                <td class="mono">
                  <span class={`swatch swatch-${i % COLOURS.length}`} /> {reason}
                </td>
                <td class="cell">{totals[i]}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** Axis labels for hour ticks (Unix seconds): `hh:mm`, and `MM-DD hh:mm` where the day changes. */
export function hourLabels(splits: readonly number[]): string[] {
  let day = '';
  return splits.map((x) => {
    const iso = new Date(x * 1000).toISOString();
    const d = iso.slice(5, 10);
    const label = d === day ? iso.slice(11, 16) : `${d} ${iso.slice(11, 16)}`;
    day = d;
    return label;
  });
}
