import { countryOf, newAlertId } from '@alert-hub/core';
import { SAMPLE_CONTAINER, type SampleOptions } from './samples.js';

/**
 * One canonical sample of each version-2 alert type (retraction has only version 1), on the
 * story of the v1 samples: the container from Apapa to Hai Phong, seized at Singapore. Version 2
 * lets them say what version 1 could not: 30 tusks and 177 kg of ivory, the container's seal,
 * the bill of lading, values, a point of contact, a review date for the flag.
 *
 * Plain JSON typed by its members, so that tests can edit any of it; every call returns fresh
 * objects, each valid as it stands. `now` decides `issuedAt`, the seizure date and the review date.
 */

/** The seal on the sample container. */
export const SAMPLE_SEAL = 'NG-CS-0412775';

const DAY_MS = 86_400_000;

function envelopeV2(type: string, origin: string, handling: string, o: SampleOptions) {
  return {
    id: o.id ?? newAlertId(),
    type,
    version: 2,
    origin,
    issuedAt: (o.now ?? new Date()).toISOString(),
    handling,
  };
}

/** The sample shipment in version 2: the container with its seal, the vessel, the B/L. */
export function sampleShipmentV2() {
  return {
    mode: 'sea',
    containers: [{ number: SAMPLE_CONTAINER, seals: [SAMPLE_SEAL] }],
    vessel: {
      name: 'MV Example',
      imo: '9074729',
      mmsi: '563012345',
      callSign: '9VAB7',
      flagState: 'SG',
    },
    voyageNumber: '0042E',
    masterBillOfLading: 'NGAPP190301234',
    houseBillsOfLading: ['APP-HBL-0099'],
    packageCount: 1,
    declarationNumber: '19NG000123456789',
    route: {
      placeOfReceipt: 'NGLOS',
      portOfLoading: 'NGAPP',
      transit: ['SGSIN'],
      portOfDischarge: 'VNHPH',
    },
    declaredGoods: {
      description: 'Frozen beef',
      hsCode: '0202.30',
      grossWeight: { value: 13.4, unit: 't' },
      value: { amount: 45000, currency: 'USD' },
    },
    consignor: { kind: 'company', name: 'Example Export Ltd', country: 'NG' },
    consignee: { kind: 'company', name: 'Example Trading Co', country: 'VN' },
    freightForwarder: { kind: 'company', name: 'Example Forwarding', country: 'NG' },
  };
}

function pangolinScalesV2() {
  return {
    family: 'wildlife',
    taxon: { scientificName: 'Manis gigantea', commonName: 'giant pangolin', citesAppendix: 'I' },
    product: 'scales',
  };
}

/** The seizure report in version 2: count and weight of the ivory, values, point of contact. */
export function sampleSeizureReportV2(
  origin = 'SG-NPARKS',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
) {
  const now = options.now ?? new Date();
  return {
    ...envelopeV2('seizure-report', origin, 'TLP:AMBER', options),
    summary:
      'Container declared as frozen beef; X-ray anomaly; 12.9 t of pangolin scales and 30 cut tusks (177 kg) found behind the cartons.',
    caseReference: 'NP/2019/04/0193',
    pointOfContact: {
      name: 'Duty officer',
      unit: 'Wildlife Enforcement Unit',
      email: 'wildlife.enforcement@example.org',
      phone: '+6562121234',
      languages: ['en'],
    },
    seizure: {
      date: now.toISOString().slice(0, 10),
      location: {
        country: countryOf(origin),
        locode: 'SGSIN',
        type: 'seaport',
        place: 'Pasir Panjang Scanning Station',
      },
      commodities: [
        {
          ...pangolinScalesV2(),
          description: 'scales in 230 sacks',
          quantities: [{ value: 12.9, unit: 't' }],
          hsCode: '0507.90',
          citesSource: 'W',
          citesPurpose: 'T',
        },
        {
          family: 'wildlife',
          taxon: {
            scientificName: 'Loxodonta africana',
            commonName: 'African elephant',
            citesAppendix: 'I',
          },
          product: 'ivory',
          description: 'cut tusks',
          quantities: [
            { value: 30, unit: 'piece' },
            { value: 177, unit: 'kg' },
          ],
          hsCode: '0507.10',
          citesPermits: [
            {
              number: 'NG/EX/2019/0042',
              issuingCountry: 'NG',
              type: 'export',
              foundFraudulent: true,
            },
          ],
        },
      ],
      declaredValue: { amount: 45000, currency: 'USD' },
      estimatedValue: { amount: 48000000, currency: 'SGD' },
      concealment: 'behind cartons of frozen beef',
      detectionMethod: 'x-ray',
      arrests: 0,
      shipment: sampleShipmentV2(),
    },
    ...overrides,
  };
}

/** The suspicious shipment in version 2: the same container and seal, flagged at Apapa. */
export function sampleSuspiciousShipmentV2(
  origin = 'NG-NCS',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
) {
  return {
    ...envelopeV2('suspicious-shipment', origin, 'TLP:AMBER', options),
    summary: 'X-ray anomaly behind the first row of cartons; consignor unknown to the beef trade.',
    pointOfContact: {
      unit: 'Apapa Command, Risk Management Unit',
      email: 'apapa.risk@example.org',
      languages: ['en'],
    },
    shipment: sampleShipmentV2(),
    suspectedCommodities: [pangolinScalesV2()],
    indicators: ['mis-declaration', 'high-risk-route', 'x-ray-anomaly'],
    requestedAction: 'inspect',
    ...overrides,
  };
}

/**
 * An air variant of the suspicious shipment, for the tests of transport modes: an air waybill
 * and a flight, no vessel; the species unknown, only described.
 */
export function sampleAirSuspiciousShipmentV2(
  origin = 'KE-KWS',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
) {
  return {
    ...envelopeV2('suspicious-shipment', origin, 'TLP:GREEN', options),
    shipment: {
      mode: 'air',
      masterAirWaybill: '618-12345675',
      houseAirWaybills: ['NBO-778812'],
      flightNumber: 'ET3608',
      route: { portOfLoading: 'KENBO', portOfDischarge: 'VNSGN' },
      packageCount: 12,
    },
    suspectedCommodities: [
      { family: 'wildlife', description: 'Declared as "avocado"; dense masses on X-ray' },
    ],
    indicators: ['x-ray-anomaly'],
    requestedAction: 'inspect',
    ...overrides,
  };
}

/**
 * The consignee flag in version 2: a person, with what officers record about one, and the
 * review date personal data requires (183 days after `now`).
 */
export function sampleConsigneeFlagV2(
  origin = 'HK-CED',
  overrides: Record<string, unknown> = {},
  options: SampleOptions = {},
) {
  const now = options.now ?? new Date();
  return {
    ...envelopeV2('consignee-flag', origin, 'TLP:AMBER', options),
    reviewBy: new Date(now.getTime() + 183 * DAY_MS).toISOString(),
    consignee: {
      kind: 'person',
      name: 'Example Person',
      aliases: ['E. Person'],
      nationality: 'VN',
      dateOfBirth: '1980-02-29',
      country: 'HK',
      contact: { phone: '+85221234567' },
      identifiers: [{ scheme: 'passport', value: 'X0000000', issuingCountry: 'VN' }],
    },
    reason: 'linked-network',
    watchCountries: ['HK', 'VN', 'CN', 'US'],
    ...overrides,
  };
}
