import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { auditProofSubject, inboundStreamName, outboxStreamName } from '@alert-hub/core';
import { databaseFile, loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { connectNats, createToken, provisionLeafNode } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  openFilesUnder,
  provision,
  seizureReport,
  startNatsServer,
  startTcpProxy,
  writeConfig,
  type NatsServer,
} from '@alert-hub/testkit';

// A gateway behind a leaf node has two connections: the hub (`nats.servers`) for its feed, the
// witness and readiness, and the leaf (`outbox.servers`) where its alerts are stored. Here two
// plain nats-servers stand for them: what matters is which connection each part uses.
const SG = 'SG-NPARKS';
const hub = useNatsServer();
const fx = makeHubFixture([SG, 'VN-CUSTOMS']);
const submitter = createToken();
const { log } = memoryLogger('leaf-outbox-test');
let leaf: NatsServer;
let leafNc: NatsConnection;
let sg: Gateway;

beforeAll(async () => {
  await provision(await hub.connect(), [SG, 'VN-CUSTOMS']);
  leaf = await startNatsServer({ env: process.env });
  leafNc = await connectNats({ servers: leaf.url, name: 'leaf-operators' });
  await provisionLeafNode(leafNc, SG);
  const config = writeConfig(fx.dir, SG, {
    agency: SG,
    signingKey: fx.keyFiles[SG],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, `data-${SG}`),
    http: { port: 0 },
    nats: { servers: [hub.url], publishTimeoutMs: 1500, jsApiPrefix: OPEN_JS_API },
    outbox: { servers: [leaf.url] },
    feed: { enabled: false },
    witness: { enabled: false },
    clients: [{ name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] }],
  });
  sg = await startGateway(loadConfig({}, config), { log });
  // Behind its leaf the gateway reaches the hub in the background.
  await eventually(
    async () => ((await readyz()).status === 200 ? true : undefined),
    10_000,
    'the gateway to reach the hub',
  );
});
afterAll(async () => {
  await sg?.close();
  await leafNc?.close();
  await leaf?.stop();
  fx.cleanup();
});

const submit = (gw = sg) =>
  fetch(`${gw.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${submitter.token}` },
    body: JSON.stringify(seizureReport(SG)),
  });
const messages = async (nc: NatsConnection, stream: string) =>
  (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
const atHub = async () => messages(await hub.connect(), inboundStreamName(SG));
const inOutbox = async () => messages(leafNc, outboxStreamName(SG));
const readyz = async (gw = sg) => {
  const res = await fetch(`${gw.url}/readyz`);
  return {
    status: res.status,
    checks: ((await res.json()) as { checks: Record<string, string> }).checks,
  };
};
const gauge = async (name: string, gw = sg) =>
  Number(
    new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(
      await (await fetch(`${gw.url}/metrics`)).text(),
    )?.[1],
  );

describe('gateway - behind a leaf node, two connections', () => {
  it('the shipped Prometheus rules alert on the leaf connection, the one whose loss refuses alerts', () => {
    const rules = parseYaml(
      readFileSync(
        new URL('../../../deploy/prometheus/alert-hub.rules.yml', import.meta.url),
        'utf8',
      ),
    ) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const down = rules.groups.flatMap((g) => g.rules).find((r) => r.alert === 'AlertHubNatsDown');
    expect(down?.expr).toMatch(/\bahub_gateway_outbox_nats_connected == 0\b/);
  });

  it('an alert is stored in the leaf’s outbox, not at the hub; with the leaf’s connection down it is refused 503 and /readyz names outboxNats, the hub’s connection still up', async () => {
    expect(await readyz()).toMatchObject({
      status: 200,
      checks: { nats: 'connected', outboxNats: 'connected', outbox: 'ok' },
    });
    expect(await gauge('ahub_gateway_outbox_nats_connected')).toBe(1);
    const [hubBefore, outboxBefore] = [await atHub(), await inOutbox()];
    expect((await submit()).status).toBe(202);
    expect(await inOutbox()).toBe(outboxBefore + 1);
    expect(await atHub()).toBe(hubBefore);

    await leaf.kill();
    const down = await eventually(
      async () => {
        const r = await readyz();
        return r.status === 503 && r.checks['outboxNats'] !== 'connected' ? r : undefined;
      },
      20_000,
      'readiness to follow the leaf connection',
    );
    expect(down.checks['nats']).toBe('connected');
    expect(await gauge('ahub_gateway_outbox_nats_connected')).toBe(0);
    expect(await gauge('ahub_gateway_nats_connected')).toBe(1);
    const refused = await submit();
    expect(refused.status).toBe(503);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_NATS_UNAVAILABLE',
    );
    expect(await atHub()).toBe(hubBefore);

    await leaf.restart();
    await eventually(
      async () => ((await readyz()).status === 200 ? true : undefined),
      30_000,
      'the gateway back on its leaf',
    );
    expect((await submit()).status).toBe(202);
    expect(await atHub()).toBe(hubBefore);
  }, 90_000);

  it('without the hub: it starts on its leaf, takes alerts (202, stored in the outbox), says the hub is not connected and answers 503 for what needs the hub; once the hub answers it is ready and uses it', async () => {
    // The hub behind a link that is down: connections are accepted and dropped at once.
    const link = await startTcpProxy(hub.server.port);
    link.cut();
    const reader = createToken();
    const config = writeConfig(fx.dir, `${SG}-no-hub`, {
      agency: SG,
      signingKey: fx.keyFiles[SG],
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, `data-${SG}-no-hub`),
      http: { port: 0 },
      // One attempt at start would be the end of a gateway without a leaf; behind one it keeps on.
      nats: {
        servers: [`nats://127.0.0.1:${link.port}`],
        publishTimeoutMs: 1500,
        jsApiPrefix: OPEN_JS_API,
        connectAttempts: 1,
        connectRetryMs: 200,
      },
      outbox: { servers: [leaf.url] },
      feed: { enabled: true },
      witness: { enabled: true },
      clients: [
        { name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] },
        { name: 'officers', tokenSha256: reader.sha256, roles: ['read-feed'] },
      ],
    });
    const gw = await startGateway(loadConfig({}, config), { log });
    const hubNc = await hub.connect();
    try {
      const get = (path: string, token = reader.token) =>
        fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${token}` } });

      const [hubBefore, outboxBefore] = [await atHub(), await inOutbox()];
      const res = await submit(gw);
      expect(res.status).toBe(202);
      const { id } = (await res.json()) as { id: string };
      expect(await inOutbox()).toBe(outboxBefore + 1);
      expect(await atHub()).toBe(hubBefore);

      // Past its one attempt at start, it keeps trying.
      const { status, checks } = await eventually(
        async () => {
          const r = await readyz(gw);
          return /\(attempt [2-9]: /.test(r.checks['nats'] ?? '') ? r : undefined;
        },
        10_000,
        'a second attempt at the hub',
      );
      expect(status).toBe(503);
      expect(checks['nats']).toMatch(/^not connected yet, connecting in the background \(/);
      expect(checks['outboxNats']).toBe('connected');
      expect(checks['jetstream']).toMatch(/^unreachable: /);
      expect(checks['feed']).toBe('waiting for the feed consumer');
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
      expect(await gauge('ahub_gateway_nats_connected', gw)).toBe(0);
      expect(await gauge('ahub_gateway_outbox_nats_connected', gw)).toBe(1);
      // A proof of delivery needs the hub: refused, to be asked again.
      const proof = await get(`/v1/audit/inclusion/${id}`);
      expect(proof.status).toBe(503);
      expect(proof.headers.get('retry-after')).not.toBeNull();
      expect(((await proof.json()) as { error: { code: string } }).error.code).toBe(
        'ERR_NATS_UNAVAILABLE',
      );
      // The inbox is at the agency: officers read it without the hub.
      expect((await get('/v1/feed')).status).toBe(200);

      // A stand-in for the router at the hub, answering proof requests.
      hubNc.subscribe(auditProofSubject(gw.config.witness.auditLog, SG), {
        callback: (_err, m) => {
          m.respond(JSON.stringify({ error: { code: 'ERR_NOT_FOUND', message: 'no entry' } }));
        },
      });
      await hubNc.flush();
      link.restore();
      const ready = await eventually(
        async () => {
          const r = await readyz(gw);
          return r.status === 200 ? r.checks : undefined;
        },
        20_000,
        'the gateway to reach the hub and start its feed',
      );
      expect(ready).toMatchObject({ nats: 'connected', jetstream: 'ok', feed: 'consuming' });
      expect(await gauge('ahub_gateway_nats_connected', gw)).toBe(1);
      // The proof request now reaches the hub, whose answer comes back.
      const found = await get(`/v1/audit/inclusion/${id}`);
      expect(found.status).toBe(404);
      expect(((await found.json()) as { error: { code: string } }).error.code).toBe(
        'ERR_NOT_FOUND',
      );
    } finally {
      await gw.close();
      await link.close();
    }
  }, 60_000);

  it('closed while the hub is still out of reach, or failing to start: the attempts stop, nothing is left running', async () => {
    const { log: quiet, lines } = memoryLogger('leaf-outbox-close');
    const configAt = (name: string, port: number) =>
      loadConfig(
        {},
        writeConfig(fx.dir, `${SG}-${name}`, {
          agency: SG,
          signingKey: fx.keyFiles[SG],
          trustDir: fx.trustDir,
          dataDir: join(fx.dir, `data-${SG}-${name}`),
          http: { port },
          // Nothing listens on port 1 of loopback.
          nats: { servers: ['nats://127.0.0.1:1'], connectRetryMs: 100 },
          outbox: { servers: [leaf.url] },
          witness: { enabled: true },
          clients: [{ name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] }],
        }),
      );
    const attempts = () => lines.filter((l) => l.includes('NATS unreachable')).length;
    const noMoreAttempts = async () => {
      const after = attempts();
      await new Promise((r) => setTimeout(r, 500));
      expect(attempts()).toBe(after);
    };
    const gw = await startGateway(configAt('closed', 0), { log: quiet });
    await eventually(async () => attempts() >= 2, 10_000, 'two attempts at the hub');
    await gw.close();
    await noMoreAttempts();
    // Its HTTP port taken (by the gateway of this file): it does not start, stops trying and
    // closes its database.
    const portTaken = configAt('port-taken', Number(new URL(sg.url).port));
    await expect(startGateway(portTaken, { log: quiet })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await noMoreAttempts();
    expect(openFilesUnder(databaseFile(portTaken))).toEqual([]);
    expect(lines.filter((l) => l.includes('the connection to the hub failed'))).toEqual([]);
  });
});
