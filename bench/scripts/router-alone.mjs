#!/usr/bin/env node
// Measures the router alone: fills the inbound stream with N signed alerts while the router is
// stopped, then starts it (optionally with --cpu-prof) and times the drain. CPU per alert of the
// router and nats-server are read from /proc. Usage: node bench/scripts/router-alone.mjs [N] [profDir]
import { join } from 'node:path';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  ROUTER_CONSUMER,
  Streams,
  encodeEnvelope,
  inboundMsgId,
  inboundSubject,
  newAlertId,
  signAlert,
} from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, readSigningKey } from '@alert-hub/runtime';
import { spawnService, startLocalHub } from '@alert-hub/testkit';
import { benchAlert } from '../dist/core.js';
import { cpuMsOf, memoryOf } from '../dist/proc.js';

const N = Number(process.argv[2] ?? 20000);
const prof = process.argv[3];
const hub = await startLocalHub({
  env: process.env,
  agencies: [
    { id: 'SG-NPARKS', name: 's' },
    { id: 'VN-CUSTOMS', name: 'p1' },
    { id: 'CN-GACC', name: 'p2' },
  ],
  agreements: {
    agreements: [
      {
        id: 'BENCH',
        version: 1,
        title: 'b',
        parties: ['SG', 'VN', 'CN'],
        alertTypes: ['seizure-report'],
        maxHandling: 'TLP:AMBER',
        validFrom: '2019-01-01T00:00:00Z',
      },
    ],
  },
  gatewayConfig: { feed: { enabled: false } },
});
await hub.router.stop();
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const key = readSigningKey(
  join(
    hub.certsDir,
    'private',
    'SG-NPARKS',
    (await import('node:fs')).readdirSync(join(hub.certsDir, 'private', 'SG-NPARKS'))[0],
  ),
  'SG-NPARKS',
);
const sg = await hub.connectAs('SG-NPARKS');
const js = jetstream(sg);
const schema = registry.schemaIdFor('seizure-report', 1);
for (let i = 0; i < N; i += 500) {
  await Promise.all(
    Array.from({ length: Math.min(500, N - i) }, async () => {
      const a = { ...benchAlert('SG-NPARKS'), id: newAlertId() };
      const env = encodeEnvelope(await signAlert(a, key, schema));
      await js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), env, {
        msgID: inboundMsgId('SG-NPARKS', a.id, env),
      });
    }),
  );
}
const admin = await hub.connectAs('HUB');
const jsm = await jetstreamManager(admin, { checkAPI: false });
const natsBefore = cpuMsOf(hub.nats.pid);
const t0 = performance.now();
const nodeArgs = [
  ...(process.env.NODE_EXTRA ? process.env.NODE_EXTRA.split(' ') : []),
  ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
];
const router = await spawnService('router', join(hub.dir, 'router.yaml'), {
  env: process.env,
  captureLogs: false,
  logFile: join(hub.dir, 'logs', 'router2.log'),
  nodeArgs,
});
const startCpu = cpuMsOf(router.proc.pid);
for (;;) {
  const c = await jsm.consumers.info(Streams.Inbound, ROUTER_CONSUMER);
  if (c.num_pending + c.num_ack_pending === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const secs = (performance.now() - t0) / 1000;
const routerCpu = cpuMsOf(router.proc.pid);
console.log(
  `router alone: ${N} alerts in ${secs.toFixed(1)} s = ${(N / secs).toFixed(0)}/s; router CPU ${(((routerCpu - startCpu) / N) * 1000).toFixed(0)} us/alert (after start-up), nats-server ${(((cpuMsOf(hub.nats.pid) - natsBefore) / N) * 1000).toFixed(0)} us/alert; router peak RSS ${memoryOf(router.proc.pid)?.peakMiB} MiB`,
);
await router.stop();
await sg.close();
await admin.close();
await hub.stop();
