import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DenyReason,
  ErrorCode,
  PolicyRefusal,
  decideRoute,
  parseAgreements,
  type Alert,
  type AgreementSet,
} from '@alert-hub/core';
import { sampleOutcome } from '@alert-hub/testkit/samples';
import { registry, seizureReport } from './helpers.js';

const AGENCIES = ['NG-CUSTOMS', 'VN-CUSTOMS', 'KE-KWS', 'SG-NPARKS', 'CN-GACC'];
const document = {
  agreements: [
    {
      id: 'WIDE',
      version: 1,
      title: 'Everyone but China',
      parties: ['NG', 'VN', 'KE', 'SG'],
      alertTypes: ['seizure-report', 'retraction'],
      maxHandling: 'TLP:AMBER',
      validFrom: '2019-01-01T00:00:00Z',
    },
  ],
  operations: [
    {
      id: 'THUNDERBALL',
      version: 2,
      name: 'Operation Thunderball',
      period: { from: '2019-06-04T00:00:00Z', until: '2019-06-30T23:59:59Z' },
      members: ['NG', 'VN', 'KE-KWS', 'CN'],
      alertTypes: ['seizure-report'],
      maxHandling: 'TLP:AMBER',
    },
  ],
};
const set: AgreementSet = parseAgreements(document, registry);
const inside = new Date('2019-06-10T00:00:00Z');
const alert = (overrides: Record<string, unknown> = {}, origin = 'NG-CUSTOMS') =>
  seizureReport(origin, { operation: 'THUNDERBALL', ...overrides }) as unknown as Alert;

function route(a: Alert, now = inside, original?: Parameters<typeof decideRoute>[0]['original']) {
  return decideRoute({ agreements: set, alert: a, candidates: AGENCIES, now, original });
}

describe('policy - operations', () => {
  it('an operation period that ends on a leap second is read as the hub reads every time (RFC 3339, not Date.parse)', () => {
    const leap = parseAgreements(
      {
        ...document,
        operations: [
          {
            ...document.operations[0]!,
            period: { from: '2016-12-01T00:00:00Z', until: '2016-12-31T23:59:60Z' },
          },
        ],
      },
      registry,
    );
    const d = decideRoute({
      agreements: leap,
      alert: alert(),
      candidates: AGENCIES,
      now: new Date('2016-12-31T12:00:00Z'),
    });
    expect(d.kind === 'route' && d.operation).toEqual({
      id: 'THUNDERBALL',
      version: 2,
      inPeriod: true,
    });
  });
  it('during its period an operation alert goes to the members only, under the operation', () => {
    const d = route(alert());
    expect(d.kind).toBe('route');
    if (d.kind !== 'route') return;
    // China is a member without any agreement with Nigeria; Singapore has one but is no member.
    expect(d.allowed.map((a) => [a.recipient, a.agreement.id, a.agreement.version])).toEqual([
      ['VN-CUSTOMS', 'THUNDERBALL', 2],
      ['KE-KWS', 'THUNDERBALL', 2],
      ['CN-GACC', 'THUNDERBALL', 2],
    ]);
    expect(d.operation).toEqual({ id: 'THUNDERBALL', version: 2, inPeriod: true });
    expect(d.denied.map((x) => [x.recipient, x.reason])).toEqual([
      ['SG-NPARKS', DenyReason.NotParty],
    ]);
  });

  it('outside its period an operation alert goes to nobody, and says why for each member', () => {
    for (const at of ['2019-06-03T23:59:59Z', '2019-07-01T00:00:00Z', '2026-01-01T00:00:00Z']) {
      const d = route(alert(), new Date(at));
      expect(d.kind).toBe('route');
      if (d.kind !== 'route') return;
      expect(d.allowed).toEqual([]);
      expect(d.operation?.inPeriod).toBe(false);
      expect(
        d.denied.filter((x) => x.reason === DenyReason.OperationPeriod).map((x) => x.recipient),
      ).toEqual(['VN-CUSTOMS', 'KE-KWS', 'CN-GACC']);
    }
  });

  it("the operation's terms hold: members only send, its types, its handling ceiling", () => {
    const reasons = (a: Alert) => {
      const d = route(a);
      return d.kind === 'route' && d.allowed.length === 0 ? d.denied[0]?.reason : undefined;
    };
    expect(reasons(alert({ handling: 'TLP:RED' }))).toBe(DenyReason.OperationHandling);
  });

  it('a sender that is no member is answered as for an operation that does not exist: its members and period stay unknown to it', () => {
    // SG-NPARKS is no member of THUNDERBALL: in the period, outside it, and naming none at all.
    const answers = [
      route(alert({}, 'SG-NPARKS')),
      route(alert({}, 'SG-NPARKS'), new Date('2026-01-01T00:00:00Z')),
      route(alert({ operation: 'NOPE' }, 'SG-NPARKS')),
    ].map((d) => (d.kind === 'refuse' ? [d.code, d.reason.replace('NOPE', 'THUNDERBALL')] : d));
    expect(answers).toEqual(
      Array(3).fill([
        PolicyRefusal.OperationUnknown,
        'SG-NPARKS is a member of no operation THUNDERBALL',
      ]),
    );
  });

  it('an unknown operation is refused', () => {
    const d = route(alert({ operation: 'NOPE' }));
    expect(d).toMatchObject({ kind: 'refuse', code: PolicyRefusal.OperationUnknown });
  });

  it("an alert's operation is matched with its case: ids are unique without case, but thunderball is not THUNDERBALL", () => {
    const d = route(alert({ operation: 'thunderball' }));
    expect(d).toMatchObject({ kind: 'refuse', code: PolicyRefusal.OperationUnknown });
  });

  it('never sends an operation alert to a non-member or outside the period (property)', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2019-01-01'), max: new Date('2020-01-01'), noInvalidDate: true }),
        fc.constantFrom(...AGENCIES),
        fc.constantFrom('TLP:CLEAR', 'TLP:GREEN', 'TLP:AMBER', 'TLP:AMBER+STRICT', 'TLP:RED'),
        (now, origin, handling) => {
          const d = route(alert({ handling }, origin), now);
          const members = ['NG-CUSTOMS', 'VN-CUSTOMS', 'KE-KWS', 'CN-GACC'];
          // A sender that is no member is refused whole, as for an unknown operation.
          if (d.kind !== 'route')
            return d.code === PolicyRefusal.OperationUnknown && !members.includes(origin);
          const t = now.getTime();
          const inPeriod =
            t >= Date.parse('2019-06-04T00:00:00Z') && t <= Date.parse('2019-06-30T23:59:59Z');
          return d.allowed.every(
            (a) => inPeriod && members.includes(a.recipient) && members.includes(origin),
          );
        },
      ),
    );
  });

  it('the agreements file refuses an operation whose id an agreement has, or an empty period', () => {
    const bad = {
      ...document,
      operations: [
        { ...document.operations[0], id: 'WIDE' },
        {
          ...document.operations[0],
          id: 'BACKWARDS',
          period: { from: '2019-06-30T00:00:00Z', until: '2019-06-01T00:00:00Z' },
        },
      ],
    };
    try {
      parseAgreements(bad, registry);
      expect.unreachable('parseAgreements accepted it');
    } catch (err) {
      expect((err as { code: string }).code).toBe(ErrorCode.AgreementsInvalid);
      expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
        '/operations/0/id',
        '/operations/1/period/until',
      ]);
    }
  });
  it('ids that differ only in case are refused: Thunderball beside THUNDERBALL, an agreement or an operation', () => {
    const issuesOf = (doc: unknown) => {
      try {
        parseAgreements(doc, registry);
        return [];
      } catch (err) {
        expect((err as { code: string }).code).toBe(ErrorCode.AgreementsInvalid);
        return (err as { issues: { pointer: string; message: string }[] }).issues;
      }
    };
    const op = document.operations[0];
    const agreement = document.agreements[0];
    expect(issuesOf({ ...document, operations: [op, { ...op, id: 'Thunderball' }] })).toEqual([
      {
        pointer: '/operations/1/id',
        message:
          '"Thunderball" differs only in case from "THUNDERBALL" (/operations/0): ids are compared without case',
      },
    ]);
    expect(issuesOf({ ...document, operations: [{ ...op, id: 'wide' }] })).toEqual([
      {
        pointer: '/operations/0/id',
        message:
          '"wide" differs only in case from "WIDE" (/agreements/0): ids are compared without case',
      },
    ]);
    expect(
      issuesOf({ ...document, agreements: [agreement, { ...agreement, id: 'Wide' }] }),
    ).toEqual([
      {
        pointer: '/agreements/1/id',
        message:
          '"Wide" differs only in case from "WIDE" (/agreements/0): ids are compared without case',
      },
    ]);
    // The same id twice says so, as before.
    expect(issuesOf({ ...document, operations: [op, op] })).toEqual([
      { pointer: '/operations/1/id', message: '"THUNDERBALL" is already used by /operations/0' },
    ]);
    // Ids of different letters are not touched.
    expect(issuesOf({ ...document, operations: [op, { ...op, id: 'THUNDERBALL-2' }] })).toEqual([]);
  });
});

describe('policy - outcomes', () => {
  const original = {
    origin: 'NG-CUSTOMS',
    deliveries: [
      { recipient: 'VN-CUSTOMS', agreement: { id: 'WIDE', version: 1 }, onward: false },
      { recipient: 'CN-GACC', agreement: { id: 'THUNDERBALL', version: 2 }, onward: false },
    ],
  };
  it('an outcome goes back to the origin under the agreement that delivered the original', () => {
    const out = sampleOutcome('CN-GACC', '0169fb6c-1a80-7000-8000-000000000001');
    expect(registry.checkAlert(out).ok).toBe(true);
    const d = route(out, new Date('2026-01-01T00:00:00Z'), original);
    expect(d).toEqual({
      kind: 'route',
      allowed: [
        {
          recipient: 'NG-CUSTOMS',
          agreement: { id: 'THUNDERBALL', version: 2 },
          onward: false,
          viaOriginal: true,
        },
      ],
      denied: [],
    });
  });
  it('an outcome to an origin, or a retraction to a recipient, no longer in the trust store goes to nobody there', () => {
    const out = sampleOutcome('CN-GACC', '0169fb6c-1a80-7000-8000-000000000001');
    const without = (agency: string) => AGENCIES.filter((a) => a !== agency);
    const d = decideRoute({
      agreements: set,
      alert: out,
      candidates: without('NG-CUSTOMS'),
      now: inside,
      original,
    });
    expect(d).toMatchObject({
      kind: 'route',
      allowed: [],
      denied: [{ recipient: 'NG-CUSTOMS', reason: DenyReason.NotParty }],
    });
    const retraction = {
      ...seizureReport('NG-CUSTOMS'),
      type: 'retraction',
      retracts: '0169fb6c-1a80-7000-8000-000000000001',
      action: 'withdraw',
      reason: 'withdrawn',
      handling: 'TLP:GREEN',
    } as unknown as Alert;
    const r = decideRoute({
      agreements: set,
      alert: retraction,
      candidates: without('CN-GACC'),
      now: inside,
      original,
    });
    expect(r.kind).toBe('route');
    if (r.kind !== 'route') return;
    expect(r.allowed.map((a) => a.recipient)).not.toContain('CN-GACC');
    expect(r.denied).toContainEqual(
      expect.objectContaining({ recipient: 'CN-GACC', reason: DenyReason.NotParty }),
    );
  });
  it('a version-2 outcome to an origin that reads only version 1 is denied DENY_SCHEMA_VERSION; version 1 reaches it', () => {
    const readsV1 = parseAgreements(
      { ...document, readers: [{ party: 'NG-CUSTOMS', schemaVersions: [1] }] },
      registry,
    );
    const decide = (a: Alert) =>
      decideRoute({
        agreements: readsV1,
        alert: a,
        candidates: AGENCIES,
        now: new Date('2026-01-01T00:00:00Z'),
        original,
      });
    const answers = '0169fb6c-1a80-7000-8000-000000000001';
    const v2 = sampleOutcome('VN-CUSTOMS', answers, { version: 2, answersOrigin: 'NG-CUSTOMS' });
    expect(registry.checkAlert(v2).ok).toBe(true);
    expect(decide(v2)).toMatchObject({
      kind: 'route',
      allowed: [],
      denied: [{ recipient: 'NG-CUSTOMS', reason: DenyReason.SchemaVersion }],
    });
    const v1 = sampleOutcome('VN-CUSTOMS', answers);
    expect(decide(v1)).toMatchObject({
      kind: 'route',
      allowed: [{ recipient: 'NG-CUSTOMS', agreement: { id: 'WIDE', version: 1 } }],
      denied: [],
    });
    // An origin listed as reading both, or not listed, is sent the version-2 outcome.
    const both = parseAgreements(
      { ...document, readers: [{ party: 'NG', schemaVersions: [1, 2] }] },
      registry,
    );
    for (const agreements of [both, set])
      expect(
        decideRoute({ agreements, alert: v2, candidates: AGENCIES, now: inside, original }),
      ).toMatchObject({ kind: 'route', allowed: [{ recipient: 'NG-CUSTOMS' }], denied: [] });
  });
  it('an outcome from an agency that never received the alert is refused', () => {
    const out = sampleOutcome('KE-KWS', '0169fb6c-1a80-7000-8000-000000000001');
    expect(route(out, inside, original)).toMatchObject({
      kind: 'refuse',
      code: PolicyRefusal.OutcomeNotReceived,
    });
    expect(route(out, inside, undefined)).toMatchObject({
      kind: 'refuse',
      code: PolicyRefusal.OutcomeNotReceived,
    });
  });
  it('the outcome schema asks for the seizure when the result is a seizure', () => {
    const noSeizure = sampleOutcome('VN-CUSTOMS', '0169fb6c-1a80-7000-8000-000000000001', {
      seizure: undefined,
    });
    expect(registry.checkAlert(noSeizure).ok).toBe(false);
    const arrest = sampleOutcome('VN-CUSTOMS', '0169fb6c-1a80-7000-8000-000000000001', {
      result: 'arrest',
      seizure: undefined,
    });
    expect(registry.checkAlert(arrest).ok).toBe(true);
  });
});
