import { useEffect, useState } from 'preact/hooks';
import { callApi, formatTime, t, type ApiError, type MessageKey } from '@alert-hub/web';
import type { OperationReport, OperationSummary } from '@alert-hub/core/api-types';

const REPORT_REFRESH_MS = 10_000;

/**
 * The report of one operation of the agreements file (picked from `/dashboard/api/operations`):
 * countries taking part, alerts by type, deliveries with receipt latency, outcomes by result,
 * counts per agency and seizures by country and commodity. Asked again every few seconds and on "Refresh".
 */
export function OperationReportPanel() {
  const [operations, setOperations] = useState<readonly OperationSummary[] | undefined>(undefined);
  const [selected, setSelected] = useState('');
  const [report, setReport] = useState<OperationReport | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  const [tick, setTick] = useState(0);

  useEffect(() => {
    void callApi<{ operations: OperationSummary[] }>('/dashboard/api/operations').then((r) => {
      if (!r.ok) {
        setError(r.error);
        return;
      }
      setOperations(r.body.operations);
      const first = r.body.operations[0];
      if (first) setSelected(first.id);
    });
  }, []);

  useEffect(() => {
    if (selected === '') return undefined;
    let current = true;
    const load = () =>
      void callApi<OperationReport>(`/v1/operations/${encodeURIComponent(selected)}/report`).then(
        (r) => {
          if (!current) return;
          if (r.ok) {
            setReport(r.body);
            setError(undefined);
          } else setError(r.error);
        },
      );
    load();
    const timer = setInterval(load, REPORT_REFRESH_MS);
    return () => {
      current = false;
      clearInterval(timer);
    };
  }, [selected, tick]);

  return (
    <section class="panel wide" aria-labelledby="report-title" id="report">
      <h2 id="report-title">{t('dash.report')}</h2>
      {operations !== undefined && operations.length === 0 && (
        <p class="notice">{t('dash.report.none')}</p>
      )}
      {operations !== undefined && operations.length > 0 && (
        <div class="filters">
          <label class="field">
            {t('dash.report.operation')}
            <select
              id="operation"
              value={selected}
              onChange={(e) => setSelected(e.currentTarget.value)}
            >
              {operations.map((o) => (
                <option key={o.id} value={o.id}>
                  {o.name} ({o.id})
                </option>
              ))}
            </select>
          </label>
          <button type="button" id="report-refresh" onClick={() => setTick((n) => n + 1)}>
            {t('dash.report.refresh')}
          </button>
        </div>
      )}
      {error && (
        <p role="alert" class="error">
          {error.code}: {error.message}
        </p>
      )}
      {report?.operation.id === selected && <ReportView report={report} />}
    </section>
  );
}

function ReportView(props: { report: OperationReport }) {
  const r = props.report;
  const d = r.deliveries;
  return (
    <div id="report-body" data-operation={r.operation.id} aria-live="polite">
      <p>
        <strong>{r.operation.name}</strong>{' '}
        <span class="mono">
          {r.operation.id}@{r.operation.version}
        </span>
        {' · '}
        {t('dash.report.period', {
          from: formatTime(r.operation.period.from),
          until: formatTime(r.operation.period.until),
        })}
      </p>
      <dl class="fields">
        <dt>{t('dash.report.members')}</dt>
        <dd id="report-members">{r.operation.members.join(', ')}</dd>
        <dt>{t('dash.report.countries')}</dt>
        <dd id="report-countries">
          {r.countries.length > 0 ? r.countries.join(', ') : t('dash.report.nothing')}
        </dd>
        {r.refusedOutsidePeriod.length > 0 && (
          <>
            <dt>{t('dash.report.refusedOutside')}</dt>
            <dd id="report-refused-outside">
              {r.refusedOutsidePeriod.map((x) => `${x.agency} ${x.alerts}`).join(', ')}
            </dd>
          </>
        )}
      </dl>
      <div class="report-grid">
        <CountTable
          id="report-types"
          caption="dash.report.types"
          head="col.type"
          counts={r.alertsByType}
          label={(k) => k}
        />
        <div>
          <h3>{t('dash.report.deliveries')}</h3>
          <dl class="fields" id="report-deliveries">
            <dt>{t('dash.report.forwarded')}</dt>
            <dd data-count="forwarded">{d.forwarded}</dd>
            <dt>{t('dash.report.delivered')}</dt>
            <dd data-count="delivered">{d.delivered}</dd>
            <dt>{t('dash.report.pendingCopies')}</dt>
            <dd data-count="pending">{d.pending}</dd>
          </dl>
          <p class="help" id="report-latency">
            {d.latencyMs
              ? t('dash.report.latency', {
                  p50: d.latencyMs.p50,
                  p95: d.latencyMs.p95,
                  max: d.latencyMs.max,
                })
              : t('dash.report.latency.none')}
          </p>
        </div>
        <CountTable
          id="report-outcomes"
          caption="dash.report.outcomes"
          head="outcomes.result"
          counts={r.outcomes}
          label={(k) => t(`outcome.${k}` as MessageKey)}
          empty="dash.report.outcomes.none"
        />
      </div>
      <h3>{t('dash.report.agencies')}</h3>
      {r.agencies.length === 0 ? (
        <p class="notice">{t('dash.report.nothing')}</p>
      ) : (
        <table id="report-agencies">
          <thead>
            <tr>
              <th scope="col">{t('dash.report.agency')}</th>
              <th scope="col">{t('dash.report.sent')}</th>
              <th scope="col">{t('dash.report.received')}</th>
              <th scope="col">{t('dash.report.deliveredTo')}</th>
              <th scope="col">{t('dash.report.outcomesBy')}</th>
            </tr>
          </thead>
          <tbody>
            {r.agencies.map((a) => (
              <tr key={a.agency} data-agency={a.agency}>
                <td>{a.agency}</td>
                <td class="num">{a.sent}</td>
                <td class="num">{a.received}</td>
                <td class="num">{a.delivered}</td>
                <td class="num">{a.outcomes}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <h3>{t('dash.report.seizures')}</h3>
      {r.seizures.length === 0 ? (
        <p class="notice">{t('dash.report.seizures.none')}</p>
      ) : (
        <table id="report-seizures">
          <thead>
            <tr>
              <th scope="col">{t('field.country')}</th>
              <th scope="col">{t('dash.report.commodity')}</th>
              <th scope="col">{t('dash.report.quantity')}</th>
              <th scope="col">{t('dash.report.reports')}</th>
            </tr>
          </thead>
          <tbody>
            {r.seizures.map((s) => (
              <tr key={`${s.country}|${s.commodity}|${s.unit}`} data-country={s.country}>
                <td>{s.country}</td>
                <td>{s.commodity}</td>
                <td class="num">
                  {s.quantity} {s.unit}
                </td>
                <td class="num">{s.reports}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

function CountTable(props: {
  id: string;
  caption: MessageKey;
  head: MessageKey;
  counts: Readonly<Record<string, number>>;
  label: (key: string) => string;
  empty?: MessageKey;
}) {
  const rows = Object.entries(props.counts).sort(([a], [b]) => a.localeCompare(b));
  return (
    <div>
      <h3>{t(props.caption)}</h3>
      {rows.length === 0 ? (
        <p class="notice">{t(props.empty ?? 'dash.report.nothing')}</p>
      ) : (
        <table id={props.id}>
          <thead>
            <tr>
              <th scope="col">{t(props.head)}</th>
              <th scope="col">{t('dash.report.count')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(([k, n]) => (
              <tr key={k} data-key={k}>
                <td>{props.label(k)}</td>
                <td class="num">{n}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
