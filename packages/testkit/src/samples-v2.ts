/**
 * One canonical sample of each version-2 alert type (retraction has only version 1), as plain
 * JSON that tests edit freely. Each is valid as it stands.
 */
import { newAlertId } from '@alert-hub/core';

/**
 * A complete version-2 seizure report: the Singapore 2019 case, with everything an officer
 * records (count and weight of the ivory, the container and its seals, the B/L, the values).
 */
export function seizureReportV2(origin = 'SG-NPARKS') {
  return {
    id: newAlertId(),
    type: 'seizure-report',
    version: 2,
    origin,
    issuedAt: '2019-04-08T03:15:00Z',
    handling: 'TLP:AMBER',
    pointOfContact: {
      name: 'Duty officer',
      unit: 'Wildlife Enforcement Unit',
      email: 'wildlife.enforcement@example.org',
      phone: '+6562121234',
      languages: ['en'],
    },
    seizure: {
      date: '2019-04-08',
      location: { country: 'SG', locode: 'SGSIN', type: 'seaport', place: 'Pasir Panjang' },
      commodities: [
        {
          family: 'wildlife',
          taxon: { scientificName: 'Manis gigantea', citesAppendix: 'I' },
          product: 'scales',
          quantities: [{ value: 12.9, unit: 't' }],
          hsCode: '0507.90',
          citesSource: 'W',
          citesPurpose: 'T',
        },
        {
          family: 'wildlife',
          taxon: { scientificName: 'Loxodonta africana', citesAppendix: 'I' },
          product: 'ivory',
          description: 'cut tusks',
          quantities: [
            { value: 30, unit: 'piece' },
            { value: 177, unit: 'kg' },
          ],
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
      detectionMethod: 'x-ray',
      arrests: 0,
      shipment: {
        mode: 'sea',
        containers: [{ number: 'CSQU3054383', seals: ['ML-1234567'] }],
        vessel: {
          name: 'MV Example',
          imo: '9074729',
          mmsi: '563012345',
          callSign: '9VAB7',
          flagState: 'SG',
        },
        voyageNumber: '0042E',
        masterBillOfLading: 'MEDUNG123456',
        houseBillsOfLading: ['APP-HBL-0099'],
        packageCount: 1,
        declarationNumber: '19SG000123456789',
        route: {
          placeOfReceipt: 'NGLOS',
          portOfLoading: 'NGAPP',
          transit: ['SGSIN'],
          portOfDischarge: 'VNHPH',
        },
        declaredGoods: {
          description: 'Frozen beef',
          hsCode: '0202.30',
          grossWeight: { value: 26, unit: 't' },
        },
        consignor: { kind: 'company', name: 'Example Export Ltd', country: 'NG' },
        freightForwarder: { kind: 'company', name: 'Example Forwarding', country: 'NG' },
      },
    },
  };
}

/** A version-2 consignee flag with the review date that personal data requires. */
export function consigneeFlagV2(origin = 'SG-NPARKS') {
  return {
    id: newAlertId(),
    type: 'consignee-flag',
    version: 2,
    origin,
    issuedAt: '2019-04-08T03:15:00Z',
    handling: 'TLP:AMBER',
    reviewBy: '2019-10-08T00:00:00Z',
    consignee: {
      kind: 'person',
      name: 'Nguyen Van A',
      aliases: ['Anh Nguyen'],
      nationality: 'VN',
      dateOfBirth: '1980-02-29',
      country: 'VN',
      contact: { phone: '+84912345678' },
    },
    reason: 'prior-seizure',
    watchCountries: ['VN', 'LA'],
  };
}

/** A version-2 suspicious air shipment: no vessel, an air waybill and a flight. */
export function suspiciousAirV2(origin = 'KE-KWS') {
  return {
    id: newAlertId(),
    type: 'suspicious-shipment',
    version: 2,
    origin,
    issuedAt: '2019-04-08T03:15:00Z',
    handling: 'TLP:GREEN',
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
  };
}
