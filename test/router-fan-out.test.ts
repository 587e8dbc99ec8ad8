import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { DeliverPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  NOTICE_TOKEN,
  Streams,
  feedConsumerName,
  inboxPrefix,
  parseFeedSubject,
} from '@alert-hub/core';
import { createDevPki, devPkiPaths, renderNatsSecurityConfig } from '@alert-hub/operator';
import { connectNats, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  SERVICE_NODE_ARGS,
  makeHubFixture,
  provision,
  publishInbound,
  registry,
  routerDrained,
  seizureReport,
  startService,
  writeConfig,
} from '@alert-hub/testkit';

// Operation scale: 109 agencies (one per country, each in its own NATS account as in
// production), one agreement among all of them, so every alert goes to 108 partners.
const COUNTRIES = [...registry.countries].sort().slice(0, 109);
const AGENCIES = COUNTRIES.map((c) => `${c}-CUSTOMS`);
const ORIGIN = AGENCIES[0]!;
const RECIPIENTS = AGENCIES.slice(1);
const N = 500;
const fx = makeHubFixture(AGENCIES);
const pkiDir = join(fx.dir, 'certs', 'dev');
const tls = (who: string) => {
  const p = devPkiPaths(pkiDir, who);
  return { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile };
};
const nats = useNatsServer({
  config: async () => {
    await createDevPki({ dir: pkiDir, principals: ['HUB', ORIGIN] });
    const p = devPkiPaths(pkiDir);
    return renderNatsSecurityConfig({
      agencies: AGENCIES,
      routers: ['HUB'],
      tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
    });
  },
});
const auditDb = join(fx.dir, 'router', 'audit.db');
let routerFile: string;
let hub: NatsConnection;

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'OPERATION-WIDE',
          version: 1,
          title: 'Every country of the operation shares seizure reports with every other',
          parties: COUNTRIES,
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  // The router's production configuration: defaults everywhere but the addresses.
  routerFile = writeConfig(fx.dir, 'router', {
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url], tls: tls('HUB') },
    http: { port: 0 },
  });
  hub = await connectNats({
    servers: nats.url,
    name: 'test as the hub',
    inboxPrefix: inboxPrefix('HUB'),
    tls: tls('HUB'),
  });
  await provision(hub, AGENCIES);
}, 120_000);
afterAll(async () => {
  await hub?.close();
  fx.cleanup();
});

/** The message ids of every alert copy on the feeds, read once in stream order. */
async function copyIds(nc: NatsConnection, expected: number): Promise<string[]> {
  const info = await (await jetstreamManager(nc)).streams.info(Streams.Feeds);
  const consumer = await jetstream(nc).consumers.get(Streams.Feeds, {
    deliver_policy: DeliverPolicy.All,
  });
  const ids: string[] = [];
  const messages = await consumer.consume({ max_messages: 1000 });
  for await (const m of messages) {
    if (parseFeedSubject(m.subject)?.type !== NOTICE_TOKEN)
      ids.push(m.headers?.get('Nats-Msg-Id') ?? '');
    if (m.seq >= info.state.last_seq) break;
  }
  await messages.close();
  expect(ids.length).toBeGreaterThanOrEqual(Math.min(expected, 1));
  return ids;
}

/** The peak resident set of a process so far (Linux's VmHWM), in MiB; undefined elsewhere. */
function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : undefined;
  } catch {
    return undefined;
  }
}

describe('router - fan-out to 108 partners with a backlog of 500 alerts', () => {
  it('drains the backlog within its production heap, never restarting, every copy forwarded once', async () => {
    // The backlog is there before the router starts: it meets all of it at once.
    const origin = await connectNats({
      servers: nats.url,
      name: ORIGIN,
      inboxPrefix: inboxPrefix(ORIGIN),
      tls: tls(ORIGIN),
    });
    const alerts = Array.from({ length: N }, () => seizureReport(ORIGIN));
    for (const a of alerts) await publishInbound(origin, a, fx.keys[ORIGIN]!);
    await origin.close();

    const router = await startService('router', routerFile, { nodeArgs: SERVICE_NODE_ARGS });
    const exits: (number | string | null)[] = [];
    // A router that dies (out of memory) fails the test at once, rather than after the drain wait.
    const died = new Promise<never>((_, reject) =>
      router.proc.once('exit', (code, signal) => {
        exits.push(signal ?? code);
        reject(new Error(`the router exited (${signal ?? code}) while draining the backlog`));
      }),
    );
    died.catch(() => undefined);
    const pid = router.proc.pid!;
    await Promise.race([routerDrained(hub, 600_000), died]);
    const peak = peakRssMiB(pid);
    // A figure for the reader, not an assertion: timing and memory depend on the machine.
    console.log(
      `router peak RSS ${peak ?? 'unknown'} MiB after routing ${N} alerts to ${RECIPIENTS.length} partners each (--max-old-space-size=128)`,
    );
    expect(exits).toEqual([]);
    expect(router.proc.exitCode).toBeNull();

    // Every partner's feed holds every alert, once.
    const jsm = await jetstreamManager(hub);
    for (const r of RECIPIENTS) {
      const c = await jsm.consumers.info(Streams.Feeds, feedConsumerName(r));
      expect({ recipient: r, pending: c.num_pending }).toEqual({ recipient: r, pending: N });
    }
    const ids = await copyIds(hub, N * RECIPIENTS.length);
    expect(ids.length).toBe(N * RECIPIENTS.length);
    expect(new Set(ids).size).toBe(ids.length);

    // The audit: one decision per alert, a delivery row per copy, each copy in the log.
    const db = openDatabase(auditDb, { readonly: true });
    try {
      const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
      expect(count('SELECT count(*) AS n FROM decisions')).toBe(N);
      expect(count('SELECT count(*) AS n FROM routed_alerts')).toBe(N);
      expect(count('SELECT count(*) AS n FROM alert_deliveries')).toBe(N * RECIPIENTS.length);
      // One entry per decision, whatever the fan-out; its recipients beside it.
      expect(count("SELECT count(*) AS n FROM audit WHERE event = 'routed'")).toBe(N);
      expect(count('SELECT count(*) AS n FROM audit WHERE alert_id IS NOT NULL')).toBe(N);
      expect(count('SELECT count(*) AS n FROM audit_routes WHERE feed_seq IS NOT NULL')).toBe(
        N * RECIPIENTS.length,
      );
      expect(count("SELECT count(*) AS n FROM audit WHERE event = 'rejected'")).toBe(0);
    } finally {
      db.close();
    }
    expect(await router.stop()).toBe(0);
  }, 900_000);
});
