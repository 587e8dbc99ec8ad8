import { iso6346CheckDigit, type LocalAgency } from './deps.js';

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
};

/** A container number with its ISO 6346 check digit. */
export function container(ownerAndCategory: string, serial: string): string {
  return `${ownerAndCategory}${serial}${iso6346CheckDigit(ownerAndCategory + serial)}`;
}
