import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { inboundStreamName, outboxStreamName } from '@alert-hub/core';
import { loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { connectNats, createToken, provisionLeafNode } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  provision,
  seizureReport,
  startNatsServer,
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
});
afterAll(async () => {
  await sg?.close();
  await leafNc?.close();
  await leaf?.stop();
  fx.cleanup();
});

const submit = () =>
  fetch(`${sg.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${submitter.token}` },
    body: JSON.stringify(seizureReport(SG)),
  });
const messages = async (nc: NatsConnection, stream: string) =>
  (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
const atHub = async () => messages(await hub.connect(), inboundStreamName(SG));
const inOutbox = async () => messages(leafNc, outboxStreamName(SG));
const readyz = async () => {
  const res = await fetch(`${sg.url}/readyz`);
  return {
    status: res.status,
    checks: ((await res.json()) as { checks: Record<string, string> }).checks,
  };
};
const gauge = async (name: string) =>
  Number(
    new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)$`, 'm').exec(
      await (await fetch(`${sg.url}/metrics`)).text(),
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

  it('a limit, as the README says: it does not start without the hub, even with its leaf up (ERR_NATS_UNREACHABLE)', async () => {
    const config = writeConfig(fx.dir, `${SG}-no-hub`, {
      agency: SG,
      signingKey: fx.keyFiles[SG],
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, `data-${SG}-no-hub`),
      http: { port: 0 },
      // Nothing listens on port 1 of loopback.
      nats: { servers: ['nats://127.0.0.1:1'], connectAttempts: 2, connectRetryMs: 100 },
      outbox: { servers: [leaf.url] },
      feed: { enabled: false },
      witness: { enabled: false },
      clients: [{ name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] }],
    });
    await expect(startGateway(loadConfig({}, config), { log })).rejects.toMatchObject({
      code: 'ERR_NATS_UNREACHABLE',
    });
  });
});
