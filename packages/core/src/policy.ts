import type { Alert } from './alert.js';
import { evaluateAgreements, type AgreementSet, type Allowed, type Denied } from './agreements.js';

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
  RetractionNotOrigin: 'ERR_RETRACTION_NOT_ORIGIN',
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
 * would no longer send it (so nobody keeps acting on a withdrawn alert). The router and
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
  for (const d of original?.deliveries ?? []) {
    if (!allowed.some((a) => a.recipient === d.recipient))
      allowed.push({ ...d, viaOriginal: true });
  }
  return {
    kind: 'route',
    allowed: allowed.sort((a, b) => a.recipient.localeCompare(b.recipient)),
    denied: decision.denied.filter((d) => !allowed.some((a) => a.recipient === d.recipient)),
  };
}
