import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { WEB_CSRF_HEADER, createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  provision,
  startService,
  writeConfig,
  OPEN_JS_API,
  type ServiceProcess,
} from '@alert-hub/testkit';

/**
 * docs/operations.md "API tokens: add, revoke a leaked one": SIGHUP reads the configuration file
 * again; the gateway's `clients` and the router's `coordinators` and `operators` take effect at
 * once, a revoked token's console sessions end, and an invalid file changes nothing.
 */
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const officer = createToken();
const added = createToken();
const analyst = createToken();
const leaked = createToken();
const operator = createToken();
const scraper = createToken();
let gateway: ServiceProcess;
let router: ServiceProcess;

const gatewayConfig = (clients: unknown[]) =>
  writeConfig(fx.dir, 'gateway', {
    agency: 'SG-NPARKS',
    signingKey: fx.keyFiles['SG-NPARKS'],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, 'gateway'),
    http: { port: 0 },
    nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
    clients,
  });
const routerConfig = (tokens: {
  coordinators: unknown[];
  operators: unknown[];
  metricsReaders?: unknown[];
}) =>
  writeConfig(fx.dir, 'router', {
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile: join(fx.dir, 'agreements.yaml'),
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    ...tokens,
  });

beforeAll(async () => {
  writeFileSync(join(fx.dir, 'agreements.yaml'), toYaml({ agreements: [] }));
  await provision(await nats.connect(), AGENCIES);
  const g = gatewayConfig([
    { name: 'officers', tokenSha256: officer.sha256, roles: ['read-feed'] },
  ]);
  const r = routerConfig({
    coordinators: [
      { name: 'analyst', tokenSha256: analyst.sha256 },
      { name: 'leaked', tokenSha256: leaked.sha256 },
    ],
    operators: [],
  });
  // The required settings come from the environment too (the gateway README allows either), so
  // that an empty file on SIGHUP would be a complete configuration with no tokens.
  const env = {
    AHUB_SIGNING_KEY: fx.keyFiles['SG-NPARKS'],
    AHUB_TRUST_DIR: fx.trustDir,
  };
  [gateway, router] = await Promise.all([
    startService('gateway', g, {
      env: { ...env, AHUB_AGENCY: 'SG-NPARKS', AHUB_DATA_DIR: join(fx.dir, 'gateway') },
    }),
    startService('router', r, {
      env: {
        ...env,
        AHUB_SIGNING_KEY: fx.hubKeyFile,
        AHUB_AGREEMENTS_FILE: join(fx.dir, 'agreements.yaml'),
        AHUB_DATA_DIR: join(fx.dir, 'router'),
      },
    }),
  ]);
});
afterAll(async () => {
  await Promise.all([gateway?.stop(), router?.stop()]);
  fx.cleanup();
});

const status = async (url: string, token: string) =>
  (await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status;

/** SIGHUPs the process and waits for the `count`-th line with `msg`. */
async function hangUp(p: ServiceProcess, msg: string): Promise<Record<string, unknown>> {
  const before = p.logs.filter((l) => l['msg'] === msg).length;
  p.proc.kill('SIGHUP');
  return eventually(
    () => p.logs.filter((l) => l['msg'] === msg)[before],
    10_000,
    `"${msg}" after SIGHUP`,
  );
}

async function signIn(base: string, token: string): Promise<string> {
  const res = await fetch(`${base}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [WEB_CSRF_HEADER]: '1' },
    body: JSON.stringify({ token }),
  });
  expect(res.status).toBe(200);
  return res.headers.get('set-cookie')!.split(';')[0]!;
}

describe('tokens - SIGHUP reloads them from the configuration file', () => {
  it('gateway: a client added then SIGHUP works; revoked then SIGHUP gets 401 and its console session ends', async () => {
    const feed = `${gateway.url}/v1/feed`;
    expect(await status(feed, officer.token)).toBe(200);
    expect(await status(feed, added.token)).toBe(401);
    gatewayConfig([
      { name: 'officers', tokenSha256: officer.sha256, roles: ['read-feed'] },
      { name: 'vn-officer', tokenSha256: added.sha256, roles: ['submit', 'read-feed'] },
    ]);
    const line = await hangUp(gateway, 'API tokens reloaded');
    expect(line['clients']).toEqual(['officers', 'vn-officer']);
    expect(await status(feed, added.token)).toBe(200);
    const cookie = await signIn(`${gateway.url}/console`, officer.token);
    const me = () => fetch(`${gateway.url}/console/api/session`, { headers: { cookie } });
    expect((await me()).status).toBe(200);
    // Live feeds open with the token, and with the console session, before it leaks.
    const streams = (
      [
        { authorization: `Bearer ${officer.token}` },
        { cookie },
        { authorization: `Bearer ${added.token}` },
      ] as Record<string, string>[]
    ).map(async (headers) => {
      const res = await fetch(`${gateway.url}/v1/feed/stream`, { headers });
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      await reader.read(); // the `retry:` line: open
      return reader;
    });
    const [byToken, bySession, other] = await Promise.all(streams);
    const ended = async (r: ReadableStreamDefaultReader<Uint8Array>) => {
      for (;;) if ((await r.read()).done) return true;
    };

    // The officers' token leaked: its entry leaves the file.
    gatewayConfig([{ name: 'vn-officer', tokenSha256: added.sha256, roles: ['read-feed'] }]);
    await hangUp(gateway, 'API tokens reloaded');
    expect(await status(feed, officer.token)).toBe(401);
    expect((await me()).status).toBe(401);
    expect(await status(feed, added.token)).toBe(200);
    // The streams it opened end at the reload (within the 15 s heartbeat at the latest); another
    // client's stays open.
    const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), 10_000));
    expect(await Promise.race([ended(byToken!), timeout])).toBe(true);
    expect(await Promise.race([ended(bySession!), timeout])).toBe(true);
    const stillOpen = await Promise.race([
      other!.read().then(() => 'data'),
      new Promise((r) => setTimeout(() => r('open'), 500)),
    ]);
    expect(stillOpen).toBe('open');
    await other!.cancel();
  });

  it('gateway: an invalid file on SIGHUP keeps the tokens in force and logs ERR_CONFIG_INVALID; the process lives on', async () => {
    writeFileSync(join(fx.dir, 'gateway.yaml'), 'clients: [ {name: x, tokenSha256: nothex}\n');
    const line = await hangUp(
      gateway,
      'configuration file refused on reload; the API tokens in force stay',
    );
    expect(line['code']).toBe('ERR_CONFIG_INVALID');
    expect(await status(`${gateway.url}/v1/feed`, added.token)).toBe(200);
    expect(await status(`${gateway.url}/v1/feed`, officer.token)).toBe(401);
    // Valid YAML, invalid configuration: the same.
    gatewayConfig([{ name: 'x', tokenSha256: 'not-hex', roles: ['read-feed'] }]);
    expect(
      (await hangUp(gateway, 'configuration file refused on reload; the API tokens in force stay'))[
        'code'
      ],
    ).toBe('ERR_CONFIG_INVALID');
    expect(await status(`${gateway.url}/v1/feed`, added.token)).toBe(200);
    expect(gateway.proc.exitCode).toBeNull();
  });

  it('gateway: an empty or comment-only file on SIGHUP is refused like an invalid one (the settings from the environment would make it valid, with no client)', async () => {
    for (const text of ['', '  \n', '# clients being rewritten\n\n']) {
      writeFileSync(join(fx.dir, 'gateway.yaml'), text);
      const line = await hangUp(
        gateway,
        'configuration file refused on reload; the API tokens in force stay',
      );
      expect(line['code']).toBe('ERR_CONFIG_INVALID');
      expect(await status(`${gateway.url}/v1/feed`, added.token)).toBe(200);
    }
    expect(gateway.proc.exitCode).toBeNull();
  });

  it('router: coordinators, operators and metrics readers added or revoked by SIGHUP; the dashboard session of a revoked token ends', async () => {
    const audit = `${router.url}/v1/audit?limit=1`;
    const deadLetters = `${router.url}/v1/deadletters`;
    const metrics = `${router.url}/metrics`;
    expect(await status(metrics, scraper.token)).toBe(401);
    expect(await status(metrics, leaked.token)).toBe(200);
    expect(await status(audit, leaked.token)).toBe(200);
    expect(await status(deadLetters, operator.token)).toBe(401);
    const cookie = await signIn(`${router.url}/dashboard`, leaked.token);
    const me = () => fetch(`${router.url}/dashboard/api/session`, { headers: { cookie } });
    expect((await me()).status).toBe(200);

    routerConfig({
      coordinators: [{ name: 'analyst', tokenSha256: analyst.sha256 }],
      operators: [{ name: 'on-call', tokenSha256: operator.sha256 }],
      metricsReaders: [{ name: 'prometheus', tokenSha256: scraper.sha256 }],
    });
    const line = await hangUp(router, 'API tokens reloaded');
    expect(line['coordinators']).toEqual(['analyst']);
    expect(line['operators']).toEqual(['on-call']);
    expect(line['metricsReaders']).toEqual(['prometheus']);
    expect(await status(metrics, scraper.token)).toBe(200);
    expect(await status(metrics, leaked.token)).toBe(401);
    expect(await status(metrics, operator.token)).toBe(200);
    expect(await status(audit, leaked.token)).toBe(401);
    expect((await me()).status).toBe(401);
    expect(await status(audit, analyst.token)).toBe(200);
    expect(await status(deadLetters, operator.token)).toBe(200);

    writeFileSync(join(fx.dir, 'router.yaml'), 'coordinators: {');
    const refused = await hangUp(
      router,
      'configuration file refused on reload; the API tokens in force stay',
    );
    expect(refused['code']).toBe('ERR_CONFIG_INVALID');
    expect(await status(audit, analyst.token)).toBe(200);
    expect(await status(deadLetters, operator.token)).toBe(200);
    expect(await status(audit, leaked.token)).toBe(401);
    expect(router.proc.exitCode).toBeNull();
  });

  it('router: a token revoked by SIGHUP gets 401 while the agreements file is refused; an empty file changes nothing', async () => {
    const audit = `${router.url}/v1/audit?limit=1`;
    const deadLetters = `${router.url}/v1/deadletters`;
    expect(await status(audit, analyst.token)).toBe(200);
    // An agreements file being edited (an unknown member): refused on its own.
    const agreementsRefused = router.logs.filter(
      (l) => l['msg'] === 'agreements file refused; the previous agreements stay in force',
    ).length;
    writeFileSync(join(fx.dir, 'agreements.yaml'), toYaml({ agreements: [], note: 'draft' }));
    routerConfig({
      coordinators: [],
      operators: [{ name: 'on-call', tokenSha256: operator.sha256 }],
    });
    const line = await hangUp(router, 'API tokens reloaded');
    expect(line['coordinators']).toEqual([]);
    // The metrics reader the test before added is not in this file: revoked.
    expect(line['metricsReaders']).toEqual([]);
    expect(await status(`${router.url}/metrics`, scraper.token)).toBe(401);
    expect(await status(audit, analyst.token)).toBe(401);
    expect(await status(deadLetters, operator.token)).toBe(200);
    const refusal = await eventually(
      () =>
        router.logs.filter(
          (l) => l['msg'] === 'agreements file refused; the previous agreements stay in force',
        )[agreementsRefused],
      10_000,
      'the agreements refusal',
    );
    expect(refusal['code']).toBe('ERR_AGREEMENTS_INVALID');

    for (const text of ['', '# operators being rewritten\n']) {
      writeFileSync(join(fx.dir, 'router.yaml'), text);
      const refused = await hangUp(
        router,
        'configuration file refused on reload; the API tokens in force stay',
      );
      expect(refused['code']).toBe('ERR_CONFIG_INVALID');
      expect(await status(deadLetters, operator.token)).toBe(200);
    }
    writeFileSync(join(fx.dir, 'agreements.yaml'), toYaml({ agreements: [] }));
    expect(router.proc.exitCode).toBeNull();
  });
});
