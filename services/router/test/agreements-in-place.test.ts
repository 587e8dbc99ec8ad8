import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import {
  checkTermsUnchanged,
  termsDigests,
  writtenTermsDigests,
  type AgreementSet,
} from '@alert-hub/core';
import { queryAudit } from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { eventually, makeHubFixture, memoryLogger, writeConfig } from '@alert-hub/testkit';

/**
 * docs/operations.md "Changing an agreement": the terms under one `id@version` never change. A
 * reload that changes them is refused (the agreements in force stay, ERR_AGREEMENTS_CHANGED_IN_PLACE),
 * and so is a start with such a file, against the terms the audit log recorded.
 */
const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS']);
const { log, lines } = memoryLogger('agreements-in-place-test');
const agreementsFile = join(fx.dir, 'agreements.yaml');
const SG_VN = {
  id: 'SG-VN-2019',
  version: 1,
  title: 'Singapore and Viet Nam',
  parties: ['SG-NPARKS', 'VN-CUSTOMS'],
  alertTypes: ['seizure-report'],
  maxHandling: 'TLP:AMBER',
  validFrom: '2019-01-01T00:00:00Z',
};
let router: Router;
const prometheus = createToken();
const configFile = () =>
  writeConfig(fx.dir, 'router', {
    instance: 'in-place',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
  });

function loaded(): { reason: string | null; detail: Record<string, unknown> }[] {
  const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
  try {
    return queryAudit(db, { outcome: 'agreements-loaded', limit: 100 }).map((r) => ({
      reason: r.reason,
      detail: JSON.parse(r.detail!) as Record<string, unknown>,
    }));
  } finally {
    db.close();
  }
}

const inForce = () =>
  router.http
    .inject({ url: '/metrics', headers: { authorization: `Bearer ${prometheus.token}` } })
    .then((r) => {
      expect(r.statusCode).toBe(200);
      return r.body;
    });

beforeAll(async () => {
  writeFileSync(agreementsFile, toYaml({ agreements: [SG_VN] }));
  router = await startRouter(loadConfig({}, configFile()), { log });
});
afterAll(async () => {
  await router?.close();
  fx.cleanup();
});

describe('router - agreements changed in place', () => {
  it('the agreements-loaded entry records the file by its base name and each label’s terms digest', async () => {
    const first = await eventually(() => loaded()[0], 5000, 'the audit at start');
    expect(first.reason).toBe('agreements.yaml');
    expect(first.reason).not.toContain(fx.dir);
    expect(Object.keys(first.detail['terms'] as object)).toEqual(['SG-VN-2019@1']);
  });

  it('a reload with other terms under the same id@version is refused; the old terms stay', async () => {
    writeFileSync(
      agreementsFile,
      toYaml({ agreements: [{ ...SG_VN, parties: [...SG_VN.parties, 'KE-KWS'] }] }),
    );
    expect(router.reloadAgreements()).toBe(false);
    const line = lines.find(
      (l) => l.includes('agreements file refused') && l.includes('ERR_AGREEMENTS_CHANGED_IN_PLACE'),
    );
    expect(line).toBeDefined();
    expect((JSON.parse(line!) as { labels: unknown }).labels).toEqual(['SG-VN-2019@1']);
    expect(await inForce()).toMatch(
      /ahub_router_agreements_reloads_total\{[^}]*result="refused"[^}]*\} [1-9]/,
    );
    // Nothing new in the audit, nothing reloaded: version 1 as first loaded stays in force.
    expect(loaded()).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"agreements reloaded"'))).toEqual([]);
  });

  it('the same terms in another spelling, or a new version, are accepted', async () => {
    // Member order and comments differ; the terms are the same: nothing to refuse.
    writeFileSync(
      agreementsFile,
      [
        '# the same agreement, its members in another order',
        'agreements:',
        '  - version: 1',
        '    id: SG-VN-2019',
        '    parties: [SG-NPARKS, VN-CUSTOMS]   # both',
        '    title: Singapore and Viet Nam',
        "    maxHandling: 'TLP:AMBER'",
        '    alertTypes: [seizure-report]',
        "    validFrom: '2019-01-01T00:00:00Z'",
        '',
      ].join('\n'),
    );
    expect(router.reloadAgreements()).toBe(true);
    const again = await eventually(() => loaded()[1], 5000, 'the audit of the reload');
    expect(again.detail['terms']).toEqual(loaded()[0]!.detail['terms']);
    writeFileSync(
      agreementsFile,
      toYaml({ agreements: [{ ...SG_VN, version: 2, parties: [...SG_VN.parties, 'KE-KWS'] }] }),
    );
    expect(router.reloadAgreements()).toBe(true);
    const last = await eventually(() => loaded()[2], 5000, 'the audit of version 2');
    expect(last.detail['agreements']).toEqual(['SG-VN-2019@2']);
    // Back to version 1, with its first terms: still the same label, same terms.
    writeFileSync(agreementsFile, toYaml({ agreements: [SG_VN] }));
    expect(router.reloadAgreements()).toBe(true);
  });

  it('edits that keep the terms are accepted: a default written out, conditions: {}, a time as +00:00, parties reordered', async () => {
    const first = loaded()[0]!.detail['terms'];
    // The start, the other spelling, version 2, back to version 1 (the previous test's).
    const before = await eventually(
      () => (loaded().length === 4 ? 4 : undefined),
      5000,
      'the audit of the previous reloads',
    );
    const spellings = [
      { ...SG_VN, onwardSharing: false },
      { ...SG_VN, conditions: {} },
      { ...SG_VN, validFrom: '2019-01-01T00:00:00+00:00' },
      { ...SG_VN, parties: [...SG_VN.parties].reverse() },
      {
        ...SG_VN,
        validFrom: '2019-01-01T08:00:00.000+08:00',
        conditions: { routeTouchesRecipient: false },
      },
    ];
    for (const [i, a] of spellings.entries()) {
      writeFileSync(agreementsFile, toYaml({ agreements: [a] }));
      expect(router.reloadAgreements(), JSON.stringify(a)).toBe(true);
      const entry = await eventually(() => loaded()[before + i], 5000, 'the audit of the reload');
      expect(entry.detail['terms']).toEqual(first);
    }
    // A real change of terms is still refused, a default's opposite and another instant alike.
    for (const a of [
      { ...SG_VN, onwardSharing: true },
      { ...SG_VN, conditions: { routeTouchesRecipient: true } },
      { ...SG_VN, validFrom: '2019-01-01T00:00:00+01:00' },
      { ...SG_VN, alertTypes: ['seizure-report', 'consignee-flag'] },
    ]) {
      writeFileSync(agreementsFile, toYaml({ agreements: [a] }));
      expect(router.reloadAgreements(), JSON.stringify(a)).toBe(false);
    }
    expect(loaded()).toHaveLength(before + spellings.length);
    writeFileSync(agreementsFile, toYaml({ agreements: [SG_VN] }));
    expect(router.reloadAgreements()).toBe(true);
  });

  it('a start with other terms under an id@version the audit log recorded is refused', async () => {
    await router.close();
    writeFileSync(
      agreementsFile,
      toYaml({ agreements: [{ ...SG_VN, version: 2, maxHandling: 'TLP:RED' }] }),
    );
    await expect(startRouter(loadConfig({}, configFile()), { log })).rejects.toMatchObject({
      code: 'ERR_AGREEMENTS_CHANGED_IN_PLACE',
      labels: ['SG-VN-2019@2'],
    });
    // The same terms in another spelling start (they did not before the normal form).
    writeFileSync(
      agreementsFile,
      toYaml({
        agreements: [
          {
            ...SG_VN,
            parties: ['VN-CUSTOMS', 'SG-NPARKS'],
            validFrom: '2019-01-01T00:00:00+00:00',
            conditions: {},
            onwardSharing: false,
          },
        ],
      }),
    );
    router = await startRouter(loadConfig({}, configFile()), { log });
    expect(router.url).toMatch(/^http/);
  });
});

describe('agreements - terms digests', () => {
  const set = (a: object, o?: object): AgreementSet =>
    ({ agreements: [a], ...(o ? { operations: [o] } : {}) }) as unknown as AgreementSet;
  const OP = {
    id: 'THUNDERBALL-2019',
    version: 1,
    name: 'Thunderball',
    period: { from: '2019-06-04T00:00:00Z', until: '2019-06-30T23:59:59Z' },
    members: ['SG', 'VN', 'KE-KWS'],
    alertTypes: ['seizure-report', 'consignee-flag'],
    maxHandling: 'TLP:AMBER',
  };
  const FLOWS = {
    ...SG_VN,
    alertTypes: ['seizure-report', 'consignee-flag'],
    flows: [
      { from: ['SG-NPARKS'], to: ['VN-CUSTOMS'] },
      { from: ['VN-CUSTOMS'], to: ['SG-NPARKS', 'SG'] },
    ],
  };

  it('sets in another order give the same digest: alert types, flows and their sides, operation members', () => {
    const base = termsDigests(set(FLOWS, OP));
    const shuffled = termsDigests(
      set(
        {
          ...FLOWS,
          alertTypes: ['consignee-flag', 'seizure-report'],
          flows: [
            { from: ['VN-CUSTOMS'], to: ['SG', 'SG-NPARKS'] },
            { from: ['SG-NPARKS'], to: ['VN-CUSTOMS'] },
          ],
        },
        {
          ...OP,
          members: ['KE-KWS', 'VN', 'SG'],
          alertTypes: ['consignee-flag', 'seizure-report'],
          period: { from: '2019-06-04T02:00:00+02:00', until: '2019-06-30T23:59:59.000Z' },
        },
      ),
    );
    expect(shuffled).toEqual(base);
    // A flow's direction is a term: swapping from and to is another agreement.
    const reversed = termsDigests(
      set({ ...FLOWS, flows: [{ from: ['VN-CUSTOMS'], to: ['SG-NPARKS'] }, FLOWS.flows[1]] }, OP),
    );
    expect(reversed.get('SG-VN-2019@1')).not.toBe(base.get('SG-VN-2019@1'));
    expect(
      termsDigests(set(FLOWS, { ...OP, maxHandling: 'TLP:RED' })).get(
        'operation THUNDERBALL-2019@1',
      ),
    ).not.toBe(base.get('operation THUNDERBALL-2019@1'));
  });

  it('a digest recorded before the normal form (the file as written) still matches the unchanged file', () => {
    const recorded = writtenTermsDigests(set(SG_VN, OP));
    expect(recorded.get('SG-VN-2019@1')).not.toBe(termsDigests(set(SG_VN)).get('SG-VN-2019@1'));
    // The unchanged file passes, and the normal-form digests come back to be recorded from now on.
    expect(checkTermsUnchanged(recorded, set(SG_VN, OP))).toEqual(termsDigests(set(SG_VN, OP)));
    // Other terms are refused against an old record too.
    expect(() => checkTermsUnchanged(recorded, set({ ...SG_VN, maxHandling: 'TLP:RED' }))).toThrow(
      expect.objectContaining({
        code: 'ERR_AGREEMENTS_CHANGED_IN_PLACE',
        labels: ['SG-VN-2019@1'],
      }),
    );
    // A new-form record matches any spelling of the same terms.
    const current = termsDigests(set(SG_VN, OP));
    expect(() =>
      checkTermsUnchanged(current, set({ ...SG_VN, parties: ['VN-CUSTOMS', 'SG-NPARKS'] }, OP)),
    ).not.toThrow();
  });
});
