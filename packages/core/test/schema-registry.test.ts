import { describe, expect, it } from 'vitest';
import { ErrorCode, newAlertId, type SchemaInvalidError } from '@alert-hub/core';
import { registry, seizureReport } from './helpers.js';

function issuesOf(value: unknown) {
  const r = registry.checkAlert(value);
  if (r.ok) throw new Error('expected the alert to be refused');
  return { code: r.error.code, issues: r.error.issues };
}

describe('schema registry - alerts', () => {
  it('knows the five alert types, version 1', () => {
    expect([...new Set(registry.alertTypes.map((t) => t.type))].sort()).toEqual([
      'consignee-flag',
      'outcome',
      'retraction',
      'seizure-report',
      'suspicious-shipment',
    ]);
    expect(registry.schemaIdFor('seizure-report', 1)).toBe(
      'https://schemas.alert-hub.example/alerts/seizure-report/v1.json',
    );
  });
  it('accepts a complete seizure report', () => {
    const r = registry.checkAlert(seizureReport());
    expect(r.ok).toBe(true);
  });
  it('reports a mistyped container number with its check digit, by JSON pointer', () => {
    const a = seizureReport();
    a.seizure.shipment.containers = ['CSQU3054384'];
    const { code, issues } = issuesOf(a);
    expect(code).toBe(ErrorCode.SchemaInvalid);
    expect(issues).toEqual([
      {
        pointer: '/seizure/shipment/containers/0',
        message: 'ISO 6346 check digit is 4, expected 3',
      },
    ]);
  });
  it('refuses a misspelt member and suggests the right one', () => {
    const a = { ...seizureReport(), handeling: 'TLP:RED' };
    const { issues } = issuesOf(a);
    expect(issues).toContainEqual({
      pointer: '/handeling',
      message: 'is not a known member; did you mean "handling"?',
    });
  });
  it('refuses unknown members deep inside, too', () => {
    const a = seizureReport();
    (a.seizure.shipment as Record<string, unknown>)['contianers'] = ['CSQU3054383'];
    const { issues } = issuesOf(a);
    expect(issues).toContainEqual({
      pointer: '/seizure/shipment/contianers',
      message: 'is not a known member; did you mean "containers"?',
    });
  });
  it('reports every problem at once', () => {
    const a = seizureReport('SG-NPARKS', {
      handling: 'AMBER',
      issuedAt: '2019-04-08 03:15',
    }) as Record<string, unknown>;
    delete a['id'];
    const { issues } = issuesOf(a);
    expect(issues.map((i) => i.pointer)).toEqual(['/handling', '/id', '/issuedAt']);
    expect(issues[0]!.message).toContain('"TLP:AMBER"');
  });
  it('requires a time zone on timestamps', () => {
    const { issues } = issuesOf(seizureReport('SG-NPARKS', { issuedAt: '2019-04-08T03:15:00' }));
    expect(issues).toEqual([{ pointer: '/issuedAt', message: 'must be a valid date-time' }]);
  });
  it('names an unknown type or version with the known ones', () => {
    expect(issuesOf({ ...seizureReport(), type: 'seizure' })).toMatchObject({
      code: ErrorCode.SchemaUnknown,
      issues: [{ pointer: '/type' }],
    });
    expect(issuesOf({ ...seizureReport(), version: 3 })).toMatchObject({
      code: ErrorCode.SchemaUnknown,
      issues: [{ pointer: '/version', message: 'seizure-report has no version 3 (known: 1, 2)' }],
    });
    expect(issuesOf([1, 2])).toMatchObject({
      code: ErrorCode.SchemaInvalid,
      issues: [{ pointer: '' }],
    });
  });
  it('a retraction that corrects must name the correction', () => {
    const base = {
      id: newAlertId(),
      type: 'retraction',
      version: 1,
      origin: 'VN-CUSTOMS',
      issuedAt: '2019-04-09T00:00:00Z',
      handling: 'TLP:AMBER',
      retracts: newAlertId(),
      reason: 'wrong container number',
    };
    expect(registry.checkAlert({ ...base, action: 'withdraw' }).ok).toBe(true);
    expect(issuesOf({ ...base, action: 'correct' }).issues).toEqual([
      { pointer: '/correctedBy', message: 'is required' },
    ]);
    expect(registry.checkAlert({ ...base, action: 'correct', correctedBy: newAlertId() }).ok).toBe(
      true,
    );
  });
  it('a seizure must say how much was seized', () => {
    const a = seizureReport();
    delete (a.seizure.commodities[1] as Record<string, unknown>)['quantity'];
    expect(issuesOf(a).issues).toEqual([
      { pointer: '/seizure/commodities/1/quantity', message: 'is required' },
    ]);
  });
  it('validateAlert throws the typed error', () => {
    expect(() => registry.validateAlert({ type: 'retraction', version: 1 })).toThrow(
      expect.objectContaining({ code: 'ERR_SCHEMA_INVALID' }) as SchemaInvalidError,
    );
  });
});
