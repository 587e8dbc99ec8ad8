import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { ROUTER_CONSUMER, Streams, inboundStreamName } from '@alert-hub/core';
import { parseCheckpoint, parseNote } from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
  scrapeMetrics,
} from '@alert-hub/testkit';

// Whatever keeps the router's checkpoints from NATS (an operator who controls nats-server can map
// the checkpoint subject away), entries must not pile up unwitnessed: past auditUnpublishedMaxMs
// the router takes no new inbound message until a checkpoint is out (docs/security.md).
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('audit-unpublished-test');
let router: Router;
const prometheus = createToken();
let nc: NatsConnection;

function start(tag: string, extra: Record<string, unknown> = {}): Promise<Router> {
  return startRouter(
    loadConfig(
      {},
      writeConfig(fx.dir, `router-${tag}`, {
        instance: 'router-a',
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile: join(fx.dir, 'agreements.yaml'),
        dataDir: join(fx.dir, 'router'),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: 0 },
        metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
        checkpointIntervalMs: 100,
        auditUnpublishedMaxMs: 1000,
        ...extra,
      }),
    ),
    { log },
  );
}

beforeAll(async () => {
  writeFileSync(
    join(fx.dir, 'agreements.yaml'),
    toYaml({ agreements: [seizureAgreement('WEN-ASIA', 'Asia', AGENCIES)] }),
  );
  router = await start('first');
  nc = await nats.connect();
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await router?.close().catch(() => undefined);
  fx.cleanup();
});

const size = (note: string | undefined) => (note ? parseCheckpoint(parseNote(note).text).size : 0);

async function metric(name: string): Promise<number> {
  const text = await scrapeMetrics(router.url, prometheus.token);
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.slice(line.lastIndexOf(' ') + 1));
}

describe('router - checkpoints that cannot reach NATS', () => {
  it('past auditUnpublishedMaxMs routing pauses (readyz says why), nothing is served against the unpublished checkpoint, and everything resumes once one is out', async () => {
    const jsm = await jetstreamManager(nc);
    const routed = (id: string) => router.store.routed('SG-NPARKS', id) !== undefined;
    const first = seizureReport('SG-NPARKS');
    await publishInbound(nc, first, fx.keys['SG-NPARKS']!);
    await eventually(
      () => routed(first.id) && size(router.audit.latest) === router.store.audit.size,
      20_000,
      'a published checkpoint',
    );
    const published = size(router.audit.latest);

    // The checkpoint stream gone: every publish of a checkpoint fails.
    await jsm.streams.delete(Streams.Audit);
    const second = seizureReport('SG-NPARKS');
    await publishInbound(nc, second, fx.keys['SG-NPARKS']!);
    await eventually(() => routed(second.id), 20_000, 'the second alert routed');
    const ready = await eventually(
      async () => {
        const res = await fetch(`${router.url}/readyz`, {
          headers: { authorization: `Bearer ${prometheus.token}` },
        });
        const body = (await res.json()) as { checks: { audit: string } };
        return res.status === 503 && body.checks.audit.includes('routing paused')
          ? body
          : undefined;
      },
      20_000,
      'routing paused',
    );
    expect(ready.checks.audit).toMatch(/checkpoints not published for \d+ s/);
    expect(await metric('ahub_router_audit_unpublished_seconds')).toBeGreaterThan(1);
    await eventually(
      () => lines.some((l) => l.includes('routing paused until one does')),
      20_000,
      'the error logged',
    );
    // What the router signed and could not publish is nobody's anchor, nor proof.
    expect(size(router.audit.latest)).toBe(published);

    // Paused: a new alert waits in the stream, unrouted.
    const third = seizureReport('SG-NPARKS');
    await publishInbound(nc, third, fx.keys['SG-NPARKS']!);
    await new Promise((r) => setTimeout(r, 500));
    expect(routed(third.id)).toBe(false);
    const c = await jsm.consumers.info(inboundStreamName('SG-NPARKS'), ROUTER_CONSUMER);
    expect(c.num_pending + c.num_ack_pending).toBe(1);

    // A restart does not start the clock again: the entries no published checkpoint covers have
    // waited since the first of them, so the router starts paused (the stream still gone: it is
    // not provisioned again).
    await router.close();
    router = await start('second', { provision: false });
    expect((await fetch(`${router.url}/readyz`)).status).toBe(503);
    await new Promise((r) => setTimeout(r, 500));
    expect(routed(third.id)).toBe(false);

    // The stream back: the checkpoint signed meanwhile goes out (nothing new had to be signed),
    // routing resumes, the waiting alert is routed and checkpointed.
    await provisionHub(jsm, AGENCIES);
    await eventually(() => routed(third.id), 20_000, 'the waiting alert routed');
    await eventually(
      () => size(router.audit.latest) === router.store.audit.size,
      20_000,
      'a published checkpoint of every entry',
    );
    expect((await fetch(`${router.url}/readyz`)).status).toBe(200);
    expect(await metric('ahub_router_audit_unpublished_seconds')).toBe(0);
  });
});
