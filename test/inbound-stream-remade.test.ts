import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import { ROUTER_CONSUMER, Streams, inboundStreamName } from '@alert-hub/core';
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
 *
 * Nor may it take a stream never deleted for one made again: nats-server 2.9.10 gives a stream it
 * recovers at start a creation time of "now" in its file store (filestore.go
 * newFileStoreWithCreated) while it reports the one in meta.inf; the next update of the stream
 * (the router provisions at every start) writes "now" into meta.inf, so after the following
 * restart the stream reports another `created`. Its records keep the stream's name, and a message
 * unacknowledged at the restart and delivered again is known as decided, not refused as a
 * duplicate of itself (a second decision, a dead letter, a notice to its sender).
 */
const SENDER = 'SG-NPARKS';
const PARTNER = 'VN-CUSTOMS';
const AGENCIES = [SENDER, PARTNER];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
let routerLog = memoryLogger('router');
let router: Router | undefined;
let gateway: Gateway | undefined;
let routerFile: string;

async function startTheRouter(): Promise<Router> {
  routerLog = memoryLogger('router');
  router = await startRouter(routerConfig({}, routerFile), { log: routerLog.log });
  return router;
}

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [seizureAgreement('ALL', 'all', AGENCIES)] }));
  routerFile = writeConfig(fx.dir, 'router', routerSettings(fx, nats.url, { agreementsFile }));
  await startTheRouter();
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
  const res = await fetch(`${gateway!.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
    body: JSON.stringify(seizureReport(SENDER)),
  });
  expect(res.status).toBe(202);
  return (await res.json()) as { id: string; sequence: number };
}

async function created(stream: string): Promise<string> {
  const nc = await nats.connect();
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).created;
  } finally {
    await nc.close();
  }
}

describe('inbound streams - a stream deleted and made again', () => {
  it('its new first messages are routed and audited, not taken for the old ones; the old ones stay on record', async () => {
    const stream = inboundStreamName(SENDER);
    const first = await send();
    expect(first.sequence).toBe(1);
    await eventually(() => router!.store.routed(SENDER, first.id) !== undefined, 20_000, 'routed');

    // While the router runs (its pull on the stream under way), the stream goes and comes back.
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(stream);
    await provisionHub(jsm, AGENCIES);

    const second = await send();
    expect(second.sequence).toBe(1);
    await eventually(
      () => router!.store.routed(SENDER, second.id) !== undefined,
      30_000,
      'the new stream’s first alert routed',
    );
    const copies = (await feedMessages(nc)).filter((m) => m.msgId.startsWith(`${second.id}:`));
    expect(copies.map((m) => m.msgId)).toEqual([`${second.id}:${PARTNER}:${SENDER}`]);
    expect(router!.store.routed(SENDER, second.id)).toMatchObject({ stream, streamSeq: 1 });
    // The first alert is still on record, under the earlier stream's name and creation time.
    const old = router!.store.routed(SENDER, first.id);
    expect(old?.streamSeq).toBe(1);
    expect(old?.stream).toMatch(new RegExp(`^${stream}@\\d{4}-\\d\\d-\\d\\dT`));
    expect(routerLog.lines.some((l) => l.includes('inbound stream made again since'))).toBe(true);
  }, 90_000);
});

describe('inbound streams - restarts of nats-server', () => {
  it('a stream whose creation time nats-server rewrote is the same stream: no relabelling, a redelivered message is not decided again', async () => {
    const stream = inboundStreamName(SENDER);
    const sent = await send();
    await eventually(() => router!.store.routed(SENDER, sent.id) !== undefined, 20_000, 'routed');
    await gateway!.close();
    gateway = undefined;
    const madeAt = await created(stream);

    // The documented restart, twice: router, then nats-server, stopped; nats-server, router started.
    await router!.close();
    await nats.server.restart();
    await startTheRouter(); // provisioning updates the stream recovered a moment ago
    await router!.close();
    // The alert was not acknowledged before the restart (a lost ack): JetStream delivers it again.
    {
      const nc = await nats.connect();
      await (await jetstreamManager(nc)).consumers.delete(stream, ROUTER_CONSUMER);
      await nc.close();
    }
    await nats.server.restart();
    // what nats-server 2.9.10 does: the same stream, another creation time
    expect(await created(stream)).not.toBe(madeAt);

    await startTheRouter(); // makes the router's consumer again: the alert is delivered again
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await eventually(
      async () => {
        const c = await jsm.consumers.info(stream, ROUTER_CONSUMER);
        return c.delivered.stream_seq >= sent.sequence && c.num_ack_pending === 0;
      },
      20_000,
      'the alert delivered again and acknowledged',
    );
    expect(routerLog.lines.filter((l) => l.includes('inbound stream made again'))).toEqual([]);
    expect(router!.store.routed(SENDER, sent.id)).toMatchObject({
      stream,
      streamSeq: sent.sequence,
    });
    // not refused as a duplicate of itself
    expect((await jsm.streams.info(Streams.DeadLetter)).state.messages).toBe(0);
    expect(routerLog.lines.filter((l) => l.includes('ERR_DUPLICATE_ALERT'))).toEqual([]);
  }, 120_000);
});
