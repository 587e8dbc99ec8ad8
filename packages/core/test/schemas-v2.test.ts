import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@alert-hub/core';
import { V2_CASES } from '@alert-hub/testkit/cases-v2';
import { registry, seizureReport, seizureReportV2 } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument --
   the test reads the schema document as untyped JSON */
type Json = any;

function accepted(alert: unknown): void {
  const r = registry.checkAlert(alert);
  expect(r.ok ? [] : r.error.issues).toEqual([]);
}

/** Refused with ERR_SCHEMA_INVALID, with an issue at each of `pointers` (and only there). */
function refused(alert: unknown, ...pointers: string[]): void {
  const r = registry.checkAlert(alert);
  if (r.ok) throw new Error(`expected a refusal at ${pointers.join(', ')}`);
  expect(r.error.code).toBe(ErrorCode.SchemaInvalid);
  expect(r.error.issues.map((i) => i.pointer).sort()).toEqual([...pointers].sort());
}

describe('schemas v2 - every point of issue #16, valid and invalid', () => {
  it.each(V2_CASES)('$point', ({ valid, invalid, at }) => {
    accepted(valid);
    refused(invalid, ...at);
  });
});

describe('schemas v2 - versioning', () => {
  it('each type has v1 and v2 side by side, $id naming the version; retraction stays v1', () => {
    for (const type of ['seizure-report', 'suspicious-shipment', 'consignee-flag']) {
      expect(registry.schemaIdFor(type, 1)).toBe(
        `https://schemas.alert-hub.example/alerts/${type}/v1.json`,
      );
      expect(registry.schemaIdFor(type, 2)).toBe(
        `https://schemas.alert-hub.example/alerts/${type}/v2.json`,
      );
    }
    expect(registry.schemaIdFor('retraction', 1)).toBeDefined();
    expect(registry.schemaIdFor('retraction', 2)).toBeUndefined();
  });
  it('a v1 alert is still valid as it was, and v1 members are not v2 members', () => {
    accepted(seizureReport());
    const r = registry.checkAlert({ ...seizureReport(), version: 2 });
    if (r.ok) throw new Error('a v1 body must not pass as v2');
    expect(r.error.code).toBe(ErrorCode.SchemaInvalid);
    expect(r.error.issues.map((i) => i.pointer)).toEqual(
      expect.arrayContaining([
        '/seizure/commodities/0/family',
        '/seizure/shipment/containers/0',
        '/seizure/shipment/route/origin',
        '/seizure/shipment/billOfLading',
      ]),
    );
  });
  it('v2 rules do not apply to v1: a v1 alert that expires before it was issued stays valid', () => {
    accepted(seizureReport('SG-NPARKS', { expiresAt: '2019-01-01T00:00:00Z' }));
  });
  it('an unknown version names the known ones', () => {
    const r = registry.checkAlert({ ...seizureReportV2(), version: 3 });
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.error.code).toBe(ErrorCode.SchemaUnknown);
      expect(r.error.issues).toEqual([
        { pointer: '/version', message: 'seizure-report has no version 3 (known: 1, 2)' },
      ]);
    }
  });
  it('every v2 schema is self-describing: each member of the common definitions has a title or a description', () => {
    const missing: string[] = [];
    const common = registry.schemaDocument(
      'https://schemas.alert-hub.example/common/v2.json',
    ) as Json;
    for (const [name, def] of Object.entries<Json>(common.$defs)) {
      if (!def.title && !def.description) missing.push(name);
    }
    expect(missing).toEqual([]);
  });
});
