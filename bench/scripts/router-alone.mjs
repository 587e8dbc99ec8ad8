#!/usr/bin/env node
// The router alone for one k, outside `npm run bench` (which runs every k, section e): queues N
// signed alerts while the router is stopped, starts it (optionally with --cpu-prof) and times the
// drain. Run after `npm run build`.
// Usage: node bench/scripts/router-alone.mjs [N=4000] [k=2] [agreements=1] [profDir]
// ROUTER_NODE_ARGS="--flag ..." adds Node options to the router (e.g. V8 heap settings to try).
// ROUTER_CONFIG='{"consumer":{"copyBudgetBytes":4194304}}' sets router settings over the local hub's.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { routerCryptoFloors, runRouterAlone } from '../dist/router-alone.js';

const N = Number(process.argv[2] ?? 4000);
const k = Number(process.argv[3] ?? 2);
const agreements = Number(process.argv[4] ?? 1);
const prof = process.argv[5];
const dir = mkdtempSync(join(tmpdir(), 'ahub-router-alone-'));
try {
  const floors = await routerCryptoFloors({
    registry: loadSchemaRegistry(DEFAULT_SCHEMAS_DIR),
    ks: [k],
    durationMs: 2000,
    inFlight: 64,
  });
  const [p] = await runRouterAlone({
    dir,
    env: process.env,
    phases: [{ k, agreements, alerts: N }],
    floors,
    timeoutMs: 600_000,
    ...(process.env.ROUTER_CONFIG ? { routerConfig: JSON.parse(process.env.ROUTER_CONFIG) } : {}),
    nodeArgs: [
      ...(process.env.ROUTER_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      ...(prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : []),
    ],
  });
  console.log(
    `router alone, k=${k}, ${agreements} agreement(s): ${p.measured} alerts in ${p.seconds.toFixed(1)} s = ${p.alertsPerSecond.toFixed(0)}/s; router CPU ${p.routerUsPerAlert.toFixed(0)} us/alert (after start-up), nats-server ${p.natsUsPerAlert.toFixed(0)} us/alert (${p.natsUsPerAlertAfterStartUp.toFixed(0)} after start-up, ${p.natsStartUpMs} ms during it); router peak RSS ${p.routerPeakRssMiB} MiB; ${p.ofCryptoFloor.toFixed(2)} of its crypto floor (${floors[0].alertsPerSecond.toFixed(0)}/s); forwarded ${p.forwarded}/${p.expectedForwards}; restarts ${p.restarts}`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
