import { useEffect, useRef, useState } from 'preact/hooks';
import { callApi, formatTimeCompact, t, type MessageKey } from '@alert-hub/web';
import type { AuditRecord } from './refusals';

/** How many recipients of a denial summary a row names before it says how many more. */
const RECIPIENTS_SHOWN = 5;

/**
 * Whom a record concerns: its recipient, or the recipients a denial summary lists (a near-miss
 * summary: each with its own code).
 */
function recipientsOf(r: AuditRecord): string {
  if (r.recipient !== null) return r.recipient;
  if (r.routes) return listed(r.routes.map((x) => x.recipient));
  if (r.event !== 'denied' || !r.detail) return '';
  let detail: { recipients?: unknown; codes?: unknown };
  try {
    detail = JSON.parse(r.detail) as typeof detail;
  } catch {
    return '';
  }
  const codes = detail.codes;
  const names: unknown =
    typeof codes === 'object' && codes !== null && !Array.isArray(codes)
      ? Object.entries(codes).map(([who, code]) => `${who} ${String(code)}`)
      : detail.recipients;
  if (!Array.isArray(names)) return '';
  return listed(names.filter((x): x is string => typeof x === 'string'));
}

/** The first names of a list, and how many more. */
function listed(names: readonly string[]): string {
  const more = names.length - RECIPIENTS_SHOWN;
  return names.slice(0, RECIPIENTS_SHOWN).join(', ') + (more > 0 ? ` +${more}` : '');
}

/** The agreement of a record: its own, or those a routing decision's copies went under. */
function agreementsOf(r: AuditRecord): string {
  if (r.agreementId) return `${r.agreementId}@${r.agreementVersion}`;
  return [...new Set((r.routes ?? []).map((x) => `${x.agreementId}@${x.agreementVersion}`))].join(
    ', ',
  );
}

function Records(props: { records: readonly AuditRecord[]; id: string }) {
  return (
    <table id={props.id}>
      <thead>
        <tr>
          <th scope="col">{t('col.seq')}</th>
          <th scope="col">{t('col.time')}</th>
          <th scope="col">{t('col.event')}</th>
          <th scope="col">{t('col.origin')}</th>
          <th scope="col">{t('col.recipient')}</th>
          <th scope="col">{t('col.agreement')}</th>
          <th scope="col">{t('col.reason')}</th>
        </tr>
      </thead>
      <tbody>
        {props.records.map((r) => (
          <tr key={`${r.instance}-${r.seq}`} data-event={r.event}>
            <td class="mono">{r.seq}</td>
            <td class="time mono">{formatTimeCompact(r.at)}</td>
            <td>{t(`event.${r.event}` as MessageKey)}</td>
            <td>{r.origin}</td>
            <td>{recipientsOf(r)}</td>
            <td class="mono">{agreementsOf(r)}</td>
            <td>{r.reasonCode}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Every audit record of one alert (GET /v1/audit/trace/:id). */
export function Trace() {
  const [id, setId] = useState('');
  const [records, setRecords] = useState<readonly AuditRecord[] | null | undefined>(undefined);
  return (
    <section class="panel wide" aria-labelledby="trace-title">
      <h2 id="trace-title">{t('dash.trace')}</h2>
      <form
        id="trace"
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          void callApi<{ records: AuditRecord[] }>(
            `/v1/audit/trace/${encodeURIComponent(id.trim())}`,
          ).then((r) => setRecords(r.ok ? r.body.records : null));
        }}
      >
        <label class="field">
          {t('dash.trace.id')}
          <input
            id="trace-id"
            class="mono"
            size={38}
            value={id}
            required
            onInput={(e) => setId(e.currentTarget.value)}
          />
        </label>
        <button type="submit">{t('dash.trace.submit')}</button>
      </form>
      {records === null && <p class="notice">{t('dash.trace.notFound')}</p>}
      {records && <Records records={records} id="trace-records" />}
    </section>
  );
}

const TAIL_MS = 2000;
const TAIL_KEEP = 50;

/** The newest routing decisions, polled from `/v1/audit?after=` every two seconds. */
export function Tail() {
  const [records, setRecords] = useState<readonly AuditRecord[]>([]);
  const after = useRef<number | undefined>(undefined);
  useEffect(() => {
    let stopped = false;
    const poll = async () => {
      // Not the health check (a full walk of the log) to find the head: the tail starts from
      // the first page and catches up 500 records per poll.
      after.current ??= 0;
      const r = await callApi<{ records: AuditRecord[] }>(
        `/v1/audit?after=${after.current}&limit=500`,
      );
      if (stopped || !r.ok || r.body.records.length === 0) return;
      after.current = Math.max(after.current, ...r.body.records.map((x) => x.seq));
      const decisions = r.body.records.filter((x) => x.event !== 'agreements-loaded');
      setRecords((prev) => [...decisions.reverse(), ...prev].slice(0, TAIL_KEEP));
    };
    void poll();
    const timer = setInterval(() => void poll(), TAIL_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  return (
    <section class="panel wide" aria-labelledby="tail-title">
      <h2 id="tail-title">{t('dash.tail')}</h2>
      <div class="tail" aria-live="polite" tabIndex={0}>
        {records.length === 0 ? (
          <p class="notice">{t('dash.tail.empty')}</p>
        ) : (
          <Records records={records} id="tail" />
        )}
      </div>
    </section>
  );
}
