import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { queryAudit } from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { openDatabase } from '@alert-hub/runtime';
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
const configFile = () =>
  writeConfig(fx.dir, 'router', {
    instance: 'in-place',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
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

const inForce = () => router.http.inject({ url: '/metrics' }).then((r) => r.body);

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
    writeFileSync(agreementsFile, toYaml({ agreements: [SG_VN] }));
    router = await startRouter(loadConfig({}, configFile()), { log });
    expect(router.url).toMatch(/^http/);
  });
});
