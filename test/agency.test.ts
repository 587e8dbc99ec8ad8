import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { inboxPrefix } from '@alert-hub/core';
import { createDevPki, devPkiPaths, generateKey } from '@alert-hub/operator';
import { connectNats, createToken } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  feedMessages,
  hubctl,
  routerDrained,
  seizureReport,
  spawnService,
  startNatsServer,
  type NatsServer,
  type ServiceProcess,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';

/**
 * Adding and removing an agency on a running hub, with real processes: nats-server with mutual
 * TLS, one account per agency (its security part rendered by `hubctl nats-config --fragment`
 * into a file the server includes), the router and a gateway per agency. `hubctl agency add`
 * does the hub's part in one step; the new agency's gateway then connects, sends and receives.
 * `hubctl agency remove` after the agreements dropped it: its connection is refused and nothing
 * is forwarded to it.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';

let dir: string;
let certs: string;
let natsDir: string;
let nats: NatsServer;
let router: ServiceProcess;
const gateways: Record<string, ServiceProcess> = {};
let natsArgs: string[];
let agreementsFile: string;
const token = createToken();
const coordinator = createToken();
let keKeys: string;

const logFile = (name: string) => join(dir, 'logs', `${name}.log`);
const count = (file: string, needle: string) => {
  try {
    return readFileSync(file, 'utf8').split(needle).length - 1;
  } catch {
    return 0;
  }
};
const tlsOf = (who: string) => {
  const f = devPkiPaths(join(certs, 'dev'), who);
  return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile };
};

function agreements(parties: string[]) {
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'AFRICA-ASIA',
          version: parties.length,
          title: 'wildlife seizures',
          parties,
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
}

async function startGateway(agency: string, signingKey: string): Promise<ServiceProcess> {
  const file = join(dir, `gateway-${agency}.yaml`);
  writeFileSync(
    file,
    toYaml({
      agency,
      signingKey,
      trustDir: join(certs, 'trust'),
      dataDir: join(dir, 'gateways', agency),
      http: { port: 0 },
      nats: { servers: [nats.url], tls: tlsOf(agency) },
      clients: [{ name: 'systems', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
    }),
  );
  const g = await spawnService('gateway', file, {
    env: process.env,
    logFile: logFile(`gateway-${agency}`),
    captureLogs: false,
  });
  gateways[agency] = g;
  return g;
}

/** SIGHUP-driven reloads are asynchronous: wait until each process logged its own. */
async function waitForLog(file: string, needle: string, before: number, what: string) {
  await eventually(() => count(file, needle) > before, 60_000, what);
}

const auth = () => ({ authorization: `Bearer ${token.token}` });

async function send(agency: string): Promise<string> {
  const alert = seizureReport(agency);
  const res = await fetch(`${gateways[agency]!.url}/v1/alerts`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status, await res.text()).toBe(202);
  return alert.id;
}

async function feedIds(agency: string): Promise<string[]> {
  const res = await fetch(`${gateways[agency]!.url}/v1/feed?limit=1000`, { headers: auth() });
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ahub-agency-'));
  certs = join(dir, 'certs');
  natsDir = join(dir, 'nats');
  mkdirSync(join(dir, 'logs'), { recursive: true });
  mkdirSync(natsDir, { recursive: true });
  const validity = { now: new Date(Date.now() - 3600_000), validDays: 365 };
  const keys: Record<string, string> = {};
  for (const a of [NG, VN])
    keys[a] = generateKey({ certsDir: certs, principal: a, ...validity }).privateFile;
  const hubKey = generateKey({
    certsDir: certs,
    principal: LOCAL_ROUTER,
    role: 'router',
    ...validity,
  });
  await createDevPki({ dir: join(certs, 'dev'), principals: [LOCAL_ROUTER, NG, VN] });
  // The security part in its own file, included by the server's configuration.
  natsArgs = ['--fragment', '--out', join(natsDir, 'security.conf')];
  const rendered = await hubctl(['nats-config', '--certs', certs, ...natsArgs]);
  expect(rendered.code, rendered.stderr).toBe(0);
  nats = await startNatsServer({
    dir: natsDir,
    env: process.env,
    config: 'include ./security.conf',
  });

  agreementsFile = join(dir, 'agreements.yaml');
  agreements(['NG', 'VN']);
  const routerFile = join(dir, 'router.yaml');
  writeFileSync(
    routerFile,
    toYaml({
      instance: 'router-1',
      signingKey: hubKey.privateFile,
      trustDir: join(certs, 'trust'),
      agreementsFile,
      dataDir: join(dir, 'router'),
      nats: { servers: [nats.url], tls: tlsOf(LOCAL_ROUTER) },
      http: { port: 0 },
      coordinators: [{ name: 'coordinator', tokenSha256: coordinator.sha256 }],
      checkpointIntervalMs: 1000,
      // the copies forwarded are counted on the feed stream after the partners took them
      streams: KEEP_READ_COPIES,
    }),
  );
  router = await spawnService('router', routerFile, {
    env: process.env,
    logFile: logFile('router'),
    captureLogs: false,
  });
  await Promise.all([startGateway(NG, keys[NG]!), startGateway(VN, keys[VN]!)]);
  // Kenya's key, made on its side.
  keKeys = mkdtempSync(join(tmpdir(), 'ahub-ke-'));
  generateKey({ certsDir: keKeys, principal: KE, ...validity });
}, 180_000);

afterAll(async () => {
  for (const g of Object.values(gateways)) await g.stop();
  await router?.stop();
  await nats?.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(keKeys, { recursive: true, force: true });
});

const RELOADED = '"msg":"trust store and signing key reloaded"';
const NATS_RELOADED = 'Reloaded server configuration';
const AGREEMENTS_RELOADED = '"msg":"agreements reloaded"';

describe('agency - added and removed on a running hub', () => {
  it('hubctl agency add: trust store, NATS account, certificate, reloads; the new agency connects, sends and receives', async () => {
    const before = {
      nats: count(join(natsDir, 'nats-server.log'), NATS_RELOADED),
      router: count(logFile('router'), RELOADED),
      vn: count(logFile(`gateway-${VN}`), RELOADED),
      ng: count(logFile(`gateway-${NG}`), RELOADED),
    };
    const r = await hubctl([
      'agency',
      'add',
      KE,
      '--jwks',
      join(keKeys, 'trust', `${KE}.jwks.json`),
      '--certs',
      certs,
      '--dev-cert',
      '--agreements',
      agreementsFile,
      '--nats-pid',
      String(nats.pid),
      ...[router.proc.pid, gateways[NG]!.proc.pid, gateways[VN]!.proc.pid].flatMap((p) => [
        '--reload',
        String(p),
      ]),
      '--json',
      '--',
      ...natsArgs,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      agency: KE,
      added: true,
      natsConfigRendered: true,
      agreementNamesIt: false,
    });
    expect(readFileSync(join(natsDir, 'security.conf'), 'utf8')).toContain(`"${KE}" {`);
    await waitForLog(
      join(natsDir, 'nats-server.log'),
      NATS_RELOADED,
      before.nats + 1,
      'nats reloads',
    );
    await waitForLog(logFile('router'), RELOADED, before.router, 'router reload');
    await waitForLog(logFile(`gateway-${VN}`), RELOADED, before.vn, 'VN reload');
    await waitForLog(logFile(`gateway-${NG}`), RELOADED, before.ng, 'NG reload');

    // Adding the agency again with the same keys changes nothing.
    const again = await hubctl([
      'agency',
      'add',
      KE,
      '--jwks',
      join(keKeys, 'trust', `${KE}.jwks.json`),
      '--certs',
      certs,
      '--json',
    ]);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ added: false });

    const agreementsBefore = count(logFile('router'), AGREEMENTS_RELOADED);
    agreements(['NG', 'VN', KE]);
    await waitForLog(logFile('router'), AGREEMENTS_RELOADED, agreementsBefore, 'agreements');

    await startGateway(KE, join(keKeys, 'private', KE));
    const fromKe = await send(KE);
    const fromNg = await send(NG);
    await eventually(
      async () =>
        (await feedIds(NG)).includes(fromKe) &&
        (await feedIds(VN)).includes(fromKe) &&
        (await feedIds(KE)).includes(fromNg),
      60_000,
      'KE to send and receive',
    );
  }, 300_000);

  it('hubctl agency remove: refused while an agreement names it; afterwards its connection is refused and nothing is forwarded to it', async () => {
    const refused = await hubctl([
      'agency',
      'remove',
      KE,
      '--certs',
      certs,
      '--agreements',
      agreementsFile,
      '--',
      ...natsArgs,
    ]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('ERR_AGREEMENTS_INVALID');
    expect(readFileSync(join(certs, 'trust', `${KE}.jwks.json`), 'utf8')).toContain(KE);

    // 1. Out of every agreement.
    const agreementsBefore = count(logFile('router'), AGREEMENTS_RELOADED);
    agreements(['NG', 'VN']);
    await waitForLog(logFile('router'), AGREEMENTS_RELOADED, agreementsBefore, 'agreements');
    // 2 and 3. Out of the trust store and the NATS configuration; everything reloaded.
    const natsBefore = count(join(natsDir, 'nats-server.log'), NATS_RELOADED);
    const routerBefore = count(logFile('router'), RELOADED);
    const r = await hubctl([
      'agency',
      'remove',
      KE,
      '--certs',
      certs,
      '--agreements',
      agreementsFile,
      '--nats-pid',
      String(nats.pid),
      ...[router.proc.pid, gateways[NG]!.proc.pid, gateways[VN]!.proc.pid].flatMap((p) => [
        '--reload',
        String(p),
      ]),
      '--',
      ...natsArgs,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(natsDir, 'security.conf'), 'utf8')).not.toContain(`"${KE}"`);
    await waitForLog(
      join(natsDir, 'nats-server.log'),
      NATS_RELOADED,
      natsBefore + 1,
      'nats reloads',
    );
    await waitForLog(logFile('router'), RELOADED, routerBefore, 'router reload');

    // A new connection with KE's certificate is refused.
    await expect(
      connectNats(
        {
          servers: nats.url,
          name: 'KE after removal',
          inboxPrefix: inboxPrefix(KE),
          tls: tlsOf(KE),
        },
        { timeoutMs: 5_000 },
      ).then(async (nc) => {
        await nc.close();
        return 'connected';
      }),
    ).rejects.toThrow(/authorization/i);
    // Its gateway lost its connection and is not ready any more.
    await eventually(
      async () => (await fetch(`${gateways[KE]!.url}/readyz`)).status === 503,
      60_000,
      "KE's gateway to lose NATS",
    );

    // Nothing is forwarded to it.
    const after = await send(NG);
    await eventually(async () => (await feedIds(VN)).includes(after), 60_000, 'VN delivery');
    const hubNc = await connectNats({
      servers: nats.url,
      name: 'test hub',
      inboxPrefix: inboxPrefix(LOCAL_ROUTER),
      tls: tlsOf(LOCAL_ROUTER),
    });
    try {
      await routerDrained(hubNc);
      const copies = (await feedMessages(hubNc)).filter((m) => m.msgId.startsWith(`${after}:`));
      expect(copies.map((c) => c.subject)).toEqual([`ahub.feed.${VN}.${NG}.seizure-report`]);
    } finally {
      await hubNc.close();
    }
  }, 300_000);
});
