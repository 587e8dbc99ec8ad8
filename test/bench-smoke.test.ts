import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '@alert-hub/testkit';

const dir = mkdtempSync(join(tmpdir(), 'ahub-bench-smoke-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The benchmark's smoke run keeps `npm run bench` working. It asserts what the run must produce,
// never how fast: timing belongs to `npm run bench` on a quiet machine, not to the test suite.
describe('bench - smoke run', () => {
  it('runs the hub, the raw pipeline, the crypto floor and the router alone, and writes every figure', async () => {
    const out = join(dir, 'smoke.json');
    const proc = spawn(
      process.execPath,
      [join(ROOT, 'bench/dist/main.js'), '--smoke', '--out', out],
      { cwd: ROOT, env: process.env },
    );
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const code = await new Promise((r) => proc.on('exit', r));
    expect(code, `${stdout}\n${stderr}`).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      smoke: boolean;
      cryptoFloor: { alertsPerSecond: number; signsPerAlert: number; verifiesPerAlert: number };
      hub: {
        phases: {
          label: string;
          accepted: number;
          latencyMs: { count: number };
          cpuMsPerAlert: Record<string, number>;
        }[];
        partnerOffline: {
          after: { backlog: number };
          before: { backlog: number };
          caughtUp: boolean;
        };
      };
      raw: { phases: { latencyMs: { count: number } }[] };
      cluster: {
        phases: { label: string; accepted: number; latencyMs: { count: number } }[];
        single: { label: string; accepted: number; latencyMs: { count: number } }[];
      };
      receipts: {
        on: { completedPerSecond: number; accepted: number; latencyMs: { count: number } }[];
        off: { completedPerSecond: number; accepted: number; latencyMs: { count: number } }[];
        peakOnOverOff: number;
        cpuCostFraction: number;
      };
      routerAlone: {
        floors: { k: number; alertsPerSecond: number; perCopyAlertsPerSecond: number }[];
        phases: {
          k: number;
          agreements: number;
          queued: number;
          alertsPerSecond: number;
          routerUsPerAlert: number;
          routerPeakRssMiB: number;
          forwarded: number;
          expectedForwards: number;
          restarts: number;
          drained: boolean;
          ofCryptoFloor: number;
        }[];
      };
      ratios: { hubOverRaw: number; hubOverCryptoFloor: number; clusterOverSingleNode: number };
      memory: Record<string, { peakMiB: number } | null>;
    };
    expect(r.smoke).toBe(true);
    // One countersignature per alert, whatever the number of partners; each partner verifies two.
    expect(r.cryptoFloor).toMatchObject({ signsPerAlert: 2, verifiesPerAlert: 5 });
    const fixed = r.hub.phases.find((p) => p.label === '50/s')!;
    // Every accepted alert reached both partners (each latency is one alert delivered twice).
    expect(fixed.latencyMs.count).toBe(fixed.accepted);
    expect(Object.keys(fixed.cpuMsPerAlert)).toEqual(
      expect.arrayContaining(['nats-server', 'router', 'load generator']),
    );
    // The offline partner's backlog waited in JetStream and drained once it was back.
    expect(r.hub.partnerOffline.after.backlog).toBeGreaterThan(r.hub.partnerOffline.before.backlog);
    expect(r.hub.partnerOffline.caughtUp).toBe(true);
    expect(r.raw.phases[0]!.latencyMs.count).toBeGreaterThan(0);
    // Receipts on and off, the same phases, every accepted alert delivered in both.
    for (const mode of ['on', 'off'] as const) {
      expect(r.receipts[mode].length).toBeGreaterThanOrEqual(1);
      expect(r.receipts[mode][0]!.latencyMs.count).toBe(r.receipts[mode][0]!.accepted);
    }
    expect(r.receipts.peakOnOverOff).toBeGreaterThan(0);
    // The capacity comparison: the hub's CPU per alert with and without receipts, both measured.
    expect(Number.isFinite(r.receipts.cpuCostFraction)).toBe(true);
    expect(stdout).toContain('peak with receipts / without');
    for (const k of ['nats-server', 'router', 'raw nats-server', 'raw forwarder'])
      expect(r.memory[k]?.peakMiB).toBeGreaterThan(0);
    expect(stdout).toContain('hub/crypto-floor');
    // One node and the three-node R3 cluster under the same load; every alert delivered on each.
    expect(r.cluster.phases.map((p) => p.label)).toEqual(r.cluster.single.map((p) => p.label));
    for (const p of [...r.cluster.phases, ...r.cluster.single])
      expect(p.latencyMs.count).toBe(p.accepted);
    expect(r.ratios.clusterOverSingleNode).toBeGreaterThan(0);
    expect(stdout).toContain('three-node R3 cluster / one node');
    // The router alone at k = 1, 2, 10, 108 (and 1,000 agreements at k = 2), each with its crypto
    // floor: every queued alert drained and forwarded to its k partners, the router never restarted.
    expect(r.routerAlone.floors.map((f) => f.k)).toEqual([1, 2, 10, 108]);
    for (const f of r.routerAlone.floors) expect(f.alertsPerSecond).toBeGreaterThan(0);
    expect(r.routerAlone.phases.map((p) => `${p.k}/${p.agreements}`)).toEqual([
      '1/1',
      '2/1',
      '2/1000',
      '10/1',
      '108/1',
    ]);
    for (const p of r.routerAlone.phases) {
      expect(p.drained).toBe(true);
      expect(p.restarts).toBe(0);
      expect(p.forwarded).toBe(p.queued * p.k);
      expect(p.expectedForwards).toBe(p.queued * p.k);
      expect(p.routerPeakRssMiB).toBeGreaterThan(0);
    }
    expect(stdout).toContain('e. the router alone');
    // A guard, not a timing assertion: section e starts a hub of 109 agencies besides the others.
  }, 480_000);
});
