import { AGENCY_ID_FORM, isAlertId } from '@alert-hub/core';
import { GatewayError } from './errors.js';
import type { FeedItem, GatewayStore, SentReceipt } from './store.js';

/** What an id names at this gateway: received alerts (one per origin) and the alert it sent. */
export interface AlertMatch {
  readonly received?: FeedItem;
  readonly sent?: SentReceipt;
}

/**
 * The `:id` of a request about one alert: an alert id (the schemas' `alert-id` format, docs/protocol.md
 * §2.3), else 400 `ERR_BAD_REQUEST`; anything else is never looked up, logged or repeated.
 */
export function alertIdParam(params: unknown): string {
  const id = (params as { id?: unknown } | undefined)?.id;
  if (isAlertId(id)) return id;
  throw new GatewayError('ERR_BAD_REQUEST', 'not an alert id', [
    { pointer: '/params/id', message: 'must be a UUIDv7 or a ULID (docs/protocol.md §2.3)' },
  ]);
}

/**
 * The `origin` query parameter of a request about one alert: an alert is identified by
 * (origin, id), and two agencies may use the same id. Absent: any origin.
 */
export function parseOriginQuery(query: unknown): string | undefined {
  const origin = (query as Record<string, unknown> | undefined)?.['origin'];
  if (origin === undefined) return undefined;
  if (typeof origin === 'string' && AGENCY_ID_FORM.test(origin)) return origin;
  throw new GatewayError('ERR_BAD_REQUEST', 'invalid query', [
    { pointer: '/query/origin', message: 'must be an agency id' },
  ]);
}

/**
 * Finds the one alert `id` names at this gateway, among the alerts it received (when
 * `received` is asked for) and the alert it sent (`sent`, whose origin is `agency`). With
 * `origin`, only that agency's alert. When the id names alerts of several origins and no origin
 * was given, neither is chosen: `ERR_ALERT_ID_AMBIGUOUS` (409) lists the origins to ask for.
 * Nothing: `ERR_NOT_FOUND`.
 */
export function findAlert(
  store: GatewayStore,
  agency: string,
  id: string,
  want: { readonly received: boolean; readonly sent: boolean; readonly origin?: string },
): AlertMatch {
  const received = want.received
    ? store.receivedWithId(id).filter((r) => want.origin === undefined || r.origin === want.origin)
    : [];
  const sent =
    want.sent && (want.origin === undefined || want.origin === agency)
      ? store.sentById(id)
      : undefined;
  const origins = [...received.map((r) => r.origin), ...(sent ? [agency] : [])];
  if (origins.length > 1)
    throw new GatewayError(
      'ERR_ALERT_ID_AMBIGUOUS',
      `${origins.length} agencies sent an alert ${id}: name one with ?origin=`,
      origins.map((o) => ({ pointer: '/query/origin', message: `may be ${o}` })),
    );
  if (received[0]) return { received: received[0] };
  if (sent) return { sent };
  throw new GatewayError(
    'ERR_NOT_FOUND',
    want.origin === undefined
      ? `no alert ${id} in this gateway`
      : `no alert ${id} of ${want.origin} in this gateway`,
  );
}
