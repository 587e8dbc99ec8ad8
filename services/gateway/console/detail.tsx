import { useEffect, useState } from 'preact/hooks';
import {
  Badge,
  TlpLabel,
  callApi,
  formatTime,
  t,
  type ApiError,
  type MessageKey,
} from '@alert-hub/web';
import { Fields } from './fields';
import type { FeedItem } from './inbox';
import { ReportedOutcomes } from './outcomes';

interface Signatures {
  readonly verified: boolean;
  readonly origin: { kid?: string; agency?: string; alg?: string } | null;
  readonly hub: { kid?: string; router?: string; routed_at?: string; recipient?: string } | null;
}

/** Members shown in the header of the detail rather than in its content. */
const HEADER_MEMBERS = new Set(['id', 'type', 'version', 'origin', 'issuedAt', 'handling']);

/** Alert types that are answers or notices themselves: nobody reports an outcome on them. */
const NO_OUTCOME = new Set(['outcome', 'retraction', 'notice']);

/**
 * Every member of a received alert, readable; signature badges; the outcomes this agency
 * reported on it and a form to record one (for officers who may send).
 */
export function Detail(props: {
  id: string;
  /** The sender: an alert is identified by (origin, id). */
  origin?: string;
  onClose: () => void;
  agency: string;
  canReport: boolean;
  /** Opens an alert this agency sent (what a received outcome answers). */
  onOpenSent: (id: string) => void;
}) {
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
                  <dd dir="auto">{item.statusReason}</dd>
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
          {item.type === 'outcome' && typeof item.alert['answers'] === 'string' && (
            <p>
              <button
                type="button"
                id="open-answered"
                onClick={() => props.onOpenSent(String(item.alert['answers']))}
              >
                {t('detail.answers.open')}
              </button>
            </p>
          )}
          {!NO_OUTCOME.has(item.type) && (
            <ReportedOutcomes item={item} agency={props.agency} canReport={props.canReport} />
          )}
        </>
      )}
    </article>
  );
}

/** The start of a key id (an RFC 7638 thumbprint), enough to tell keys apart on screen. */
function short(kid: string | undefined): string {
  return kid ? `${kid.slice(0, 12)}…` : '?';
}
