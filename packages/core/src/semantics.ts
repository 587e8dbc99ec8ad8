/**
 * Rules of the version-2 alerts that JSON Schema cannot state: they compare one member with
 * another. Each compares against the alert's own `issuedAt`, never the verifier's clock, so every
 * gateway, the router and every partner reach the same verdict on the same bytes at any time
 * (`verifyOrigin` already refuses an `issuedAt` in the future). docs/protocol.md §2.4 states them
 * for implementers.
 *
 * Version 1 alerts are not subject to them: a v1 alert that was valid stays valid.
 */
import type { Issue } from './errors.js';
import { isJsonObject } from './json.js';
import { parseRfc3339 } from './rfc3339.js';

/** A rule set for one schema; returns every issue found (empty when the alert passes). */
export type AlertRules = (alert: Record<string, unknown>) => Issue[];

/** The latest UTC offset in use (UTC+14, Line Islands): the last place where a date has begun. */
const LATEST_OFFSET_MS = 14 * 3600_000;

/**
 * Milliseconds since the epoch of an RFC 3339 date-time the schema already accepted, read by the
 * hub's one parser (rfc3339.ts): a leap second (`:60`, with or without a fraction) is the last
 * millisecond of its minute. `NaN` for a string that is not a date-time in that profile.
 */
export function instantOf(timestamp: string): number {
  return parseRfc3339(timestamp) ?? Number.NaN;
}

/** The calendar date (`YYYY-MM-DD`) it already is somewhere on Earth at `instant`. */
function latestDateAt(instant: number): string {
  return new Date(instant + LATEST_OFFSET_MS).toISOString().slice(0, 10);
}

function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Calls `visit` on every object in `value` with its JSON pointer. */
function walkObjects(
  value: unknown,
  pointer: string,
  visit: (o: Record<string, unknown>, pointer: string, key: string | undefined) => void,
  key?: string,
): void {
  if (Array.isArray(value)) {
    value.forEach((v, i) => walkObjects(v, `${pointer}/${i}`, visit, key));
  } else if (isJsonObject(value)) {
    visit(value, pointer, key);
    for (const [k, v] of Object.entries(value))
      walkObjects(v, `${pointer}/${escapeToken(k)}`, visit, k);
  }
}

/** The rules every version-2 alert follows. */
export const alertRulesV2: AlertRules = (alert) => {
  const issues: Issue[] = [];
  const issuedAtText = alert['issuedAt'];
  if (typeof issuedAtText !== 'string') return issues;
  const issuedAt = instantOf(issuedAtText);
  const latestDate = latestDateAt(issuedAt);

  for (const member of ['expiresAt', 'reviewBy'] as const) {
    const v = alert[member];
    if (typeof v === 'string' && !(instantOf(v) > issuedAt))
      issues.push({ pointer: `/${member}`, message: `must be after issuedAt (${issuedAtText})` });
  }
  const seizure = alert['seizure'];
  if (
    isJsonObject(seizure) &&
    typeof seizure['date'] === 'string' &&
    seizure['date'] > latestDate
  ) {
    issues.push({
      pointer: '/seizure/date',
      message: `is in the future: the alert was issued at ${issuedAtText}, when no place on Earth had reached ${seizure['date']}`,
    });
  }
  walkObjects(alert, '', (o, pointer, key) => {
    if (typeof o['dateOfBirth'] === 'string' && o['dateOfBirth'] > latestDate)
      issues.push({
        pointer: `${pointer}/dateOfBirth`,
        message: 'is after the alert was issued',
      });
    if (key !== undefined && Array.isArray(o['quantities'])) {
      const seen = new Map<string, number>();
      (o['quantities'] as unknown[]).forEach((q, i) => {
        if (!isJsonObject(q) || typeof q['unit'] !== 'string') return;
        const first = seen.get(q['unit']);
        if (first === undefined) seen.set(q['unit'], i);
        else
          issues.push({
            pointer: `${pointer}/quantities/${i}/unit`,
            message: `"${q['unit']}" is already given at quantities/${first}; one quantity per unit`,
          });
      });
    }
  });
  return issues;
};

/** Rules by schema `$id`; a schema without an entry has none beyond itself. */
export const ALERT_RULES: Readonly<Record<string, AlertRules>> = {
  'https://schemas.alert-hub.example/alerts/seizure-report/v2.json': alertRulesV2,
  'https://schemas.alert-hub.example/alerts/suspicious-shipment/v2.json': alertRulesV2,
  'https://schemas.alert-hub.example/alerts/consignee-flag/v2.json': alertRulesV2,
};
