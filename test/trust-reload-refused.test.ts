import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { revokeKey } from '@alert-hub/operator';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  provision,
  publishInbound,
  routerSettings,
  seizureReport,
  startService,
  writeConfig,
  type ServiceProcess,
} from '@alert-hub/testkit';

/**
 * docs/protocol.md §5.3 "When a change applies": on SIGHUP the router and the gateway read
 * certs/trust/ again; a store with a fault is refused whole, logged, and the store and key in
 * force stay, until a store without a fault is loaded.
 */
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const REFUSED = 'reload refused; the previous trust store and key stay in force';
const RELOADED = 'trust store and signing key reloaded';
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const officer = createToken();
const vnFile = join(fx.trustDir, 'VN-CUSTOMS.jwks.json');
let gateway: ServiceProcess;
let router: ServiceProcess;

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'SG-VN',
          version: 1,
          title: 'Singapore and Viet Nam',
          parties: ['SG-NPARKS', 'VN-CUSTOMS'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  await provision(await nats.connect(), AGENCIES);
  [router, gateway] = await Promise.all([
    startService(
      'router',
      writeConfig(fx.dir, 'router', routerSettings(fx, nats.url, { agreementsFile })),
    ),
    startService(
      'gateway',
      writeConfig(fx.dir, 'gateway', {
        agency: 'SG-NPARKS',
        signingKey: fx.keyFiles['SG-NPARKS'],
        trustDir: fx.trustDir,
        dataDir: join(fx.dir, 'gateway'),
        http: { port: 0 },
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        clients: [{ name: 'officers', tokenSha256: officer.sha256, roles: ['submit'] }],
      }),
    ),
  ]);
});
afterAll(async () => {
  await Promise.all([gateway?.stop(), router?.stop()]);
  fx.cleanup();
});

/** SIGHUPs the process and waits for the next line with `msg`. */
async function hangUp(p: ServiceProcess, msg: string): Promise<Record<string, unknown>> {
  const before = p.logs.filter((l) => l['msg'] === msg).length;
  p.proc.kill('SIGHUP');
  return eventually(
    () => p.logs.filter((l) => l['msg'] === msg)[before],
    10_000,
    `"${msg}" after SIGHUP`,
  );
}

const authorized = { authorization: `Bearer ${officer.token}` };

/** Submits a seizure report from SG-NPARKS through its gateway: the HTTP status and body. */
async function submit() {
  const alert = seizureReport('SG-NPARKS');
  const res = await fetch(`${gateway.url}/v1/alerts`, {
    method: 'POST',
    headers: { ...authorized, 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  return { id: alert.id, status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Waits until the router's notice reached the gateway: the alert's state there. */
async function decided(id: string) {
  return eventually(
    async () => {
      const res = await fetch(`${gateway.url}/v1/alerts/${id}/status`, { headers: authorized });
      const s = (await res.json()) as { state: string; code?: string };
      return s.state === 'accepted' ? undefined : s;
    },
    15_000,
    `the router's decision on ${id}`,
  );
}

describe('trust store - a faulty one on SIGHUP is refused whole; the one in force stays', () => {
  it('router and gateway: a revocation in a store with a fault is not applied (logged, still routed), and is once the fault is mended', async () => {
    const before = await submit();
    expect(before.status).toBe(202);
    expect(await decided(before.id)).toMatchObject({ state: 'routed' });

    // SG-NPARKS's key is revoked, and in the same store VN-CUSTOMS's file carries a private
    // member (its private JWK pasted in): a fault, so the whole store is refused.
    revokeKey({ certsDir: fx.certsDir, kid: fx.keys['SG-NPARKS']!.kid, reason: 'keyCompromise' });
    const good = readFileSync(vnFile, 'utf8');
    const doc = JSON.parse(good) as { keys: Record<string, unknown>[] };
    writeFileSync(
      vnFile,
      JSON.stringify({ ...doc, keys: doc.keys.map((k) => ({ ...k, d: 'AAAA' })) }),
    );
    for (const p of [router, gateway]) {
      const line = await hangUp(p, REFUSED);
      expect(line['level'], p.kind).toBe(50);
      expect(String(line['reason']), p.kind).toContain('/VN-CUSTOMS.jwks.json/keys/0/d');
      expect(
        p.logs.filter((l) => l['msg'] === RELOADED),
        p.kind,
      ).toEqual([]);
    }
    // Both still verify with the store in force, where SG-NPARKS's key is not revoked: the
    // gateway accepts the alert and the router routes it.
    const during = await submit();
    expect(during.status).toBe(202);
    expect(await decided(during.id)).toMatchObject({ state: 'routed' });
    expect(router.proc.exitCode).toBeNull();
    expect(gateway.proc.exitCode).toBeNull();

    // The fault mended: the store is loaded, and the revocation with it.
    writeFileSync(vnFile, good);
    for (const p of [router, gateway]) await hangUp(p, RELOADED);
    const after = await submit();
    expect(after.status).toBe(422);
    expect(after.body).toMatchObject({ error: { code: 'ERR_KEY_REVOKED' } });
    // The router too: an alert signed with the key, put on the inbound stream directly, is
    // refused, and the refusal is told to SG-NPARKS's gateway (the notice names no alert id):
    // the first refusal of the case.
    await publishInbound(await nats.connect(), seizureReport('SG-NPARKS'), fx.keys['SG-NPARKS']!);
    const refusals = await eventually(
      async () => {
        const res = await fetch(`${gateway.url}/v1/refusals`, { headers: authorized });
        const { items } = (await res.json()) as { items: Record<string, unknown>[] };
        return items.length > 0 ? items : undefined;
      },
      15_000,
      'the router’s refusal',
    );
    expect(refusals).toMatchObject([
      { subject: 'ahub.in.SG-NPARKS.seizure-report', code: 'ERR_KEY_REVOKED' },
    ]);
  });
});
