import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  NOTICE_SCHEMA_ID,
  RECEIPT_SCHEMA_ID,
  REVOCATIONS_SCHEMA_ID,
  newAlertId,
  type SchemaInvalidError,
} from '@alert-hub/core';
import { registry, seizureReport, seizureReportV2 } from './helpers.js';

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
    // docs/protocol.md §5.1, step 25: one issue each, at a fixed pointer.
    const { type: _type, ...untyped } = seizureReport() as Record<string, unknown>;
    expect(issuesOf(untyped)).toMatchObject({
      code: ErrorCode.SchemaUnknown,
      issues: [{ pointer: '/type' }],
    });
    for (const version of ['1', true, undefined])
      expect(issuesOf({ ...seizureReport(), version })).toMatchObject({
        code: ErrorCode.SchemaInvalid,
        issues: [{ pointer: '/version' }],
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

describe('schema registry - agency ids are judged alike in alerts, receipts and notices', () => {
  const receipt = (agency: string, origin: string) => ({
    receipt: newAlertId(),
    agency,
    committedAt: '2019-04-08T03:15:00Z',
    deliveries: [{ alertId: newAlertId(), origin, envelopeSha256: 'a'.repeat(64) }],
  });
  const routed = (recipient: string, extra: Record<string, unknown> = {}) => ({
    event: 'routed',
    alertId: newAlertId(),
    at: '2019-04-08T03:15:00Z',
    recipients: [recipient],
    denied: [],
    ...extra,
  });
  const notice = (hub: string, to: string, event: object = routed('VN-CUSTOMS')) => ({
    notice: newAlertId(),
    hub,
    to,
    issuedAt: '2019-04-08T03:15:00Z',
    events: [event],
  });
  it('an agency id must start with an ISO 3166-1 country (UK is not one: GB is), wherever it appears', () => {
    expect(
      registry.validateDocument(RECEIPT_SCHEMA_ID, receipt('VN-CUSTOMS', 'SG-NPARKS')),
    ).toEqual([]);
    expect(registry.validateDocument(NOTICE_SCHEMA_ID, notice('HUB', 'SG-NPARKS'))).toEqual([]);
    for (const bad of ['UK-HMRC', 'XX-CUSTOMS', 'EU-OLAF']) {
      expect(
        registry
          .validateDocument(RECEIPT_SCHEMA_ID, receipt(bad, 'SG-NPARKS'))
          .map((i) => i.pointer),
      ).toEqual(['/agency']);
      expect(
        registry
          .validateDocument(RECEIPT_SCHEMA_ID, receipt('VN-CUSTOMS', bad))
          .map((i) => i.pointer),
      ).toEqual(['/deliveries/0/origin']);
      expect(
        registry.validateDocument(NOTICE_SCHEMA_ID, notice('HUB', bad)).map((i) => i.pointer),
      ).toEqual(['/to']);
      // an event is one of several kinds: the refusal is reported within the event
      const inEvent = registry
        .validateDocument(NOTICE_SCHEMA_ID, notice('HUB', 'SG-NPARKS', routed(bad)))
        .map((i) => i.pointer);
      expect(inEvent.length).toBeGreaterThan(0);
      expect(inEvent.every((p) => p.startsWith('/events/0'))).toBe(true);
    }
  });
  it("a notice's hub is a principal of the trust store's form, as the router's and gateway's configuration take it", () => {
    for (const hub of ['HUB-1', 'ALERT-HUB', 'HUB12345678901234'])
      expect(
        registry.validateDocument(NOTICE_SCHEMA_ID, notice(hub, 'SG-NPARKS')).map((i) => i.pointer),
        hub,
      ).toEqual(['/hub']);
  });
  it('a notice names an operation and a key as the agreements and the trust store do, not looser', () => {
    const underOperation = (operation: string) =>
      notice('HUB', 'SG-NPARKS', routed('VN-CUSTOMS', { operation }));
    expect(registry.validateDocument(NOTICE_SCHEMA_ID, underOperation('THUNDERBALL-2019'))).toEqual(
      [],
    );
    for (const bad of ['', 'a b', 'ops/2019', '-leading'])
      expect(
        registry.validateDocument(NOTICE_SCHEMA_ID, underOperation(bad)).length,
        bad,
      ).toBeGreaterThan(0);
    const delivered = (kid: string) =>
      notice('HUB', 'SG-NPARKS', {
        event: 'delivered',
        alertId: newAlertId(),
        recipient: 'VN-CUSTOMS',
        receipt: newAlertId(),
        committedAt: '2019-04-08T03:15:00Z',
        verifiedAt: '2019-04-08T03:15:01Z',
        envelopeSha256: 'a'.repeat(64),
        receiptSha256: 'b'.repeat(64),
        kid,
      });
    expect(registry.validateDocument(NOTICE_SCHEMA_ID, delivered('k'.repeat(43)))).toEqual([]);
    for (const bad of ['k'.repeat(42), 'k'.repeat(44), `${'k'.repeat(42)}.`])
      expect(
        registry.validateDocument(NOTICE_SCHEMA_ID, delivered(bad)).length,
        bad,
      ).toBeGreaterThan(0);
  });
});

describe('schema registry - a case reference is a file number, not a channel for control characters', () => {
  it('refuses NUL, line breaks and DEL in caseReference (a C string would read it shorter), in both versions', () => {
    for (const make of [seizureReport, seizureReportV2]) {
      expect(registry.checkAlert({ ...make(), caseReference: 'SG/NP/2019/0412' }).ok).toBe(true);
      for (const bad of ['SG\u0000NP', 'SG\nNP', 'SG\rNP', 'SG\u007fNP', '\t'])
        expect(
          issuesOf({ ...make(), caseReference: bad }).issues.map((i) => i.pointer),
          JSON.stringify(bad),
        ).toEqual(['/caseReference']);
    }
  });
});

describe('schema registry - a date is one every partner reads', () => {
  it('a seizure date of year 0000 is refused in both versions (Python has no year 0); 0001 passes, leap days are checked', () => {
    for (const make of [seizureReport, seizureReportV2]) {
      const on = (date: string) => {
        const a = make() as unknown as { seizure: Record<string, unknown> };
        return { ...a, seizure: { ...a.seizure, date } };
      };
      for (const ok of ['0001-01-01', '2000-02-29', '2019-04-08'])
        expect(registry.checkAlert(on(ok)).ok, ok).toBe(true);
      for (const bad of ['0000-01-01', '0000-02-29', '1900-02-29', '2019-13-01', '2019-04-8'])
        expect(
          issuesOf(on(bad)).issues.map((i) => i.pointer),
          bad,
        ).toEqual(['/seizure/date']);
    }
  });
});

describe('schema registry - a revocation names a principal of the trust store', () => {
  it("a revoked key's principal has the trust store's form", () => {
    const revocation = (principal: string) => ({
      revoked: [
        { kid: 'k'.repeat(43), principal, revokedAt: '2019-04-08T03:15:00Z', reason: 'superseded' },
      ],
    });
    for (const ok of ['SG-NPARKS', 'HUB'])
      expect(registry.validateDocument(REVOCATIONS_SCHEMA_ID, revocation(ok)), ok).toEqual([]);
    for (const bad of ['sg-nparks', 'HUB-1', 'x', 'SG NPARKS'])
      expect(
        registry.validateDocument(REVOCATIONS_SCHEMA_ID, revocation(bad)).map((i) => i.pointer),
        bad,
      ).toEqual(['/revoked/0/principal']);
  });
});
