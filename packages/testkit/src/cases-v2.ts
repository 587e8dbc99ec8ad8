import type { SampleOptions } from './samples.js';
import {
  sampleAirSuspiciousShipmentV2,
  sampleConsigneeFlagV2,
  sampleSeizureReportV2,
} from './samples-v2.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return, @typescript-eslint/no-unsafe-call --
   the cases edit alerts as untyped JSON, as an officer's client would: that is what is under test */
type Json = any;

const OPTS: SampleOptions = {
  now: new Date('2019-04-08T03:15:00Z'),
  id: '0169fb6c-1a80-7000-8000-000000000016',
};

/** A copy of `base` changed by `edit`. */
function edited<T>(base: T, edit: (a: Json) => void): T {
  const copy = structuredClone(base);
  edit(copy);
  return copy;
}

const S = '/seizure';
const SH = '/seizure/shipment';
const C0 = '/seizure/commodities/0';
const C1 = '/seizure/commodities/1';
const v2 = () => sampleSeizureReportV2('SG-NPARKS', {}, OPTS);
const consigneeFlagV2 = () => sampleConsigneeFlagV2('SG-NPARKS', {}, OPTS);
const suspiciousAirV2 = () => sampleAirSuspiciousShipmentV2('KE-KWS', {}, OPTS);

/** One point of issue #16: an alert that passes and one refused at `at` (JSON pointers). */
export interface V2Case {
  readonly point: string;
  readonly valid: unknown;
  readonly invalid: unknown;
  readonly at: string[];
}

/**
 * Every point of issue #16, each with an alert that passes and one that is refused, and where
 * (`ERR_SCHEMA_INVALID`, an issue at each pointer and nowhere else). Issued at 2019-04-08T03:15Z
 * with one fixed id, so that `test/vectors/alerts-v2.json` is reproducible.
 */
export const V2_CASES: readonly V2Case[] = [
  // Too strict in v1
  {
    point: 'a vessel without an IMO number (a dhow) is accepted; a vessel with no identity is not',
    valid: edited(v2(), (a) => (a.seizure.shipment.vessel = { name: 'Al Noor', kind: 'dhow' })),
    invalid: edited(v2(), (a) => (a.seizure.shipment.vessel = { kind: 'dhow' })),
    at: [`${SH}/vessel`],
  },
  {
    point:
      'a commodity without a scientific name is accepted; one with nothing to say what it is is not',
    valid: edited(v2(), (a) => delete a.seizure.commodities[1].taxon),
    invalid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities[0] = { family: 'wildlife', quantities: [{ value: 1, unit: 't' }] }),
    ),
    at: [C0],
  },
  {
    point:
      'a shipment whose destination is unknown keeps its containers; an empty route is refused',
    valid: edited(v2(), (a) => (a.seizure.shipment.route = { portOfLoading: 'NGAPP' })),
    invalid: edited(v2(), (a) => (a.seizure.shipment.route = {})),
    at: [`${SH}/route`],
  },
  {
    point: 'count and weight together; the same unit twice is refused',
    valid: v2(),
    invalid: edited(v2(), (a) =>
      a.seizure.commodities[1].quantities.push({ value: 180, unit: 'kg' }),
    ),
    at: [`${C1}/quantities/2/unit`],
  },
  // Commodity
  {
    point: 'a free-text description',
    valid: edited(v2(), (a) => (a.seizure.commodities[0].description = 'scales in 230 sacks')),
    invalid: edited(v2(), (a) => (a.seizure.commodities[0].description = '')),
    at: [`${C0}/description`],
  },
  {
    // Patterns are ECMA-262 (protocol.md §2.3): `$` matches only at the very end, so a final line
    // feed is refused; Python's `re.search` would let it through (`$` also matches before it).
    point: 'a pattern ends at the very end of the value: a final line feed is refused',
    valid: edited(v2(), (a) => (a.seizure.commodities[0].taxon.scientificName = 'Manis javanica')),
    invalid: edited(
      v2(),
      (a) => (a.seizure.commodities[0].taxon.scientificName = 'Manis javanica\n'),
    ),
    at: [`${C0}/taxon/scientificName`],
  },
  ...[
    'fins',
    'eggs',
    'feathers',
    'teeth',
    'claws',
    'bile',
    'gall-bladder',
    'medicine',
    'derivative',
    'caviar',
    'trophy',
  ].map((product) => ({
    point: `product ${product}`,
    valid: edited(v2(), (a) => (a.seizure.commodities[0].product = product)),
    invalid: edited(v2(), (a) => (a.seizure.commodities[0].product = `${product}s-soup`)),
    at: [`${C0}/product`],
  })),
  ...['m2', 'm', 'head'].map((unit) => ({
    point: `wildlife unit ${unit}`,
    valid: edited(v2(), (a) => (a.seizure.commodities[0].quantities = [{ value: 3, unit }])),
    invalid: edited(
      v2(),
      (a) => (a.seizure.commodities[0].quantities = [{ value: 3, unit: 'stick' }]),
    ),
    at: [`${C0}/quantities/0/unit`],
  })),
  {
    point: 'CITES permit: issuing country, type and the found-fraudulent flag',
    valid: v2(),
    invalid: edited(v2(), (a) => {
      a.seizure.commodities[1].citesPermits[0] = {
        number: 'NG/EX/2019/0042',
        issuingCountry: 'XN',
        type: 'transit',
        foundFraudulent: 'yes',
      };
    }),
    at: [
      `${C1}/citesPermits/0/issuingCountry`,
      `${C1}/citesPermits/0/type`,
      `${C1}/citesPermits/0/foundFraudulent`,
    ],
  },
  {
    point: 'CITES source and purpose codes',
    valid: edited(v2(), (a) =>
      Object.assign(a.seizure.commodities[0], { citesSource: 'I', citesPurpose: 'L' }),
    ),
    invalid: edited(v2(), (a) =>
      Object.assign(a.seizure.commodities[0], { citesSource: 'K', citesPurpose: 'V' }),
    ),
    at: [`${C0}/citesSource`, `${C0}/citesPurpose`],
  },
  // Transport
  {
    point: 'voyage number',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.shipment.voyageNumber = 'voyage 42')),
    at: [`${SH}/voyageNumber`],
  },
  {
    point: 'flight number',
    valid: suspiciousAirV2(),
    invalid: edited(suspiciousAirV2(), (a) => (a.shipment.flightNumber = 'Ethiopian 3608')),
    at: ['/shipment/flightNumber'],
  },
  {
    point: 'master and house bills of lading',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.shipment.houseBillsOfLading = ['HBL1', 'HBL1'])),
    at: [`${SH}/houseBillsOfLading`],
  },
  {
    point: 'master air waybill with its check digit, house air waybills',
    valid: suspiciousAirV2(),
    invalid: edited(suspiciousAirV2(), (a) => (a.shipment.masterAirWaybill = '618-12345676')),
    at: ['/shipment/masterAirWaybill'],
  },
  {
    point: 'seal numbers on a container and on the shipment',
    valid: edited(v2(), (a) => (a.seizure.shipment.seals = ['TR-99812'])),
    invalid: edited(v2(), (a) => (a.seizure.shipment.containers[0].seals = ['seal #1'])),
    at: [`${SH}/containers/0/seals/0`],
  },
  {
    point: 'package count',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.shipment.packageCount = 0)),
    at: [`${SH}/packageCount`],
  },
  {
    point: 'declaration number (MRN)',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.shipment.declarationNumber = 'MRN 19 SG')),
    at: [`${SH}/declarationNumber`],
  },
  {
    point: 'postal item id (UPU S10) with its check digit',
    valid: edited(
      v2(),
      (a) => (a.seizure.shipment = { mode: 'post', postalItems: ['RR473124829GB'] }),
    ),
    invalid: edited(
      v2(),
      (a) => (a.seizure.shipment = { mode: 'post', postalItems: ['RR473124828GB'] }),
    ),
    at: [`${SH}/postalItems/0`],
  },
  {
    point: 'courier tracking number',
    valid: edited(
      v2(),
      (a) =>
        (a.seizure.shipment = { mode: 'courier', courierTrackingNumbers: ['1Z999AA10123456784'] }),
    ),
    invalid: edited(
      v2(),
      (a) => (a.seizure.shipment = { mode: 'courier', courierTrackingNumbers: ['1Z 999'] }),
    ),
    at: [`${SH}/courierTrackingNumbers/0`],
  },
  {
    point: 'vehicle plate for road',
    valid: edited(
      v2(),
      (a) =>
        (a.seizure.shipment = {
          mode: 'road',
          vehicles: [{ plate: 'KDA 123A', country: 'KE', role: 'tractor' }],
        }),
    ),
    invalid: edited(
      v2(),
      (a) =>
        (a.seizure.shipment = { mode: 'road', vehicles: [{ plate: 'kda/123a', country: 'KE' }] }),
    ),
    at: [`${SH}/vehicles/0/plate`],
  },
  {
    point: 'vessel MMSI (ship station MID), call sign and flag state',
    valid: v2(),
    invalid: edited(v2(), (a) =>
      Object.assign(a.seizure.shipment.vessel, {
        mmsi: '111563123',
        callSign: '9v ab7',
        flagState: 'XS',
      }),
    ),
    at: [`${SH}/vessel/mmsi`, `${SH}/vessel/callSign`, `${SH}/vessel/flagState`],
  },
  {
    point:
      'the transport mode agrees with the identifiers: an air shipment with a vessel IMO and a B/L is refused',
    valid: suspiciousAirV2(),
    invalid: edited(suspiciousAirV2(), (a) => {
      a.shipment.vessel = { imo: '9074729' };
      a.shipment.masterBillOfLading = 'MEDUNG123456';
    }),
    at: ['/shipment/vessel', '/shipment/masterBillOfLading'],
  },
  {
    point: 'a sea shipment names no postal items or flight',
    valid: v2(),
    invalid: edited(v2(), (a) =>
      Object.assign(a.seizure.shipment, { flightNumber: 'SQ321', postalItems: ['RR473124829GB'] }),
    ),
    at: [`${SH}/flightNumber`, `${SH}/postalItems`],
  },
  // Route
  {
    point:
      'route: place of receipt, port of loading, port of discharge, place of delivery, each optional',
    valid: edited(
      v2(),
      (a) => (a.seizure.shipment.route = { placeOfDelivery: 'VNHAN', destinationCountry: 'VN' }),
    ),
    invalid: edited(
      v2(),
      (a) => (a.seizure.shipment.route = { placeOfReceipt: 'XXLOS', portOfDischarge: 'VN-HPH' }),
    ),
    at: [`${SH}/route/placeOfReceipt`, `${SH}/route/portOfDischarge`],
  },
  // Parties
  {
    point: 'a person with aliases, nationality, date of birth and contact details',
    valid: consigneeFlagV2(),
    invalid: edited(consigneeFlagV2(), (a) =>
      Object.assign(a.consignee, {
        nationality: 'Vietnamese',
        dateOfBirth: '29/02/1980',
        contact: {},
      }),
    ),
    at: ['/consignee/nationality', '/consignee/dateOfBirth', '/consignee/contact'],
  },
  {
    point: 'a company has no nationality or date of birth',
    valid: edited(
      consigneeFlagV2(),
      (a) => (a.consignee = { kind: 'company', name: 'Hai Phong Trading Co', country: 'VN' }),
    ),
    invalid: edited(consigneeFlagV2(), (a) => (a.consignee.kind = 'company')),
    at: ['/consignee/nationality', '/consignee/dateOfBirth'],
  },
  {
    point: 'notify party, freight forwarder and customs broker',
    valid: edited(v2(), (a) =>
      Object.assign(a.seizure.shipment, {
        notifyParty: { name: 'Notify Ltd' },
        customsBroker: { kind: 'company', name: 'Broker Pte' },
      }),
    ),
    invalid: edited(v2(), (a) =>
      Object.assign(a.seizure.shipment, {
        notifyParty: { country: 'VN' },
        customsBroker: { name: 'Broker Pte', kind: 'agent' },
      }),
    ),
    at: [`${SH}/notifyParty/name`, `${SH}/customsBroker/kind`],
  },
  {
    point: 'a date of birth after the alert was issued is refused',
    valid: consigneeFlagV2(),
    invalid: edited(consigneeFlagV2(), (a) => (a.consignee.dateOfBirth = '2019-05-01')),
    at: ['/consignee/dateOfBirth'],
  },
  // Seizure
  {
    point: 'declared and estimated value with an ISO 4217 currency',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.estimatedValue = { amount: 1, currency: 'USX' })),
    at: [`${S}/estimatedValue/currency`],
  },
  {
    point: 'type of location',
    valid: edited(v2(), (a) => (a.seizure.location.type = 'mail-centre')),
    invalid: edited(v2(), (a) => (a.seizure.location.type = 'harbour')),
    at: [`${S}/location/type`],
  },
  {
    point: "offenders' nationalities",
    valid: edited(v2(), (a) => (a.seizure.offenderNationalities = ['NG', 'VN'])),
    invalid: edited(v2(), (a) => (a.seizure.offenderNationalities = ['Nigerian'])),
    at: [`${S}/offenderNationalities/0`],
  },
  // Alert
  {
    point: 'a point of contact reachable by phone or e-mail',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.pointOfContact = { unit: 'Wildlife Enforcement Unit' })),
    at: ['/pointOfContact'],
  },
  {
    point: 'no seizure dated after the alert was issued',
    valid: edited(v2(), (a) => {
      // 10:00 UTC on the 8th is already the 9th at UTC+14 (Kiribati)
      a.issuedAt = '2019-04-08T10:00:00Z';
      a.seizure.date = '2019-04-09';
    }),
    invalid: edited(v2(), (a) => (a.seizure.date = '2019-04-10')),
    at: [`${S}/date`],
  },
  {
    point: 'expiresAt after issuedAt',
    valid: edited(v2(), (a) => (a.expiresAt = '2019-04-08T03:15:01Z')),
    invalid: edited(v2(), (a) => (a.expiresAt = '2019-04-08T05:15:00+02:00')),
    at: ['/expiresAt'],
  },
  {
    point: 'a consignee flag names personal data: it needs a review or an expiry date',
    valid: edited(consigneeFlagV2(), (a) => {
      delete a.reviewBy;
      a.expiresAt = '2020-04-08T00:00:00Z';
    }),
    invalid: edited(consigneeFlagV2(), (a) => delete a.reviewBy),
    at: [''],
  },
  {
    point: 'reviewBy after issuedAt',
    valid: consigneeFlagV2(),
    invalid: edited(consigneeFlagV2(), (a) => (a.reviewBy = '2019-01-01T00:00:00Z')),
    at: ['/reviewBy'],
  },
  // Commodity families beyond wildlife
  {
    point: 'drugs: a substance in kilograms or tablets; no head of cocaine',
    valid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          {
            family: 'drugs',
            substance: 'captagon',
            quantities: [
              { value: 84000, unit: 'tablet' },
              { value: 14, unit: 'kg' },
            ],
          },
        ]),
    ),
    invalid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          { family: 'drugs', substance: 'cocaine', quantities: [{ value: 3, unit: 'head' }] },
        ]),
    ),
    at: [`${C0}/quantities/0/unit`],
  },
  {
    point: 'tobacco: cigarettes in sticks; no square metres',
    valid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          {
            family: 'tobacco',
            product: 'cigarettes',
            brand: 'Example Gold',
            quantities: [{ value: 8000000, unit: 'stick' }],
          },
        ]),
    ),
    invalid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          { family: 'tobacco', product: 'cigarettes', quantities: [{ value: 2, unit: 'm2' }] },
        ]),
    ),
    at: [`${C0}/quantities/0/unit`],
  },
  {
    point: 'cash: an amount in a currency, not a weight',
    valid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          { family: 'cash', instrument: 'banknotes', amount: { amount: 250000, currency: 'EUR' } },
        ]),
    ),
    invalid: edited(
      v2(),
      (a) =>
        (a.seizure.commodities = [
          {
            family: 'cash',
            instrument: 'banknotes',
            amount: { amount: 250000, currency: 'EUR' },
            quantities: [{ value: 5, unit: 'kg' }],
          },
        ]),
    ),
    at: [`${C0}/quantities`],
  },
  {
    point: 'a commodity family outside wildlife, drugs, tobacco and cash is refused',
    valid: v2(),
    invalid: edited(v2(), (a) => (a.seizure.commodities[0].family = 'weapons')),
    at: [`${C0}/family`],
  },
  {
    point: 'a seized commodity says how much',
    valid: v2(),
    invalid: edited(v2(), (a) => delete a.seizure.commodities[0].quantities),
    at: [C0],
  },
];
