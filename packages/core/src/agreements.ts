import { countriesTouched, countryOf, handlingRank, type Alert } from './alert.js';
import { createHash } from 'node:crypto';
import { AgreementsChangedInPlaceError, AgreementsInvalidError, type Issue } from './errors.js';
import { canonicalJson } from './json.js';
import type { SchemaRegistry } from './schema-registry.js';
import { timeOf } from './rfc3339.js';
import { agreementIndex, type AgreementIndex, type PairAgreements } from './agreement-index.js';

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
  /**
   * No longer made: an alert naming an operation its sender is no member of is refused whole,
   * `ERR_OPERATION_UNKNOWN`, as for an operation that does not exist. Entries of older releases
   * carry it.
   */
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
  /**
   * For people: why. For a near miss, the first agreement of both parties and each one that
   * covers the alert's type, with why it does not allow this flow, then how many others do not
   * cover the type (see `evaluateAgreements`); when none covers the type and the first fails on
   * nothing else, {@link uncoveredDetail}, which names no agreement.
   */
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
  window: { readonly from: number; readonly until: number | undefined },
  alert: Alert,
  from: string,
  to: string,
  t: number,
  touched: () => Set<string>,
): { reason: DenyReason; detail: string } | undefined {
  if (t < window.from)
    return { reason: DenyReason.NotYetValid, detail: `not in force before ${a.validFrom}` };
  if (window.until !== undefined && t > window.until)
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
 * wins; when none does (a near miss), the reason is that of the first agreement of both, and
 * `detail` gives that one's and each one's that covers the alert's type (the only ones that could
 * have allowed it), then how many others of both do not cover the type (or, when none covers
 * it and the first fails on nothing else, {@link uncoveredDetail}: the same for every such agency).
 * Only the agreements both the origin and the candidate are party to and that cover the alert's
 * type are evaluated (see `agreementIndex`, memoised per sender, recipient and type), plus the
 * first agreement of both for a near miss's code: agreements that cannot apply cost nothing.
 */
export function evaluateAgreements(
  set: AgreementSet,
  alert: Alert,
  candidates: readonly string[],
  now: Date,
): RoutingDecision {
  const from = alert.origin;
  const t = now.getTime();
  let touchedCache: Set<string> | undefined;
  const touched = () => (touchedCache ??= countriesTouched(alert));
  const index = agreementIndex(set);
  const ofOrigin = index.including(from);
  const allowed: Allowed[] = [];
  const denied: Denied[] = [];
  for (const to of candidates) {
    if (to === from) continue;
    const pair = ofOrigin.length === 0 ? NO_PAIR : index.between(from, to, alert.type);
    if (pair.shared.length === 0) {
      denied.push({
        recipient: to,
        reason: DenyReason.NotParty,
        detail: `no agreement includes both ${from} and ${to}`,
      });
      continue;
    }
    // Only an agreement that covers the alert's type can allow it: the first of those that does wins.
    let ok: Agreement | undefined;
    const refused: { a: Agreement; reason: DenyReason; detail: string }[] = [];
    for (const i of pair.applicable) {
      const a = set.agreements[i]!;
      const r = refusal(a, index.validity(i), alert, from, to, t, touched);
      if (!r) {
        ok = a;
        break;
      }
      refused.push({ a, ...r });
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
    else denied.push(nearMiss(set, index, pair, refused, alert, from, to, t, touched));
  }
  return { allowed, denied };
}

const NO_PAIR: PairAgreements = { shared: [], applicable: [] };

/** Why a near miss is refused when no agreement of both covers the alert's type. */
export function uncoveredDetail(type: string): string {
  return `no agreement of both covers ${type}`;
}

/**
 * A near miss: the first agreement of both decides the reason (whether or not it covers the
 * type); the detail names it and every agreement that covers the type, each with why it does not
 * allow this flow, and counts the rest, which do not cover the type. Never one text per
 * agreement of the sender: its length is bounded by the agreements that could apply.
 * When the type alone is why (no agreement of both covers it, and the first is in force and
 * lets the origin send to `to`), the detail names no agreement: {@link uncoveredDetail}, the
 * same text for every such recipient, so that a notice can list them once (§9.2 of
 * docs/protocol.md).
 */
function nearMiss(
  set: AgreementSet,
  index: AgreementIndex,
  pair: PairAgreements,
  refused: readonly { a: Agreement; reason: DenyReason; detail: string }[],
  alert: Alert,
  from: string,
  to: string,
  t: number,
  touched: () => Set<string>,
): Denied {
  const first = pair.shared[0]!;
  const lines = [...refused];
  if (pair.applicable[0] !== first) {
    const a = set.agreements[first]!;
    lines.unshift({ a, ...refusal(a, index.validity(first), alert, from, to, t, touched)! });
  }
  if (lines.length === 1 && refused.length === 0 && lines[0]!.reason === DenyReason.AlertType)
    return { recipient: to, reason: DenyReason.AlertType, detail: uncoveredDetail(alert.type) };
  const others = pair.shared.length - lines.length;
  const text = lines.map((r) => `${r.a.id}@${r.a.version}: ${r.detail}`).join('; ');
  return {
    recipient: to,
    reason: lines[0]!.reason,
    detail:
      others === 0
        ? text
        : `${text}; ${others} other agreement${others === 1 ? '' : 's'} of both ${others === 1 ? 'does' : 'do'} not cover ${alert.type}`,
  };
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
  // A party, an operation member or a reader naming an agency (not a whole country) must be one.
  const unknown = (p: string) =>
    knownAgencies !== undefined && p.length > 2 && !knownAgencies.includes(p);
  const notAnAgency = (p: string) =>
    `"${p}" is not an agency of this hub (none in the trust store)`;
  // Ids are compared without case: Thunderball and THUNDERBALL would be two agreements to the
  // hub and one to whoever reads the audit log, an alert or a report.
  const usedBy = (id: string, other: string, where: string) =>
    id === other
      ? `"${id}" is already used by ${where}`
      : `"${id}" differs only in case from "${other}" (${where}): ids are compared without case`;
  agreements.forEach((a, i) => {
    const at = `/agreements/${i}`;
    const key = a.id.toLowerCase();
    const first = seen.get(key);
    if (first !== undefined)
      issues.push({
        pointer: `${at}/id`,
        message: usedBy(a.id, agreements[first]!.id, `/agreements/${first}`),
      });
    else seen.set(key, i);
    a.parties.forEach((p, j) => {
      if (!registry.countries.has(p.slice(0, 2)))
        issues.push({
          pointer: `${at}/parties/${j}`,
          message: `"${p.slice(0, 2)}" is not an ISO 3166-1 alpha-2 country code`,
        });
      else if (unknown(p)) issues.push({ pointer: `${at}/parties/${j}`, message: notAnAgency(p) });
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
            issues.push({ pointer: `${at}/flows/${j}/${side}/${k}`, message: notAnAgency(p) });
        });
      }
    });
  });
  const operations = (document as { operations?: Operation[] }).operations ?? [];
  const seenOperations = new Map<string, number>();
  operations.forEach((o, i) => {
    const at = `/operations/${i}`;
    const key = o.id.toLowerCase();
    const agreement = seen.get(key);
    const first = seenOperations.get(key);
    if (agreement !== undefined)
      issues.push({
        pointer: `${at}/id`,
        message: usedBy(o.id, agreements[agreement]!.id, `/agreements/${agreement}`),
      });
    else if (first !== undefined)
      issues.push({
        pointer: `${at}/id`,
        message: usedBy(o.id, operations[first]!.id, `/operations/${first}`),
      });
    if (first === undefined) seenOperations.set(key, i);
    o.members.forEach((p, j) => {
      if (!registry.countries.has(p.slice(0, 2)))
        issues.push({
          pointer: `${at}/members/${j}`,
          message: `"${p.slice(0, 2)}" is not an ISO 3166-1 alpha-2 country code`,
        });
      else if (unknown(p)) issues.push({ pointer: `${at}/members/${j}`, message: notAnAgency(p) });
    });
    if (timeOf(o.period.until) <= timeOf(o.period.from))
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
    else if (unknown(r.party)) issues.push({ pointer: at, message: notAnAgency(r.party) });
  });
  if (issues.length > 0) throw new AgreementsInvalidError(source, issues);
  return {
    agreements,
    ...(operations.length ? { operations } : {}),
    ...(readers ? { readers } : {}),
  };
}

/** An RFC 3339 time as the instant it names, in one spelling (`2019-01-01T00:00:00.000Z`). */
function instant(text: string): string {
  return new Date(timeOf(text)).toISOString();
}

/** A list whose order and repetitions carry no meaning, in one order. */
function asSet(list: readonly string[]): string[] {
  return [...new Set(list)].sort();
}

/**
 * An agreement's terms in one form: `onwardSharing` written out (false by default), a condition
 * that does not hold (`routeTouchesRecipient: false`) and an empty `conditions` dropped, times
 * as the instants they name (core's RFC 3339 parser), and the sets sorted: `parties`,
 * `alertTypes`, each flow's `from` and `to`, and the flows themselves (a flow allows whatever
 * its place in the list). Two spellings of the same terms give the same form.
 */
export function normalAgreementTerms(a: Agreement): Record<string, unknown> {
  const flows = a.flows?.map((f) => ({ from: asSet(f.from), to: asSet(f.to) }));
  const flowSet = flows && [...new Map(flows.map((f) => [canonicalJson(f), f])).entries()];
  return {
    id: a.id,
    version: a.version,
    title: a.title,
    parties: asSet(a.parties),
    ...(flowSet
      ? { flows: flowSet.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([, f]) => f) }
      : {}),
    alertTypes: asSet(a.alertTypes),
    maxHandling: a.maxHandling,
    validFrom: instant(a.validFrom),
    ...(a.validUntil !== undefined ? { validUntil: instant(a.validUntil) } : {}),
    ...(a.conditions?.routeTouchesRecipient === true
      ? { conditions: { routeTouchesRecipient: true } }
      : {}),
    onwardSharing: a.onwardSharing === true,
  };
}

/** An operation's terms in one form: times as instants, `members` and `alertTypes` sorted. */
export function normalOperationTerms(o: Operation): Record<string, unknown> {
  return {
    id: o.id,
    version: o.version,
    name: o.name,
    period: { from: instant(o.period.from), until: instant(o.period.until) },
    members: asSet(o.members),
    alertTypes: asSet(o.alertTypes),
    maxHandling: o.maxHandling,
  };
}

const sha256Hex = (v: unknown) => createHash('sha256').update(canonicalJson(v)).digest('hex');

/**
 * The hex SHA-256 of each agreement's and each operation's terms, by label: `SG-VN-2019@1` for
 * an agreement, `operation THUNDERBALL-2019@1` for an operation. What is hashed is the canonical
 * JSON of the terms' normal form ({@link normalAgreementTerms}, {@link normalOperationTerms}):
 * two files whose `SG-VN-2019@1` differs only in spacing, comments, member order, the order of a
 * set, a default written out, an empty `conditions` or the spelling of a time give it the same
 * digest.
 */
export function termsDigests(set: AgreementSet): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const a of set.agreements)
    out.set(`${a.id}@${a.version}`, sha256Hex(normalAgreementTerms(a)));
  for (const o of set.operations ?? [])
    out.set(`operation ${o.id}@${o.version}`, sha256Hex(normalOperationTerms(o)));
  return out;
}

/**
 * The digests the router recorded before the normal form (2026-11-29, the first release that
 * recorded terms): the canonical JSON of each agreement and operation as the file gives it. Only
 * to read audit logs written then ({@link checkTermsUnchanged}); never recorded any more.
 */
export function writtenTermsDigests(set: AgreementSet): ReadonlyMap<string, string> {
  const out = new Map<string, string>();
  for (const a of set.agreements) out.set(`${a.id}@${a.version}`, sha256Hex(a));
  for (const o of set.operations ?? []) out.set(`operation ${o.id}@${o.version}`, sha256Hex(o));
  return out;
}

/**
 * Throws {@link AgreementsChangedInPlaceError} when a label of `next` was `known` with other
 * terms: the terms of `SG-VN-2019@1` must never change, or the audit's label would mean two
 * things. Labels that come back with the same terms, and new labels, are fine. A known digest
 * matches when it is the label's {@link termsDigests} or, for digests recorded before the normal
 * form, its {@link writtenTermsDigests}: either match means the same terms (a written form that
 * hashes like a normal form is that normal form). Returns the labels' {@link termsDigests}.
 */
export function checkTermsUnchanged(
  known: ReadonlyMap<string, string>,
  next: AgreementSet,
): ReadonlyMap<string, string> {
  const digests = termsDigests(next);
  const written = writtenTermsDigests(next);
  const changed = [...digests]
    .filter(([label, d]) => {
      const k = known.get(label);
      return k !== undefined && k !== d && k !== written.get(label);
    })
    .map(([label]) => label);
  if (changed.length > 0) throw new AgreementsChangedInPlaceError(changed);
  return digests;
}
