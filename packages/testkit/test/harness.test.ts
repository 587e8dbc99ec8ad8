import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { findNatsServer, startNatsServer } from '@alert-hub/testkit';
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
