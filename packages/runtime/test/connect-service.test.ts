import { createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { connectService, createLogger, type NatsSection } from '@alert-hub/runtime';

/** A logger whose lines are kept, parsed. */
function keptLog() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({
    name: 'test',
    destination: { write: (s: string) => void lines.push(JSON.parse(s) as never) },
  });
  return { log, lines };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('connectService', () => {
  it('trying for minutes, it logs each failed attempt for the first 30 s, then one a minute, and always the last', async () => {
    // Only the clock is faked: each connection is really refused (nothing listens on port 1).
    vi.useFakeTimers({ toFake: ['Date'] });
    const nats: NatsSection = {
      servers: ['nats://127.0.0.1:1'],
      connectAttempts: 200,
      connectRetryMs: 2_000,
      publishTimeoutMs: 5_000,
    };
    const { log, lines } = keptLog();
    const err = await connectService(nats, 'test', 'SG-NPARKS', log, {
      // 200 attempts 2 s apart: 398 s of trying
      sleep: async (ms) => void vi.setSystemTime(Date.now() + ms),
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_NATS_UNREACHABLE' });
    const attempts = lines
      .filter((l) => String(l['msg']).startsWith('NATS unreachable'))
      .map((l) => l['attempt'] as number);
    // t = 0, 2, ..., 30 s: attempts 1-16; then t = 90, 150, 210, 270, 330, 390 s; and the last.
    expect(attempts).toEqual([
      ...Array.from({ length: 16 }, (_, i) => i + 1),
      46,
      76,
      106,
      136,
      166,
      196,
      200,
    ]);
    expect(lines.at(-1)!['msg']).toBe('NATS unreachable; giving up');
  });

  it('the same refusal from each server of a cluster is one cause: still one line a minute; a new cause is logged at once, and each line names the connection', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    // Three servers where nothing listens, then the third answers and hangs up at once.
    const ports = await freePorts(3);
    const nats: NatsSection = {
      servers: ports.map((p) => `nats://127.0.0.1:${p}`),
      connectAttempts: 100,
      connectRetryMs: 2_000,
      publishTimeoutMs: 5_000,
    };
    const { log, lines } = keptLog();
    let hangingUp: Server | undefined;
    const causes: string[] = [];
    try {
      const err = await connectService(nats, 'alert-hub test (cluster)', 'SG-NPARKS', log, {
        onFailure: (cause) => void causes.push(cause),
        sleep: async (ms) => {
          vi.setSystemTime(Date.now() + ms);
          // after attempt 60 (t = 118 s): a new cause
          if (causes.length === 60) hangingUp = await listen(ports[2]!, (s) => s.destroy());
        },
      }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_NATS_UNREACHABLE' });
    } finally {
      hangingUp?.close();
    }
    const logged = lines.filter((l) => String(l['msg']).startsWith('NATS unreachable'));
    expect(logged.every((l) => l['connection'] === 'alert-hub test (cluster)')).toBe(true);
    // Refused by any of the three servers: one cause, as with one server.
    expect(logged.slice(0, 17).map((l) => l['attempt'])).toEqual([
      ...Array.from({ length: 16 }, (_, i) => i + 1),
      46,
    ]);
    // The third server hanging up is a new cause: its first attempt is logged.
    const kind = (c: string) => (c.startsWith('connection refused') ? 'refused' : 'other');
    const firstOther = causes.findIndex((c) => kind(c) === 'other') + 1;
    expect(firstOther).toBeGreaterThan(60);
    expect(logged.map((l) => l['attempt'])).toContain(firstOther);
    // After the first 30 s, each cause at most once a minute (30 attempts 2 s apart), the last
    // line apart.
    for (const k of ['refused', 'other']) {
      const at = logged
        .slice(16, -1)
        .filter((l) => kind(String(l['cause'])) === k)
        .map((l) => l['attempt'] as number);
      for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(30);
    }
    expect(logged.at(-1)!['attempt']).toBe(100);
  });
});

/** Ports nothing listens on (each bound once, then freed). */
async function freePorts(n: number): Promise<number[]> {
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = await listen(0, (c) => c.destroy());
    ports.push((s.address() as { port: number }).port);
    await new Promise((r) => s.close(r));
  }
  return ports;
}

function listen(port: number, onSocket: (s: Socket) => void): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(onSocket);
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}
