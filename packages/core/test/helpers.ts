import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  createSchemaRegistry,
  createTrustStore,
  generateSigningJwk,
  importSigningKey,
  type JwksDocument,
  type SchemaDocument,
  type SigningAlgorithm,
  type SigningKey,
} from '@alert-hub/core';
import { sampleSeizureReport } from '@alert-hub/testkit/samples';
import {
  sampleAirSuspiciousShipmentV2,
  sampleConsigneeFlagV2,
  sampleSeizureReportV2,
} from '@alert-hub/testkit/samples-v2';

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

/** The canonical seizure report from `origin`, issued 2019-04-08T03:15:00Z, with overrides. */
export function seizureReport(origin = 'SG-NPARKS', overrides: Record<string, unknown> = {}) {
  return sampleSeizureReport(origin, overrides, { now: new Date('2019-04-08T03:15:00Z') });
}

const T0 = new Date('2019-04-08T03:15:00Z');

/** The canonical v2 seizure report from `origin`, issued 2019-04-08T03:15:00Z. */
export function seizureReportV2(origin = 'SG-NPARKS') {
  return sampleSeizureReportV2(origin, {}, { now: T0 });
}

/** The canonical v2 consignee flag (a person), issued 2019-04-08T03:15:00Z, review 2019-10-08. */
export function consigneeFlagV2(origin = 'SG-NPARKS') {
  return sampleConsigneeFlagV2(origin, {}, { now: T0 });
}

/** The air variant of the v2 suspicious shipment, issued 2019-04-08T03:15:00Z. */
export function suspiciousAirV2(origin = 'KE-KWS') {
  return sampleAirSuspiciousShipmentV2(origin, {}, { now: T0 });
}
