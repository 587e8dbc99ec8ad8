import { iso6346CheckDigit } from '@alert-hub/core';
import type { LocalAgency } from './local-hub.js';
import { asSubmission, sampleRetraction } from './samples.js';
import {
  sampleConsigneeFlagV2,
  sampleSeizureReportV2,
  sampleSuspiciousShipmentV2,
} from './samples-v2.js';

/** The agencies of the demo, along the routes of the large 2019 seizures of pangolin scales and ivory. */
export const AGENCIES: readonly LocalAgency[] = [
  { id: 'SG-NPARKS', name: 'National Parks Board, Singapore' },
  { id: 'VN-CUSTOMS', name: 'General Department of Viet Nam Customs' },
  { id: 'CN-GACC', name: 'General Administration of Customs of China' },
  { id: 'HK-CED', name: 'Customs and Excise Department, Hong Kong, China' },
  { id: 'NG-NCS', name: 'Nigeria Customs Service' },
  { id: 'KE-KWS', name: 'Kenya Wildlife Service' },
  { id: 'US-FWS', name: 'U.S. Fish and Wildlife Service' },
];

/** The sharing agreements the demo router enforces. */
export const AGREEMENTS = {
  agreements: [
    {
      id: 'WEN-ASIA',
      version: 1,
      title: 'Regional wildlife enforcement network, Asia (all alert types)',
      parties: ['SG', 'VN', 'CN', 'HK'],
      alertTypes: ['suspicious-shipment', 'consignee-flag', 'seizure-report', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
    {
      id: 'NG-SG-MOU',
      version: 1,
      title: 'Nigeria Customs Service and Singapore: memorandum of understanding on wildlife crime',
      parties: ['NG-NCS', 'SG-NPARKS'],
      alertTypes: ['suspicious-shipment', 'seizure-report', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
    {
      id: 'AFRICA-ASIA-ROUTES',
      version: 1,
      title:
        'Source and destination countries on the Africa-Asia routes, for shipments that concern them',
      parties: ['KE', 'NG', 'VN', 'CN'],
      alertTypes: ['suspicious-shipment', 'seizure-report', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
      conditions: { routeTouchesRecipient: true },
    },
    {
      id: 'HK-US-CONSIGNEES',
      version: 2,
      title: 'Hong Kong Customs to U.S. Fish and Wildlife Service: flagged consignees',
      parties: ['HK-CED', 'US-FWS'],
      flows: [{ from: ['HK-CED'], to: ['US-FWS'] }],
      alertTypes: ['consignee-flag', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
  ],
  operations: [
    {
      id: 'THUNDERBALL-DEMO',
      version: 1,
      name: 'Operation Thunderball (demo): one month, the source, transit and destination countries',
      // Running now: from yesterday for 30 days, whenever the demo is played.
      period: {
        from: new Date(Date.now() - 86_400_000).toISOString(),
        until: new Date(Date.now() + 30 * 86_400_000).toISOString(),
      },
      members: ['NG', 'VN', 'SG', 'CN', 'HK', 'KE'],
      alertTypes: ['suspicious-shipment', 'seizure-report'],
      maxHandling: 'TLP:AMBER',
    },
  ],
};

/** A container number with its ISO 6346 check digit. */
export function container(ownerAndCategory: string, serial: string): string {
  return `${ownerAndCategory}${serial}${iso6346CheckDigit(ownerAndCategory + serial)}`;
}

/**
 * The alerts of the demo's steps, as the senders post them to their gateways (`npm run demo`
 * plays them; the policy test checks the router and `hubctl route --dry-run` agree on each).
 * Nigeria's flag, Singapore's seizure and Hong Kong's consignee flag are version 2, where they
 * say more (the ivory's count and weight, the container's seal, the flag's review date); Viet
 * Nam's seizure, Kenya's flag and the retraction stay version 1: both travel side by side.
 * `ids` holds the ids the gateways gave the earlier steps' alerts, by name.
 */
export const DEMO_ALERTS = {
  nigeriaFlag: {
    from: 'NG-NCS',
    submission: () => asSubmission(sampleSuspiciousShipmentV2('NG-NCS')),
  },
  singaporeSeizure: {
    from: 'SG-NPARKS',
    submission: (ids: Readonly<Record<string, string | undefined>>) =>
      asSubmission(
        sampleSeizureReportV2('SG-NPARKS', {
          references: [{ id: ids['nigeriaFlag'], relation: 'follows-up' }],
        }),
      ),
  },
  vietNamSeizure: {
    from: 'VN-CUSTOMS',
    submission: () => ({
      type: 'seizure-report',
      version: 1,
      handling: 'TLP:AMBER',
      seizure: {
        date: new Date().toISOString().slice(0, 10),
        location: { country: 'VN', locode: 'VNDAD', place: 'Tien Sa port' },
        commodities: [
          {
            taxon: { scientificName: 'Loxodonta africana', citesAppendix: 'I' },
            product: 'ivory',
            quantity: { value: 9.1, unit: 't' },
            hsCode: '0507.10',
          },
        ],
        concealment: 'inside hollowed logs declared as timber',
        detectionMethod: 'risk-profiling',
        shipment: {
          mode: 'sea',
          containers: [container('MSKU', '907032')],
          route: { origin: 'CDMAT', transit: ['SGSIN'], destination: 'VNDAD' },
          declaredGoods: { description: 'Sawn timber', hsCode: '4407' },
        },
      },
    }),
  },
  hongKongFlag: {
    from: 'HK-CED',
    submission: (ids: Readonly<Record<string, string | undefined>>) =>
      asSubmission(
        sampleConsigneeFlagV2('HK-CED', {
          consignee: {
            kind: 'company',
            name: 'Example Dried Seafood Trading',
            country: 'HK',
            identifiers: [{ scheme: 'company-register', value: 'EXAMPLE-1234567' }],
          },
          relatedAlerts: [ids['singaporeSeizure']],
        }),
      ),
  },
  kenyaFlag: {
    from: 'KE-KWS',
    submission: () => ({
      type: 'consignee-flag',
      version: 1,
      handling: 'TLP:GREEN',
      consignee: { name: '(demo) Mombasa Curios Ltd', country: 'KE' },
      reason: 'intelligence',
    }),
  },
  retraction: {
    from: 'NG-NCS',
    submission: (ids: Readonly<Record<string, string | undefined>>) =>
      asSubmission(
        sampleRetraction('NG-NCS', ids['nigeriaFlag'] ?? '', {
          reason: 'superseded by the Singapore seizure report',
          references: [{ id: ids['singaporeSeizure'], relation: 'relates-to' }],
        }),
      ),
  },
} as const;
