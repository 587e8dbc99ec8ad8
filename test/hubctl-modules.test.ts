import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, sampleSeizureReport } from '@alert-hub/testkit';

// How this is measured: each command runs in its own node process with the testkit's
// module-trace preload, which records every ES module the loader resolves and every CommonJS
// module in require.cache at exit. The controls prove the trace sees NATS and Fastify when a
// process does load them, so the tests below can fail.
const dir = mkdtempSync(join(tmpdir(), 'ahub-modules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const TRACE = join(ROOT, 'packages/testkit/dist/module-trace.js');
const FORBIDDEN = /\/node_modules\/(fastify|@fastify\/[^/]+|@nats-io\/[^/]+)\/|\/services\//;

function modulesLoadedBy(args: readonly string[]): string[] {
  const out = join(dir, `trace-${Math.random().toString(36).slice(2)}.txt`);
  writeFileSync(out, '');
  const r = spawnSync(process.execPath, ['--import', TRACE, ...args], {
    cwd: ROOT,
    env: { ...process.env, AHUB_MODULE_TRACE: out },
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  return readFileSync(out, 'utf8').split('\n').filter(Boolean);
}

const HUBCTL = join(ROOT, 'packages/hubctl/bin/hubctl.js');

describe('hubctl - loads no service dependency', () => {
  it('control: the trace sees NATS and Fastify when a process loads them', () => {
    const loaded = modulesLoadedBy([
      '--input-type=module',
      '-e',
      "await import('@alert-hub/runtime'); await import('@alert-hub/gateway');",
    ]);
    expect(loaded.some((m) => m.includes('/node_modules/@nats-io/'))).toBe(true);
    expect(loaded.some((m) => m.includes('/node_modules/fastify/'))).toBe(true);
  });

  it('hubctl --version loads neither Fastify nor NATS nor a service', () => {
    const loaded = modulesLoadedBy([HUBCTL, '--version']);
    expect(loaded.some((m) => m.includes('/packages/hubctl/'))).toBe(true);
    expect(loaded.filter((m) => FORBIDDEN.test(m))).toEqual([]);
  });

  it('hubctl validate loads neither Fastify nor NATS nor a service', () => {
    const file = join(dir, 'alert.json');
    writeFileSync(file, JSON.stringify(sampleSeizureReport('SG-NPARKS')));
    const loaded = modulesLoadedBy([HUBCTL, 'validate', file]);
    expect(loaded.some((m) => m.includes('/packages/core/'))).toBe(true);
    expect(loaded.filter((m) => FORBIDDEN.test(m))).toEqual([]);
  });
});
