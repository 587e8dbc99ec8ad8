#!/usr/bin/env node
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  encodeEnvelope,
  generateSigningJwk,
  importSigningKey,
  countersignRoutes,
  signAlert,
  type GeneralJws,
} from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, ROOT_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { benchAlert } from './core.js';
import { cryptoFloor } from './crypto-floor.js';
import { HubBench, PARTNERS, type HubPhase } from './hub.js';
import {
  ROUTER_ALONE_KS,
  routerCryptoFloors,
  runRouterAlone,
  type RouterAlonePhase,
  type RouterCryptoFloor,
} from './router-alone.js';
import { describeMachine } from './machine.js';
import { memoryOf, percentile } from './proc.js';
import { runRaw, type RawPhase } from './raw.js';

/**
 * npm run bench: the hub end to end beside the raw JetStream pipeline and the crypto floor, in one
 * run on this machine. Results go to bench/results/latest.json (or --out); --smoke runs a few
 * seconds only (npm test does, so the benchmark keeps working; it asserts no timing).
 */
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '15' },
    rates: { type: 'string', default: '500,1000,2000' },
    saturation: { type: 'string', default: '5000' },
    'offline-seconds': { type: 'string', default: '10' },
    'offline-rate': { type: 'string', default: '250' },
    batch: { type: 'string', default: '10' },
    smoke: { type: 'boolean', default: false },
    'skip-raw': { type: 'boolean', default: false },
    'skip-cluster': { type: 'boolean', default: false },
    'cluster-rate': { type: 'string', default: '100' },
    // d. the same load with delivery receipts on and off, one fresh hub each.
    'skip-receipts': { type: 'boolean', default: false },
    // e. the router alone draining queued alerts at k = 1, 2, 10, 108 recipients per alert.
    'skip-router-alone': { type: 'boolean', default: false },
    // Alerts queued per phase, for k = 1, 2, 10, 108 in this order.
    'router-alone-alerts': { type: 'string', default: '4000,3000,1500,500' },
    // The k at which 1,000 agreements of the sender (999 near misses) are measured too.
    'router-alone-near-miss-k': { type: 'string', default: '2' },
    'cpu-prof': { type: 'string' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
    // For experiments only; published figures use the services' defaults (info, FULL).
    'log-level': { type: 'string' },
    'sqlite-sync': { type: 'string' },
    // on (default) | off | compare: compare alternates hubs with the audit transparency log on
    // and off, same settings, and reports what it costs at saturation.
    transparency: { type: 'string', default: 'on' },
    // compare: only the alternating comparison of delivery receipts on and off (like
    // --transparency compare); the full run's section d runs one hub of each.
    receipts: { type: 'string', default: 'on' },
    rounds: { type: 'string', default: '3' },
    // The comparisons (d, e) also run each hub at this rate, which it sustains, and compare the
    // CPU the hub spends per alert there: on a CPU-bound machine that decides its throughput,
    // and it varies far less run to run than a saturation phase does.
    'compare-rate': { type: 'string', default: '200' },
  },
  strict: true,
});
const smoke = values.smoke;
const seconds = smoke ? 2 : Number(values.seconds);
const rates = smoke ? [50] : values.rates.split(',').map(Number);
const saturation = smoke ? 300 : Number(values.saturation);
const offlineSeconds = smoke ? 2 : Number(values['offline-seconds']);
const offlineRate = smoke ? 50 : Number(values['offline-rate']);
const clusterRate = smoke ? 20 : Number(values['cluster-rate']);
const compareRate = smoke ? 20 : Number(values['compare-rate']);
const out = values.out ?? join(ROOT_DIR, 'bench', 'results', smoke ? 'smoke.json' : 'latest.json');
const say = (line = '') => process.stdout.write(`${line}\n`);
const env = process.env;
const dir = mkdtempSync(join(tmpdir(), 'ahub-bench-'));

const ms = (n: number) => (Number.isFinite(n) ? `${n.toFixed(1)} ms` : 'n/a');
const perSecond = (n: number) => `${Math.round(n).toLocaleString('en-US')}/s`;
function latency(sorted: readonly number[]) {
  return {
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    count: sorted.length,
  };
}
/** CPU the hub's own processes (nats-server, router, gateways) spent per alert accepted. */
function hubCpuMsPerAlert(p: HubPhase): number {
  return Object.entries(p.cpuMsPerAlert)
    .filter(([k]) => k !== 'load generator')
    .reduce((sum, [, v]) => sum + v, 0);
}
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
function phaseSummary(p: HubPhase) {
  const perSec = p.offered / p.seconds;
  const growth = p.backlog.last - p.backlog.first;
  return {
    label: p.label,
    offeredPerSecond: perSec,
    accepted: p.accepted,
    refused: p.refused,
    completedPerSecond: p.completedPerSecond,
    latencyMs: latency(p.latencies),
    backlog: p.backlog,
    // Sustained: the hub kept up (completions match the offer, the backlog did not grow by more than half a second's worth).
    sustained: p.refused === 0 && p.completedPerSecond >= 0.95 * perSec && growth < 0.5 * perSec,
    drainSeconds: p.drainSeconds,
    cpuMsPerAlert: p.cpuMsPerAlert,
    hubCpuMsPerAlert: hubCpuMsPerAlert(p),
  };
}

say(`alert-hub benchmark${smoke ? ' (smoke run: a few seconds, numbers not meaningful)' : ''}`);
const machine = describeMachine();
say(
  `machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, Linux ${machine.kernel}`,
);

// Sizes of the real messages, for the raw pipeline and the crypto floor.
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const sample = benchAlert('SG-NPARKS');
const sgKey = importSigningKey(generateSigningJwk().privateJwk, 'SG-NPARKS');
const hubKey = importSigningKey(generateSigningJwk().privateJwk, 'HUB');
const inbound = await signAlert(sample, sgKey, registry.schemaIdFor(sample.type, sample.version)!);
const [routed] = (await countersignRoutes(inbound, hubKey, {
  origin: sample.origin,
  alertId: sample.id,
  routedAt: sample.issuedAt,
  grants: PARTNERS.map((recipient) => ({
    recipient,
    agreement: { id: 'BENCH', version: 1 },
    onward: false,
  })),
})) as [GeneralJws];
const sizes = {
  alertJson: Buffer.byteLength(JSON.stringify(sample)),
  inboundEnvelope: encodeEnvelope(inbound).byteLength,
  routedEnvelope: encodeEnvelope(routed).byteLength,
  signingInput: inbound.signatures[0]!.protected.length + 1 + inbound.payload.length,
};
say(
  `message sizes: alert ${sizes.alertJson} B JSON, inbound envelope ${sizes.inboundEnvelope} B, forwarded envelope ${sizes.routedEnvelope} B`,
);

say('');
say('c. crypto floor (node:crypto Ed25519, callback API, 64 in flight, all cores)');
const floor = await cryptoFloor({
  durationMs: smoke ? 300 : 3000,
  inFlight: 64,
  partners: PARTNERS.length,
  inputBytes: sizes.signingInput,
});
say(
  `   sign ${perSecond(floor.signPerSecond)}, verify ${perSecond(floor.verifyPerSecond)}; an alert to ${PARTNERS.length} partners needs ${floor.signsPerAlert} signatures and ${floor.verifiesPerAlert} verifications`,
);
say(
  `   => at most ${perSecond(floor.alertsPerSecond)} alerts if the machine did nothing but this crypto`,
);

const overrides = {
  ...(values['log-level'] ? { log: { level: values['log-level'] } } : {}),
  ...(values['sqlite-sync'] ? { sqlite: { synchronous: values['sqlite-sync'] } } : {}),
};
if (!['on', 'off', 'compare'].includes(values.transparency))
  throw new Error('--transparency is on, off or compare');
if (!['on', 'compare'].includes(values.receipts)) throw new Error('--receipts is on or compare');
if (values.transparency === 'compare' || values.receipts === 'compare') {
  if (values.transparency === 'compare') await compareFeature('transparency');
  if (values.receipts === 'compare') await compareFeature('receipts');
  if (!values.keep) rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

/**
 * d. What a feature costs the routing path: the audit transparency log (Merkle tree,
 * checkpoints, witnesses, fail-closed checks) or delivery receipts (a signature per inbox commit
 * at each partner, a verification and audit entries per receipt at the router, the sender's
 * status). Hubs with it on and off, started alternately (on/off, then off/on, ...) so that a
 * change in the machine's load hits both alike; each runs `compareRate` (which it sustains) and
 * the saturation rate for `seconds`.
 */
async function compareFeature(feature: 'transparency' | 'receipts'): Promise<void> {
  const rounds = smoke ? 1 : Number(values.rounds);
  const title = feature === 'transparency' ? 'audit transparency log' : 'delivery receipts';
  say('');
  say(
    `d. ${title} on vs off: ${rounds} alternating round(s), ${compareRate}/s then offered ${saturation}/s, ${seconds} s each`,
  );
  const runs: {
    mode: 'on' | 'off';
    round: number;
    completedPerSecond: number;
    routerCpuMs: number;
    hubCpuMsAtSaturation: number;
    hubCpuMsAtCompareRate: number;
    compareRateSustained: boolean;
  }[] = [];
  for (let round = 0; round < rounds; round++) {
    const order: ('on' | 'off')[] = round % 2 === 0 ? ['on', 'off'] : ['off', 'on'];
    for (const mode of order) {
      const h = await HubBench.start({
        dir: join(dir, `${feature}-${mode}-${round}`),
        env,
        batchSize: Number(values.batch),
        overrides,
        ...(feature === 'transparency'
          ? { routerOverrides: { auditTransparency: mode === 'on' } }
          : { gatewayOverrides: { receipts: { enabled: mode === 'on' } } }),
      });
      try {
        await h.phase('warm-up', smoke ? 20 : 200, smoke ? 1 : 3);
        const steady = phaseSummary(
          await h.phase(`${compareRate}/s ${mode}`, compareRate, seconds),
        );
        const p = phaseSummary(await h.phase(`saturation ${mode}`, saturation, seconds));
        runs.push({
          mode,
          round,
          completedPerSecond: p.completedPerSecond,
          routerCpuMs: p.cpuMsPerAlert['router'] ?? NaN,
          hubCpuMsAtSaturation: p.hubCpuMsPerAlert,
          hubCpuMsAtCompareRate: steady.hubCpuMsPerAlert,
          compareRateSustained: steady.sustained,
        });
        say(
          `   round ${round + 1} ${mode.padEnd(3)} at ${compareRate}/s: hub CPU ${steady.hubCpuMsPerAlert.toFixed(3)} ms/alert${steady.sustained ? '' : ' (NOT sustained)'}; saturation: completed ${perSecond(p.completedPerSecond).padStart(8)}, hub CPU ${p.hubCpuMsPerAlert.toFixed(3)} ms/alert (router ${(p.cpuMsPerAlert['router'] ?? NaN).toFixed(3)})`,
        );
      } finally {
        await h.stop();
      }
    }
  }
  const of = (
    mode: 'on' | 'off',
    k: 'completedPerSecond' | 'routerCpuMs' | 'hubCpuMsAtSaturation' | 'hubCpuMsAtCompareRate',
  ) => median(runs.filter((r) => r.mode === mode).map((r) => r[k]));
  const on = of('on', 'completedPerSecond');
  const off = of('off', 'completedPerSecond');
  const cost = 1 - on / off;
  // Capacity on a CPU-bound machine is inversely proportional to CPU per alert.
  const cpuOn = of('on', 'hubCpuMsAtCompareRate');
  const cpuOff = of('off', 'hubCpuMsAtCompareRate');
  const cpuCost = 1 - cpuOff / cpuOn;
  const satCpuOn = of('on', 'hubCpuMsAtSaturation');
  const satCpuOff = of('off', 'hubCpuMsAtSaturation');
  const satCpuCost = 1 - satCpuOff / satCpuOn;
  say(
    `   median hub CPU at ${compareRate}/s: on ${cpuOn.toFixed(3)}, off ${cpuOff.toFixed(3)} ms/alert: costs ${(cpuCost * 100).toFixed(1)}% of capacity`,
  );
  say(
    `   median at saturation: completed on ${perSecond(on)}, off ${perSecond(off)} (${(cost * 100).toFixed(1)}% lower); hub CPU on ${satCpuOn.toFixed(3)}, off ${satCpuOff.toFixed(3)} ms/alert (${(satCpuCost * 100).toFixed(1)}% of capacity)`,
  );
  // The routing path alone: the router draining queued alerts (section e, k = 2), log on and off
  // alternately on fresh hubs. One process and no load generator: far steadier than saturation.
  const routerAlone: {
    mode: 'on' | 'off';
    round: number;
    alertsPerSecond: number;
    routerUsPerAlert: number;
  }[] = [];
  if (feature === 'transparency') {
    const alerts = smoke ? 20 : Number(values['router-alone-alerts'].split(',')[1] ?? 3000);
    // Each round runs the two routers AT ONCE, each draining its own hub: this VM's speed changes
    // from minute to minute (the same router measured ~890/s or ~1,020/s in consecutive runs), and
    // two runs one after the other can fall in different states. Run together, both see the
    // same machine; the one that needs more CPU per alert drains more slowly.
    for (let round = 0; round < rounds; round++) {
      const pair = await Promise.all(
        (['on', 'off'] as const).map(async (mode) => {
          const [p] = await runRouterAlone({
            dir: join(dir, `router-alone-${mode}-${round}`),
            env,
            phases: [{ k: 2, agreements: 1, alerts }],
            floors: [],
            timeoutMs: smoke ? 60_000 : 300_000,
            routerConfig: { auditTransparency: mode === 'on' },
          });
          return {
            mode,
            round,
            alertsPerSecond: p!.alertsPerSecond,
            routerUsPerAlert: p!.routerUsPerAlert,
          };
        }),
      );
      routerAlone.push(...pair);
      const [on, off] = pair;
      say(
        `   round ${round + 1} router alone, k=2, both at once: on ${perSecond(on!.alertsPerSecond)} (${Math.round(on!.routerUsPerAlert).toLocaleString('en-US')} us/alert), off ${perSecond(off!.alertsPerSecond)} (${Math.round(off!.routerUsPerAlert).toLocaleString('en-US')} us/alert): ${((1 - on!.alertsPerSecond / off!.alertsPerSecond) * 100).toFixed(1)}% lower`,
      );
    }
    const pairCosts = (rows: typeof routerAlone) =>
      Array.from({ length: rounds }, (_, r) => {
        const on = rows.find((x) => x.round === r && x.mode === 'on')!;
        const off = rows.find((x) => x.round === r && x.mode === 'off')!;
        return 1 - on.alertsPerSecond / off.alertsPerSecond;
      });
    const ra = (mode: 'on' | 'off', k: 'alertsPerSecond' | 'routerUsPerAlert') =>
      median(routerAlone.filter((r) => r.mode === mode).map((r) => r[k]));
    say(
      `   median router alone, k=2: on ${perSecond(ra('on', 'alertsPerSecond'))}, off ${perSecond(ra('off', 'alertsPerSecond'))} (${((1 - ra('on', 'alertsPerSecond') / ra('off', 'alertsPerSecond')) * 100).toFixed(1)}% lower); router ${Math.round(ra('on', 'routerUsPerAlert'))} vs ${Math.round(ra('off', 'routerUsPerAlert'))} us/alert; median of the rounds' own ratios: ${(median(pairCosts(routerAlone)) * 100).toFixed(1)}% lower`,
    );
  }
  const name = feature === 'transparency' ? 'transparency' : 'receipts-compare';
  const file =
    values.out ?? join(ROOT_DIR, 'bench', 'results', smoke ? `smoke-${name}.json` : `${name}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(
    file,
    `${JSON.stringify({ machine, smoke, feature, settings: { rounds, saturation, compareRate, seconds, batchSize: Number(values.batch) }, runs, routerAlone, median: { on, off, costFraction: cost, hubCpuMsOn: cpuOn, hubCpuMsOff: cpuOff, cpuCostFraction: cpuCost, saturationHubCpuMsOn: satCpuOn, saturationHubCpuMsOff: satCpuOff, saturationCpuCostFraction: satCpuCost } }, null, 2)}\n`,
  );
  say(`   written to ${file}`);
}

say('');
say(
  `a. the hub end to end (gateway intake -> router -> 2 partner gateways; mutual TLS, durable, audit on, transparency log ${values.transparency})`,
);
const hub = await HubBench.start({
  dir: join(dir, 'hub'),
  env,
  batchSize: Number(values.batch),
  overrides,
  routerOverrides: { auditTransparency: values.transparency === 'on' },
  ...(values['cpu-prof'] ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', values['cpu-prof']] } : {}),
});
const hubPhases: ReturnType<typeof phaseSummary>[] = [];
let offline: Awaited<ReturnType<HubBench['partnerOffline']>> | undefined;
let hubMemory: Record<string, { peakMiB: number; rssMiB: number } | undefined>;
try {
  await hub.phase('warm-up', smoke ? 20 : 200, smoke ? 1 : 3);
  for (const r of [
    ...(values['skip-cluster'] || rates.includes(clusterRate)
      ? []
      : [{ label: `${clusterRate}/s`, rate: clusterRate }]),
    ...rates.map((x) => ({ label: `${x}/s`, rate: x })),
    { label: `saturation (offered ${saturation}/s)`, rate: saturation },
  ]) {
    const p = phaseSummary(await hub.phase(r.label, r.rate, seconds));
    hubPhases.push(p);
    say(
      `   ${p.label.padEnd(28)} completed ${perSecond(p.completedPerSecond).padStart(8)}  p50 ${ms(p.latencyMs.p50).padStart(9)}  p99 ${ms(p.latencyMs.p99).padStart(9)}  backlog ${p.backlog.first}->${p.backlog.last} (max ${p.backlog.max})  ${p.sustained ? 'sustained' : 'NOT sustained'}`,
    );
    say(
      `      CPU ms per alert: ${Object.entries(p.cpuMsPerAlert)
        .map(([k, v]) => `${k} ${v.toFixed(2)}`)
        .join(', ')}`,
    );
  }
  hubMemory = hub.memory();
  say(
    `   partner offline: ${PARTNERS[1]}'s gateway stopped for ${offlineSeconds} s at ${offlineRate}/s`,
  );
  offline = await hub.partnerOffline(offlineRate, offlineSeconds);
  say(
    `     its backlog in JetStream: ${offline.before.backlog} -> ${offline.after.backlog} messages; RSS router ${offline.before.memory.router} -> ${offline.after.memory.router} MiB, nats-server ${offline.before.memory.nats} -> ${offline.after.memory.nats} MiB`,
  );
  say(`     back online: caught up in ${offline.catchUpSeconds.toFixed(1)} s`);
  const after = hub.memory();
  for (const [k, v] of Object.entries(after))
    if (v && (!hubMemory[k] || v.peakMiB > hubMemory[k].peakMiB)) hubMemory[k] = v;
} finally {
  if (!values.keep) await hub.stop();
}

// d. The same load on a three-node cluster with every stream at R3, against the single node above.
let cluster:
  | {
      phases: ReturnType<typeof phaseSummary>[];
      single: ReturnType<typeof phaseSummary>[];
      saturationRatio: number;
    }
  | undefined;
if (!values['skip-cluster']) {
  say('');
  say(
    `d. one node (section a) against a three-node cluster (routes with mutual TLS, every stream at R3), the same load`,
  );
  const satLabel = `saturation (offered ${saturation}/s)`;
  const single = [`${clusterRate}/s`, satLabel].map((l) => hubPhases.find((p) => p.label === l)!);
  const onCluster: ReturnType<typeof phaseSummary>[] = [];
  const b = await HubBench.start({
    dir: join(dir, 'cluster'),
    env,
    batchSize: Number(values.batch),
    overrides,
    clusterSize: 3,
  });
  try {
    await b.phase('warm-up', smoke ? 20 : 200, smoke ? 1 : 3);
    for (const r of [
      { label: `${clusterRate}/s`, rate: clusterRate },
      { label: satLabel, rate: saturation },
    ])
      onCluster.push(phaseSummary(await b.phase(r.label, r.rate, seconds)));
  } finally {
    if (!values.keep) await b.stop();
  }
  for (const [name, list] of [
    ['1 node', single],
    ['3 nodes R3', onCluster],
  ] as const)
    for (const p of list)
      say(
        `   ${name.padEnd(11)} ${p.label.padEnd(28)} completed ${perSecond(p.completedPerSecond).padStart(8)}  p50 ${ms(p.latencyMs.p50).padStart(9)}  p99 ${ms(p.latencyMs.p99).padStart(9)}  ${p.sustained ? 'sustained' : 'NOT sustained'}`,
      );
  const saturationRatio = onCluster[1]!.completedPerSecond / single[1]!.completedPerSecond;
  cluster = { phases: onCluster, single, saturationRatio };
  say(
    `   three-node R3 / one node at saturation: ${saturationRatio.toFixed(2)}; p99 at ${clusterRate}/s on the cluster: ${ms(onCluster[0]!.latencyMs.p99)}`,
  );
}

let receipts:
  | {
      on: ReturnType<typeof phaseSummary>[];
      off: ReturnType<typeof phaseSummary>[];
      peakOnOverOff: number;
      cpuCostFraction: number;
    }
  | undefined;
if (!values['skip-receipts']) {
  say('');
  say(
    'd. delivery receipts on and off (the same phases on a fresh hub each; on is the default and what (a) measured)',
  );
  const runs: Record<'on' | 'off', ReturnType<typeof phaseSummary>[]> = { on: [], off: [] };
  for (const mode of ['off', 'on'] as const) {
    const h = await HubBench.start({
      dir: join(dir, `receipts-${mode}`),
      env,
      batchSize: Number(values.batch),
      overrides,
      gatewayOverrides: { receipts: { enabled: mode === 'on' } },
    });
    try {
      await h.phase('warm-up', smoke ? 20 : 200, smoke ? 1 : 3);
      // The smoke run checks that both modes deliver; the full run also compares their peaks.
      for (const r of [
        { label: `${compareRate}/s`, rate: compareRate },
        ...(smoke ? [] : [{ label: `saturation (offered ${saturation}/s)`, rate: saturation }]),
      ]) {
        const p = phaseSummary(await h.phase(r.label, r.rate, seconds));
        runs[mode].push(p);
        say(
          `   receipts ${mode.padEnd(3)} ${p.label.padEnd(28)} completed ${perSecond(p.completedPerSecond).padStart(8)}  p50 ${ms(p.latencyMs.p50).padStart(9)}  p99 ${ms(p.latencyMs.p99).padStart(9)}  hub CPU ${p.hubCpuMsPerAlert.toFixed(3)} ms/alert`,
        );
      }
    } finally {
      await h.stop();
    }
  }
  const peak = (ps: ReturnType<typeof phaseSummary>[]) =>
    Math.max(...ps.map((p) => p.completedPerSecond));
  // Capacity on a CPU-bound machine is inversely proportional to the hub's CPU per alert.
  const cpuCostFraction = 1 - runs.off[0]!.hubCpuMsPerAlert / runs.on[0]!.hubCpuMsPerAlert;
  receipts = { ...runs, peakOnOverOff: peak(runs.on) / peak(runs.off), cpuCostFraction };
  say(
    `   hub CPU per alert at ${compareRate}/s: receipts cost ${(cpuCostFraction * 100).toFixed(1)}% of capacity (target <= 10%; one signature per inbox commit, one verification per receipt at the router)`,
  );
  say(`   peak with receipts / without: ${receipts.peakOnOverOff.toFixed(3)}`);
}

let routerAlone: { floors: RouterCryptoFloor[]; phases: RouterAlonePhase[] } | undefined;
if (!values['skip-router-alone']) {
  say('');
  say(
    'e. the router alone: its own process draining alerts queued while it was stopped (109 agencies, one NATS account each, mutual TLS, audit and Merkle log on, no gateway)',
  );
  const counts = smoke ? [20, 20, 10, 5] : values['router-alone-alerts'].split(',').map(Number);
  const nearMissKs = values['router-alone-near-miss-k'].split(',').filter(Boolean).map(Number);
  const floors = await routerCryptoFloors({
    registry,
    ks: ROUTER_ALONE_KS,
    durationMs: smoke ? 100 : 2000,
    inFlight: 64,
  });
  for (const f of floors)
    say(
      `   crypto floor k=${String(f.k).padEnd(3)} verify ${perSecond(f.verifyPerSecond)}, one countersignature over ${f.k} leaves ${perSecond(f.countersignPerSecond)} => ${perSecond(f.alertsPerSecond)} alerts (per-copy form: ${perSecond(f.perCopyAlertsPerSecond)})`,
    );
  const phases = ROUTER_ALONE_KS.flatMap((k, i) => [
    { k, agreements: 1, alerts: counts[i] ?? counts[counts.length - 1]! },
    ...(nearMissKs.includes(k)
      ? [{ k, agreements: 1000, alerts: counts[i] ?? counts[counts.length - 1]! }]
      : []),
  ]);
  const done = await runRouterAlone({
    dir: join(dir, 'router-alone'),
    env,
    phases,
    floors,
    timeoutMs: smoke ? 60_000 : 300_000,
    onPhase: (p) =>
      say(
        `   k=${String(p.k).padEnd(3)} agreements ${String(p.agreements).padStart(4)}  ${perSecond(p.alertsPerSecond).padStart(8)}  router ${Math.round(p.routerUsPerAlert).toLocaleString('en-US')} us/alert (${Math.round(p.routerUsPerCopy)} us/copy)  nats-server ${Math.round(p.natsUsPerAlert)} us/alert (${Math.round(p.natsUsPerAlertAfterStartUp)} after start-up)  peak RSS ${p.routerPeakRssMiB} MiB  ${p.ofCryptoFloor.toFixed(2)} of its crypto floor  forwarded ${p.forwarded}/${p.expectedForwards}${p.restarts ? `  RESTARTED ${p.restarts}x` : ''}${p.drained ? '' : '  NOT DRAINED'}`,
      ),
  });
  routerAlone = { floors, phases: done };
  const at = (k: number, agreements: number) =>
    done.find((p) => p.k === k && p.agreements === agreements);
  for (const k of nearMissKs) {
    const one = at(k, 1);
    const many = at(k, 1000);
    if (one && many)
      say(
        `   1,000 agreements / 1 at k=${k}: ${(many.alertsPerSecond / one.alertsPerSecond).toFixed(2)} of the throughput`,
      );
  }
}

let raw: Awaited<ReturnType<typeof runRaw>> | undefined;
if (!values['skip-raw']) {
  say('');
  say(
    'b. the raw pipeline (JetStream publish -> consume -> republish to 2 subjects -> consume; TLS; no validation, crypto or audit)',
  );
  raw = await runRaw({
    dir: join(dir, 'raw'),
    env,
    inSize: sizes.inboundEnvelope,
    outSize: sizes.routedEnvelope,
    phases: [...rates, saturation * 4].map((rate) => ({ rate, seconds })),
  });
  raw.phases.forEach((p: RawPhase, i) => {
    const l = latency(p.latencies);
    say(
      `   ${(i < rates.length ? `${rates[i]}/s` : `saturation (offered ${saturation * 4}/s)`).padEnd(28)} completed ${perSecond(p.completedPerSecond).padStart(8)}  p50 ${ms(l.p50).padStart(9)}  p99 ${ms(l.p99).padStart(9)}`,
    );
  });
}

// Peak throughput: the most alerts per second any phase delivered to both partners.
const hubMax = Math.max(...hubPhases.map((p) => p.completedPerSecond));
// Highest offered rate the hub sustained (kept up, no growing backlog).
const hubSustained = Math.max(
  0,
  ...hubPhases.filter((p) => p.sustained).map((p) => p.offeredPerSecond),
);
const rawMax = raw ? Math.max(...raw.phases.map((p) => p.completedPerSecond)) : NaN;
const at1000 = hubPhases.find((p) => p.label === '1000/s');
const memory = { ...hubMemory, ...(raw?.memory ?? {}), 'benchmark process': memoryOf(process.pid) };
const maxService = Math.max(...Object.entries(hubMemory).map(([, v]) => v?.peakMiB ?? 0));
const result = {
  machine,
  smoke,
  settings: {
    secondsPerPhase: seconds,
    rates,
    saturation,
    batchSize: Number(values.batch),
    partners: PARTNERS.length,
  },
  sizes,
  cryptoFloor: floor,
  hub: {
    phases: hubPhases,
    maxCompletedPerSecond: hubMax,
    highestSustainedPerSecond: hubSustained,
    partnerOffline: offline,
  },
  raw: raw
    ? {
        phases: raw.phases.map((p, i) => ({
          offeredPerSecond: p.offered / p.seconds,
          label: i < rates.length ? `${rates[i]}/s` : 'saturation',
          completedPerSecond: p.completedPerSecond,
          latencyMs: latency(p.latencies),
        })),
        maxCompletedPerSecond: rawMax,
      }
    : undefined,
  cluster,
  receipts,
  routerAlone,
  ratios: {
    hubOverRaw: hubMax / rawMax,
    hubOverCryptoFloor: hubMax / floor.alertsPerSecond,
    clusterOverSingleNode: cluster?.saturationRatio,
    ...(receipts ? { receiptsOnOverOff: receipts.peakOnOverOff } : {}),
  },
  memory,
  targets: {
    hubOverCryptoFloorAtLeast0_7: hubMax / floor.alertsPerSecond >= 0.7,
    p99AtMost25msAt1000: at1000 ? at1000.latencyMs.p99 <= 25 : undefined,
    noServiceAbove200MiB: maxService <= 200,
    receiptsCostAtMost10Percent: receipts ? receipts.cpuCostFraction <= 0.1 : undefined,
    // Issue 14's targets for the router alone (measured only when the section ran).
    routerAloneK108AtLeast300PerSecond: routerAlone?.phases.find(
      (p) => p.k === 108 && p.agreements === 1,
    )
      ? routerAlone.phases.find((p) => p.k === 108 && p.agreements === 1)!.alertsPerSecond >= 300
      : undefined,
    routerAloneK2AtLeast0_45OfCryptoFloor: routerAlone?.phases.find(
      (p) => p.k === 2 && p.agreements === 1,
    )
      ? routerAlone.phases.find((p) => p.k === 2 && p.agreements === 1)!.ofCryptoFloor >= 0.45
      : undefined,
    offlineBacklogInJetStream: offline
      ? offline.after.backlog - offline.before.backlog >= 0.9 * offline.phase.accepted
      : undefined,
  },
};

say('');
say('summary');
say(
  `   hub, most alerts/s completed end to end: ${perSecond(hubMax)} (highest rate sustained: ${perSecond(hubSustained)})`,
);
if (raw)
  say(
    `   raw pipeline:                             ${perSecond(rawMax)}    hub/raw ${result.ratios.hubOverRaw.toFixed(3)}`,
  );
say(
  `   crypto floor:                             ${perSecond(floor.alertsPerSecond)}    hub/crypto-floor ${result.ratios.hubOverCryptoFloor.toFixed(2)} (target >= 0.7)`,
);
if (at1000) say(`   p99 at 1000/s: ${ms(at1000.latencyMs.p99)} (target <= 25 ms)`);
if (routerAlone)
  for (const p of routerAlone.phases)
    say(
      `   router alone k=${p.k}, ${p.agreements} agreement(s): ${perSecond(p.alertsPerSecond)}, ${p.ofCryptoFloor.toFixed(2)} of its crypto floor, peak RSS ${p.routerPeakRssMiB} MiB`,
    );
if (cluster)
  say(
    `   three-node R3 cluster / one node: ${cluster.saturationRatio.toFixed(2)} at saturation; p99 at ${cluster.phases[0]!.label} on the cluster ${ms(cluster.phases[0]!.latencyMs.p99)}`,
  );
say('   peak RSS:');
for (const [k, v] of Object.entries(memory))
  say(`     ${k.padEnd(24)} ${v ? `${v.peakMiB} MiB` : 'n/a'}`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
say(`results: ${out}`);
if (!values.keep) rmSync(dir, { recursive: true, force: true });
// Kept-alive HTTP sockets of the load generator would hold the process open a while longer.
process.exit(0);
