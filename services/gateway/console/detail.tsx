import { Fragment } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import {
  Badge,
  TlpLabel,
  callApi,
  fieldLabel,
  formatTime,
  t,
  type ApiError,
  type MessageKey,
} from '@alert-hub/web';
import type { FeedItem } from './inbox';

interface Signatures {
  readonly verified: boolean;
  readonly origin: { kid?: string; agency?: string; alg?: string } | null;
  readonly hub: { kid?: string; router?: string; routed_at?: string; recipient?: string } | null;
}

/** Members shown in the header of the detail rather than in its content. */
const HEADER_MEMBERS = new Set(['id', 'type', 'version', 'origin', 'issuedAt', 'handling']);

/** Every member of a received alert, readable; signature badges; outcomes once receipts exist. */
export function Detail(props: { id: string; origin?: string; onClose: () => void }) {
  const [item, setItem] = useState<FeedItem | undefined>(undefined);
  const [sigs, setSigs] = useState<Signatures | undefined>(undefined);
  const [error, setError] = useState<ApiError | undefined>(undefined);
  useEffect(() => {
    const id = encodeURIComponent(props.id);
    // An alert is identified by (origin, id): two agencies may have used the same id.
    const q = props.origin ? `?origin=${encodeURIComponent(props.origin)}` : '';
    void callApi<FeedItem>(`/v1/alerts/${id}${q}`).then((r) =>
      r.ok ? setItem(r.body) : setError(r.error),
    );
    void callApi<Signatures>(`/console/api/alerts/${id}/signatures${q}`).then(
      (r) => r.ok && setSigs(r.body),
    );
  }, [props.id, props.origin]);

  return (
    <article id="detail" aria-labelledby="detail-title">
      <p>
        <button type="button" id="back" onClick={props.onClose}>
          ← {t('detail.close')}
        </button>
      </p>
      <h2 id="detail-title" class="mono">
        {t('detail.title', { id: props.id })}
      </h2>
      {error && (
        <p role="alert" class="error">
          {error.code}: {error.message}
        </p>
      )}
      {!item && !error && <p class="notice">{t('detail.loading')}</p>}
      {item && (
        <>
          <div class="panel">
            <p>
              <TlpLabel label={item.handling} /> <strong>{item.type}</strong> · {t('col.sender')}:{' '}
              <strong>{item.origin}</strong> ·{' '}
              <span class={`status-${item.status}`}>
                {t(`status.${item.status}` as MessageKey)}
              </span>
            </p>
            <p id="badges">
              <Badge ok={sigs?.verified === true && sigs.origin !== null} title={t('badge.origin')}>
                {t('badge.origin')}
                {sigs?.origin
                  ? ` · ${sigs.origin.agency ?? ''} · ${t('badge.key', { kid: short(sigs.origin.kid) })}`
                  : ''}
              </Badge>
              <Badge ok={sigs?.verified === true && sigs.hub !== null} title={t('badge.hub')}>
                {t('badge.hub')}
                {sigs?.hub
                  ? ` · ${sigs.hub.router ?? ''} · ${t('badge.key', { kid: short(sigs.hub.kid) })}`
                  : ''}
              </Badge>
            </p>
            <h3>{t('detail.delivery')}</h3>
            <dl class="fields">
              <dt>{t('detail.issuedAt')}</dt>
              <dd>{formatTime(item.issuedAt)}</dd>
              <dt>{t('detail.receivedAt')}</dt>
              <dd>{formatTime(item.receivedAt)}</dd>
              {sigs?.hub?.routed_at && (
                <>
                  <dt>{t('detail.routedAt')}</dt>
                  <dd>{formatTime(sigs.hub.routed_at)}</dd>
                </>
              )}
              <dt>{t('col.agreement')}</dt>
              <dd class="mono">
                {item.agreement.id}@{item.agreement.version}
              </dd>
              <dt>{t('col.onward')}</dt>
              <dd>{item.onwardSharing ? t('onward.yes') : t('onward.no')}</dd>
              {item.statusReason && (
                <>
                  <dt>{t('detail.statusReason')}</dt>
                  <dd>{item.statusReason}</dd>
                </>
              )}
              {item.correctedBy && (
                <>
                  <dt>{t('detail.correctedBy')}</dt>
                  <dd class="mono">{item.correctedBy}</dd>
                </>
              )}
              {item.retractedBy && (
                <>
                  <dt>{t('detail.retractedBy')}</dt>
                  <dd class="mono">{item.retractedBy}</dd>
                </>
              )}
            </dl>
          </div>
          <div class="panel">
            <h3>{t('detail.fields')}</h3>
            <Fields
              value={Object.fromEntries(
                Object.entries(item.alert).filter(([k]) => !HEADER_MEMBERS.has(k)),
              )}
            />
          </div>
          <div class="panel" id="outcomes">
            <h3>{t('detail.outcomes')}</h3>
            <p class="notice">{t('detail.outcomes.pending')}</p>
          </div>
        </>
      )}
    </article>
  );
}

/**
 * Any JSON value as nested definition lists. Text is rendered as text nodes (Preact escapes it):
 * an alert's free text can never become markup or script.
 */
export function Fields(props: { value: unknown }) {
  const v = props.value;
  if (Array.isArray(v)) {
    const list = v as unknown[];
    if (list.every((x) => typeof x !== 'object' || x === null))
      return <span>{list.map(String).join(', ')}</span>;
    return (
      <ol class="items">
        {list.map((x, i) => (
          <li key={i}>
            <Fields value={x} />
          </li>
        ))}
      </ol>
    );
  }
  if (typeof v === 'object' && v !== null) {
    const entries: [string, unknown][] = Object.entries(v as Record<string, unknown>);
    if (isQuantity(v)) return <span>{`${String(v.value)} ${String(v.unit)}`}</span>;
    return (
      <dl class="fields">
        {entries.map(([k, x]) => (
          <Fragment key={k}>
            <dt>{fieldLabel(k)}</dt>
            <dd data-field={k}>
              <Fields value={x} />
            </dd>
          </Fragment>
        ))}
      </dl>
    );
  }
  return <span>{String(v)}</span>;
}

/** The start of a key id (an RFC 7638 thumbprint), enough to tell keys apart on screen. */
function short(kid: string | undefined): string {
  return kid ? `${kid.slice(0, 12)}…` : '?';
}

function isQuantity(v: object): v is { value: number; unit: string } {
  const k = Object.keys(v);
  return k.length === 2 && k.includes('value') && k.includes('unit');
}
