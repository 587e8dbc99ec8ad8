import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@alert-hub/gateway';
import { makeHubFixture, writeConfig } from '@alert-hub/testkit';

const fx = makeHubFixture(['SG-NPARKS']);
afterAll(() => fx.cleanup());

const config = (outbox: Record<string, unknown> | undefined) =>
  writeConfig(fx.dir, 'gateway-outbox', {
    agency: 'SG-NPARKS',
    signingKey: fx.keyFiles['SG-NPARKS'],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, 'gateway'),
    nats: { servers: ['tls://hub.example:4222'] },
    ...(outbox ? { outbox } : {}),
  });

const issues = (env: Record<string, string>, file: string) => {
  try {
    loadConfig(env, file);
  } catch (err) {
    const e = err as { code: string; issues: { pointer: string; message: string }[] };
    expect(e.code).toBe('ERR_CONFIG_INVALID');
    return e.issues;
  }
  return [];
};

describe('gateway config - behind a leaf node', () => {
  it('outbox.servers (AHUB_OUTBOX_SERVERS) names the leaf, nats.servers stays the hub; none by default', () => {
    expect(loadConfig({}, config(undefined)).outbox.servers).toBeUndefined();
    const c = loadConfig({}, config({ servers: ['tls://leaf.example:4222'] }));
    expect(c.outbox.servers).toEqual(['tls://leaf.example:4222']);
    expect(c.nats.servers).toEqual(['tls://hub.example:4222']);
    expect(
      loadConfig({ AHUB_OUTBOX_SERVERS: 'tls://a:4222,tls://b:4222' }, config(undefined)).outbox
        .servers,
    ).toEqual(['tls://a:4222', 'tls://b:4222']);
  });

  it('outbox.leaf: true, the form that sent everything through the leaf, is refused with the way to the new one (ERR_CONFIG_INVALID)', () => {
    for (const [env, outbox] of [
      [{}, { leaf: true }],
      [{ AHUB_OUTBOX_LEAF: 'true' }, undefined],
    ] as const) {
      const found = issues(env, config(outbox));
      expect(found.map((i) => i.pointer)).toEqual(['/outbox/leaf']);
      // Both settings of the new form are named: the leaf's URLs and the hub's.
      expect(found[0]!.message).toMatch(/outbox\.servers \(AHUB_OUTBOX_SERVERS\)/);
      expect(found[0]!.message).toMatch(/nats\.servers \(AHUB_NATS_SERVERS\)/);
    }
    expect(issues({}, config({ leaf: false }))).toEqual([]);
  });
});
