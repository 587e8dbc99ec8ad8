/**
 * The alert as the domain sees it. The JSON Schemas in `schemas/` are the authority on shape;
 * these types name only what the hub's own code reads.
 */

/** Alert types the hub carries. */
export const AlertType = {
  SuspiciousShipment: 'suspicious-shipment',
  ConsigneeFlag: 'consignee-flag',
  SeizureReport: 'seizure-report',
  Retraction: 'retraction',
  Outcome: 'outcome',
} as const;
export type AlertType = (typeof AlertType)[keyof typeof AlertType];

/** What a partner did with an alert (an `outcome`'s `result`). */
export const OUTCOME_RESULTS = [
  'seizure',
  'arrest',
  'no-action',
  'false-positive',
  'under-investigation',
] as const;
export type OutcomeResult = (typeof OUTCOME_RESULTS)[number];

/** Traffic Light Protocol 2.0 labels, from least to most restricted. */
export const HANDLING_CODES = [
  'TLP:CLEAR',
  'TLP:GREEN',
  'TLP:AMBER',
  'TLP:AMBER+STRICT',
  'TLP:RED',
] as const;
export type HandlingCode = (typeof HANDLING_CODES)[number];

/** Rank of a handling code: higher is more restricted; -1 when unknown. */
export function handlingRank(code: string): number {
  return (HANDLING_CODES as readonly string[]).indexOf(code);
}

/** An agency id: ISO 3166-1 alpha-2 country, hyphen, agency code (`SG-NPARKS`). */
export type AgencyId = string;

/** The country of an agency id. */
export function countryOf(agency: AgencyId): string {
  return agency.slice(0, 2);
}

/** Members every alert has. */
export interface AlertBase {
  readonly id: string;
  readonly type: string;
  readonly version: number;
  readonly origin: AgencyId;
  readonly issuedAt: string;
  readonly handling: HandlingCode;
  readonly expiresAt?: string;
  readonly references?: readonly { id: string; relation: string }[];
  readonly summary?: string;
  readonly caseReference?: string;
  /** The operation (agreements file, `operations`) the alert belongs to. */
  readonly operation?: string;
}

/** A route: v1 requires `origin` and `destination`; in v2 every place is optional. */
interface Route {
  readonly origin?: string;
  readonly transit?: readonly string[];
  readonly destination?: string;
  readonly placeOfReceipt?: string;
  readonly portOfLoading?: string;
  readonly portOfDischarge?: string;
  readonly placeOfDelivery?: string;
  readonly originCountry?: string;
  readonly destinationCountry?: string;
}

interface Party {
  readonly country?: string;
}

interface Shipment {
  readonly route?: Route;
  readonly consignor?: Party;
  readonly consignee?: Party;
  readonly notifyParty?: Party;
  readonly freightForwarder?: Party;
  readonly customsBroker?: Party;
  readonly carrier?: Party;
}

/** A validated alert: the base members plus the type's own (see the schemas). */
export type Alert = AlertBase & {
  readonly shipment?: Shipment;
  readonly seizure?: { location: { country: string; locode?: string }; shipment?: Shipment };
  readonly consignee?: Party;
  readonly watchCountries?: readonly string[];
  readonly retracts?: string;
  readonly action?: 'withdraw' | 'correct';
  readonly correctedBy?: string;
  readonly reason?: string;
  /** An outcome: the alert it answers, and what was done. */
  readonly answers?: string;
  /** An outcome of version 2: the origin of the alert it answers (needed when the id came from several). */
  readonly answersOrigin?: string;
  readonly result?: OutcomeResult;
  readonly reviewBy?: string;
  readonly [member: string]: unknown;
};

/**
 * Countries an alert concerns: every country on its route (UN/LOCODEs' country part, and in v2
 * the route's countries), of the parties named and of the place of seizure, plus any watch list.
 * Agreements with the condition `routeTouchesRecipient` use it.
 */
export function countriesTouched(alert: Alert): Set<string> {
  const out = new Set<string>();
  const addPlace = (locode: string | undefined) => {
    if (locode) out.add(locode.slice(0, 2));
  };
  const addParty = (p: Party | undefined) => {
    if (p?.country) out.add(p.country);
  };
  const addShipment = (s: Shipment | undefined) => {
    if (!s) return;
    const r = s.route;
    if (r) {
      for (const place of [
        r.origin,
        r.destination,
        r.placeOfReceipt,
        r.portOfLoading,
        r.portOfDischarge,
        r.placeOfDelivery,
        ...(r.transit ?? []),
      ])
        addPlace(place);
      if (r.originCountry) out.add(r.originCountry);
      if (r.destinationCountry) out.add(r.destinationCountry);
    }
    for (const p of [
      s.consignor,
      s.consignee,
      s.notifyParty,
      s.freightForwarder,
      s.customsBroker,
      s.carrier,
    ])
      addParty(p);
  };
  addShipment(alert.shipment);
  if (alert.seizure) {
    out.add(alert.seizure.location.country);
    addPlace(alert.seizure.location.locode);
    addShipment(alert.seizure.shipment);
  }
  addParty(alert.consignee);
  for (const c of alert.watchCountries ?? []) out.add(c);
  return out;
}
