/**
 * The one RFC 3339 date-time parser of the hub: JSON Schema `format: "date-time"`, agreements'
 * validity, keys' `notBefore`/`notAfter`, revocations, `issued_at`/`routed_at`, and audit
 * queries all go through it, so a time is read one way everywhere.
 *
 * The profile is RFC 3339 §5.6 `date-time`, with these deliberate choices:
 * - `T` and `Z` upper-case only; a space, `t` or `z` is refused (RFC 3339 permits them, other
 *   parsers do not all agree on them);
 * - an offset is `Z` or `±HH:MM`, nothing else (`+08`, `+0800`, `+00` are ISO 8601, not RFC 3339);
 *   `-00:00` means UTC;
 * - fractions of a second: 1 to 9 digits, truncated to the millisecond;
 * - day of month checked against the month and leap years;
 * - a leap second (`:60`) is accepted only where one can occur, at 23:59:60 UTC on the last day
 *   of June or December, and is read as 23:59:59.999 UTC (JavaScript time has no leap
 *   seconds): it sorts after every earlier instant and before the next day;
 * - years 0001 to 9999, as written and after applying the offset (`0000-...` and
 *   `0001-01-01T00:00:00+00:01`, `9999-12-31T23:59:59-00:01` are refused): the range every
 *   common date library holds (Python's `datetime` has no year 0 and no year 10000).
 */

const DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|([+-])(\d{2}):(\d{2}))$/;

/** 0001-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z, in milliseconds since the epoch. */
const FIRST_INSTANT = -62_135_596_800_000;
const LAST_INSTANT = 253_402_300_799_999;

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

const FULL_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * Whether `text` is an RFC 3339 `full-date` (`YYYY-MM-DD`, ASCII digits) of a year 0001 to 9999,
 * the day checked against the month and leap years. Year 0000 is refused: the proleptic
 * Gregorian calendar has it, Python's `datetime.date` (years 1 to 9999) does not, nor do the
 * date-times of docs/protocol.md §4.3, so two parsers would read it apart.
 */
export function isFullDate(text: string): boolean {
  const m = FULL_DATE.exec(text);
  if (!m) return false;
  const [y, mo, d] = m.slice(1, 4).map(Number) as [number, number, number];
  return y >= 1 && mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(y, mo);
}

/** Milliseconds since the epoch of an RFC 3339 date-time, or `undefined` if it is not one. */
export function parseRfc3339(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  const sign = m[8] === '-' ? -1 : 1;
  const oh = m[9] === undefined ? 0 : Number(m[9]);
  const om = m[10] === undefined ? 0 : Number(m[10]);
  if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) return undefined;
  if (h > 23 || mi > 59 || s > 60 || oh > 23 || om > 59) return undefined;
  const offsetMs = sign * (oh * 60 + om) * 60_000;
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, Math.min(s, 59), ms);
  const t = date.getTime() - offsetMs;
  if (t < FIRST_INSTANT || t > LAST_INSTANT) return undefined;
  if (s === 60) {
    const utc = new Date(t);
    const month = utc.getUTCMonth() + 1;
    const lastDay = utc.getUTCDate() === daysIn(utc.getUTCFullYear(), month);
    if (
      !(month === 6 || month === 12) ||
      !lastDay ||
      utc.getUTCHours() !== 23 ||
      utc.getUTCMinutes() !== 59
    )
      return undefined;
    return t - ms + 999;
  }
  return t;
}

/** True when `text` is an RFC 3339 date-time in the hub's profile (see {@link parseRfc3339}). */
export function isRfc3339(text: string): boolean {
  return parseRfc3339(text) !== undefined;
}

/** {@link parseRfc3339} that throws, for values a schema has already checked. */
export function timeOf(text: string): number {
  const t = parseRfc3339(text);
  if (t === undefined) throw new RangeError(`not an RFC 3339 date-time: ${JSON.stringify(text)}`);
  return t;
}
