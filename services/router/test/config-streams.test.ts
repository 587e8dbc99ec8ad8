import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '@alert-hub/router';
import { MAX_FEED_MESSAGE_BYTES } from '@alert-hub/runtime';
import { makeHubFixture, writeConfig } from '@alert-hub/testkit';

const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
afterAll(() => fx.cleanup());

function configWith(streams: Record<string, unknown>): string {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [] }));
  return writeConfig(fx.dir, 'router-streams', {
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    streams,
  });
}

describe('router config - feed streams', () => {
  it('defaults: an interest feed on one replica (a copy leaves once stored), limits on several, 20,000 copies per recipient, no byte quota of its own (the stream’s share), the load it is checked against', () => {
    const c = loadConfig({}, configWith({}));
    expect(c.streams).toMatchObject({
      feedsRetention: 'interest',
      recipientMaxCopies: 20_000,
      load: { alertsPerSecond: 10, fanOut: 2, copyBytes: 4096 },
      migrateFeeds: false,
    });
    expect(c.streams.recipientMaxBytes).toBeUndefined();
    expect(loadConfig({}, configWith({ replicas: 3 })).streams.feedsRetention).toBe('limits');
    expect(loadConfig({ AHUB_STREAM_REPLICAS: '3' }, configWith({})).streams.feedsRetention).toBe(
      'limits',
    );
    expect(
      loadConfig({}, configWith({ replicas: 1, feedsRetention: 'limits' })).streams.feedsRetention,
    ).toBe('limits');
  });

  it('a copy quota larger than the feed stream is accepted (the byte quota bounds each recipient); recipientMaxBytes is read, and refused below 1', () => {
    const c = loadConfig({}, configWith({ feedsMaxBytes: 1_048_576, recipientMaxCopies: 256 }));
    expect(c.streams.recipientMaxCopies).toBe(256);
    expect(
      loadConfig({}, configWith({ recipientMaxBytes: 65_536 })).streams.recipientMaxBytes,
    ).toBe(65_536);
    let err: unknown;
    try {
      loadConfig({}, configWith({ recipientMaxBytes: 0 }));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
    expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
      '/streams/recipientMaxBytes',
    ]);
  });

  it('AHUB_FEEDS_RETENTION selects the retention; anything but interest or limits is refused', () => {
    const file = configWith({});
    expect(loadConfig({ AHUB_FEEDS_RETENTION: 'interest' }, file).streams.feedsRetention).toBe(
      'interest',
    );
    expect(() => loadConfig({ AHUB_FEEDS_RETENTION: 'other' }, file)).toThrow(
      expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
    );
  });

  it('refuses workqueue (any agency’s ack would remove other agencies’ copies) and interest on several replicas, at /streams/feedsRetention', () => {
    for (const [env, streams] of [
      [{ AHUB_FEEDS_RETENTION: 'workqueue' }, {}],
      [{}, { feedsRetention: 'workqueue' }],
      [{}, { feedsRetention: 'interest', replicas: 3 }],
    ] as const) {
      let err: unknown;
      try {
        loadConfig(env, configWith(streams));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify([env, streams])).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
      expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
        '/streams/feedsRetention',
      ]);
    }
    expect(
      loadConfig({}, configWith({ feedsRetention: 'limits', replicas: 3 })).streams.replicas,
    ).toBe(3);
  });
});

describe('router config - origin budgets (limits retention)', () => {
  it('originMaxBytesFor: none by default (even shares); overrides read; one under a message of the largest size, a bad agency id, or overrides leaving another agency of the trust store less than one message are refused at their place (ERR_CONFIG_INVALID)', () => {
    expect(loadConfig({}, configWith({})).streams.originMaxBytesFor).toEqual({});
    const o = loadConfig(
      {},
      configWith({
        feedsMaxBytes: 64 * 1024 ** 2,
        originMaxBytesFor: { 'SG-NPARKS': 40 * 1024 ** 2 },
      }),
    );
    expect(o.streams.originMaxBytesFor).toEqual({ 'SG-NPARKS': 40 * 1024 ** 2 });
    // The trust store holds SG-NPARKS and VN-CUSTOMS: 60 of 64 MiB's 60.8 leaves VN-CUSTOMS
    // 0.8 MiB, more than one message; 60.7 MiB leaves it less.
    expect(
      loadConfig(
        {},
        configWith({
          feedsMaxBytes: 64 * 1024 ** 2,
          originMaxBytesFor: { 'SG-NPARKS': 60 * 1024 ** 2 },
        }),
      ).streams.originMaxBytesFor,
    ).toEqual({ 'SG-NPARKS': 60 * 1024 ** 2 });
    for (const [streams, pointer] of [
      [
        { originMaxBytesFor: { 'VN-CUSTOMS': MAX_FEED_MESSAGE_BYTES - 1 } },
        '/streams/originMaxBytesFor/VN-CUSTOMS',
      ],
      [{ originMaxBytesFor: { 'not an agency': 4 * 1024 ** 2 } }, '/streams/originMaxBytesFor'],
      [
        {
          feedsMaxBytes: 64 * 1024 ** 2,
          originMaxBytesFor: { 'SG-NPARKS': Math.floor(60.7 * 1024 ** 2) },
        },
        '/streams/originMaxBytesFor',
      ],
    ] as const) {
      let err: unknown;
      try {
        loadConfig({}, configWith(streams));
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(streams)).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
      expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toEqual([
        pointer,
      ]);
    }
  });
});

describe('router config - notices', () => {
  it('each agency’s inbound stream: 1 GiB by default, inboundMaxBytesFor overrides per agency; a bad agency id or a size under 1 MiB is refused at its place (ERR_CONFIG_INVALID)', () => {
    const c = loadConfig({}, configWith({}));
    expect(c.streams.inboundMaxBytes).toBe(1024 ** 3);
    expect(c.streams.inboundMaxBytesFor).toEqual({});
    // An agency not in the trust store yet is accepted (it may be added later; the router warns).
    const o = loadConfig(
      {},
      configWith({ inboundMaxBytesFor: { 'VN-CUSTOMS': 4 * 1024 ** 3, 'KE-KWS': 2_097_152 } }),
    );
    expect(o.streams.inboundMaxBytesFor).toEqual({
      'VN-CUSTOMS': 4 * 1024 ** 3,
      'KE-KWS': 2_097_152,
    });
    for (const [bad, pointer] of [
      [{ 'VN-CUSTOMS': 1024 }, '/streams/inboundMaxBytesFor/VN-CUSTOMS'],
      [{ 'VN-CUSTOMS': '1GiB' }, '/streams/inboundMaxBytesFor/VN-CUSTOMS'],
      [{ 'not an agency': 2_097_152 }, '/streams/inboundMaxBytesFor'],
    ] as const) {
      let err: unknown;
      try {
        loadConfig({}, configWith({ inboundMaxBytesFor: bad }));
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
      expect((err as { issues: { pointer: string }[] }).issues.map((i) => i.pointer)).toContain(
        pointer,
      );
    }
  });

  it('refusals are grouped in notices unless noticeGroupRefusals (or AHUB_NOTICE_GROUP_REFUSALS) says false', () => {
    const file = configWith({});
    expect(loadConfig({}, file).noticeGroupRefusals).toBe(true);
    expect(loadConfig({ AHUB_NOTICE_GROUP_REFUSALS: 'false' }, file).noticeGroupRefusals).toBe(
      false,
    );
  });
});

describe('router config - principal', () => {
  it("the router's principal has the trust store's form: a name that could never have a key is refused", () => {
    const file = configWith({});
    expect(loadConfig({}, file).principal).toBe('HUB');
    for (const principal of ['HUB-1', 'ALERT-HUB', 'HUB12345678901234', 'hub'])
      expect(() => loadConfig({ AHUB_ROUTER_PRINCIPAL: principal }, file), principal).toThrow(
        expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }),
      );
  });
});
