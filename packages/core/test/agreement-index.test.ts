import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DenyReason,
  HANDLING_CODES,
  countriesTouched,
  countryOf,
  decideRoute,
  evaluateAgreements,
  handlingRank,
  versionsRead,
  type Agreement,
  type AgreementSet,
  type Alert,
  type Denied,
  type Allowed,
  type RoutingDecision,
} from '@alert-hub/core';
import { seizureReport } from './helpers.js';

const COUNTRIES = ['SG', 'VN', 'CN', 'NG', 'KE', 'US', 'TH', 'MY', 'ID', 'ZA', 'TZ', 'MZ'];
const AGENCIES = COUNTRIES.flatMap((c) => [`${c}-CUSTOMS`, `${c}-POLICE`, `${c}-WILDLIFE`]);
const TYPES = ['suspicious-shipment', 'consignee-flag', 'seizure-report', 'retraction'];

/**
 * The straightforward evaluation the index must agree with: every agreement looked at for every
 * candidate, in file order.
 */
function evaluateByScan(
  set: AgreementSet,
  alert: Alert,
  candidates: readonly string[],
  now: Date,
): RoutingDecision {
  const matches = (p: string, agency: string) =>
    p.length === 2 ? countryOf(agency) === p : p === agency;
  const isParty = (a: Agreement, agency: string) => a.parties.some((p) => matches(p, agency));
  const t = now.getTime();
  const why = (a: Agreement, to: string): { reason: DenyReason; detail: string } | undefined => {
    if (t < Date.parse(a.validFrom))
      return { reason: DenyReason.NotYetValid, detail: `not in force before ${a.validFrom}` };
    if (a.validUntil !== undefined && t > Date.parse(a.validUntil))
      return { reason: DenyReason.Expired, detail: `ended ${a.validUntil}` };
    if (
      a.flows &&
      !a.flows.some(
        (f) => f.from.some((p) => matches(p, alert.origin)) && f.to.some((p) => matches(p, to)),
      )
    )
      return { reason: DenyReason.Direction, detail: `does not let ${alert.origin} send to ${to}` };
    if (!a.alertTypes.includes(alert.type))
      return { reason: DenyReason.AlertType, detail: `does not cover ${alert.type}` };
    if (handlingRank(alert.handling) > handlingRank(a.maxHandling))
      return {
        reason: DenyReason.Handling,
        detail: `${alert.handling} is above the allowed ${a.maxHandling}`,
      };
    if (a.conditions?.routeTouchesRecipient && !countriesTouched(alert).has(countryOf(to)))
      return {
        reason: DenyReason.Condition,
        detail: `the alert does not concern ${countryOf(to)} (routeTouchesRecipient)`,
      };
    return undefined;
  };
  const allowed: Allowed[] = [];
  const denied: Denied[] = [];
  for (const to of candidates) {
    if (to === alert.origin) continue;
    const both = set.agreements.filter((a) => isParty(a, alert.origin) && isParty(a, to));
    if (both.length === 0) {
      denied.push({
        recipient: to,
        reason: DenyReason.NotParty,
        detail: `no agreement includes both ${alert.origin} and ${to}`,
      });
      continue;
    }
    const ok = both.find((a) => why(a, to) === undefined);
    const reads = ok ? versionsRead(set, to) : undefined;
    if (ok && reads && !reads.includes(alert.version))
      denied.push({
        recipient: to,
        reason: DenyReason.SchemaVersion,
        detail: `${to} reads schema versions ${reads.join(', ')}; this ${alert.type} is version ${alert.version} (allowed by ${ok.id}@${ok.version})`,
      });
    else if (ok)
      allowed.push({
        recipient: to,
        agreement: { id: ok.id, version: ok.version },
        onward: ok.onwardSharing === true,
      });
    else {
      // The first agreement of both decides the reason; the detail names it and every one that
      // covers the type, and counts the others (which do not cover it).
      const named = both.filter((a, j) => j === 0 || a.alertTypes.includes(alert.type));
      const reasons = named.map((a) => ({ a, ...why(a, to)! }));
      const others = both.length - named.length;
      const text = reasons.map((r) => `${r.a.id}@${r.a.version}: ${r.detail}`).join('; ');
      denied.push({
        recipient: to,
        reason: reasons[0]!.reason,
        detail:
          // The type alone: no agreement of both covers it, and the first fails on nothing else.
          reasons.length === 1 && reasons[0]!.reason === DenyReason.AlertType
            ? `no agreement of both covers ${alert.type}`
            : others === 0
              ? text
              : `${text}; ${others} other agreement${others === 1 ? '' : 's'} of both ${others === 1 ? 'does' : 'do'} not cover ${alert.type}`,
      });
    }
  }
  return { allowed, denied };
}

const party = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...COUNTRIES) },
  { weight: 3, arbitrary: fc.constantFrom(...AGENCIES) },
);
const agreementArb = fc
  .record({
    parties: fc.uniqueArray(party, { minLength: 2, maxLength: 6 }),
    alertTypes: fc.uniqueArray(fc.constantFrom(...TYPES), { minLength: 1 }),
    maxHandling: fc.constantFrom(...HANDLING_CODES),
    validFrom: fc.constantFrom('2018-01-01T00:00:00Z', '2019-06-01T00:00:00Z'),
    validUntil: fc.option(fc.constantFrom('2019-03-01T00:00:00Z', '2030-01-01T00:00:00Z'), {
      nil: undefined,
    }),
    directed: fc.boolean(),
    routeTouchesRecipient: fc.boolean(),
    onwardSharing: fc.boolean(),
    version: fc.integer({ min: 1, max: 4 }),
  })
  .map((r): Omit<Agreement, 'id'> => ({
    version: r.version,
    title: 't',
    parties: r.parties,
    alertTypes: r.alertTypes,
    maxHandling: r.maxHandling,
    validFrom: r.validFrom,
    ...(r.validUntil ? { validUntil: r.validUntil } : {}),
    // One direction only: from the first party to the others.
    ...(r.directed ? { flows: [{ from: [r.parties[0]!], to: r.parties.slice(1) }] } : {}),
    ...(r.routeTouchesRecipient ? { conditions: { routeTouchesRecipient: true } } : {}),
    ...(r.onwardSharing ? { onwardSharing: true } : {}),
  }));

// A thousand agreements, the same on every run (the seed is fixed).
const THOUSAND: AgreementSet = {
  agreements: fc
    .sample(agreementArb, { numRuns: 1000, seed: 14 })
    .map((a, i) => ({ id: `A${i}`, ...a })),
  readers: [
    { party: 'KE', schemaVersions: [1] },
    { party: 'SG-POLICE', schemaVersions: [1] },
  ],
};

const alertArb = fc.record({
  origin: fc.constantFrom(...AGENCIES),
  type: fc.constantFrom(...TYPES),
  handling: fc.constantFrom(...HANDLING_CODES),
  version: fc.constantFrom(1, 2),
});
const nowArb = fc.constantFrom(
  new Date('2018-06-01T00:00:00Z'),
  new Date('2019-04-08T04:00:00Z'),
  new Date('2026-11-29T00:00:00Z'),
  new Date('2031-01-01T00:00:00Z'),
);

describe('agreements - indexed by party and type', () => {
  it('with 1,000 agreements, the indexed evaluation equals the full scan on random cases', () => {
    fc.assert(
      fc.property(
        alertArb,
        fc.subarray(AGENCIES, { minLength: 1 }),
        nowArb,
        (a, candidates, now) => {
          const alert = {
            ...(seizureReport(a.origin, { handling: a.handling }) as unknown as Alert),
            type: a.type,
            version: a.version,
          };
          expect(evaluateAgreements(THOUSAND, alert, candidates, now)).toEqual(
            evaluateByScan(THOUSAND, alert, candidates, now),
          );
        },
      ),
    );
  });

  it('small sets, where one agreement often decides: the same equality', () => {
    fc.assert(
      fc.property(
        fc.array(agreementArb, { maxLength: 8 }),
        alertArb,
        nowArb,
        (agreements, a, now) => {
          const set: AgreementSet = {
            agreements: agreements.map((x, i) => ({ id: `S${i}`, ...x })),
          };
          const alert = {
            ...(seizureReport(a.origin, { handling: a.handling }) as unknown as Alert),
            type: a.type,
            version: a.version,
          };
          expect(evaluateAgreements(set, alert, AGENCIES, now)).toEqual(
            evaluateByScan(set, alert, AGENCIES, now),
          );
        },
      ),
    );
  });

  it("a retraction over a recipient's ceiling takes the ceiling of the agreement's highest version", () => {
    const base = THOUSAND.agreements[0]!;
    const set: AgreementSet = {
      agreements: [
        { ...base, id: 'X', version: 1, maxHandling: 'TLP:RED' },
        { ...base, id: 'X', version: 3, maxHandling: 'TLP:GREEN' },
        { ...base, id: 'X', version: 2, maxHandling: 'TLP:RED' },
      ],
    };
    const retraction = {
      ...(seizureReport('SG-CUSTOMS', { handling: 'TLP:AMBER' }) as unknown as Alert),
      type: 'retraction',
      retracts: '01J0000000000000000000000A',
    } as Alert;
    const d = decideRoute({
      agreements: set,
      alert: retraction,
      candidates: ['SG-CUSTOMS', 'ZZ-NOBODY'],
      now: new Date('2019-04-08T04:00:00Z'),
      original: {
        origin: 'SG-CUSTOMS',
        deliveries: [{ recipient: 'ZZ-NOBODY', agreement: { id: 'X', version: 1 }, onward: false }],
      },
    });
    expect(d.kind === 'route' && d.denied.find((x) => x.recipient === 'ZZ-NOBODY')?.detail).toMatch(
      /above TLP:GREEN of X/,
    );
  });
});
