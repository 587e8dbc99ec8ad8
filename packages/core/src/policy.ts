import { handlingRank, type Alert } from './alert.js';
import { agreementIndex } from './agreement-index.js';
import { ErrorCode } from './errors.js';
import { timeOf } from './rfc3339.js';
import {
  DenyReason,
  evaluateAgreements,
  partyMatches,
  type AgreementSet,
  type Allowed,
  type Denied,
  type Operation,
  versionsRead,
} from './agreements.js';

/**
 * What the hub already did with the alert a retraction retracts (or an outcome answers): who
 * sent it, and who received it under which agreement. The router reads it from its own state; `hubctl route --dry-run`
 * takes it as a file.
 */
export interface PriorRouting {
  readonly origin: string;
  readonly deliveries: readonly Allowed[];
}

/** A recipient the alert goes to; `viaOriginal` when only its receipt of the original sends it. */
export interface RoutedTo extends Allowed {
  readonly viaOriginal: boolean;
  /** The operation it goes under, when the alert names one. */
  readonly operation?: string;
}

/** Codes of the refusals the policy itself makes. */
export const PolicyRefusal = {
  RetractionNotOrigin: ErrorCode.RetractionNotOrigin,
  OutcomeNotReceived: ErrorCode.OutcomeNotReceived,
  OutcomeAmbiguous: ErrorCode.OutcomeAmbiguous,
  OperationUnknown: ErrorCode.OperationUnknown,
} as const;
export type PolicyRefusal = (typeof PolicyRefusal)[keyof typeof PolicyRefusal];

/** The routing decision for one alert of any type: where it goes and why not elsewhere, or a refusal. */
export type RouteDecision =
  | {
      readonly kind: 'route';
      readonly allowed: readonly RoutedTo[];
      readonly denied: readonly Denied[];
      /** The operation the alert named, and whether it was in its period (for the audit). */
      readonly operation?: {
        readonly id: string;
        readonly version: number;
        readonly inPeriod: boolean;
      };
    }
  | { readonly kind: 'refuse'; readonly code: PolicyRefusal; readonly reason: string };

/** What the routing decision depends on, and nothing else. */
export interface RouteInput {
  readonly agreements: AgreementSet;
  readonly alert: Alert;
  /** Every agency that could receive it (the trust store's agencies). */
  readonly candidates: readonly string[];
  readonly now: Date;
  /** For a retraction or an outcome: what happened to the alert it refers to, if the hub routed it. */
  readonly original?: PriorRouting | undefined;
}

/** True when `retraction` may retract an alert from `original`: only the origin of an alert may. */
export function mayRetract(
  retraction: { readonly origin: string },
  original: { readonly origin: string },
): boolean {
  return retraction.origin === original.origin;
}

/** The id the alert refers to: a retraction's `retracts`, an outcome's `answers`. */
export function referencedAlertId(alert: Alert): string | undefined {
  if (alert.type === 'retraction') return alert.retracts;
  if (alert.type === 'outcome') return alert.answers;
  return undefined;
}

function planOperation(
  set: AgreementSet,
  op: Operation,
  alert: Alert,
  candidates: readonly string[],
  now: Date,
): RouteDecision {
  const t = now.getTime();
  // The hub's one RFC 3339 reader (a leap second included: Date.parse reads 23:59:60 as NaN).
  const inPeriod = t >= timeOf(op.period.from) && t <= timeOf(op.period.until);
  const isMember = (a: string) => op.members.some((m) => partyMatches(m, a));
  const members = candidates.filter((c) => c !== alert.origin && isMember(c));
  const others = candidates.filter((c) => c !== alert.origin && !isMember(c));
  const ref = { id: op.id, version: op.version, inPeriod };
  const denied: Denied[] = others.map((recipient) => ({
    recipient,
    reason: DenyReason.NotParty,
    detail: `not a member of operation ${op.id}`,
  }));
  let refusal: { reason: DenyReason; detail: string } | undefined;
  if (!inPeriod)
    refusal = {
      reason: DenyReason.OperationPeriod,
      detail: `operation ${op.id} runs from ${op.period.from} to ${op.period.until}`,
    };
  else if (!op.alertTypes.includes(alert.type))
    refusal = {
      reason: DenyReason.OperationType,
      detail: `operation ${op.id} does not cover ${alert.type}`,
    };
  else if (handlingRank(alert.handling) > handlingRank(op.maxHandling))
    refusal = {
      reason: DenyReason.OperationHandling,
      detail: `${alert.handling} is above operation ${op.id}'s ceiling ${op.maxHandling}`,
    };
  if (refusal) {
    return {
      kind: 'route',
      allowed: [],
      denied: [...members.map((recipient) => ({ recipient, ...refusal })), ...denied],
      operation: ref,
    };
  }
  // A member that reads only other schema versions is refused it, as under an agreement.
  const unreadable = (m: string) => {
    const reads = versionsRead(set, m);
    return reads !== undefined && !reads.includes(alert.version);
  };
  return {
    kind: 'route',
    allowed: members
      .filter((m) => !unreadable(m))
      .map((recipient) => ({
        recipient,
        agreement: { id: op.id, version: op.version },
        onward: false,
        viaOriginal: false,
        operation: op.id,
      })),
    denied: [
      ...members.filter(unreadable).map((recipient) => ({
        recipient,
        reason: DenyReason.SchemaVersion,
        detail: `${recipient} does not read version ${alert.version} of ${alert.type}`,
      })),
      ...denied,
    ],
    operation: ref,
  };
}

/**
 * The hub's routing policy, the one place it is written. The agreements decide (deny unless
 * allowed, see `evaluateAgreements`); a retraction is refused unless it comes from the origin of
 * the alert it retracts, and reaches everyone who received that alert even where the agreements
 * would no longer send it (so nobody keeps acting on a withdrawn alert), but never above the
 * handling ceiling of the agreement that recipient received the original under: there it is
 * denied (`DENY_HANDLING`), and the origin sends a minimal withdrawal notice within the ceiling.
 * An outcome goes back to the origin of the alert it answers, under the agreement that delivered
 * that alert to the outcome's sender and never above that agreement's handling ceiling
 * (`DENY_HANDLING`), and is refused (`ERR_OUTCOME_NOT_RECEIVED`) when the sender never received
 * it; which alert it answers, when several origins sent one with its id, the caller resolves. An alert naming an operation goes to the operation's members, under its
 * terms (types, handling ceiling), during its period only: outside it, to nobody; an unknown
 * operation, or one the sender is no member of, is refused alike (`ERR_OPERATION_UNKNOWN`). The router and `hubctl route --dry-run` both
 * call it; it is pure.
 */
export function decideRoute(input: RouteInput): RouteDecision {
  const { alert, original } = input;
  if (alert.type === 'outcome') {
    const received = original?.deliveries.find((d) => d.recipient === alert.origin);
    if (!original || !received)
      return {
        kind: 'refuse',
        code: PolicyRefusal.OutcomeNotReceived,
        reason: `${alert.origin} never received alert ${String(alert.answers)}`,
      };
    const denied = withheldFrom(
      input,
      original.origin,
      received.agreement.id,
      (ceiling) =>
        `outcome ${alert.handling} is above ${ceiling} of ${received.agreement.id}, under which ${alert.origin} received alert ${String(alert.answers)}`,
    );
    if (denied) return { kind: 'route', allowed: [], denied: [denied] };
    return {
      kind: 'route',
      allowed: [
        {
          recipient: original.origin,
          agreement: received.agreement,
          onward: false,
          viaOriginal: true,
        },
      ],
      denied: [],
    };
  }
  if (alert.type !== 'retraction' && alert.operation !== undefined) {
    const op = input.agreements.operations?.find((o) => o.id === alert.operation);
    // An operation the sender is no member of is answered as one that does not exist, in the
    // same words: an operation's existence, members and period are its members' business, and
    // an agency outside it learns none of them by naming it (a per-member refusal listed them).
    if (!op || !op.members.some((m) => partyMatches(m, alert.origin)))
      return {
        kind: 'refuse',
        code: PolicyRefusal.OperationUnknown,
        reason: `${alert.origin} is a member of no operation ${alert.operation}`,
      };
    return planOperation(input.agreements, op, alert, input.candidates, input.now);
  }
  const decision = evaluateAgreements(input.agreements, alert, input.candidates, input.now);
  const allowed: RoutedTo[] = decision.allowed.map((a) => ({ ...a, viaOriginal: false }));
  if (alert.type !== 'retraction' || !alert.retracts)
    return { kind: 'route', allowed, denied: decision.denied };
  if (original && !mayRetract(alert, original)) {
    return {
      kind: 'refuse',
      code: PolicyRefusal.RetractionNotOrigin,
      reason: `only ${original.origin} may retract alert ${alert.retracts}`,
    };
  }
  // Original recipients the retraction does not reach: above their ceiling, or gone.
  const withheld: Denied[] = [];
  for (const d of original?.deliveries ?? []) {
    if (allowed.some((a) => a.recipient === d.recipient)) continue;
    const denied = withheldFrom(
      input,
      d.recipient,
      d.agreement.id,
      (ceiling) =>
        `retraction ${alert.handling} is above ${ceiling} of ${d.agreement.id}, under which ${d.recipient} received the original: send a withdrawal notice labelled ${ceiling} or lower`,
    );
    if (denied) {
      withheld.push(denied);
      continue;
    }
    allowed.push({ ...d, viaOriginal: true });
  }
  return {
    kind: 'route',
    allowed: allowed.sort((a, b) => a.recipient.localeCompare(b.recipient)),
    denied: [
      ...decision.denied.filter(
        (d) =>
          !allowed.some((a) => a.recipient === d.recipient) &&
          !withheld.some((o) => o.recipient === d.recipient),
      ),
      ...withheld,
    ],
  };
}

/**
 * Why a message that follows an earlier alert (a retraction to that alert's recipients, an
 * outcome back to its origin) does not reach `recipient`, who had the alert under agreement (or
 * operation) `agreementId`: removed from the trust store since (no feed to read it from), or the
 * message is above that agreement's handling ceiling (its latest version, or the lowest label when
 * it is gone: every message obeys the recipient's ceiling), or the recipient does not read the
 * message's schema version (`readers`, docs/protocol.md §2.4: a version-2 outcome to an origin
 * that reads only version 1). Undefined when it reaches it.
 */
function withheldFrom(
  input: RouteInput,
  recipient: string,
  agreementId: string,
  overCeiling: (ceiling: string) => string,
): Denied | undefined {
  if (!input.candidates.includes(recipient))
    return {
      recipient,
      reason: DenyReason.NotParty,
      detail: `${recipient} is no longer in the trust store`,
    };
  const ceiling = ceilingOf(input.agreements, agreementId);
  if (handlingRank(input.alert.handling) > handlingRank(ceiling))
    return { recipient, reason: DenyReason.Handling, detail: overCeiling(ceiling) };
  const reads = versionsRead(input.agreements, recipient);
  if (reads && !reads.includes(input.alert.version))
    return {
      recipient,
      reason: DenyReason.SchemaVersion,
      detail: `${recipient} reads schema versions ${reads.join(', ')}; this ${input.alert.type} is version ${input.alert.version}`,
    };
  return undefined;
}

/** The lowest handling label: the ceiling of a delivery whose agreement no longer exists. */
const LOWEST_HANDLING = 'TLP:CLEAR';

/**
 * The handling ceiling of agreement `id` in its latest version in `set`, or of operation `id`
 * (an alert sent under an operation names the operation as its agreement).
 */
function ceilingOf(set: AgreementSet, id: string): string {
  return (
    agreementIndex(set).latest(id)?.maxHandling ??
    set.operations?.find((o) => o.id === id)?.maxHandling ??
    LOWEST_HANDLING
  );
}
