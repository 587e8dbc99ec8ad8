import { useEffect, useState } from 'preact/hooks';
import { callApi, formatTime, t, type ApiError, type MessageKey } from '@alert-hub/web';
import type {
  AlertStatus,
  RecipientStatus,
  ReportedOutcome,
  SentItem,
} from '@alert-hub/core/api-types';
import { Fields } from './fields';

export type { AlertStatus, RecipientStatus, ReportedOutcome };

/** How often an open list or status asks again: receipts and outcomes arrive on their own. */
export const REFRESH_MS = 3000;

/** Calls `load` now and every {@link REFRESH_MS} until the component goes away. */
export function usePolling(load: () => void, deps: readonly unknown[]): void {
  useEffect(() => {
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => clearInterval(timer);
  }, deps);
}

/** The label of an outcome's result in the current language (an unknown one as itself). */
export function resultLabel(result: string): string {
  return t(`outcome.${result}` as MessageKey);
}

/** The alerts this agency sent (from the console or its own systems), newest first. */
export function SentList(props: { onOpen: (id: string) => void }) {
  const [items, setItems] = useState<readonly SentItem[] | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  usePolling(() => {
    void callApi<{ items: SentItem[] }>('/console/api/sent').then((r) => {
      if (r.ok) {
        setItems(r.body.items);
        setError(undefined);
      } else setError(r.error);
    });
  }, []);
  return (
    <section aria-labelledby="sent-title">
      <h2 id="sent-title">{t('sent.title')}</h2>
      <p class="help">{t('sent.help', { n: 100 })}</p>
      {error && (
        <p role="alert" class="error">
          {error.code}: {error.message}
        </p>
      )}
      {items === undefined ? (
        <p class="notice">{t('detail.loading')}</p>
      ) : items.length === 0 ? (
        <p class="notice">{t('sent.empty')}</p>
      ) : (
        <table id="sent">
          <thead>
            <tr>
              <th scope="col">{t('sent.detail.acceptedAt')}</th>
              <th scope="col">{t('col.alert')}</th>
              <th scope="col">{t('col.type')}</th>
              <th scope="col">{t('col.status')}</th>
              <th scope="col">{t('sent.recipients')}</th>
              <th scope="col">{t('sent.outcomes')}</th>
            </tr>
          </thead>
          <tbody>
            {items.map((s) => (
              <tr key={s.id} class="row" data-alert-id={s.id} onClick={() => props.onOpen(s.id)}>
                <td>
                  <button type="button" class="link" onClick={() => props.onOpen(s.id)}>
                    {formatTime(s.acceptedAt)}
                  </button>
                </td>
                <td class="mono">{s.id}</td>
                <td>{s.type}</td>
                <td class={`state-${s.state}`}>{t(`sent.state.${s.state}`)}</td>
                <td>{t('sent.counts', s.recipients)}</td>
                <td>{s.outcomes}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/**
 * An alert this agency sent: whether the hub routed it, each recipient's state (forwarded and
 * awaiting its receipt, delivered with the time its inbox committed it, refused with the code),
 * and the outcomes partners reported. Kept current while open.
 */
export function SentDetail(props: { id: string; onClose: () => void }) {
  const [status, setStatus] = useState<AlertStatus | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  usePolling(() => {
    void callApi<AlertStatus>(`/v1/alerts/${encodeURIComponent(props.id)}/status`).then((r) => {
      if (r.ok) {
        setStatus(r.body);
        setError(undefined);
      } else setError(r.error);
    });
  }, [props.id]);

  return (
    <article id="sent-detail" aria-labelledby="sent-detail-title">
      <p>
        <button type="button" id="back" onClick={props.onClose}>
          ← {t('sent.detail.close')}
        </button>
      </p>
      <h2 id="sent-detail-title" class="mono">
        {t('sent.detail.title', { id: props.id })}
      </h2>
      {error && (
        <p role="alert" class="error">
          {error.code}: {error.message}
        </p>
      )}
      {!status && !error && <p class="notice">{t('detail.loading')}</p>}
      {status && (
        <>
          <div class="panel">
            <dl class="fields">
              <dt>{t('col.type')}</dt>
              <dd>{status.type}</dd>
              <dt>{t('sent.detail.state')}</dt>
              <dd id="sent-state" class={`state-${status.state}`}>
                {t(`sent.state.${status.state}`)}
              </dd>
              <dt>{t('sent.detail.acceptedAt')}</dt>
              <dd>{formatTime(status.acceptedAt)}</dd>
              {status.routedAt && (
                <>
                  <dt>{t('sent.detail.routedAt')}</dt>
                  <dd>{formatTime(status.routedAt)}</dd>
                </>
              )}
              {status.operation && (
                <>
                  <dt>{t('sent.detail.operation')}</dt>
                  <dd class="mono">{status.operation}</dd>
                </>
              )}
              {status.refused && (
                <>
                  <dt>{t('col.reason')}</dt>
                  <dd class="error">
                    {t('sent.detail.refused', {
                      code: status.refused.code,
                      reason: status.refused.reason,
                    })}
                  </dd>
                </>
              )}
            </dl>
          </div>
          <div class="panel" aria-live="polite">
            <h3>{t('sent.detail.recipients')}</h3>
            {status.recipients.length === 0 ? (
              <p class="notice">{t('sent.detail.noRecipients')}</p>
            ) : (
              <RecipientTable recipients={status.recipients} />
            )}
          </div>
          <div class="panel" id="outcomes" aria-live="polite">
            <h3>{t('detail.outcomes')}</h3>
            {status.outcomes.length === 0 ? (
              <p class="notice">{t('outcomes.empty')}</p>
            ) : (
              <OutcomeList outcomes={status.outcomes} />
            )}
          </div>
        </>
      )}
    </article>
  );
}

export function RecipientTable(props: { recipients: readonly RecipientStatus[]; id?: string }) {
  return (
    <table id={props.id ?? 'recipients'}>
      <thead>
        <tr>
          <th scope="col">{t('col.recipient')}</th>
          <th scope="col">{t('col.recipient.state')}</th>
          <th scope="col">{t('col.recipient.detail')}</th>
        </tr>
      </thead>
      <tbody>
        {props.recipients.map((r) => (
          <tr key={r.recipient} data-recipient={r.recipient} data-state={r.state}>
            <td>{r.recipient}</td>
            <td class={`recipient-${r.state}`}>{t(`recipient.${r.state}`)}</td>
            <td>
              <RecipientDetail r={r} />
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function RecipientDetail(props: { r: RecipientStatus }) {
  const { r } = props;
  if (r.state === 'delivered')
    return (
      <>
        {t('recipient.deliveredAt', { at: formatTime(r.deliveredAt ?? '') })}
        {r.receiptVerified && (
          <>
            {' · '}
            <span class="badge ok">{t('recipient.receiptVerified')}</span>
          </>
        )}
      </>
    );
  if (r.state === 'refused')
    return (
      <>
        <span class="mono">{r.code}</span>
        {r.reason ? ` — ${r.reason}` : ''}
      </>
    );
  return (
    <>
      {r.since ? t('recipient.since', { at: formatTime(r.since) }) : ''}
      {r.overdue && (
        <>
          {' '}
          <span class="badge warn">{t('recipient.overdue')}</span>
        </>
      )}
    </>
  );
}

/** Members of an outcome shown in its heading line rather than among its details. */
const OUTCOME_HEADER = new Set([
  'id',
  'type',
  'version',
  'origin',
  'issuedAt',
  'handling',
  'answers',
  'result',
]);

/** Outcomes partners reported, each with every detail it carries (a seizure's goods and place). */
export function OutcomeList(props: { outcomes: readonly ReportedOutcome[] }) {
  return (
    <ol class="outcomes">
      {props.outcomes.map((o) => (
        <li key={o.id} class="outcome" data-outcome-id={o.id} data-result={o.result}>
          <p>
            <strong class={`result result-${o.result}`}>{resultLabel(o.result)}</strong> ·{' '}
            {t('outcomes.from')}: <strong>{o.from}</strong> · {t('outcomes.issuedAt')}:{' '}
            {formatTime(o.issuedAt)}
          </p>
          <Fields
            value={Object.fromEntries(
              Object.entries(o.outcome).filter(([k]) => !OUTCOME_HEADER.has(k)),
            )}
          />
        </li>
      ))}
    </ol>
  );
}
