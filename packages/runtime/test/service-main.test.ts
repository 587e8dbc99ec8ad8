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

describe('service main - SIGHUP', () => {
  it('reloads run one at a time: SIGHUPs during a reload are folded into one more, after it', async () => {
    // Each reload waits for a line on stdin, so the test decides when it ends. The first listener
    // logs each SIGHUP as it arrives, before runService's own.
    const script = `
      import { runService } from ${JSON.stringify(RUNTIME)};
      process.on('SIGHUP', () => console.log(JSON.stringify({ msg: 'hup' })));
      let reloads = 0;
      await runService({
        name: () => 'reload-test',
        loadConfig: () => ({ log: { level: 'info' } }),
        start: async () => {
          const work = setInterval(() => undefined, 1000);
          return {
            async reload() {
              const i = ++reloads;
              console.log(JSON.stringify({ msg: 'reload', i, at: 'start' }));
              await new Promise((resolve) => process.stdin.once('data', resolve));
              console.log(JSON.stringify({ msg: 'reload', i, at: 'end' }));
            },
            close: async () => clearInterval(work),
          };
        },
      });
      console.log(JSON.stringify({ msg: 'started' }));`;
    const proc = spawn(process.execPath, ['--input-type=module', '-e', script]);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    const logs: { msg?: string; i?: number; at?: string }[] = [];
    const waiters: (() => void)[] = [];
    let rest = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      const parts = (rest + d).split('\n');
      rest = parts.pop()!;
      for (const l of parts) if (l) logs.push(JSON.parse(l) as never);
      for (const w of waiters.splice(0)) w();
    });
    const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
    const until = async (done: () => boolean) => {
      while (!done()) {
        const more = new Promise<void>((resolve) => waiters.push(resolve));
        await Promise.race([more, exited]);
        if (proc.exitCode !== null || proc.signalCode !== null) break;
      }
    };
    const count = (msg: string, at?: string) =>
      logs.filter((l) => l.msg === msg && (at === undefined || l.at === at)).length;
    await until(() => count('started') === 1);
    proc.kill('SIGHUP');
    await until(() => count('reload', 'start') === 1);
    // One at a time: two SIGHUPs sent before the first is delivered are one signal to the kernel.
    proc.kill('SIGHUP');
    await until(() => count('hup') === 2);
    proc.kill('SIGHUP');
    await until(() => count('hup') === 3);
    proc.stdin.write('go\n');
    await until(() => count('reload', 'end') === 1);
    await until(() => count('reload', 'start') === 2);
    proc.stdin.write('go\n');
    await until(() => count('reload', 'end') === 2);
    proc.kill('SIGTERM');
    await exited;
    clearTimeout(killer);
    expect(logs.filter((l) => l.msg === 'reload').map((l) => `${l.at} ${l.i}`)).toEqual([
      'start 1',
      'end 1',
      'start 2',
      'end 2',
    ]);
  });
});
