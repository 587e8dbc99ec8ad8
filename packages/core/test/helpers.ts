import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createSchemaRegistry,
  createTrustStore,
  generateSigningJwk,
  importSigningKey,
  newAlertId,
  type JwksDocument,
  type SchemaDocument,
  type SigningAlgorithm,
  type SigningKey,
} from '@alert-hub/core';

const schemasDir = fileURLToPath(new URL('../../../schemas/', import.meta.url));

/** The repository's schemas, as the services load them. */
export function loadRepoSchemas(): SchemaDocument[] {
  return readdirSync(schemasDir)
    .filter((f) => f.endsWith('.schema.json'))
    .map((f) => JSON.parse(readFileSync(schemasDir + f, 'utf8')) as SchemaDocument);
}

export const registry = createSchemaRegistry(loadRepoSchemas());

/** A fresh key for `principal`, with its public JWKS document. */
export function makeKey(
  principal: string,
  role: 'agency' | 'router' = 'agency',
  alg: SigningAlgorithm = 'EdDSA',
  validity: { notBefore?: string; notAfter?: string } = {},
): { key: SigningKey; jwks: JwksDocument } {
  const { privateJwk, publicJwk } = generateSigningJwk(alg, validity);
  return {
    key: importSigningKey(privateJwk, principal),
    jwks: { principal, role, keys: [publicJwk] },
  };
}

export function trustOf(docs: JwksDocument[], revoked: unknown[] = []) {
  return createTrustStore({
    jwks: docs.map((d) => ({ source: d.principal, document: d })),
    revocations: { source: 'revoked', document: { revoked } },
    registry,
  });
}

/** A valid seizure report from `origin`, with overrides. */
export function seizureReport(origin = 'SG-NPARKS', overrides: Record<string, unknown> = {}) {
  return {
    id: newAlertId(),
    type: 'seizure-report',
    version: 1,
    origin,
    issuedAt: '2019-04-08T03:15:00Z',
    handling: 'TLP:AMBER',
    summary:
      '12.9 t of pangolin scales and 177 kg of cut ivory in a container declared as frozen beef.',
    seizure: {
      date: '2019-04-08',
      location: { country: 'SG', locode: 'SGSIN', place: 'Pasir Panjang Scanning Station' },
      commodities: [
        {
          taxon: {
            scientificName: 'Manis gigantea',
            commonName: 'giant pangolin',
            citesAppendix: 'I',
          },
          product: 'scales',
          quantity: { value: 12.9, unit: 't' },
          hsCode: '0507.90',
        },
        {
          taxon: { scientificName: 'Loxodonta africana', citesAppendix: 'I' },
          product: 'ivory',
          quantity: { value: 177, unit: 'kg' },
        },
      ],
      detectionMethod: 'x-ray',
      shipment: {
        mode: 'sea',
        containers: ['CSQU3054383'],
        vessel: { name: 'MV Example', imo: '9074729' },
        route: { origin: 'NGAPP', transit: ['SGSIN'], destination: 'VNHPH' },
        declaredGoods: { description: 'Frozen beef', hsCode: '0202.30' },
      },
    },
    ...overrides,
  };
}
