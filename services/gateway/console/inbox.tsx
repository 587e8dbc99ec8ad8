import { useEffect, useState } from 'preact/hooks';
import { Badge, TlpLabel, formatTime, t, type MessageKey } from '@alert-hub/web';

/** One item of the gateway's feed (GET /v1/feed, the SSE stream), as the console reads it. */
export interface FeedItem {
  readonly cursor: string;
  readonly id: string;
  readonly type: string;
  readonly origin: string;
  readonly handling: string;
  readonly issuedAt: string;
  readonly receivedAt: string;
  readonly status: 'active' | 'withdrawn' | 'corrected';
  readonly statusReason?: string;
  readonly correctedBy?: string;
  readonly retractedBy?: string;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly onwardSharing: boolean;
  readonly alert: Record<string, unknown>;
}

export interface InboxState {
  readonly items: readonly FeedItem[];
  readonly live: boolean;
}

/**
 * The inbox, kept live by the gateway's SSE stream (`/v1/feed/stream`, authenticated by the
 * session cookie). The stream replays the feed from the start, then each new alert as it is
 * committed; a withdrawal or correction comes as the retraction itself and updates the status
 * of the alert it names.
 */
export function useInbox(enabled: boolean): InboxState {
  const [items, setItems] = useState<FeedItem[]>([]);
  const [live, setLive] = useState(false);
  useEffect(() => {
    if (!enabled) return undefined;
    const source = new EventSource('/v1/feed/stream');
    source.onopen = () => setLive(true);
    source.onerror = () => setLive(false);
    source.addEventListener('alert', (e) => {
      const item = JSON.parse((e as MessageEvent<string>).data) as FeedItem;
      setItems((prev) => {
        // An alert is identified by (origin, id): another agency's alert with the same id stays.
        let next = prev.filter((p) => !(p.id === item.id && p.origin === item.origin));
        const retracts = item.alert['retracts'];
        if (item.type === 'retraction' && typeof retracts === 'string') {
          const correct = item.alert['action'] === 'correct';
          next = next.map((p) =>
            p.id === retracts && p.origin === item.origin
              ? {
                  ...p,
                  status: correct ? 'corrected' : 'withdrawn',
                  statusReason: text(item.alert['reason']),
                  retractedBy: item.id,
                  ...(correct ? { correctedBy: text(item.alert['correctedBy']) } : {}),
                }
              : p,
          );
        }
        return [item, ...next];
      });
    });
    return () => source.close();
  }, [enabled]);
  return { items, live };
}

export function Inbox(props: { state: InboxState; onOpen: (id: string, origin: string) => void }) {
  const { items, live } = props.state;
  return (
    <section aria-labelledby="inbox-title">
      <h2 id="inbox-title">
        {t('inbox.title')}{' '}
        <span class={live ? 'badge ok' : 'badge'} id="live" aria-live="polite">
          {live ? t('inbox.live') : t('inbox.reconnecting')}
        </span>{' '}
        <span class="help">
          {items.length === 1 ? t('inbox.count.one') : t('inbox.count', { n: items.length })}
        </span>
      </h2>
      {items.length === 0 ? (
        <p class="notice">{t('inbox.empty')}</p>
      ) : (
        <table id="inbox">
          <thead>
            <tr>
              <th scope="col">{t('col.time')}</th>
              <th scope="col">{t('col.sender')}</th>
              <th scope="col">{t('col.type')}</th>
              <th scope="col">{t('col.tlp')}</th>
              <th scope="col">{t('col.summary')}</th>
              <th scope="col">{t('col.agreement')}</th>
              <th scope="col">{t('col.onward')}</th>
              <th scope="col">{t('col.status')}</th>
              <th scope="col">{t('col.verified')}</th>
            </tr>
          </thead>
          <tbody aria-live="polite">
            {items.map((i) => (
              <tr
                class="row"
                key={`${i.origin}/${i.id}`}
                data-alert-id={i.id}
                onClick={() => props.onOpen(i.id, i.origin)}
              >
                <td>
                  <button type="button" class="link" onClick={() => props.onOpen(i.id, i.origin)}>
                    {formatTime(i.receivedAt)}
                  </button>
                </td>
                <td>{i.origin}</td>
                <td>{i.type}</td>
                <td>
                  <TlpLabel label={i.handling} />
                </td>
                <td class="summary" dir="auto">
                  {summaryOf(i)}
                </td>
                <td class="mono">
                  {i.agreement.id}@{i.agreement.version}
                </td>
                <td>{i.onwardSharing ? t('onward.yes') : t('onward.no')}</td>
                <td class={`status-${i.status}`}>{t(`status.${i.status}` as MessageKey)}</td>
                <td>
                  {/* Only verified alerts enter the inbox: both signatures were checked on arrival. */}
                  <Badge ok title={t('badge.origin')}>
                    {t('badge.origin.short')}
                  </Badge>
                  <Badge ok title={t('badge.hub')}>
                    {t('badge.hub.short')}
                  </Badge>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** One line about an alert: its summary if it has one, else the gist of its content. */
function summaryOf(i: FeedItem): string {
  const a = i.alert;
  const s = typeof a['summary'] === 'string' ? a['summary'] : gistOf(a);
  // Cut between characters as a reader sees them (graphemes), not UTF-16 units nor code points:
  // half an emoji is not text, and a flag (two code points), a skin tone or a family joined by
  // U+200D cut between its code points shows as another emoji or a letter in a box.
  if (s.length <= 90) return s;
  const chars = graphemes(s);
  return chars.length > 90 ? `${chars.slice(0, 90).join('')}…` : s;
}

function graphemes(s: string): string[] {
  if (typeof Intl.Segmenter !== 'function') return Array.from(s);
  return Array.from(
    new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(s),
    (g) => g.segment,
  );
}

/**
 * The gist of an alert without a summary: several of its values in one line, each isolated
 * (U+2068 FIRST STRONG ISOLATE ... U+2069 POP DIRECTIONAL ISOLATE, Unicode's bidi algorithm), so
 * each reads in its own direction and none, Arabic or holding a directional override, reorders
 * the others or the text between them.
 */
function gistOf(a: Record<string, unknown>): string {
  const commodities = (list: unknown) =>
    (Array.isArray(list) ? (list as Record<string, Record<string, unknown> | undefined>[]) : [])
      .map((c) =>
        [
          text(c['taxon']?.['scientificName']),
          text(c['product']),
          c['quantity'] ? `${text(c['quantity']['value'])} ${text(c['quantity']['unit'])}` : '',
        ]
          .filter((x) => x !== '')
          .join(' '),
      )
      .join('; ');
  switch (a['type']) {
    case 'retraction':
      return `${text(a['action'])} ${text(a['retracts'])}: ${text(a['reason'])}`;
    case 'outcome':
      // The result is a word of the console's own (its message for the code), not the alert's text.
      return `${t(`outcome.${typeof a['result'] === 'string' ? a['result'] : ''}` as MessageKey)} → ${text(a['answers'])}`;
    case 'consignee-flag': {
      const c = a['consignee'] as Record<string, unknown> | undefined;
      return `${text(c?.['name'])} (${text(c?.['country'])}): ${text(a['reason'])}`;
    }
    case 'seizure-report':
      return commodities((a['seizure'] as Record<string, unknown> | undefined)?.['commodities']);
    case 'suspicious-shipment':
      return commodities(a['suspectedCommodities']);
    default:
      return '';
  }
}

/** A string or number member as isolated text (see {@link gistOf}); anything else as nothing. */
function text(v: unknown): string {
  return (typeof v === 'string' && v !== '') || typeof v === 'number'
    ? `\u2068${String(v)}\u2069`
    : '';
}
