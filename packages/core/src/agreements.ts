import { countriesTouched, countryOf, handlingRank, type Alert } from './alert.js';
import { AgreementsInvalidError, type Issue } from './errors.js';
import type { SchemaRegistry } from './schema-registry.js';
import { timeOf } from './rfc3339.js';
import { agreementIndex, type AgreementIndex } from './agreement-index.js';

export const AGREEMENTS_SCHEMA_ID = 'https://schemas.alert-hub.example/agreements/v1.json';

/** A sharing agreement, as in the agreements file (see `schemas/agreements.v1.schema.json`). */
export interface Agreement {
  readonly id: string;
  readonly version: number;
  readonly title: string;
  /** Countries (`SG`) or agencies (`SG-NPARKS`). */
  readonly parties: readonly string[];
  /** Directed flows; absent means every party may send to every other. */
  readonly flows?: readonly { readonly from: readonly string[]; readonly to: readonly string[] }[];
  readonly alertTypes: readonly string[];
  readonly maxHandling: string;
  readonly validFrom: string;
  readonly validUntil?: string;
  readonly conditions?: { readonly routeTouchesRecipient?: boolean };
  readonly onwardSharing?: boolean;
}

/**
 * A time-boxed multi-country operation (Thunderball): an alert naming it goes to its members,
 * under its terms (types, handling ceiling), during its period only, and to nobody else.
 */
export interface Operation {
  readonly id: string;
  readonly version: number;
  readonly name: string;
  readonly period: { readonly from: string; readonly until: string };
  /** Countries (`NG`) or agencies (`NG-CUSTOMS`). */
  readonly members: readonly string[];
  readonly alertTypes: readonly string[];
  /** The handling ceiling. */
  readonly maxHandling: string;
}

/** Why an agreement does not allow a flow. Stable codes, recorded in the audit log. */
export const DenyReason = {
  NotParty: 'DENY_NOT_PARTY',
  NotYetValid: 'DENY_NOT_YET_VALID',
  Expired: 'DENY_EXPIRED',
  Direction: 'DENY_DIRECTION',
  AlertType: 'DENY_ALERT_TYPE',
  Handling: 'DENY_HANDLING',
  Condition: 'DENY_CONDITION',
  OperationPeriod: 'DENY_OPERATION_PERIOD',
  OperationMember: 'DENY_OPERATION_MEMBER',
  OperationType: 'DENY_OPERATION_TYPE',
  OperationHandling: 'DENY_OPERATION_HANDLING',
  SchemaVersion: 'DENY_SCHEMA_VERSION',
} as const;
export type DenyReason = (typeof DenyReason)[keyof typeof DenyReason];

/** The agreement a copy is forwarded under. */
export interface AgreementRef {
  readonly id: string;
  readonly version: number;
}

/** A recipient the alert may go to, and under which agreement. */
export interface Allowed {
  readonly recipient: string;
  readonly agreement: AgreementRef;
  readonly onward: boolean;
}

/** A recipient the alert may not go to, and why. */
export interface Denied {
  readonly recipient: string;
  readonly reason: DenyReason;
  /** Each agreement that includes both parties, with why it does not allow this flow. */
  readonly detail: string;
}

/** The outcome for every candidate recipient. */
export interface RoutingDecision {
  readonly allowed: readonly Allowed[];
  readonly denied: readonly Denied[];
}

/** The alert schema versions a partner (a country or one agency) reads. */
export interface Reader {
  readonly party: string;
  readonly schemaVersions: readonly number[];
}

/** A validated set of agreements, with the file's own order kept (the first that allows wins). */
export interface AgreementSet {
  readonly agreements: readonly Agreement[];
  readonly operations?: readonly Operation[];
  /** Partners that read only some schema versions; absent or unlisted: every version. */
  readonly readers?: readonly Reader[];
}

/** Whether `party` (a country or an agency) names `agency`. */
export function partyMatches(party: string, agency: string): boolean {
  return matches(party, agency);
}

/**
 * The schema versions `agency` reads, or undefined when it reads every version: its own entry,
 * else its country's.
 */
export function versionsRead(set: AgreementSet, agency: string): readonly number[] | undefined {
  const readers = set.readers ?? [];
  return (
    readers.find((r) => r.party === agency)?.schemaVersions ??
    readers.find((r) => r.party === countryOf(agency))?.schemaVersions
  );
}

function matches(party: string, agency: string): boolean {
  return party.length === 2 ? countryOf(agency) === party : party === agency;
}

/** Why `a` does not let `from` send `alert` to `to` at `now`; undefined when it does. */
function refusal(
  a: Agreement,
  alert: Alert,
  from: string,
  to: string,
  now: Date,
  touched: () => Set<string>,
): { reason: DenyReason; detail: string } | undefined {
  const t = now.getTime();
  if (t < timeOf(a.validFrom))
    return { reason: DenyReason.NotYetValid, detail: `not in force before ${a.validFrom}` };
  if (a.validUntil !== undefined && t > timeOf(a.validUntil))
    return { reason: DenyReason.Expired, detail: `ended ${a.validUntil}` };
  if (
    a.flows &&
    !a.flows.some((f) => f.from.some((p) => matches(p, from)) && f.to.some((p) => matches(p, to)))
  ) {
    return { reason: DenyReason.Direction, detail: `does not let ${from} send to ${to}` };
  }
  if (!a.alertTypes.includes(alert.type))
    return { reason: DenyReason.AlertType, detail: `does not cover ${alert.type}` };
  if (handlingRank(alert.handling) > handlingRank(a.maxHandling)) {
    return {
      reason: DenyReason.Handling,
      detail: `${alert.handling} is above the allowed ${a.maxHandling}`,
    };
  }
  if (a.conditions?.routeTouchesRecipient && !touched().has(countryOf(to))) {
    return {
      reason: DenyReason.Condition,
      detail: `the alert does not concern ${countryOf(to)} (routeTouchesRecipient)`,
    };
  }
  return undefined;
}

/**
 * Decides, for each candidate recipient, whether an agreement in force lets `alert` go there.
 * Deny unless allowed: a recipient with no agreement shared with the origin is denied
 * `DENY_NOT_PARTY`. Among agreements that include both, the first (in file order) that allows
 * wins; when none does, the reason is that of the first, and `detail` lists each one's.
 * Only the agreements of the origin and of each candidate are looked at (see `agreementIndex`).
 */
export function evaluateAgreements(
  set: AgreementSet,
  alert: Alert,
  candidates: readonly string[],
  now: Date,
): RoutingDecision {
  const from = alert.origin;
  let touchedCache: Set<string> | undefined;
  const touched = () => (touchedCache ??= countriesTouched(alert));
  const index = agreementIndex(set);
  const ofOrigin = index.including(from);
  const covering = index.covering(alert.type);
  const allowed: Allowed[] = [];
  const denied: Denied[] = [];
  for (const to of candidates) {
    if (to === from) continue;
    const both = ofOrigin.length === 0 ? [] : sharedBy(index, ofOrigin, from, to);
    if (both.length === 0) {
      denied.push({
        recipient: to,
        reason: DenyReason.NotParty,
        detail: `no agreement includes both ${from} and ${to}`,
      });
      continue;
    }
    // Only an agreement that covers the alert's type can allow it: the first of those that does wins.
    let ok: Agreement | undefined;
    for (const i of both) {
      if (!covering.has(i)) continue;
      const a = set.agreements[i]!;
      if (!refusal(a, alert, from, to, now, touched)) {
        ok = a;
        break;
      }
    }
    const reads = ok ? versionsRead(set, to) : undefined;
    if (ok && reads && !reads.includes(alert.version)) {
      // Allowed by the agreement, but the partner could not read it: refused with the reason,
      // never sent to end up in the partner's quarantine.
      denied.push({
        recipient: to,
        reason: DenyReason.SchemaVersion,
        detail: `${to} reads schema versions ${reads.join(', ')}; this ${alert.type} is version ${alert.version} (allowed by ${ok.id}@${ok.version})`,
      });
    } else if (ok)
      allowed.push({
        recipient: to,
        agreement: { id: ok.id, version: ok.version },
        onward: ok.onwardSharing === true,
      });
    else {
      // A near miss: every agreement of both parties, each with why it does not allow this flow.
      const reasons = both.map((i) => {
        const a = set.agreements[i]!;
        return { a, ...refusal(a, alert, from, to, now, touched)! };
      });
      denied.push({
        recipient: to,
        reason: reasons[0]!.reason,
        detail: reasons.map((r) => `${r.a.id}@${r.a.version}: ${r.detail}`).join('; '),
      });
    }
  }
  return { allowed, denied };
}

/** Positions (file order) of the agreements that include both `from` and `to`. */
function sharedBy(
  index: AgreementIndex,
  ofOrigin: readonly number[],
  from: string,
  to: string,
): readonly number[] {
  const ofRecipient = index.including(to);
  if (ofRecipient.length === 0) return ofRecipient;
  // Walk the shorter list, look positions up in the other's set.
  if (ofRecipient.length <= ofOrigin.length) {
    const fromSet = index.includingSet(from);
    return ofRecipient.filter((i) => fromSet.has(i));
  }
  const toSet = index.includingSet(to);
  return ofOrigin.filter((i) => toSet.has(i));
}

/**
 * Validates an agreements document (already parsed from YAML or JSON): the schema, then what a
 * schema cannot say (unique ids, flows between parties, validity windows, real countries).
 * Throws `ERR_AGREEMENTS_INVALID` with every problem by JSON pointer.
 */
export function parseAgreements(
  document: unknown,
  registry: SchemaRegistry,
  source = 'agreements',
  /**
   * The agencies that exist (the trust store's). When given, an agreement naming any other
   * agency is refused: a typo (`VN-CUSTOM`) would otherwise silently share with nobody.
   */
  knownAgencies?: readonly string[],
): AgreementSet {
  const issues: Issue[] = [...registry.validateDocument(AGREEMENTS_SCHEMA_ID, document)];
  if (issues.length > 0) throw new AgreementsInvalidError(source, issues);
  const { agreements, readers } = document as { agreements: Agreement[]; readers?: Reader[] };
  const seen = new Map<string, number>();
  agreements.forEach((a, i) => {
    const at = `/agreements/${i}`;
    if (seen.has(a.id))
      issues.push({
        pointer: `${at}/id`,
        message: `"${a.id}" is already used by /agreements/${seen.get(a.id)}`,
      });
    else seen.set(a.id, i);
    const unknown = (p: string) =>
      knownAgencies !== undefined && p.length > 2 && !knownAgencies.includes(p);
    a.parties.forEach((p, j) => {
      if (!registry.countries.has(p.slice(0, 2)))
        issues.push({
          pointer: `${at}/parties/${j}`,
          message: `"${p.slice(0, 2)}" is not an ISO 3166-1 alpha-2 country code`,
        });
      else if (unknown(p))
        issues.push({
          pointer: `${at}/parties/${j}`,
          message: `"${p}" is not an agency of this hub (none in the trust store)`,
        });
    });
    if (a.validUntil !== undefined && timeOf(a.validUntil) <= timeOf(a.validFrom)) {
      issues.push({
        pointer: `${at}/validUntil`,
        message: `must be after validFrom (${a.validFrom})`,
      });
    }
    a.flows?.forEach((f, j) => {
      for (const side of ['from', 'to'] as const) {
        f[side].forEach((p, k) => {
          const covered = a.parties.some(
            (q) => q === p || (q.length === 2 && p.startsWith(`${q}-`)),
          );
          if (!covered)
            issues.push({
              pointer: `${at}/flows/${j}/${side}/${k}`,
              message: `"${p}" is not a party of ${a.id}`,
            });
          else if (unknown(p))
            issues.push({
              pointer: `${at}/flows/${j}/${side}/${k}`,
              message: `"${p}" is not an agency of this hub (none in the trust store)`,
            });
        });
      }
    });
  });
  const operations = (document as { operations?: Operation[] }).operations ?? [];
  operations.forEach((o, i) => {
    const at = `/operations/${i}`;
    if (seen.has(o.id))
      issues.push({
        pointer: `${at}/id`,
        message: `"${o.id}" is already used by /agreements/${seen.get(o.id)}`,
      });
    else if (operations.findIndex((p) => p.id === o.id) !== i)
      issues.push({ pointer: `${at}/id`, message: `"${o.id}" is already used by an operation` });
    o.members.forEach((p, j) => {
      if (!registry.countries.has(p.slice(0, 2)))
        issues.push({
          pointer: `${at}/members/${j}`,
          message: `"${p.slice(0, 2)}" is not an ISO 3166-1 alpha-2 country code`,
        });
    });
    if (Date.parse(o.period.until) <= Date.parse(o.period.from))
      issues.push({
        pointer: `${at}/period/until`,
        message: `must be after period.from (${o.period.from})`,
      });
  });
  const readerSeen = new Map<string, number>();
  readers?.forEach((r, i) => {
    const at = `/readers/${i}/party`;
    if (readerSeen.has(r.party))
      issues.push({
        pointer: at,
        message: `"${r.party}" is already listed at /readers/${readerSeen.get(r.party)}`,
      });
    else readerSeen.set(r.party, i);
    if (!r.schemaVersions.includes(1))
      issues.push({
        pointer: `/readers/${i}/schemaVersions`,
        message:
          'must include 1: retractions exist only in version 1, and every partner reads them',
      });
    if (!registry.countries.has(r.party.slice(0, 2)))
      issues.push({
        pointer: at,
        message: `"${r.party.slice(0, 2)}" is not an ISO 3166-1 alpha-2 country code`,
      });
  });
  if (issues.length > 0) throw new AgreementsInvalidError(source, issues);
  return {
    agreements,
    ...(operations.length ? { operations } : {}),
    ...(readers ? { readers } : {}),
  };
}
