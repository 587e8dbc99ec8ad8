import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT_DIR } from '@alert-hub/runtime/files';
import { eventually, makeHubFixture, writeConfig } from '@alert-hub/testkit';
import { useNatsServer } from '@alert-hub/testkit/harness';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
afterAll(() => fx.cleanup());

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('harness - service processes', () => {
  it('a process that exits without stopping the services it started takes them with it', async () => {
    const agreementsFile = join(fx.dir, 'agreements.json');
    writeFileSync(agreementsFile, JSON.stringify({ agreements: [] }));
    const file = writeConfig(fx.dir, 'router', {
      instance: 'cleanup',
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router'),
      nats: { servers: [nats.url] },
      http: { port: 0 },
    });
    // As a test file that fails between starting a router and stopping it: the process ends.
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { startService } from '@alert-hub/testkit';
         const s = await startService('router', ${JSON.stringify(file)});
         console.log(s.proc.pid);
         process.exit(1);`,
      ],
      { cwd: ROOT_DIR, encoding: 'utf8', timeout: 50_000 },
    );
    expect(child.status, child.stderr).toBe(1);
    const out = child.stdout;
    const pid = Number(out.trim().split('\n').pop());
    expect(pid).toBeGreaterThan(0);
    await eventually(() => expect(running(pid)).toBe(false), 10_000, 'the router gone');
  }, 60_000);
});
