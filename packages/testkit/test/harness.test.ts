import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { findNatsServer, freePort, startNatsServer } from '@alert-hub/testkit';
import { useNatsServer } from '@alert-hub/testkit/harness';

const nats = useNatsServer();

describe('harness - nats-server', () => {
  it('starts a real server with JetStream on a random loopback port', async () => {
    expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'T', subjects: ['t.>'] });
    const ack = await jetstream(nc).publish('t.1', 'hello', { msgID: 'a' });
    expect(ack).toMatchObject({ stream: 'T', seq: 1, duplicate: false });
    expect((await jetstream(nc).publish('t.1', 'hello', { msgID: 'a' })).duplicate).toBe(true);
  });

  it('restarts on the same port with its store, and clients reconnect', async () => {
    const nc = await nats.connect();
    const port = nats.server.port;
    const reconnected = (async () => {
      for await (const s of nc.status()) if (s.type === 'reconnect') return true;
      return false;
    })();
    await nats.server.restart();
    expect(await reconnected).toBe(true);
    expect(nats.server.port).toBe(port);
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info('T')).state.messages).toBe(1);
  });

  it('picks its ports below the kernel’s ephemeral range, where no outgoing connection can take them', async () => {
    const ephemeralStart = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    for (let i = 0; i < 20; i++) expect(await freePort()).toBeLessThan(ephemeralStart);
    expect(nats.server.port).toBeLessThan(ephemeralStart);
    expect(Number(new URL(nats.server.monitorUrl).port)).toBeLessThan(ephemeralStart);
  });

  it('a restart whose monitoring port was taken meanwhile listens on another one, the client port unchanged', async () => {
    const server = await startNatsServer({ env: process.env });
    const taker = createServer();
    try {
      const port = server.port;
      const monitorPort = Number(new URL(server.monitorUrl).port);
      await server.kill();
      await new Promise<void>((resolve) => taker.listen(monitorPort, '127.0.0.1', resolve));
      await server.restart();
      expect(server.port).toBe(port);
      expect(Number(new URL(server.monitorUrl).port)).not.toBe(monitorPort);
      expect((await fetch(`${server.monitorUrl}/healthz`)).ok).toBe(true);
    } finally {
      taker.close();
      await server.stop();
    }
  });

  it('names the install command when the binary is missing', async () => {
    expect(() => findNatsServer({ PATH: '/nonexistent' }, '/no/such/nats-server')).toThrow(
      /apt-get install nats-server/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'ahub-test-'));
    try {
      await expect(
        startNatsServer({ bin: '/no/such/nats-server', dir, env: { PATH: '' } }),
      ).rejects.toMatchObject({ code: 'ERR_NATS_SERVER_NOT_FOUND' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reports a configuration nats-server refuses', async () => {
    await expect(
      startNatsServer({ config: 'this is { not valid', env: process.env }),
    ).rejects.toMatchObject({ code: 'ERR_NATS_SERVER_START' });
  });
});
