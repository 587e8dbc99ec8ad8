import type { Alert } from './alert.js';
import { handlingRank } from './alert.js';
import { ErrorCode } from './errors.js';
import {
  DenyReason,
  evaluateAgreements,
  type AgreementSet,
  type Allowed,
  type Denied,
} from './agreements.js';

/**
 * What the hub already did with the alert a retraction retracts: who sent it, and who received
 * it under which agreement. The router reads it from its own state; `hubctl route --dry-run`
 * takes it as a file.
 */
export interface PriorRouting {
  readonly origin: string;
  readonly deliveries: readonly Allowed[];
}

/** A recipient the alert goes to; `viaOriginal` when only its receipt of the original sends it. */
export interface RoutedTo extends Allowed {
  readonly viaOriginal: boolean;
}

/** Code of the one refusal the policy itself makes. */
export const PolicyRefusal = {
  RetractionNotOrigin: ErrorCode.RetractionNotOrigin,
} as const;
export type PolicyRefusal = (typeof PolicyRefusal)[keyof typeof PolicyRefusal];

/** The routing decision for one alert of any type: where it goes and why not elsewhere, or a refusal. */
export type RouteDecision =
  | {
      readonly kind: 'route';
      readonly allowed: readonly RoutedTo[];
      readonly denied: readonly Denied[];
    }
  | { readonly kind: 'refuse'; readonly code: PolicyRefusal; readonly reason: string };

/** What the routing decision depends on, and nothing else. */
export interface RouteInput {
  readonly agreements: AgreementSet;
  readonly alert: Alert;
  /** Every agency that could receive it (the trust store's agencies). */
  readonly candidates: readonly string[];
  readonly now: Date;
  /** For a retraction: what happened to the alert it retracts, when the hub routed that one. */
  readonly original?: PriorRouting | undefined;
}

/** True when `retraction` may retract an alert from `original`: only the origin of an alert may. */
export function mayRetract(
  retraction: { readonly origin: string },
  original: { readonly origin: string },
): boolean {
  return retraction.origin === original.origin;
}

/**
 * The hub's routing policy, the one place it is written. The agreements decide (deny unless
 * allowed, see `evaluateAgreements`); a retraction is refused unless it comes from the origin of
 * the alert it retracts, and reaches everyone who received that alert even where the agreements
 * would no longer send it (so nobody keeps acting on a withdrawn alert), but never above the
 * handling ceiling of the agreement that recipient received the original under: there it is
 * denied (`DENY_HANDLING`), and the origin sends a minimal withdrawal notice within the ceiling. The router and
 * `hubctl route --dry-run` both call it; it is pure.
 */
export function decideRoute(input: RouteInput): RouteDecision {
  const { alert, original } = input;
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
  const overCeiling: Denied[] = [];
  for (const d of original?.deliveries ?? []) {
    if (allowed.some((a) => a.recipient === d.recipient)) continue;
    // Every message obeys the recipient's ceiling, a retraction too: the ceiling of the
    // agreement the original went under (its latest version, or the lowest label when it is gone).
    const ceiling = ceilingOf(input.agreements, d.agreement.id);
    if (handlingRank(alert.handling) > handlingRank(ceiling)) {
      overCeiling.push({
        recipient: d.recipient,
        reason: DenyReason.Handling,
        detail: `retraction ${alert.handling} is above ${ceiling} of ${d.agreement.id}, under which ${d.recipient} received the original: send a withdrawal notice labelled ${ceiling} or lower`,
      });
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
          !overCeiling.some((o) => o.recipient === d.recipient),
      ),
      ...overCeiling,
    ],
  };
}

/** The lowest handling label: the ceiling of a delivery whose agreement no longer exists. */
const LOWEST_HANDLING = 'TLP:CLEAR';

/** The handling ceiling of agreement `id` in its latest version in `set`. */
function ceilingOf(set: AgreementSet, id: string): string {
  let best: { version: number; maxHandling: string } | undefined;
  for (const a of set.agreements) if (a.id === id && (!best || a.version > best.version)) best = a;
  return best?.maxHandling ?? LOWEST_HANDLING;
}
