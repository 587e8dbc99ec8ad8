import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OperationReport } from '@alert-hub/core';
import { eventually, seizureReport, startLocalHub, type LocalHub } from '@alert-hub/testkit';

/**
 * An operation's report counts what was shared in the operation. An alert naming it that goes
 * to nobody under its terms (the sender no member, a type it does not cover, above its ceiling)
 * is no part of it, as one outside its period is not: no country, no alert, no seizure.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const CN = 'CN-GACC';
const day = 86_400_000;
let hub: LocalHub;

beforeAll(async () => {
  hub = await startLocalHub({
    env: process.env,
    agencies: [NG, VN, CN].map((id) => ({ id, name: id })),
    agreements: {
      agreements: [],
      operations: [
        {
          id: 'THUNDERBALL',
          version: 1,
          name: 'Operation Thunderball',
          period: {
            from: new Date(Date.now() - day).toISOString(),
            until: new Date(Date.now() + 30 * day).toISOString(),
          },
          members: ['NG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:GREEN',
        },
      ],
    },
  });
}, 120_000);
afterAll(async () => {
  await hub?.stop();
});

async function send(agency: string, alert: unknown): Promise<string> {
  const res = await fetch(`${hub.gateways[agency]!.url}/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const seizure = (origin: string, overrides: Record<string, unknown> = {}) =>
  seizureReport(origin, { operation: 'THUNDERBALL', handling: 'TLP:GREEN', ...overrides });

describe('operation report', () => {
  it('an alert naming the operation refused to every member under its terms counts in none of the report', async () => {
    // Shared in the operation: Nigeria's seizure, to Viet Nam.
    const shared = await send(NG, seizure(NG));
    // Refused to every member: China is no member; Viet Nam's is above the ceiling.
    const outsider = await send(CN, seizure(CN));
    const above = await send(VN, seizure(VN, { handling: 'TLP:AMBER' }));
    const audit = async (id: string) => {
      const res = await fetch(`${hub.router.url}/v1/audit/trace/${id}`, {
        headers: { authorization: `Bearer ${hub.coordinatorToken}` },
      });
      return JSON.stringify(await res.json());
    };
    for (const [id, code] of [
      [outsider, 'ERR_OPERATION_UNKNOWN'],
      [above, 'DENY_OPERATION_HANDLING'],
    ] as const)
      await eventually(async () => (await audit(id)).includes(code) || undefined, 30_000, code);
    await eventually(async () => (await audit(shared)).includes('"routed"') || undefined, 30_000);
    // The outsider learns that its alert named no operation of its own, and nothing of the
    // operation: not its members (nor, outside its period, its dates).
    const status = await eventually(
      async () => {
        const r = await fetch(`${hub.gateways[CN]!.url}/v1/alerts/${outsider}/status`, {
          headers: { authorization: `Bearer ${hub.token}` },
        });
        const text = await r.text();
        return text.includes('ERR_OPERATION_UNKNOWN') ? text : undefined;
      },
      30_000,
      "the outsider's refusal",
    );
    for (const member of [NG, VN]) expect(status).not.toContain(member);

    const res = await fetch(`${hub.router.url}/v1/operations/THUNDERBALL/report`, {
      headers: { authorization: `Bearer ${hub.coordinatorToken}` },
    });
    expect(res.status).toBe(200);
    const report = (await res.json()) as OperationReport;
    expect(report.countries).toEqual(['NG', 'VN']);
    expect(report.alertsByType).toEqual({ 'seizure-report': 1 });
    expect(report.agencies.map((a) => [a.agency, a.sent])).toEqual([
      [NG, 1],
      [VN, 0],
    ]);
    // Only Nigeria's seizure: the sample's two commodities, seized in Nigeria's country.
    expect(new Set(report.seizures.map((s) => s.country))).toEqual(new Set(['NG']));
    expect(report.seizures.every((s) => s.reports === 1)).toBe(true);
  }, 120_000);
});
