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
});
