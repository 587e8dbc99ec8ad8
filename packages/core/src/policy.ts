import { handlingRank, type Alert } from './alert.js';
import {
  DenyReason,
  evaluateAgreements,
  partyMatches,
  type AgreementSet,
  type Allowed,
  type Denied,
  type Operation,
} from './agreements.js';

/** Why the router refuses a message outright (it is dead-lettered and its sender told). */
export const PolicyRefusal = {
  RetractionNotOrigin: 'ERR_RETRACTION_NOT_ORIGIN',
  OutcomeNotReceived: 'ERR_OUTCOME_NOT_RECEIVED',
  OperationUnknown: 'ERR_OPERATION_UNKNOWN',
} as const;
export type PolicyRefusal = (typeof PolicyRefusal)[keyof typeof PolicyRefusal];

/** The alert a retraction or an outcome refers to, as the router routed it. */
export interface OriginalRouting {
  readonly origin: string;
  /** Who received it, under which agreement (or operation). */
  readonly deliveries: readonly Allowed[];
}

export interface RoutingInput {
  readonly agreements: AgreementSet;
  readonly alert: Alert;
  /** Every agency the alert could go to (the trust store's agencies). */
  readonly candidates: readonly string[];
  readonly now: Date;
  /** For a retraction (`retracts`) or an outcome (`answers`): the alert referred to, if routed. */
  readonly original?: OriginalRouting | undefined;
}

/** A recipient and why it receives the alert. */
export type Recipient = Allowed & {
  /** Sent because it received the original (a retraction or an outcome), not by an agreement now. */
  readonly viaOriginal: boolean;
  /** The operation it goes under, when the alert names one. */
  readonly operation?: string;
};

/** What the router does with one verified, schema-valid alert. */
export type RoutingPlan =
  | {
      readonly kind: 'route';
      readonly allowed: readonly Recipient[];
      readonly denied: readonly Denied[];
      /** The operation the alert named (and its period), for the audit. */
      readonly operation?: {
        readonly id: string;
        readonly version: number;
        readonly inPeriod: boolean;
      };
    }
  | { readonly kind: 'refuse'; readonly code: PolicyRefusal; readonly reason: string };

/** The id the alert refers to: a retraction's `retracts`, an outcome's `answers`. */
export function referencedAlertId(alert: Alert): string | undefined {
  if (alert.type === 'retraction') return alert.retracts;
  if (alert.type === 'outcome') return alert.answers;
  return undefined;
}

function planOperation(
  op: Operation,
  alert: Alert,
  candidates: readonly string[],
  now: Date,
): RoutingPlan {
  const t = now.getTime();
  const inPeriod = t >= Date.parse(op.period.from) && t <= Date.parse(op.period.until);
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
  else if (!isMember(alert.origin))
    refusal = {
      reason: DenyReason.OperationMember,
      detail: `${alert.origin} is not a member of operation ${op.id}`,
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
  return {
    kind: 'route',
    allowed: members.map((recipient) => ({
      recipient,
      agreement: { id: op.id, version: op.version },
      onward: false,
      viaOriginal: false,
      operation: op.id,
    })),
    denied,
    operation: ref,
  };
}

/**
 * The routing policy, in one pure function that the router and every preview of it call:
 *
 * - an **outcome** goes back to the origin of the alert it answers, under the agreement that
 *   delivered that alert to the outcome's sender; it is refused (`ERR_OUTCOME_NOT_RECEIVED`)
 *   when the sender never received it;
 * - a **retraction** may come only from the original's origin (`ERR_RETRACTION_NOT_ORIGIN`)
 *   and reaches everyone who received the original, plus whoever the agreements allow now;
 * - an alert naming an **operation** goes to the operation's members, under its terms, during
 *   its period only (outside it, to nobody); an unknown operation is refused
 *   (`ERR_OPERATION_UNKNOWN`);
 * - anything else goes where the agreements allow ({@link evaluateAgreements}).
 */
export function decideRouting(input: RoutingInput): RoutingPlan {
  const { alert, agreements, candidates, now, original } = input;
  if (alert.type === 'outcome') {
    const received = original?.deliveries.find((d) => d.recipient === alert.origin);
    if (!original || !received)
      return {
        kind: 'refuse',
        code: PolicyRefusal.OutcomeNotReceived,
        reason: `${alert.origin} never received alert ${String(alert.answers)}`,
      };
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
  if (alert.type === 'retraction' && alert.retracts) {
    if (original && original.origin !== alert.origin)
      return {
        kind: 'refuse',
        code: PolicyRefusal.RetractionNotOrigin,
        reason: `only ${original.origin} may retract alert ${alert.retracts}`,
      };
    const decision = evaluateAgreements(agreements, alert, candidates, now);
    const allowed: Recipient[] = decision.allowed.map((a) => ({ ...a, viaOriginal: false }));
    // A retraction reaches everyone who received the original, even if the agreement has ended.
    for (const d of original?.deliveries ?? [])
      if (!allowed.some((a) => a.recipient === d.recipient))
        allowed.push({ ...d, viaOriginal: true });
    allowed.sort((a, b) => a.recipient.localeCompare(b.recipient));
    return {
      kind: 'route',
      allowed,
      denied: decision.denied.filter((d) => !allowed.some((a) => a.recipient === d.recipient)),
    };
  }
  if (alert.operation !== undefined) {
    const op = agreements.operations?.find((o) => o.id === alert.operation);
    if (!op)
      return {
        kind: 'refuse',
        code: PolicyRefusal.OperationUnknown,
        reason: `no operation ${alert.operation} in the agreements file`,
      };
    return planOperation(op, alert, candidates, now);
  }
  const decision = evaluateAgreements(agreements, alert, candidates, now);
  return {
    kind: 'route',
    allowed: decision.allowed.map((a) => ({ ...a, viaOriginal: false })),
    denied: decision.denied,
  };
}
