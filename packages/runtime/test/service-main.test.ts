import { spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * `runService`, the `main` both services share, in a process of its own (it owns the process:
 * signals, exit codes), with a service whose close either finishes or hangs.
 */
const RUNTIME = pathToFileURL(fileURLToPath(new URL('../dist/index.js', import.meta.url))).href;

function runStopped(close: 'finishes' | 'hangs', shutdownGraceMs: number) {
  // The interval stands for the service's open sockets: a hanging close keeps them open.
  const script = `
    import { runService } from ${JSON.stringify(RUNTIME)};
    await runService({
      name: () => 'lifecycle-test',
      loadConfig: () => ({ log: { level: 'info' } }),
      start: async (_config, log) => {
        const work = setInterval(() => undefined, 1000);
        log.info('starting');
        return {
          reload() {},
          close: ${close === 'hangs' ? '() => new Promise(() => undefined)' : 'async () => clearInterval(work)'},
        };
      },
      shutdownGraceMs: ${shutdownGraceMs},
    });
    // runService has returned: its signal handlers are in place.
    console.log(JSON.stringify({ msg: 'started' }));`;
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script]);
  let out = '';
  let signalled = false;
  proc.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
    if (!signalled && out.includes('"msg":"started"')) {
      signalled = true;
      proc.kill('SIGTERM');
    }
  });
  const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  return new Promise<{ code: number | null; logs: Record<string, unknown>[] }>((resolve) =>
    proc.on('exit', (code) => {
      clearTimeout(killer);
      const logs = out
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      resolve({ code, logs });
    }),
  );
}

describe('service main - SIGTERM', () => {
  it('a close that finishes exits 0', async () => {
    const r = await runStopped('finishes', 10_000);
    expect(r.code).toBe(0);
    expect(r.logs.some((l) => l['code'] === 'ERR_SHUTDOWN_TIMEOUT')).toBe(false);
  });

  it('a close that takes longer than the grace period exits 1 with ERR_SHUTDOWN_TIMEOUT', async () => {
    const r = await runStopped('hangs', 500);
    expect(r.code).toBe(1);
    expect(r.logs.filter((l) => l['code'] === 'ERR_SHUTDOWN_TIMEOUT')).toEqual([
      expect.objectContaining({ code: 'ERR_SHUTDOWN_TIMEOUT', ms: 500 }),
    ]);
  });
});
