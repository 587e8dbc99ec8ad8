import { DEFAULT_MAX_ENVELOPE_BYTES, inboundStreamName } from '@alert-hub/core';

/** The load the hub is configured for (`streams.load`). */
export interface FeedLoad {
  /** Alerts per second the hub is expected to route, sustained. */
  readonly alertsPerSecond: number;
  /** Recipients per alert, on average. */
  readonly fanOut: number;
  /** Bytes of one forwarded copy (countersigned envelope and headers), on average. */
  readonly copyBytes: number;
}

/** What the feed stream's configuration is checked against. */
export interface FeedSizingInput {
  readonly feedsMaxBytes: number;
  /** The replay window: how long a partner may stay away and lose nothing. */
  readonly maxAgeMs: number;
  /** Copies one recipient may have waiting in the feed stream before the router holds new ones. */
  readonly recipientMaxCopies: number;
  /** Bytes one recipient may have waiting (`streams.recipientMaxBytes`), when configured. */
  readonly recipientMaxBytes?: number;
  readonly load: FeedLoad;
  /** Agencies with a feed (the trust store's), when known. */
  readonly agencies?: number;
  /** The feed stream's retention: with `limits` it keeps read copies too, for `maxAgeMs`. */
  readonly retention?: 'interest' | 'limits';
  /**
   * The agencies' inbound streams, when they are to be checked too: each keeps every alert and
   * receipt its agency sent, routed or not, for `maxAgeMs`, and when it is full that agency's new
   * alerts are refused. Each agency is taken to send an even share of the stated load
   * (`alertsPerSecond / agencies`); an agency expected to send more needs an override sized for
   * its own rate (`rate x copyBytes x maxAgeMs`).
   */
  readonly inbound?: InboundSizingInput;
}

/** The agencies' inbound stream limits (see {@link FeedSizingInput.inbound}). */
export interface InboundSizingInput {
  /** The agencies of the trust store: one inbound stream each. */
  readonly agencies: readonly string[];
  /** Each agency's stream size without an override. */
  readonly maxBytes: number;
  /** Agencies with another size. */
  readonly maxBytesFor?: Readonly<Record<string, number>>;
}

/**
 * The largest message the feed stream takes: a copy or a notice fits the envelope limit at its
 * recipient; the rest is room for the subject and headers.
 */
export const MAX_FEED_MESSAGE_BYTES = DEFAULT_MAX_ENVELOPE_BYTES + 4096;

/** Part of the feed stream the recipients' byte quotas share; the rest is headroom for counting errors. */
export const FEED_QUOTA_SHARE = 0.95;

/**
 * Bytes one recipient may have waiting in the feed stream (copies and notices its gateway has not
 * taken): `configured` (`streams.recipientMaxBytes`), but never more than an even share of the
 * stream, less one message. Every agency's quota, plus the one message let through when its feed
 * is empty, then fits the stream at once: under interest retention (where the stream holds only
 * what partners have not taken) no agency, sending or absent, can fill it for the others. 0 when
 * the stream is too small for that many agencies: each then gets one message at a time.
 */
export function recipientQuotaBytes(
  feedsMaxBytes: number,
  agencies: number,
  configured?: number,
): number {
  const share = feedShareBytes(feedsMaxBytes, agencies) - MAX_FEED_MESSAGE_BYTES;
  return Math.max(0, Math.min(configured ?? Infinity, share));
}

/** One agency's even share of the feed stream: `floor(0.95 x feedsMaxBytes / agencies)`. */
export function feedShareBytes(feedsMaxBytes: number, agencies: number): number {
  return Math.floor((feedsMaxBytes * FEED_QUOTA_SHARE) / Math.max(1, agencies));
}

/** Each agency's origin budget ({@link originBudgets}), and what is wrong with the overrides. */
export interface OriginBudgets {
  /** Bytes per agency of the trust store. */
  readonly budgets: ReadonlyMap<string, number>;
  /** Overrides that leave an agency less than one message of the largest size (empty when none). */
  readonly issues: readonly { readonly pointer: string; readonly message: string }[];
}

/**
 * Bytes each agency may have the router store in the feed stream within the stream's max age
 * (`streams.originMaxBytesFor`), when the stream has limits retention and so keeps what partners
 * read: a copy counts against its alert's origin, a notice against the agency it is addressed
 * to. Without overrides each agency has the same even share as the recipient quota
 * ({@link feedShareBytes}); an agency with an override has its own, and the others share what the
 * overrides leave of `0.95 x feedsMaxBytes` evenly. Overrides naming agencies not in `agencies`
 * take nothing (they apply once the agency is added). Overrides that leave any agency less than
 * {@link MAX_FEED_MESSAGE_BYTES} are reported in `issues`, each at its JSON pointer.
 */
export function originBudgets(
  feedsMaxBytes: number,
  agencies: readonly string[],
  overrides: Readonly<Record<string, number>> = {},
): OriginBudgets {
  const own = agencies.filter((a) => Object.hasOwn(overrides, a));
  const rest = agencies.filter((a) => !Object.hasOwn(overrides, a));
  const taken = own.reduce((n, a) => n + overrides[a]!, 0);
  const pool = Math.floor(feedsMaxBytes * FEED_QUOTA_SHARE) - taken;
  // With no override this is feedShareBytes: floor(floor(x) / n) = floor(x / n).
  const share = Math.max(0, Math.floor(pool / Math.max(1, rest.length)));
  const budgets = new Map<string, number>();
  for (const a of own) budgets.set(a, overrides[a]!);
  for (const a of rest) budgets.set(a, share);
  const issues: { pointer: string; message: string }[] = [];
  if (own.length > 0 && rest.length > 0 && share < MAX_FEED_MESSAGE_BYTES)
    issues.push({
      pointer: '/streams/originMaxBytesFor',
      message: `the overrides take ${taken} bytes of the feed stream's ${Math.floor(feedsMaxBytes * FEED_QUOTA_SHARE)} (0.95 x feedsMaxBytes), leaving each of the ${rest.length} other agencies ${share} bytes, less than one message of the largest size (${MAX_FEED_MESSAGE_BYTES}): lower them or raise feedsMaxBytes`,
    });
  else if (own.length > 0 && pool < 0)
    issues.push({
      pointer: '/streams/originMaxBytesFor',
      message: `the overrides take ${taken} bytes, more than the feed stream's ${Math.floor(feedsMaxBytes * FEED_QUOTA_SHARE)} (0.95 x feedsMaxBytes): lower them or raise feedsMaxBytes`,
    });
  for (const a of own)
    if (overrides[a]! < MAX_FEED_MESSAGE_BYTES)
      issues.push({
        pointer: `/streams/originMaxBytesFor/${a}`,
        message: `${overrides[a]} bytes is less than one message of the largest size (${MAX_FEED_MESSAGE_BYTES})`,
      });
  return { budgets, issues };
}

/** The figures of a sizing check, for the start-up log and the operations guide. */
export interface FeedSizing {
  /** Bytes one recipient may have waiting ({@link recipientQuotaBytes}). */
  readonly quotaBytes: number;
  /** What one recipient's quota holds of the stated load: the smaller of copies and bytes. */
  readonly recipientBytes: number;
  /** Copies per second one recipient receives under the stated load (`rate x fanOut / agencies`). */
  readonly recipientCopiesPerSecond: number;
  /** How long a partner may stay away before the router holds its copies (its quota fills). */
  readonly recipientAbsenceMs: number;
  /** Limits that cannot hold the stated load: the router starts and says so, with the numbers. */
  readonly warnings: readonly string[];
}

const MiB = 1024 * 1024;
const fmtBytes = (n: number) => `${(n / MiB).toFixed(n < 10 * MiB ? 2 : 0)} MiB`;
const fmtHours = (ms: number) =>
  ms === Infinity ? 'for ever' : `${(ms / 3600_000).toFixed(ms < 36_000_000 ? 2 : 0)} h`;

/**
 * Checks the feed stream's limits against the stated load. Each recipient may have at most
 * `recipientMaxCopies` copies and {@link recipientQuotaBytes} bytes waiting in the stream; then the
 * router holds its new copies (`pending`) and routing to everybody else goes on. The byte quotas
 * of all agencies fit the stream at once by construction, so what is checked is the load: a
 * partner away longer than its quota lasts has its copies held; a limits stream, which keeps read
 * copies too, fills when the window's load outgrows it.
 */
export function checkFeedSizing(i: FeedSizingInput): FeedSizing {
  const warnings: string[] = [];
  const agencies = Math.max(1, i.agencies ?? 1);
  const quotaBytes = recipientQuotaBytes(i.feedsMaxBytes, agencies, i.recipientMaxBytes);
  const recipientBytes = Math.min(i.recipientMaxCopies * i.load.copyBytes, quotaBytes);
  const recipientCopiesPerSecond =
    (i.load.alertsPerSecond * Math.min(i.load.fanOut, agencies)) / agencies;
  const recipientAbsenceMs =
    recipientCopiesPerSecond > 0
      ? (recipientBytes / (recipientCopiesPerSecond * i.load.copyBytes)) * 1000
      : Infinity;
  if (i.agencies !== undefined && quotaBytes < MAX_FEED_MESSAGE_BYTES)
    warnings.push(
      `the feed stream (${fmtBytes(i.feedsMaxBytes)}) leaves each of ${agencies} agencies a quota of ${fmtBytes(quotaBytes)}, less than one message of the largest size: a partner with anything waiting gets nothing more until it reads; raise feedsMaxBytes to at least ${fmtBytes(Math.ceil((agencies * 2 * MAX_FEED_MESSAGE_BYTES) / FEED_QUOTA_SHARE))}`,
    );
  else if (i.agencies !== undefined && recipientAbsenceMs < i.maxAgeMs)
    warnings.push(
      `a partner away longer than ${fmtHours(recipientAbsenceMs)} fills its quota (${fmtBytes(recipientBytes)}: the smaller of ${i.recipientMaxCopies} copies x ${i.load.copyBytes} bytes and the stream's share of ${fmtBytes(quotaBytes)}, at ${recipientCopiesPerSecond.toFixed(3)} copies/s = ${i.load.alertsPerSecond} alerts/s x fan-out ${i.load.fanOut} / ${agencies} agencies), less than the replay window (${fmtHours(i.maxAgeMs)}): its further copies are held by the router as pending until it returns`,
    );
  if (i.agencies !== undefined && i.retention === 'limits') {
    const bytesPerSecond =
      i.load.alertsPerSecond * Math.min(i.load.fanOut, agencies) * i.load.copyBytes;
    const fullAfterMs = bytesPerSecond > 0 ? (i.feedsMaxBytes / bytesPerSecond) * 1000 : Infinity;
    if (fullAfterMs < i.maxAgeMs)
      warnings.push(
        `with limits retention the feed stream keeps every copy, read or not, for ${fmtHours(i.maxAgeMs)}: the stated load (${fmtBytes(bytesPerSecond * 3600)} an hour) fills it (${fmtBytes(i.feedsMaxBytes)}) after ${fmtHours(fullAfterMs)}, and from then on every new copy is held as pending; use feedsRetention interest or a larger feedsMaxBytes`,
      );
  }
  if (i.inbound && i.inbound.agencies.length > 0) warnings.push(...checkInbound(i, i.inbound));
  return { quotaBytes, recipientBytes, recipientCopiesPerSecond, recipientAbsenceMs, warnings };
}

/** Streams named in one warning at most; the rest are counted. */
const NAMED_STREAMS = 10;

function nameStreams(agencies: readonly string[]): string {
  const names = agencies.slice(0, NAMED_STREAMS).map(inboundStreamName).join(', ');
  return agencies.length > NAMED_STREAMS
    ? `${names} and ${agencies.length - NAMED_STREAMS} more`
    : names;
}

/**
 * The agencies' inbound streams the stated load, split evenly, fills before their alerts age out:
 * one warning for the streams of the common size (when too small), one per override too small,
 * each naming the streams and the size they need.
 */
function checkInbound(i: FeedSizingInput, inbound: InboundSizingInput): string[] {
  const n = inbound.agencies.length;
  // An inbound alert is a forwarded copy without the hub's countersignature: copyBytes bounds it.
  const bytesPerSecond = (i.load.alertsPerSecond / n) * i.load.copyBytes;
  const needed = (bytesPerSecond * i.maxAgeMs) / 1000;
  const fills = (maxBytes: number) => (maxBytes / bytesPerSecond) * 1000;
  const share = `the stated load split evenly over ${n} agencies (${fmtBytes(bytesPerSecond * 3600)} an hour each at ${i.load.copyBytes} bytes an alert)`;
  const consequence = `and from then on that agency's new alerts are refused (503 ERR_INBOUND_STREAM_FULL at its gateway) until its oldest age out; the other agencies are not affected`;
  const overrides = inbound.maxBytesFor ?? {};
  const common = inbound.agencies.filter((a) => !Object.hasOwn(overrides, a));
  const warnings: string[] = [];
  if (common.length > 0 && fills(inbound.maxBytes) < i.maxAgeMs)
    warnings.push(
      `the inbound stream of each agency keeps every alert it sent, routed or not, for ${fmtHours(i.maxAgeMs)}: ${share} fills one of ${fmtBytes(inbound.maxBytes)} (${nameStreams(common)}) after ${fmtHours(fills(inbound.maxBytes))}, ${consequence}; set streams.inboundMaxBytes to at least ${fmtBytes(needed)} (streams.inboundMaxBytesFor for an agency that sends more), or a shorter maxAgeMs`,
    );
  for (const a of inbound.agencies) {
    const own = Object.hasOwn(overrides, a) ? overrides[a] : undefined;
    if (own !== undefined && fills(own) < i.maxAgeMs)
      warnings.push(
        `the inbound stream of each agency keeps every alert it sent, routed or not, for ${fmtHours(i.maxAgeMs)}: ${share} fills ${inboundStreamName(a)} (streams.inboundMaxBytesFor.${a}, ${fmtBytes(own)}) after ${fmtHours(fills(own))}, ${consequence}; set it to at least ${fmtBytes(needed)}, or a shorter maxAgeMs`,
      );
  }
  return warnings;
}
