import { createServer, type Server } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { auditDbFile, loadConfig, startRouter } from '@alert-hub/router';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  openFilesUnder,
  seizureAgreement,
  writeConfig,
} from '@alert-hub/testkit';

// A router that does not start must leave nothing running in the process that started it: no
// connection to NATS (its own, or one per agency's leaf outbox, each retried for ever), no loop
// reading a stream, no timer, no open audit database.
const [SG, VN] = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture([SG, VN]);
const { log, lines } = memoryLogger('router-start-failure-test');
let taken: Server;

beforeAll(async () => {
  writeFileSync(
    join(fx.dir, 'agreements.yaml'),
    toYaml({ agreements: [seizureAgreement('WEN-ASIA', 'Asia', [SG, VN])] }),
  );
  taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
}, 60_000);
afterAll(async () => {
  await new Promise((resolve) => taken?.close(resolve));
  fx.cleanup();
});

/** The names of the client connections nats-server holds, from its monitoring endpoint. */
async function connectionNames(): Promise<string[]> {
  const res = await fetch(`${nats.server.monitorUrl}/connz?limit=1024`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? '');
}

describe('router - a start that fails', () => {
  it('its HTTP port taken: rejects with EADDRINUSE, closes its NATS and leaf-outbox connections and its audit database, and logs nothing more', async () => {
    const config = loadConfig(
      {},
      writeConfig(fx.dir, 'router', {
        instance: 'router-unstarted',
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile: join(fx.dir, 'agreements.yaml'),
        dataDir: join(fx.dir, 'router'),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: (taken.address() as { port: number }).port },
        // SG's gateway sits behind a leaf node: the router reads its outbox on a connection of
        // its own, tried until it answers.
        streams: { leaves: [SG] },
      }),
    );
    await expect(startRouter(config, { log })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    // It had got as far as reading the leaf outbox and its inbound streams.
    expect(lines.some((l) => l.includes('"connection":"leaf outbox"'))).toBe(true);
    await eventually(
      async () => !(await connectionNames()).some((n) => n.startsWith('alert-hub router')),
      5_000,
      'no router connection left at nats-server',
    );
    expect(openFilesUnder(auditDbFile(config))).toEqual([]);
    const logged = lines.length;
    await new Promise((r) => setTimeout(r, 1_500));
    expect(lines.slice(logged)).toEqual([]);
  });
});
