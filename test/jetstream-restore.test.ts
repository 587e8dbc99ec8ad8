import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LOCAL_ROUTER,
  eventually,
  feedMessages,
  hubctl,
  routerDrained,
  seizureReport,
  spawnService,
  startSeizureHub,
  type LocalHub,
  type ServiceProcess,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';
import { connectNats } from '@alert-hub/runtime';
import { inboxPrefix } from '@alert-hub/core';

/**
 * The backup and restore of docs/operations.md, for real: a cold backup of the whole hub (the
 * JetStream store and every database, taken at one point with the services stopped), more
 * alerts, the store and the databases destroyed, the backup put back. The hub resumes: what was
 * delivered before the backup is there once, nothing is forwarded again, and new alerts flow.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const AGENCIES = [NG, VN];

let hub: LocalHub;
let backup: string;
let router: ServiceProcess;
const gateways: Record<string, ServiceProcess> = {};

const auth = () => ({ authorization: `Bearer ${hub.token}` });
const gatewayDb = (a: string) => join(hub.dir, 'gateways', a, `gateway-${a}.db`);
const databases = () => [hub.auditDb, ...AGENCIES.map(gatewayDb)];

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: AGENCIES,
    agreement: { id: 'NG-VN', title: 'Nigeria and Viet Nam' },
    // the copies are counted on the feed stream after the partner took them
    routerConfig: { streams: KEEP_READ_COPIES },
  });
  router = hub.router;
  for (const a of AGENCIES) gateways[a] = hub.gateways[a]!;
  backup = mkdtempSync(join(tmpdir(), 'ahub-backup-'));
}, 180_000);

afterAll(async () => {
  for (const g of Object.values(gateways)) await g.stop();
  await router?.stop();
  await hub?.stop();
  rmSync(backup, { recursive: true, force: true });
});

async function send(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const alert = seizureReport(NG);
    const res = await fetch(`${gateways[NG]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify(alert),
    });
    expect(res.status).toBe(202);
    ids.push(alert.id);
  }
  return ids;
}

async function vnFeed(): Promise<string[]> {
  const res = await fetch(`${gateways[VN]!.url}/v1/feed?limit=1000`, { headers: auth() });
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
}

async function delivered(ids: readonly string[]): Promise<void> {
  await eventually(
    async () => {
      const got = await vnFeed();
      return ids.every((id) => got.includes(id));
    },
    60_000,
    'delivery to VN',
  );
}

/** Stops the gateways, then the router, then nats-server (the reverse of the start order). */
async function stopAll(): Promise<void> {
  for (const a of AGENCIES) expect(await gateways[a]!.stop()).toBe(0);
  expect(await router.stop()).toBe(0);
  await hub.nats.stop();
}

/** nats-server, then the router, then the gateways, from their configuration files. */
async function startAll(): Promise<void> {
  await hub.nats.restart();
  router = await spawnService('router', join(hub.dir, 'router.yaml'), {
    env: process.env,
    logFile: join(hub.dir, 'logs', 'router.log'),
    captureLogs: false,
  });
  for (const a of AGENCIES)
    gateways[a] = await spawnService('gateway', join(hub.dir, `gateway-${a}.yaml`), {
      env: process.env,
      logFile: join(hub.dir, 'logs', `gateway-${a}.log`),
      captureLogs: false,
    });
}

async function hubConnection() {
  const f = (n: string) => join(hub.certsDir, 'dev', n);
  return connectNats({
    servers: hub.natsUrls,
    name: 'restore test',
    inboxPrefix: inboxPrefix(LOCAL_ROUTER),
    tls: {
      caFile: f('ca.pem'),
      certFile: f(`${LOCAL_ROUTER}.pem`),
      keyFile: f(`${LOCAL_ROUTER}-key.pem`),
    },
  });
}

describe('backup and restore - JetStream store and databases', () => {
  it('restored from a cold backup, the hub resumes: nothing lost up to the backup, nothing doubled, new alerts flow', async () => {
    const before = await send(4);
    await delivered(before);
    let nc = await hubConnection();
    await routerDrained(nc);
    await nc.close();

    // The backup: services stopped in order, the store copied, each database copied with
    // SQLite's online backup (hubctl backup), then everything started again.
    await stopAll();
    cpSync(join(hub.nats.dir, 'jetstream'), join(backup, 'jetstream'), { recursive: true });
    for (const db of databases()) {
      const r = await hubctl([
        'backup',
        '--db',
        db,
        '--out',
        join(backup, `${db.replace(/\W/g, '_')}`),
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    await startAll();

    // Alerts after the backup: the restore will not have them.
    const after = await send(3);
    await delivered(after);

    // The disaster: nats-server killed, its store and every database gone.
    for (const a of AGENCIES) await gateways[a]!.kill();
    await router.kill();
    await hub.nats.kill();
    rmSync(join(hub.nats.dir, 'jetstream'), { recursive: true, force: true });
    for (const db of databases())
      for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });

    // The restore: the store and the databases back in place, started in order.
    cpSync(join(backup, 'jetstream'), join(hub.nats.dir, 'jetstream'), { recursive: true });
    for (const db of databases()) {
      cpSync(join(backup, `${db.replace(/\W/g, '_')}`), db);
      expect(existsSync(`${db}-wal`)).toBe(false);
    }
    await startAll();
    const ready = await fetch(`${router.url}/readyz`);
    expect(ready.status, await ready.text()).toBe(200);

    // New alerts flow.
    const fresh = await send(3);
    await delivered(fresh);
    nc = await hubConnection();
    try {
      await routerDrained(nc);
      const feed = await vnFeed();
      // Up to the backup, each alert once; after it, what the backup did not hold is gone.
      for (const id of [...before, ...fresh]) expect(feed.filter((x) => x === id)).toHaveLength(1);
      for (const id of after) expect(feed).not.toContain(id);
      // Nothing forwarded again: one copy per alert on the feeds.
      const copies = await feedMessages(nc);
      for (const id of [...before, ...fresh])
        expect(copies.filter((c) => c.msgId.startsWith(`${id}:`))).toHaveLength(1);
      // The audit has one forward per alert, and the router's audit is sound (it started,
      // checked against the restored checkpoint stream).
      const audit = await fetch(`${router.url}/v1/audit?outcome=forwarded&limit=1000`, {
        headers: { authorization: `Bearer ${hub.coordinatorToken}` },
      });
      const records = ((await audit.json()) as { records: { alertId: string }[] }).records;
      for (const id of [...before, ...fresh])
        expect(records.filter((r) => r.alertId === id)).toHaveLength(1);
      for (const id of after) expect(records.filter((r) => r.alertId === id)).toHaveLength(0);
    } finally {
      await nc.close();
    }
  }, 600_000);
});
