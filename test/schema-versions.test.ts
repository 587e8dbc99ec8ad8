import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { decodeEnvelope, verifyCountersignature, verifyOrigin, type Alert } from '@alert-hub/core';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  provision,
  registry,
  routerDrained,
  seizureReport,
  writeConfig,
  hubctl,
  sampleSeizureReportV2,
  startService,
  type ServiceProcess,
  OPEN_JS_API,
} from '@alert-hub/testkit';

/*
 * v1 and v2 side by side, with real processes: a router, the sender's gateway, a partner that
 * reads both versions (VN) and one whose agreements entry says it reads only v1 (KE).
 */
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const officer = createToken();
const coordinator = createToken();
const gw: Record<string, ServiceProcess> = {};
let router: ServiceProcess;
let agreementsFile: string;

beforeAll(async () => {
  agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'WEN-GLOBAL',
          version: 1,
          title: 'Wildlife enforcement',
          parties: ['SG', 'VN', 'KE'],
          alertTypes: ['seizure-report', 'retraction'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
      readers: [{ party: 'KE-KWS', schemaVersions: [1] }],
    }),
  );
  await provision(await nats.connect(), AGENCIES);
  router = await startService(
    'router',
    writeConfig(fx.dir, 'router', {
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router'),
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      http: { port: 0 },
      coordinators: [{ name: 'wco-analyst', tokenSha256: coordinator.sha256 }],
    }),
  );
  for (const agency of AGENCIES) {
    gw[agency] = await startService(
      'gateway',
      writeConfig(fx.dir, `gw-${agency}`, {
        agency,
        signingKey: fx.keyFiles[agency],
        trustDir: fx.trustDir,
        dataDir: join(fx.dir, `gw-${agency}`),
        http: { port: 0 },
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        clients: [
          { name: 'officers', tokenSha256: officer.sha256, roles: ['submit', 'read-feed'] },
        ],
      }),
    );
  }
});
afterAll(async () => {
  await Promise.all([router?.stop(), ...Object.values(gw).map((g) => g.stop())]);
  fx.cleanup();
});

const auth = (t: string) => ({ authorization: `Bearer ${t}` });

async function send(alert: unknown): Promise<string> {
  const res = await fetch(`${gw['SG-NPARKS']!.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth(officer.token) },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function inbox(agency: string): Promise<Map<string, { alert: Alert }>> {
  const res = await fetch(`${gw[agency]!.url}/v1/feed?limit=1000`, {
    headers: auth(officer.token),
  });
  const items = ((await res.json()) as { items: { id: string; alert: Alert }[] }).items;
  return new Map(items.map((i) => [i.id, i]));
}

async function trace(id: string) {
  const res = await fetch(`${router.url}/v1/audit/trace/${id}`, {
    headers: auth(coordinator.token),
  });
  return (
    (await res.json()) as {
      summary: {
        forwardedTo: { recipient: string }[];
        deniedTo: { recipient: string; reason: string; detail: string }[];
      };
    }
  ).summary;
}

function quarantined(agency: string): number {
  const db = openDatabase(join(fx.dir, `gw-${agency}`, `gateway-${agency}.db`), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM quarantine').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

describe('schema versions - v1 and v2 side by side, and a v1-only partner', () => {
  it('v1 reaches both partners unchanged and verifies; v2 reaches the v2 reader and is refused for the v1-only partner with its reason', async () => {
    const v1 = seizureReport('SG-NPARKS');
    const v2 = sampleSeizureReportV2('SG-NPARKS');
    const v1Id = await send(v1);
    const v2Id = await send(v2);
    await routerDrained(await nats.connect());

    const vn = await eventually(
      async () => {
        const m = await inbox('VN-CUSTOMS');
        return m.has(v1Id) && m.has(v2Id) ? m : undefined;
      },
      20_000,
      'both alerts at VN-CUSTOMS',
    );
    const ke = await eventually(
      async () => {
        const m = await inbox('KE-KWS');
        return m.has(v1Id) ? m : undefined;
      },
      20_000,
      'the v1 alert at KE-KWS',
    );
    // v1: byte for byte what was sent, at both partners
    expect(vn.get(v1Id)!.alert).toEqual(v1);
    expect(ke.get(v1Id)!.alert).toEqual(v1);
    // v2: at VN with everything it says; never at KE, and nothing in KE's quarantine
    expect(vn.get(v2Id)!.alert).toEqual(v2);
    expect(ke.has(v2Id)).toBe(false);
    expect(quarantined('KE-KWS')).toBe(0);
    expect(quarantined('VN-CUSTOMS')).toBe(0);

    // The router's record says why KE did not get it.
    const t2 = await trace(v2Id);
    expect(t2.forwardedTo.map((f) => f.recipient)).toEqual(['VN-CUSTOMS']);
    expect(t2.deniedTo).toEqual([
      {
        recipient: 'KE-KWS',
        reason: 'DENY_SCHEMA_VERSION',
        // The decision's near-miss summary: codes, not each agreement's text (the dry run below
        // explains it in full).
        detail: expect.stringContaining('DENY_SCHEMA_VERSION 1') as string,
      },
    ]);
    const t1 = await trace(v1Id);
    expect(t1.forwardedTo.map((f) => f.recipient).sort()).toEqual(['KE-KWS', 'VN-CUSTOMS']);
  });

  it('an outcome of version 2 is not sent to an origin that reads only version 1 (DENY_SCHEMA_VERSION); version 1 reaches it', async () => {
    const post = async (agency: string, alert: unknown) => {
      const res = await fetch(`${gw[agency]!.url}/v1/alerts`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...auth(officer.token) },
        body: JSON.stringify(alert),
      });
      expect(res.status).toBe(202);
      return ((await res.json()) as { id: string }).id;
    };
    // KE-KWS, which reads only version 1, sends an alert; VN-CUSTOMS reports on it in both versions.
    const answered = await post('KE-KWS', seizureReport('KE-KWS', { id: undefined }));
    await eventually(
      async () => (await inbox('VN-CUSTOMS')).has(answered),
      20_000,
      "KE-KWS's alert at VN-CUSTOMS",
    );
    const outcome = (version: number) => ({
      type: 'outcome',
      version,
      handling: 'TLP:AMBER',
      answers: answered,
      result: 'under-investigation',
    });
    const v2 = await post('VN-CUSTOMS', outcome(2));
    const v1 = await post('VN-CUSTOMS', outcome(1));
    await routerDrained(await nats.connect());

    const t2 = await trace(v2);
    expect(t2.forwardedTo).toEqual([]);
    expect(t2.deniedTo).toEqual([
      {
        recipient: 'KE-KWS',
        reason: 'DENY_SCHEMA_VERSION',
        detail: expect.stringContaining('DENY_SCHEMA_VERSION 1') as string,
      },
    ]);
    expect((await trace(v1)).forwardedTo.map((f) => f.recipient)).toEqual(['KE-KWS']);
    const atKe = await eventually(
      async () => (await inbox('KE-KWS')).get(v1),
      20_000,
      'the version-1 outcome at KE-KWS',
    );
    expect(atKe.alert).toMatchObject({ version: 1, answers: answered });
    expect((await inbox('KE-KWS')).has(v2)).toBe(false);
    expect(quarantined('KE-KWS')).toBe(0);
  });

  it('a routed v2 copy verifies for its recipient with the v2 schema id in the signed header', async () => {
    const v2 = sampleSeizureReportV2('SG-NPARKS');
    const id = await send(v2);
    await routerDrained(await nats.connect());
    await eventually(async () => (await inbox('VN-CUSTOMS')).has(id), 20_000, 'the copy');
    const db = openDatabase(join(fx.dir, 'gw-VN-CUSTOMS', 'gateway-VN-CUSTOMS.db'), {
      readonly: true,
    });
    const row = db.prepare('SELECT envelope FROM inbox WHERE alert_id = ?').get(id) as {
      envelope: Buffer;
    };
    db.close();
    const jws = decodeEnvelope(row.envelope);
    const trust = loadTrustStore(fx.trustDir, registry);
    const { header } = await verifyOrigin(jws, { trust, registry });
    expect(header.schema).toBe('https://schemas.alert-hub.example/alerts/seizure-report/v2.json');
    await expect(
      verifyCountersignature(jws, { trust, recipient: 'VN-CUSTOMS', alertId: id }),
    ).resolves.toMatchObject({ header: { recipient: 'VN-CUSTOMS' } });
  });

  it('hubctl send prints what the gateway normalised', async () => {
    const v2 = sampleSeizureReportV2('SG-NPARKS');
    v2.seizure.shipment.containers[0]!.number = 'CSQU 305438 3';
    const r = await hubctl(['send', '-', '--gateway', gw['SG-NPARKS']!.url], {
      env: { AHUB_TOKEN: officer.token },
      input: JSON.stringify(v2),
    });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      // Unquoted, as validate and route --dry-run print the same change.
      'normalised /seizure/shipment/containers/0/number: CSQU 305438 3 -> CSQU3054383',
    );
  });

  it('hubctl route --dry-run shows the refusal for the v1-only partner before anything is sent', async () => {
    const file = join(fx.dir, 'v2.json');
    writeFileSync(file, JSON.stringify(sampleSeizureReportV2('SG-NPARKS')));
    const r = await hubctl([
      'route',
      file,
      '--dry-run',
      '--from',
      'SG-NPARKS',
      '--agreements',
      agreementsFile,
      '--trust',
      fx.trustDir,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as {
      allowed: { recipient: string }[];
      denied: { recipient: string; reason: string }[];
    };
    expect(d.allowed.map((a) => a.recipient)).toEqual(['VN-CUSTOMS']);
    expect(d.denied).toEqual([
      expect.objectContaining({
        recipient: 'KE-KWS',
        reason: 'DENY_SCHEMA_VERSION',
        detail: expect.stringContaining('KE-KWS reads schema versions 1') as string,
      }),
    ]);
  });
});
