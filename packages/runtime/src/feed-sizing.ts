import { inboundStreamName, type Issue } from '@alert-hub/core';

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

/** The figures of a sizing check, for the start-up log and the operations guide. */
export interface FeedSizing {
  /** Bytes one recipient's quota may hold (`recipientMaxCopies x copyBytes`). */
  readonly recipientBytes: number;
  /** Copies per second one recipient receives under the stated load (`rate x fanOut / agencies`). */
  readonly recipientCopiesPerSecond: number;
  /** How long a partner may stay away before the router holds its copies (its quota fills). */
  readonly recipientAbsenceMs: number;
  /** Recipients whose quotas fit the stream at once (full quotas). */
  readonly fullRecipientsHeld: number;
  /** Problems that make isolation impossible: the router refuses to start. */
  readonly errors: readonly Issue[];
  /** Limits that cannot hold the stated load: the router starts and says so, with the numbers. */
  readonly warnings: readonly string[];
}

const MiB = 1024 * 1024;
const fmtBytes = (n: number) => `${(n / MiB).toFixed(n < 10 * MiB ? 2 : 0)} MiB`;
const fmtHours = (ms: number) =>
  ms === Infinity ? 'for ever' : `${(ms / 3600_000).toFixed(ms < 36_000_000 ? 2 : 0)} h`;

/**
 * Checks the feed stream's limits against the stated load. The feeds hold a copy only until the
 * recipient's gateway has stored it (interest retention), so the stream needs room for the
 * copies of partners that are away: one partner away for the whole replay window needs
 * `rate x fanOut / agencies x window` copies. Each recipient may fill at most
 * `recipientMaxCopies` of the stream; then the router holds its new copies (`pending`) and
 * routing to everybody else goes on. That is only true if one recipient's quota is smaller than
 * the stream: otherwise one partner away could fill it for all, and the router refuses to start.
 */
export function checkFeedSizing(i: FeedSizingInput): FeedSizing {
  const errors: Issue[] = [];
  const warnings: string[] = [];
  const recipientBytes = i.recipientMaxCopies * i.load.copyBytes;
  if (recipientBytes >= i.feedsMaxBytes)
    errors.push({
      pointer: '/streams/recipientMaxCopies',
      message: `one recipient's quota (${i.recipientMaxCopies} copies x ${i.load.copyBytes} bytes = ${fmtBytes(recipientBytes)}) must be smaller than the feed stream (feedsMaxBytes ${fmtBytes(i.feedsMaxBytes)}): one partner away could fill it for every agency`,
    });
  const agencies = Math.max(1, i.agencies ?? 1);
  const recipientCopiesPerSecond =
    (i.load.alertsPerSecond * Math.min(i.load.fanOut, agencies)) / agencies;
  const recipientAbsenceMs =
    recipientCopiesPerSecond > 0
      ? (i.recipientMaxCopies / recipientCopiesPerSecond) * 1000
      : Infinity;
  const fullRecipientsHeld = Math.floor(i.feedsMaxBytes / Math.max(1, recipientBytes));
  if (i.agencies !== undefined && recipientAbsenceMs < i.maxAgeMs)
    warnings.push(
      `a partner away longer than ${fmtHours(recipientAbsenceMs)} fills its quota (${i.recipientMaxCopies} copies at ${recipientCopiesPerSecond.toFixed(3)} copies/s = ${i.load.alertsPerSecond} alerts/s x fan-out ${i.load.fanOut} / ${agencies} agencies), less than the replay window (${fmtHours(i.maxAgeMs)}): its further copies are held by the router as pending until it returns`,
    );
  if (i.agencies !== undefined && fullRecipientsHeld < agencies) {
    const needed = recipientBytes * agencies;
    warnings.push(
      `the feed stream (${fmtBytes(i.feedsMaxBytes)}) holds ${fullRecipientsHeld} full recipient quota(s) of ${agencies} (${fmtBytes(needed)} for all): with more partners away at once, the stream fills and every new copy is held as pending`,
    );
  }
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
  return {
    recipientBytes,
    recipientCopiesPerSecond,
    recipientAbsenceMs,
    fullRecipientsHeld,
    errors,
    warnings,
  };
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
