import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { Alert } from '@alert-hub/core';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

/**
 * Routers on several hosts: each keeps its own audit log (its own `auditLog` name), and a
 * router given the others' databases under `auditPeers` answers the coordinator API from all of
 * them as one view. Host A routes and stops; host B, with A's database as a peer, routes too.
 */
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log } = memoryLogger('audit-peers-test');
const coordinator = createToken();
const agreementsFile = join(fx.dir, 'agreements.yaml');
const dbOf = (host: string) => join(fx.dir, host, 'audit.db');
let routerB: Router;
const fromA = seizureReport('SG-NPARKS');
const fromB = seizureReport('VN-CUSTOMS');

function start(host: string, extra: Record<string, unknown> = {}) {
  const file = writeConfig(fx.dir, host, {
    instance: host,
    auditLog: host,
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, host),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    coordinators: [{ name: 'analyst', tokenSha256: coordinator.sha256 }],
    ...extra,
  });
  return startRouter(loadConfig({}, file), { log });
}

/** Publishes `alert` and waits until `host`'s audit log has its routing decision. */
async function route(host: string, alert: Alert) {
  await publishInbound(await nats.connect(), alert, fx.keys[alert.origin]!);
  await eventually(
    () => {
      const db = openDatabase(dbOf(host), { readonly: true });
      try {
        return db
          .prepare("SELECT 1 FROM audit WHERE alert_id = ? AND event = 'routed'")
          .get(alert.id);
      } finally {
        db.close();
      }
    },
    10_000,
    `${alert.id} routed by ${host}`,
  );
}

async function get(path: string) {
  const res = await fetch(`${routerB.url}${path}`, {
    headers: { authorization: `Bearer ${coordinator.token}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

beforeAll(async () => {
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        seizureAgreement('SG-VN', 'Singapore and Viet Nam', ['SG-NPARKS', 'VN-CUSTOMS']),
      ],
    }),
  );
  const routerA = await start('host-a');
  try {
    await route('host-a', fromA);
  } finally {
    await routerA.close();
  }
  routerB = await start('host-b', { auditPeers: [dbOf('host-a')] });
  await route('host-b', fromB);
});
afterAll(async () => {
  await routerB?.close();
  fx.cleanup();
});

describe('router - auditPeers: the coordinator API answers from every host’s log as one view', () => {
  it('trace finds an alert routed by the peer host as well as one routed here', async () => {
    const a = await get(`/v1/audit/trace/${fromA.id}`);
    expect(a.status).toBe(200);
    expect(a.body['summary']).toMatchObject({ forwardedTo: [{ recipient: 'VN-CUSTOMS' }] });
    expect(
      (a.body['records'] as { instance: string }[]).every((r) => r.instance === 'host-a'),
    ).toBe(true);
    const b = await get(`/v1/audit/trace/${fromB.id}`);
    expect(b.status).toBe(200);
    expect(b.body['summary']).toMatchObject({ forwardedTo: [{ recipient: 'SG-NPARKS' }] });
  });

  it('the dashboard health holds the peer to the latest checkpoint its router stored, and finds both logs sound', async () => {
    type Log = { ok: boolean; problems: string[]; head: { seq: number } };
    // Host B's own log is held to a checkpoint once it signed one (every checkpointIntervalMs).
    const logs = await eventually(
      async () => {
        const res = await get('/dashboard/api/health');
        expect(res.status).toBe(200);
        const l = res.body['logs'] as Log[];
        return l.every((x) => x.head.seq > 0) ? l : undefined;
      },
      20_000,
      "both logs' health against a checkpoint",
    );
    expect(logs).toHaveLength(2);
    expect(logs.map((l) => [l.ok, l.problems])).toEqual([
      [true, []],
      [true, []],
    ]);
    // The peer's anchor is a real checkpoint of its log, not an empty one.
    expect(logs[1]!.head.seq).toBeGreaterThan(0);
  });

  it('the audit list and the flow statistics hold both hosts’ decisions', async () => {
    const list = await get('/v1/audit?limit=5000');
    expect(list.status).toBe(200);
    const records = list.body['records'] as { event: string; alertId: string; instance: string }[];
    expect(
      records.filter((r) => r.event === 'routed').map((r) => `${r.instance} ${r.alertId}`),
    ).toEqual([`host-a ${fromA.id}`, `host-b ${fromB.id}`]);
    // Each host's own log is there whole: both began by loading the agreements.
    expect(
      records
        .filter((r) => r.event === 'agreements-loaded')
        .map((r) => r.instance)
        .sort(),
    ).toEqual(['host-a', 'host-b']);
    const flows = await get('/v1/stats/flows');
    expect(
      (flows.body['flows'] as { origin: string; recipient: string; count: number }[])
        .map((f) => `${f.origin}>${f.recipient} ${f.count}`)
        .sort(),
    ).toEqual(['SG-NPARKS>VN-CUSTOMS 1', 'VN-CUSTOMS>SG-NPARKS 1']);
  });
});
