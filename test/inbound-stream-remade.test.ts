import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import { inboundStreamName } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  gatewaySettings,
  makeHubFixture,
  memoryLogger,
  seizureAgreement,
  routerSettings,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

/**
 * An agency's inbound stream deleted and made again under the same name (an operator clearing
 * it by hand, an agency removed and added back) numbers its messages from 1 again. The router
 * must not take the new stream's first messages for the old stream's, already decided: that
 * would forward an alert's copies and then skip its decision, so it would never be audited.
 */
const SENDER = 'SG-NPARKS';
const PARTNER = 'VN-CUSTOMS';
const AGENCIES = [SENDER, PARTNER];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
const routerLog = memoryLogger('router');
let router: Router;
let gateway: Gateway;

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [seizureAgreement('ALL', 'all', AGENCIES)] }));
  router = await startRouter(
    routerConfig(
      {},
      writeConfig(fx.dir, 'router', routerSettings(fx, nats.url, { agreementsFile })),
    ),
    { log: routerLog.log },
  );
  gateway = await startGateway(
    gatewayConfig(
      {},
      writeConfig(fx.dir, 'gw', gatewaySettings(fx, nats.url, SENDER, token.sha256)),
    ),
    { log: memoryLogger('gateway').log },
  );
}, 60_000);
afterAll(async () => {
  await gateway?.close();
  await router?.close();
  fx.cleanup();
});

async function send(): Promise<{ id: string; sequence: number }> {
  const res = await fetch(`${gateway.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
    body: JSON.stringify(seizureReport(SENDER)),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; sequence: number };
}

describe('inbound streams - a stream deleted and made again', () => {
  it('its new first messages are routed and audited, not taken for the old ones; the old ones stay on record', async () => {
    const stream = inboundStreamName(SENDER);
    const first = await send();
    expect(first.sequence).toBe(1);
    await eventually(() => router.store.routed(SENDER, first.id) !== undefined, 20_000, 'routed');

    // While the router runs (its pull on the stream under way), the stream goes and comes back.
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
    await provisionHub(jsm, AGENCIES);

    const second = await send();
    expect(second.sequence).toBe(1);
    await eventually(
      () => router.store.routed(SENDER, second.id) !== undefined,
      30_000,
      'the new stream’s first alert routed',
    );
    const copies = (await feedMessages(nc)).filter((m) => m.msgId.startsWith(`${second.id}:`));
    expect(copies.map((m) => m.msgId)).toEqual([`${second.id}:${PARTNER}:${SENDER}`]);
    expect(router.store.routed(SENDER, second.id)).toMatchObject({ stream, streamSeq: 1 });
    // The first alert is still on record, under the earlier stream's name and creation time.
    const old = router.store.routed(SENDER, first.id);
    expect(old?.streamSeq).toBe(1);
    expect(old?.stream).toMatch(new RegExp(`^${stream}@\\d{4}-\\d\\d-\\d\\dT`));
    expect(routerLog.lines.some((l) => l.includes('inbound stream made again since'))).toBe(true);
  }, 90_000);
});
