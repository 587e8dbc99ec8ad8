import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  auditCountsByAlert,
  eventually,
  feedIds,
  isOneDecision,
  feedMessages,
  makeHubFixture,
  provision,
  publishInbound,
  seizureReport,
  writeConfig,
  routerDrained,
  OPEN_JS_API,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';
import { auditVerifyArgs, hubctl } from '@alert-hub/testkit';
import { startService, type ServiceProcess } from '@alert-hub/testkit';

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC', 'KE-KWS'];
const RECIPIENTS = ['CN-GACC', 'VN-CUSTOMS'];
const N = 400;
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const reader = createToken();
const coordinator = createToken();
const gateways: ServiceProcess[] = [];
let routerConfig: string;
const auditDb = () => join(fx.dir, 'router', 'audit.db');

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'WEN-ASIA',
          version: 1,
          title: 'Asia',
          parties: ['SG', 'VN', 'CN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  routerConfig = writeConfig(fx.dir, 'router', {
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    consumer: { ackWaitMs: 3000, maxMessages: 64 },
    // the copies are counted on the feed stream after the partners took them
    streams: KEEP_READ_COPIES,
    coordinators: [{ name: 'wco-analyst', tokenSha256: coordinator.sha256 }],
    checkpointIntervalMs: 500,
  });
  await provision(await nats.connect(), AGENCIES, { ackWaitMs: 3000, limits: KEEP_READ_COPIES });
  for (const agency of RECIPIENTS) {
    const file = writeConfig(fx.dir, `gw-${agency}`, {
      agency,
      signingKey: fx.keyFiles[agency],
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, `gw-${agency}`),
      http: { port: 0 },
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      clients: [{ name: 'analysts', tokenSha256: reader.sha256, roles: ['read-feed'] }],
    });
    gateways.push(await startService('gateway', file));
  }
});
afterAll(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  fx.cleanup();
});

const inboxIds = (gw: ServiceProcess) => feedIds(gw.url, reader.token);

function routedCount(): number {
  try {
    const db = openDatabase(auditDb(), { readonly: true });
    try {
      return (
        db.prepare("SELECT count(*) AS n FROM audit WHERE event = 'routed'").get() as {
          n: number;
        }
      ).n;
    } finally {
      db.close();
    }
  } catch {
    return 0;
  }
}

function entryCount(): number {
  const db = openDatabase(auditDb(), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Waits until a gateway serves a checkpoint of every entry, cosigned by both gateways. */
async function witnessedEverything(): Promise<void> {
  await eventually(
    async () => {
      const res = await fetch(`${gateways[0]!.url}/v1/audit/checkpoint`, {
        headers: { authorization: `Bearer ${reader.token}` },
      });
      if (!res.ok) return false;
      const note = await res.text();
      const size = Number(note.split('\n')[1]);
      const cosigs = note.split('\n').filter((l) => l.startsWith('\u2014 alert-hub/witness/'));
      return size === entryCount() && cosigs.length === RECIPIENTS.length;
    },
    30_000,
    'both witnesses to cosign a checkpoint of every entry',
  );
}

describe('router - kill -9 in mid-stream, then restart', () => {
  it('every alert reaches every entitled partner exactly once, and the audit chain verifies', async () => {
    let router = await startService('router', routerConfig);
    const nc = await nats.connect();
    const alerts = Array.from({ length: N }, () => seizureReport('SG-NPARKS'));
    const publishing = (async () => {
      for (const a of alerts) await publishInbound(nc, a, fx.keys['SG-NPARKS']!);
    })();
    await eventually(() => routedCount() >= 60, 20_000, 'some alerts routed');
    await router.kill(); // SIGKILL, in mid-stream
    const routedAtCrash = routedCount();
    expect(routedAtCrash).toBeLessThan(N);
    await publishing;

    router = await startService('router', routerConfig);
    await routerDrained(nc, 60_000);

    // The feeds stream: one copy per alert and entitled recipient, no more.
    const feeds = (await feedMessages(nc)).map((m) => m.msgId);
    expect(feeds.length).toBe(N * RECIPIENTS.length);
    expect(new Set(feeds).size).toBe(feeds.length);
    // Each partner's verified feed holds every alert exactly once.
    for (const gw of gateways) {
      const ids = await eventually(
        async () => {
          const got = await inboxIds(gw);
          return got.length >= N ? got : undefined;
        },
        30_000,
        'the partner feed',
      );
      expect(ids.length).toBe(N);
      expect(new Set(ids)).toEqual(new Set(alerts.map((a) => a.id)));
    }
    // The audit: one routing decision per alert naming each recipient once (beside it, the
    // recipients' receipts); the chain holds.
    const perAlert = [...auditCountsByAlert(auditDb()).values()];
    expect(perAlert.length).toBe(N);
    expect(perAlert.filter((x) => !isOneDecision(x, RECIPIENTS.length))).toEqual([]);

    // Both partner gateways witnessed the log; a coordinator verifies it against their anchor.
    // Two of the trust store's four agencies run a gateway here: by default verify asks for
    // more than half (3), so the two are named.
    await witnessedEverything();
    const verify = await hubctl([
      ...auditVerifyArgs(fx, auditDb(), `${gateways[0]!.url}/v1/audit/checkpoint`),
      '--token',
      reader.token,
      '--witnesses',
      '2',
    ]);
    expect(verify.stdout).toMatch(/VERIFIED \d+ entries against checkpoint/);
    expect(verify.stdout).not.toContain('UNWITNESSED');
    expect(verify.code).toBe(0);

    // The coordinator's view over HTTP.
    const id = alerts[7]!.id;
    const trace = await fetch(`${router.url}/v1/audit/trace/${id}`, {
      headers: { authorization: `Bearer ${coordinator.token}` },
    });
    expect(
      (
        (await trace.json()) as { summary: { forwardedTo: { recipient: string }[] } }
      ).summary.forwardedTo
        .map((f) => f.recipient)
        .sort(),
    ).toEqual(RECIPIENTS);
    const flows = (await (
      await fetch(`${router.url}/v1/stats/flows`, {
        headers: { authorization: `Bearer ${coordinator.token}` },
      })
    ).json()) as { flows: { origin: string; recipient: string; count: number }[] };
    expect(
      flows.flows.filter((f) => f.origin === 'SG-NPARKS').map((f) => [f.recipient, f.count]),
    ).toEqual([
      ['CN-GACC', N],
      ['VN-CUSTOMS', N],
    ]);
    expect(await router.stop()).toBe(0);
  }, 120_000);
});

describe('router - paused past the ack wait (SIGSTOP), then resumed', () => {
  it('JetStream redelivers what it held, and the log still has exactly one entry per decision', async () => {
    const router = await startService('router', routerConfig);
    const before = auditCountsByAlert(auditDb()).size;
    const nc = await nats.connect();
    const alerts = Array.from({ length: 200 }, () => seizureReport('SG-NPARKS'));
    const publishing = (async () => {
      for (const a of alerts) await publishInbound(nc, a, fx.keys['SG-NPARKS']!);
    })();
    await eventually(
      () => auditCountsByAlert(auditDb()).size >= before + 20,
      20_000,
      'some alerts routed',
    );
    router.proc.kill('SIGSTOP');
    // Past the 3 s ack wait: every message the router held is redelivered to it on resume.
    await new Promise((r) => setTimeout(r, 5000));
    router.proc.kill('SIGCONT');
    await publishing;
    await routerDrained(nc, 60_000);
    const mine = new Set(alerts.map((a) => a.id));
    const per = [...auditCountsByAlert(auditDb()).values()].filter((x) => mine.has(x.alertId));
    expect(per.length).toBe(alerts.length);
    expect(per.filter((x) => !isOneDecision(x, RECIPIENTS.length))).toEqual([]);
    const feeds = (await feedMessages(nc)).map((m) => m.msgId);
    expect(new Set(feeds).size).toBe(feeds.length);
    expect(await router.stop()).toBe(0);
  }, 120_000);
});
