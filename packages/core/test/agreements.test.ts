import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DenyReason,
  ErrorCode,
  HANDLING_CODES,
  evaluateAgreements,
  uncoveredDetail,
  parseAgreements,
  versionsRead,
  type Agreement,
  type AgreementSet,
  type Alert,
} from '@alert-hub/core';
import { registry, seizureReport, seizureReportV2 } from './helpers.js';

const base: Agreement = {
  id: 'WEN-ASIA',
  version: 3,
  title: 'Wildlife enforcement, Asia',
  parties: ['SG', 'VN-CUSTOMS', 'CN'],
  alertTypes: ['seizure-report', 'suspicious-shipment', 'retraction'],
  maxHandling: 'TLP:AMBER',
  validFrom: '2019-01-01T00:00:00Z',
  validUntil: '2027-01-01T00:00:00Z',
};
const now = new Date('2019-04-08T04:00:00Z');
const set = (...agreements: Agreement[]): AgreementSet => parseAgreements({ agreements }, registry);
const alert = (overrides: Record<string, unknown> = {}) =>
  seizureReport('SG-NPARKS', overrides) as unknown as Alert;

function decide(s: AgreementSet, a: Alert, to: string, at = now) {
  const d = evaluateAgreements(s, a, [to], at);
  return d.allowed[0] ? { allowed: d.allowed[0] } : { denied: d.denied[0]! };
}

describe('agreements - the matrix', () => {
  it('allowed: both parties, type covered, handling within, in force', () => {
    expect(decide(set(base), alert(), 'VN-CUSTOMS')).toEqual({
      allowed: {
        recipient: 'VN-CUSTOMS',
        agreement: { id: 'WEN-ASIA', version: 3 },
        onward: false,
      },
    });
    expect(decide(set(base), alert(), 'CN-GACC').allowed?.recipient).toBe('CN-GACC'); // a country party covers all its agencies
  });
  it('wrong type', () => {
    expect(decide(set(base), alert({ type: 'consignee-flag' }), 'VN-CUSTOMS').denied?.reason).toBe(
      DenyReason.AlertType,
    );
  });
  it('handling code too high', () => {
    const d = decide(set(base), alert({ handling: 'TLP:RED' }), 'VN-CUSTOMS').denied!;
    expect(d.reason).toBe(DenyReason.Handling);
    expect(d.detail).toBe('WEN-ASIA@3: TLP:RED is above the allowed TLP:AMBER');
  });
  it('expired', () => {
    expect(
      decide(set(base), alert(), 'VN-CUSTOMS', new Date('2027-06-01T00:00:00Z')).denied?.reason,
    ).toBe(DenyReason.Expired);
  });
  it('not yet valid', () => {
    expect(
      decide(set(base), alert(), 'VN-CUSTOMS', new Date('2018-06-01T00:00:00Z')).denied?.reason,
    ).toBe(DenyReason.NotYetValid);
  });
  it('not a party (an agency of a party country is not enough when only another agency is named)', () => {
    expect(decide(set(base), alert(), 'KE-KWS').denied?.reason).toBe(DenyReason.NotParty);
    expect(decide(set(base), alert(), 'VN-MARD').denied?.reason).toBe(DenyReason.NotParty);
  });
  it('directed the wrong way', () => {
    const directed: Agreement = {
      ...base,
      id: 'NG-TO-SG',
      parties: ['NG', 'SG'],
      flows: [{ from: ['NG'], to: ['SG'] }],
    };
    expect(
      decide(set(directed), seizureReport('NG-NCS') as unknown as Alert, 'SG-NPARKS').allowed
        ?.agreement.id,
    ).toBe('NG-TO-SG');
    expect(decide(set(directed), alert(), 'NG-NCS').denied?.reason).toBe(DenyReason.Direction);
  });
  it('condition: the route must touch the recipient', () => {
    const cond: Agreement = { ...base, conditions: { routeTouchesRecipient: true } };
    // The seizure's route is NGAPP -> SGSIN -> VNHPH: Viet Nam yes, China no.
    expect(decide(set(cond), alert(), 'VN-CUSTOMS').allowed).toBeDefined();
    expect(decide(set(cond), alert(), 'CN-GACC').denied?.reason).toBe(DenyReason.Condition);
  });
  it('condition on a v2 alert: every route place, the route countries and every party count', () => {
    const cond: Agreement = {
      ...base,
      parties: [...base.parties, 'KE', 'NG'],
      conditions: { routeTouchesRecipient: true },
    };
    const v2 = (edit: (a: ReturnType<typeof seizureReportV2>) => void) => {
      const a = seizureReportV2('SG-NPARKS');
      edit(a);
      return a as unknown as Alert;
    };
    // portOfDischarge VNHPH touches Viet Nam; the freight forwarder's country touches Nigeria
    expect(
      decide(
        set(cond),
        v2(() => {}),
        'VN-CUSTOMS',
      ).allowed,
    ).toBeDefined();
    const noRoute = v2((a) => {
      a.seizure.shipment.route = { destinationCountry: 'CN' } as never;
      a.seizure.shipment.consignor = { kind: 'company', name: 'X' } as never;
      a.seizure.shipment.consignee = { kind: 'company', name: 'Y' } as never;
    });
    expect(decide(set(cond), noRoute, 'CN-GACC').allowed).toBeDefined();
    expect(decide(set(cond), noRoute, 'NG-NCS').allowed).toBeDefined(); // the freight forwarder
    expect(decide(set(cond), noRoute, 'VN-CUSTOMS').denied?.reason).toBe(DenyReason.Condition);
    expect(decide(set(cond), noRoute, 'KE-KWS').denied?.reason).toBe(DenyReason.Condition);
  });
  it('the first agreement that allows wins; when none does, each that could apply says why, the others are counted', () => {
    const strict = { ...base, id: 'A', maxHandling: 'TLP:GREEN' };
    const loose = { ...base, id: 'B', version: 1, maxHandling: 'TLP:RED' };
    expect(decide(set(strict, loose), alert(), 'VN-CUSTOMS').allowed?.agreement).toEqual({
      id: 'B',
      version: 1,
    });
    const d = decide(
      set(strict, { ...loose, alertTypes: ['consignee-flag'] }),
      alert(),
      'VN-CUSTOMS',
    ).denied!;
    expect(d.reason).toBe(DenyReason.Handling);
    expect(d.detail).toBe(
      'A@3: TLP:AMBER is above the allowed TLP:GREEN; 1 other agreement of both does not cover seizure-report',
    );
  });
  it('when no agreement of both covers the type, the reason names no agreement: the same text for every such agency', () => {
    const other = (id: string, party: string) => ({
      ...base,
      id,
      parties: ['SG', party],
      alertTypes: ['consignee-flag'],
    });
    const { denied } = evaluateAgreements(
      set(other('X', 'VN'), other('Y', 'KE'), other('Z', 'KE')),
      alert(),
      ['VN-CUSTOMS', 'KE-KWS'],
      now,
    );
    expect(denied.map((d) => [d.recipient, d.reason, d.detail])).toEqual([
      ['VN-CUSTOMS', DenyReason.AlertType, uncoveredDetail('seizure-report')],
      ['KE-KWS', DenyReason.AlertType, uncoveredDetail('seizure-report')],
    ]);
    expect(uncoveredDetail('seizure-report')).toBe('no agreement of both covers seizure-report');
    // An agreement that is not in force is still named: the type is not all that is wrong.
    const ended = { ...other('W', 'VN'), validUntil: '2019-03-01T00:00:00Z' };
    const d = decide(set(ended), alert(), 'VN-CUSTOMS').denied!;
    expect(d.reason).toBe(DenyReason.Expired);
    expect(d.detail).toMatch(/^W@3: /);
  });
  it('the origin is never its own recipient', () => {
    expect(evaluateAgreements(set(base), alert(), ['SG-NPARKS'], now)).toEqual({
      allowed: [],
      denied: [],
    });
  });
});

describe('agreements - validation names the place', () => {
  it('every problem by JSON pointer', () => {
    const bad = {
      agreements: [
        { ...base, maxHandling: 'AMBER', parties: ['SG'] },
        {
          ...base,
          validUntil: '2018-01-01T00:00:00Z',
          parties: ['SG', 'UK'],
          flows: [{ from: ['SG'], to: ['KE'] }],
        },
        { ...base, onwardsharing: true },
      ],
    };
    let err: unknown;
    try {
      parseAgreements(bad, registry);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: ErrorCode.AgreementsInvalid });
    expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
      '/agreements/0/maxHandling',
      '/agreements/0/parties',
      '/agreements/2/onwardsharing',
    ]);
    try {
      parseAgreements({ agreements: [bad.agreements[1], base] }, registry);
    } catch (e) {
      err = e;
    }
    expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
      '/agreements/0/parties/1',
      '/agreements/0/validUntil',
      '/agreements/0/flows/0/to/0',
      '/agreements/1/id',
    ]);
  });
});

describe('agreements - properties', () => {
  const agencies = ['SG-NPARKS', 'SG-ICA', 'VN-CUSTOMS', 'CN-GACC', 'NG-NCS', 'KE-KWS', 'US-FWS'];
  const party = fc.constantFrom('SG', 'VN', 'CN', 'NG', 'KE', 'US', ...agencies);
  const agreementArb = fc.record({
    id: fc.stringMatching(/^[A-Z]{1,6}$/),
    version: fc.integer({ min: 1, max: 9 }),
    title: fc.constant('t'),
    parties: fc.uniqueArray(party, { minLength: 2, maxLength: 5 }),
    alertTypes: fc.uniqueArray(
      fc.constantFrom('suspicious-shipment', 'consignee-flag', 'seizure-report', 'retraction'),
      { minLength: 1 },
    ),
    maxHandling: fc.constantFrom(...HANDLING_CODES),
    validFrom: fc.constantFrom('2018-01-01T00:00:00Z', '2019-06-01T00:00:00Z'),
    validUntil: fc.constantFrom('2019-03-01T00:00:00Z', '2030-01-01T00:00:00Z'),
  });
  it('deny unless allowed: every forward is backed by an agreement that holds; every candidate gets an answer', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(agreementArb, { selector: (a) => a.id, maxLength: 4 }),
        fc.constantFrom(...agencies),
        fc.constantFrom(...HANDLING_CODES),
        (agreements, origin, handling) => {
          const s: AgreementSet = { agreements };
          const a = seizureReport(origin, { handling }) as unknown as Alert;
          const d = evaluateAgreements(s, a, agencies, now);
          expect(d.allowed.length + d.denied.length).toBe(agencies.length - 1);
          for (const f of d.allowed) {
            const ag = agreements.find((x) => x.id === f.agreement.id)!;
            const covers = (p: string, who: string) =>
              p.length === 2 ? who.startsWith(`${p}-`) : p === who;
            expect(
              ag.parties.some((p) => covers(p, origin)) &&
                ag.parties.some((p) => covers(p, f.recipient)),
            ).toBe(true);
            expect(ag.alertTypes).toContain('seizure-report');
            expect(HANDLING_CODES.indexOf(handling)).toBeLessThanOrEqual(
              (HANDLING_CODES as readonly string[]).indexOf(ag.maxHandling),
            );
            expect(Date.parse(ag.validFrom)).toBeLessThanOrEqual(now.getTime());
            expect(Date.parse(ag.validUntil)).toBeGreaterThanOrEqual(now.getTime());
          }
          if (agreements.length === 0) expect(d.allowed).toEqual([]);
        },
      ),
    );
  });
});

describe('agreements - schema versions a partner reads', () => {
  const v2 = () => seizureReportV2('SG-NPARKS') as unknown as Alert;
  const withReaders = (readers: unknown) =>
    parseAgreements({ agreements: [base], readers }, registry);

  it('a v1-only partner is refused a v2 alert with DENY_SCHEMA_VERSION, and still gets v1 alerts', () => {
    const s = withReaders([{ party: 'VN-CUSTOMS', schemaVersions: [1] }]);
    const d = decide(s, v2(), 'VN-CUSTOMS').denied!;
    expect(d.reason).toBe(DenyReason.SchemaVersion);
    expect(d.detail).toBe(
      'VN-CUSTOMS reads schema versions 1; this seizure-report is version 2 (allowed by WEN-ASIA@3)',
    );
    expect(decide(s, alert(), 'VN-CUSTOMS').allowed?.recipient).toBe('VN-CUSTOMS');
  });
  it('a partner not listed reads every version; an agency entry overrides its country', () => {
    const s = withReaders([
      { party: 'CN', schemaVersions: [1] },
      { party: 'CN-GACC', schemaVersions: [1, 2] },
    ]);
    expect(decide(s, v2(), 'VN-CUSTOMS').allowed).toBeDefined();
    expect(decide(s, v2(), 'CN-GACC').allowed).toBeDefined();
    expect(decide(s, v2(), 'CN-MPS').denied?.reason).toBe(DenyReason.SchemaVersion);
    expect(versionsRead(s, 'CN-MPS')).toEqual([1]);
    expect(versionsRead(s, 'VN-CUSTOMS')).toBeUndefined();
  });
  it('the agreement is checked first: a flow it does not allow keeps its own reason', () => {
    const s = withReaders([{ party: 'VN-CUSTOMS', schemaVersions: [1] }]);
    expect(decide(s, { ...v2(), handling: 'TLP:RED' }, 'VN-CUSTOMS').denied?.reason).toBe(
      DenyReason.Handling,
    );
  });
  it('refuses readers that are listed twice, in no country, or that do not read version 1', () => {
    try {
      withReaders([
        { party: 'VN-CUSTOMS', schemaVersions: [1] },
        { party: 'VN-CUSTOMS', schemaVersions: [1, 2] },
        { party: 'XQ', schemaVersions: [1] },
        { party: 'SG', schemaVersions: [2] },
      ]);
      throw new Error('expected ERR_AGREEMENTS_INVALID');
    } catch (err) {
      expect((err as { code: string }).code).toBe(ErrorCode.AgreementsInvalid);
      expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
        '/readers/1/party',
        '/readers/2/party',
        '/readers/3/schemaVersions',
      ]);
    }
    expect(() => withReaders([{ party: 'VN-CUSTOMS', schemaVersions: [] }])).toThrow(
      expect.objectContaining({ code: ErrorCode.AgreementsInvalid }),
    );
  });
});
