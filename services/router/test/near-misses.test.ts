import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { type Alert } from '@alert-hub/core';
import {
  NEAR_MISSES,
  deniedRecipients,
  forwardedCopies,
  queryAudit,
  traceAlert,
  verifyAuditLog,
} from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  hubctl,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

/**
 * The router with 1,000 agreements decides exactly as with the few that matter: the same
 * recipients under the same agreements, the same refusal code for every other agency; and it
 * writes one near-miss summary per decision, from which a query for one partner still says why
 * not.
 */
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC', 'NG-NCS', 'KE-KWS', 'US-FWS', 'HK-CED'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('near-misses-test');
const agreementsFile = join(fx.dir, 'agreements.yaml');
const auditDb = join(fx.dir, 'router', 'audit.db');
const coordinator = createToken();

const FEW = [
  {
    id: 'WEN-ASIA',
    version: 1,
    title: 'Wildlife enforcement network, Asia',
    parties: ['SG', 'VN-CUSTOMS', 'CN'],
    alertTypes: ['seizure-report', 'suspicious-shipment', 'retraction'],
    maxHandling: 'TLP:AMBER',
    validFrom: '2019-01-01T00:00:00Z',
    validUntil: '2030-01-01T00:00:00Z',
  },
  {
    id: 'NG-TO-SG',
    version: 2,
    title: 'Nigeria to Singapore',
    parties: ['NG', 'SG'],
    flows: [{ from: ['NG'], to: ['SG'] }],
    alertTypes: ['seizure-report', 'suspicious-shipment', 'retraction'],
    maxHandling: 'TLP:AMBER+STRICT',
    validFrom: '2019-01-01T00:00:00Z',
  },
  {
    id: 'SG-KE-2019',
    version: 1,
    title: 'ended',
    parties: ['SG', 'KE'],
    alertTypes: ['seizure-report'],
    maxHandling: 'TLP:RED',
    validFrom: '2019-01-01T00:00:00Z',
    validUntil: '2020-01-01T00:00:00Z',
  },
  {
    id: 'SG-US-FUTURE',
    version: 1,
    title: 'not yet',
    parties: ['SG', 'US'],
    alertTypes: ['seizure-report'],
    maxHandling: 'TLP:RED',
    validFrom: '2099-01-01T00:00:00Z',
  },
];

/**
 * 996 more, after the few: bilateral agreements between agencies that already share one (never
 * HK-CED, which stays a non-party), for another alert type, or for seizure reports with a
 * ceiling no alert below is under. None allows any alert this test sends.
 */
const PAIRS = [
  ['SG-NPARKS', 'VN-CUSTOMS'],
  ['SG-NPARKS', 'CN-GACC'],
  ['SG-NPARKS', 'KE-KWS'],
  ['SG-NPARKS', 'US-FWS'],
  ['SG-NPARKS', 'NG-NCS'],
  ['VN-CUSTOMS', 'CN-GACC'],
] as const;
const THOUSAND = [
  ...FEW,
  ...Array.from({ length: 1000 - FEW.length }, (_, i) => ({
    id: `NEAR-${String(i).padStart(4, '0')}`,
    version: 1,
    title: 'near miss',
    parties: [...PAIRS[i % PAIRS.length]!],
    alertTypes: i % 5 === 0 ? ['seizure-report'] : ['consignee-flag'],
    maxHandling: 'TLP:CLEAR',
    validFrom: '2019-01-01T00:00:00Z',
  })),
];

/** The alerts each agreement set decides on: every branch of the matrix above. */
const ALERTS: (() => Alert)[] = [
  () => seizureReport('SG-NPARKS'),
  () => seizureReport('SG-NPARKS', { handling: 'TLP:RED' }),
  () => seizureReport('SG-NPARKS', { handling: 'TLP:GREEN' }),
  () => seizureReport('NG-NCS', { handling: 'TLP:AMBER+STRICT' }),
  () => seizureReport('VN-CUSTOMS'),
  () => seizureReport('HK-CED'),
];

interface Decision {
  forwarded: string[];
  /** Every other agency, with its refusal code. */
  refused: Record<string, string>;
}

let router: Router;

beforeAll(async () => {
  writeFileSync(agreementsFile, toYaml({ agreements: FEW }));
  const file = writeConfig(fx.dir, 'router', {
    instance: 'near-misses',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    checkpointIntervalMs: 200,
    coordinators: [{ name: 'analyst', tokenSha256: coordinator.sha256 }],
  });
  router = await startRouter(loadConfig({}, file), { log });
});
afterAll(async () => {
  await router?.close();
  fx.cleanup();
});

function withDb<T>(f: (db: ReturnType<typeof openDatabase>) => T): T {
  const db = openDatabase(auditDb, { readonly: true });
  try {
    return f(db);
  } finally {
    db.close();
  }
}

/** Routes the alert and reads the router's decision back from its audit log. */
async function decide(alert: Alert): Promise<Decision> {
  const nc = await nats.connect();
  await publishInbound(nc, alert, fx.keys[alert.origin]!);
  const records = await eventually(
    () => {
      const r = withDb((db) => traceAlert(db, alert.id));
      return r.some((x) => x.event === 'routed') ? r : undefined;
    },
    10_000,
    `the decision on ${alert.id}`,
  );
  const refused: Record<string, string> = {};
  for (const d of records.filter((r) => r.event === 'denied').flatMap(deniedRecipients))
    refused[d.recipient!] = d.reasonCode!;
  return {
    forwarded: forwardedCopies(records)
      .map((f) => `${f.recipient} ${f.agreementId}@${f.agreementVersion}`)
      .sort(),
    refused,
  };
}

async function loadAgreements(agreements: unknown[], marker: string): Promise<void> {
  writeFileSync(agreementsFile, toYaml({ agreements }));
  expect(router.reloadAgreements()).toBe(true);
  await eventually(
    () => lines.some((l) => l.includes('"agreements reloaded"') && l.includes(marker)),
    5000,
    'reload',
  );
}

describe('router - 1,000 agreements decide as the few that matter', () => {
  const before: Decision[] = [];
  const after: Decision[] = [];
  const afterIds: string[] = [];

  it('with the 4 agreements: the matrix as the agreements say', async () => {
    for (const make of ALERTS) before.push(await decide(make()));
    expect(before[0]).toEqual({
      forwarded: ['CN-GACC WEN-ASIA@1', 'VN-CUSTOMS WEN-ASIA@1'],
      refused: {
        'KE-KWS': 'DENY_EXPIRED',
        'US-FWS': 'DENY_NOT_YET_VALID',
        'NG-NCS': 'DENY_DIRECTION',
        'HK-CED': 'DENY_NOT_PARTY',
      },
    });
    expect(before[1]!.forwarded).toEqual([]);
    expect(before[1]!.refused['VN-CUSTOMS']).toBe('DENY_HANDLING');
    expect(before[3]!.forwarded).toEqual(['SG-NPARKS NG-TO-SG@2']);
  });

  it('with 1,000: the same recipients under the same agreements, the same code for every other agency', async () => {
    await loadAgreements(THOUSAND, 'NEAR-0995@1');
    for (const make of ALERTS) {
      const a = make();
      afterIds.push(a.id);
      after.push(await decide(a));
    }
    expect(after).toEqual(before);
    // Nothing refused reached a feed: only the copies the few agreements allow.
    const nc = await nats.connect();
    const copies = (await feedMessages(nc)).filter((m) =>
      afterIds.some((id) => m.msgId.startsWith(`${id}:`)),
    );
    expect(copies.map((m) => m.subject.split('.')[2]).sort()).toEqual(
      after.flatMap((d) => d.forwarded.map((f) => f.split(' ')[0])).sort(),
    );
  });

  it('one near-miss summary per decision, of codes only: no text per agreement', () => {
    withDb((db) => {
      for (const id of afterIds) {
        const denied = traceAlert(db, id).filter((r) => r.event === 'denied');
        expect(denied.filter((r) => r.reasonCode === NEAR_MISSES).length).toBeLessThanOrEqual(1);
        expect(denied.length).toBeLessThanOrEqual(2);
        // 1,000 agreements, yet no agreement is named: the entries stay as small as with 4.
        for (const r of denied) expect(`${r.reason}${r.detail}`).not.toContain('NEAR-');
      }
    });
  });

  it('a query for one partner finds its refusal with its own code; the trace API and hubctl say the same', async () => {
    const id = afterIds[0]!;
    withDb((db) => {
      const found = queryAudit(db, { partner: 'KE-KWS', outcome: 'denied', alertId: id });
      expect(found.map((r) => r.reasonCode)).toEqual([NEAR_MISSES]);
      expect(found.flatMap(deniedRecipients).filter((d) => d.recipient === 'KE-KWS')).toMatchObject(
        [{ reasonCode: 'DENY_EXPIRED' }],
      );
      // The non-party summary is still found the same way.
      const hk = queryAudit(db, { partner: 'HK-CED', outcome: 'denied', alertId: id });
      expect(hk.map((r) => r.reasonCode)).toEqual(['DENY_NOT_PARTY']);
      // An agency the alert went to is refused nothing.
      expect(queryAudit(db, { partner: 'VN-CUSTOMS', outcome: 'denied', alertId: id })).toEqual([]);
    });
    const res = await fetch(`${router.url}/v1/audit/trace/${id}`, {
      headers: { authorization: `Bearer ${coordinator.token}` },
    });
    expect(res.status).toBe(200);
    const { summary } = (await res.json()) as {
      summary: { deniedTo: { recipient: string; reason: string }[] };
    };
    expect(Object.fromEntries(summary.deniedTo.map((d) => [d.recipient, d.reason]))).toEqual(
      after[0]!.refused,
    );
    const q = await hubctl([
      'audit',
      'query',
      '--db',
      auditDb,
      '--partner',
      'US-FWS',
      '--outcome',
      'denied',
      '--json',
    ]);
    expect(q.code).toBe(0);
    const rows = q.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { alertId: string; reasonCode: string });
    expect(rows.filter((r) => afterIds.includes(r.alertId)).length).toBeGreaterThan(0);
    const table = await hubctl([
      'audit',
      'query',
      '--db',
      auditDb,
      '--partner',
      'US-FWS',
      '--outcome',
      'denied',
    ]);
    expect(table.code).toBe(0);
    // The table gives the partner its own code, not the summary's.
    const line = table.stdout.split('\n').find((l) => l.includes(id));
    expect(line).toContain('US-FWS');
    expect(line).toContain('DENY_NOT_YET_VALID');
  });

  it('the log still verifies against the checkpoint the router signed', async () => {
    await eventually(() => router.audit.latest, 10_000, 'a checkpoint');
    const anchor = router.audit.latest!;
    const v = withDb((db) =>
      verifyAuditLog(db, {
        anchor,
        hubKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
        witnesses: [],
        minWitnesses: 0,
      }),
    );
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
  });
});
