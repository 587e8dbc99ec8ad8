import { countryOf, newAlertId, type Alert } from '@alert-hub/core';

/**
 * One canonical sample of each alert type, used by the unit tests, the cross-service tests, the
 * benchmark and the demo. They follow the large 2019 seizures: a container declared as frozen
 * beef, loaded at Apapa (Lagos), seized in transit at Singapore on its way to Hai Phong with
 * 12.9 t of pangolin scales and 177 kg of ivory. Every sample validates against `schemas/`.
 *
 * `origin` decides the sender and the seizure's country; `now` decides `issuedAt` and the
 * seizure date; `overrides` replaces top-level members.
 */
export interface SampleOptions {
  readonly now?: Date;
  /** Defaults to a new UUIDv7 (of the current time, not of `now`). */
  readonly id?: string;
}

function envelopeFields(type: string, origin: string, handling: string, o: SampleOptions) {
  return {
    id: o.id ?? newAlertId(),
    type,
    version: 1,
    origin,
    issuedAt: (o.now ?? new Date()).toISOString(),
    handling,
  };
}

/** The container of the samples, with its ISO 6346 check digit. */
export const SAMPLE_CONTAINER = 'CSQU3054383';

/** The shipment of the samples: Apapa to Hai Phong through Singapore, declared as frozen beef. */
export function sampleShipment() {
  return {
    mode: 'sea',
    containers: [SAMPLE_CONTAINER],
    vessel: { name: 'MV Example', imo: '9074729' },
    billOfLading: 'NGAPP190301234',
    route: { origin: 'NGAPP', transit: ['SGSIN'], destination: 'VNHPH' },
    declaredGoods: {
      description: 'Frozen beef',
      hsCode: '0202.30',
      grossWeight: { value: 13.4, unit: 't' },
    },
    consignor: { name: 'Example Export Ltd', country: 'NG' },
    consignee: { name: 'Example Trading Co', country: 'VN' },
  };
}

function pangolinTaxon() {
  return { scientificName: 'Manis gigantea', commonName: 'giant pangolin', citesAppendix: 'I' };
}

/**
 * The seizure report: 12.9 t of pangolin scales and 177 kg of ivory found behind cartons of
 * frozen beef at Singapore, about 1.3 KB of JSON. Typed by its members (not as `Alert`) so that
 * a test can spoil one of them; every call returns fresh objects.
 */
export function sampleSeizureReport(
  origin = 'SG-NPARKS',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
) {
  const now = options.now ?? new Date();
  return {
    ...envelopeFields('seizure-report', origin, 'TLP:AMBER', options),
    summary:
      'Container declared as frozen beef; X-ray anomaly; 12.9 t of pangolin scales and 177 kg of cut ivory found behind the cartons.',
    caseReference: 'NP/2019/04/0193',
    seizure: {
      date: now.toISOString().slice(0, 10),
      location: {
        country: countryOf(origin),
        locode: 'SGSIN',
        place: 'Pasir Panjang Scanning Station',
      },
      commodities: [
        {
          taxon: pangolinTaxon(),
          product: 'scales',
          quantity: { value: 12.9, unit: 't' },
          hsCode: '0507.90',
        },
        {
          taxon: {
            scientificName: 'Loxodonta africana',
            commonName: 'African elephant',
            citesAppendix: 'I',
          },
          product: 'ivory',
          quantity: { value: 177, unit: 'kg' },
          hsCode: '0507.10',
        },
      ],
      concealment: 'behind cartons of frozen beef',
      detectionMethod: 'x-ray',
      arrests: 0,
      shipment: sampleShipment(),
    },
    ...overrides,
  };
}

/** The suspicious shipment: the same container, flagged at Apapa before it sailed. */
export function sampleSuspiciousShipment(
  origin = 'NG-NCS',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
): Alert {
  return {
    ...envelopeFields('suspicious-shipment', origin, 'TLP:AMBER', options),
    summary: 'X-ray anomaly behind the first row of cartons; consignor unknown to the beef trade.',
    shipment: sampleShipment(),
    suspectedCommodities: [{ taxon: pangolinTaxon(), product: 'scales' }],
    indicators: ['mis-declaration', 'high-risk-route', 'x-ray-anomaly'],
    requestedAction: 'inspect',
    ...overrides,
  } as unknown as Alert;
}

/** The consignee flag: the consignee behind several such shipments. */
export function sampleConsigneeFlag(
  origin = 'HK-CED',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
): Alert {
  return {
    ...envelopeFields('consignee-flag', origin, 'TLP:AMBER', options),
    consignee: {
      name: 'Example Dried Seafood Trading',
      country: 'HK',
      identifiers: [{ scheme: 'company-register', value: 'EXAMPLE-1234567' }],
    },
    reason: 'linked-network',
    watchCountries: ['HK', 'VN', 'CN', 'US'],
    ...overrides,
  } as unknown as Alert;
}

/** The retraction of `retracts` (an earlier alert of the same origin), withdrawn as superseded. */
export function sampleRetraction(
  origin: string,
  retracts: string,
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
): Alert {
  return {
    ...envelopeFields('retraction', origin, 'TLP:AMBER', options),
    retracts,
    action: 'withdraw',
    reason: 'superseded by the seizure report',
    ...overrides,
  } as unknown as Alert;
}

/**
 * The outcome: what `origin` did with alert `answers` it received, here the seizure it made on
 * it (450 kg of pangolin scales at Hai Phong); pass `{ result: 'arrest', seizure: undefined }`
 * and the like for the other results.
 */
export function sampleOutcome(
  origin: string,
  answers: string,
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
): Alert {
  const now = options.now ?? new Date();
  const alert: Record<string, unknown> = {
    ...envelopeFields('outcome', origin, 'TLP:AMBER', options),
    answers,
    result: 'seizure',
    seizure: {
      date: now.toISOString().slice(0, 10),
      location: { country: countryOf(origin), locode: 'VNHPH', place: 'Hai Phong port' },
      commodities: [
        {
          taxon: { scientificName: 'Manis javanica', commonName: 'Sunda pangolin' },
          product: 'scales',
          quantity: { value: 450, unit: 'kg' },
        },
      ],
    },
    arrests: 2,
    ...overrides,
  };
  for (const k of Object.keys(alert)) if (alert[k] === undefined) delete alert[k];
  return alert as unknown as Alert;
}

/**
 * What a sender posts to its gateway: the sample without `id`, `origin` and `issuedAt`, which
 * the gateway fills in.
 */
export function asSubmission(alert: object): Record<string, unknown> {
  const {
    id: _id,
    origin: _origin,
    issuedAt: _issuedAt,
    ...rest
  } = alert as unknown as Record<string, unknown>;
  return rest;
}
