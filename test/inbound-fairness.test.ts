import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  ROUTER_CONSUMER,
  Streams,
  feedSubject,
  inboundStreamName,
  inboundSubject,
} from '@alert-hub/core';
import { generateKey } from '@alert-hub/operator';
import { createToken, openDatabase, unhandled } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  provision,
  seizureReport,
  writeConfig,
  OPEN_JS_API,
  startService,
  type ServiceProcess,
  scrapeMetrics,
} from '@alert-hub/testkit';

/**
 * One agency flooding its own inbound stream does not hold another agency's alert back: the
 * router reads every agency's stream in turn (docs/security.md, "Denial of service by a valid
 * agency"). Kenya publishes thousands of junk messages straight on its inbound subject, as a
 * valid agency with a NATS connection can; Singapore then sends one alert through its gateway.
 */
const nats = useNatsServer();
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS'];
const fx = makeHubFixture(AGENCIES);
const token = createToken();
const prometheus = createToken();
const FLOOD = 10_000;
let router: ServiceProcess;
let gateway: ServiceProcess;
const auditDb = join(fx.dir, 'router', 'audit.db');

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'ALL',
          version: 1,
          title: 't',
          parties: ['SG', 'VN', 'KE'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:RED',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  // Each agency's inbound stream, with the router's consumer on it.
  await provision(await nats.connect(), AGENCIES);
  // Kenya's flood, all in its stream before the router starts: 200 bytes each, not envelopes.
  const ke = jetstream(await nats.connect({ name: 'KE-KWS' }));
  const junk = new Uint8Array(200).fill(0x41);
  const subject = inboundSubject('KE-KWS', 'seizure-report');
  for (let i = 0; i < FLOOD; i += 500)
    await Promise.all(Array.from({ length: 500 }, () => ke.publish(subject, junk)));
  router = await startService(
    'router',
    writeConfig(fx.dir, 'router', {
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router'),
      nats: { servers: [nats.url] },
      http: { port: 0 },
      metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
    }),
  );
  gateway = await startService(
    'gateway',
    writeConfig(fx.dir, 'gw', {
      agency: 'SG-NPARKS',
      signingKey: fx.keyFiles['SG-NPARKS'],
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, 'gw'),
      http: { port: 0 },
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
      feed: { enabled: false },
    }),
    { readyMsg: 'gateway listening' },
  );
}, 120_000);

afterAll(async () => {
  await gateway?.stop();
  await router?.stop();
  fx.cleanup();
});

function rejected(origin?: string): number {
  const db = openDatabase(auditDb, { readonly: true });
  try {
    return (
      db
        .prepare(
          "SELECT count(*) AS n FROM audit WHERE event = 'rejected' AND (? IS NULL OR origin = ?)",
        )
        .get(origin ?? null, origin ?? null) as { n: number }
    ).n;
  } finally {
    db.close();
  }
}

describe('inbound fairness - one agency flooding its own stream', () => {
  it("another agency's alert is routed to its partner's feed while most of the flood still waits, and the backlog gauge names the flooding origin", async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    // The router is working through the flood.
    await eventually(() => rejected() >= 50, 60_000, 'the router refusing the flood');

    const alert = seizureReport('SG-NPARKS');
    const res = await fetch(`${gateway.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
      body: JSON.stringify(alert),
    });
    expect(res.status).toBe(202);

    // Forwarded to Viet Nam's feed...
    const copy = feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report');
    await eventually(
      () => jsm.streams.getMessage(Streams.Feeds, { last_by_subj: copy }),
      60_000,
      "Singapore's alert on Viet Nam's feed",
    );
    // ...while most of Kenya's flood has not been handled yet.
    const ke = await jsm.consumers.info(inboundStreamName('KE-KWS'), ROUTER_CONSUMER);
    expect(ke.num_pending + ke.num_ack_pending).toBeGreaterThan(FLOOD / 2);
    expect(rejected()).toBeLessThan(FLOOD / 2);

    // The operator sees whose stream holds the backlog. (The copy is on the feed a moment before
    // the router records the decision and acknowledges Singapore's message.)
    await eventually(
      async () =>
        unhandled(await jsm.consumers.info(inboundStreamName('SG-NPARKS'), ROUTER_CONSUMER)) === 0,
      10_000,
      "Singapore's alert acknowledged",
    );
    const metrics = await scrapeMetrics(router.url, prometheus.token);
    const pending = (origin: string) =>
      Number(
        new RegExp(`^ahub_router_consumer_pending\\{[^}]*origin="${origin}"[^}]*\\} (\\d+)$`, 'm')
          .exec(metrics)
          ?.at(1) ?? NaN,
      );
    expect(pending('KE-KWS')).toBeGreaterThan(FLOOD / 4);
    expect(pending('SG-NPARKS')).toBe(0);
  }, 150_000);

  it("an agency added to the trust store is read after the reload (SIGHUP): its stream's messages reach the router", async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    const TH = 'TH-DNP';
    generateKey({
      certsDir: fx.certsDir,
      principal: TH,
      now: new Date('2019-01-01T00:00:00Z'),
      validDays: 3650,
    });
    router.proc.kill('SIGHUP');
    // The reload provisions the new agency's stream ...
    await eventually(
      () => jsm.streams.info(inboundStreamName(TH)).catch(() => undefined),
      60_000,
      "the new agency's stream",
    );
    await jetstream(await nats.connect({ name: TH })).publish(
      inboundSubject(TH, 'seizure-report'),
      new Uint8Array(200).fill(0x42),
    );
    // ... and reads it: the message is read (and refused: it is no envelope).
    await eventually(() => rejected(TH) === 1, 60_000, "the new agency's message to be read");
    // The refusal is recorded before the message is acknowledged: the acknowledgement follows.
    await eventually(
      async () => unhandled(await jsm.consumers.info(inboundStreamName(TH), ROUTER_CONSUMER)) === 0,
      10_000,
      "the new agency's message acknowledged",
    );
  }, 150_000);
});
