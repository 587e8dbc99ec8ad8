import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { RetentionPolicy, StorageType, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { inboundStreamName } from '@alert-hub/core';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

// One agency's inbound stream that nats-server refuses (its storage reserved by another stream:
// JetStream error 10047) must not stop the router for every agency: it starts, routes the
// others, says so in /readyz without becoming unready, and makes the stream once there is room.
const [SG, VN] = ['SG-NPARKS', 'VN-CUSTOMS'];
const AGENCIES = [SG, VN];
const GiB = 1024 ** 3;
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('inbound-not-provisioned-test');
let router: Router | undefined;
const prometheus = createToken();
let nc: NatsConnection;

beforeAll(async () => {
  writeFileSync(
    join(fx.dir, 'agreements.yaml'),
    toYaml({ agreements: [seizureAgreement('WEN-ASIA', 'Asia', AGENCIES)] }),
  );
  nc = await nats.connect();
}, 60_000);
afterAll(async () => {
  await nc?.close();
  await router?.close().catch(() => undefined);
  fx.cleanup();
});

describe('router - an agency whose inbound stream cannot be made', () => {
  it('starts, routes the other agencies, reports the missing stream in /readyz (still ready) and makes it once there is room', async () => {
    const jsm = await jetstreamManager(nc);
    // Another stream holds all but 100 GiB of the server's max_file_store (1 TiB in the harness).
    await jsm.streams.add({
      name: 'BLOCKER',
      subjects: ['blocker'],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_bytes: 1024 * GiB - 100 * GiB,
    });
    router = await startRouter(
      loadConfig(
        {},
        writeConfig(fx.dir, 'router', {
          instance: 'router-a',
          signingKey: fx.hubKeyFile,
          trustDir: fx.trustDir,
          agreementsFile: join(fx.dir, 'agreements.yaml'),
          dataDir: join(fx.dir, 'router'),
          nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
          http: { port: 0 },
          metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
          streams: { inboundMaxBytes: 64 * 1024 * 1024, inboundMaxBytesFor: { [VN]: 200 * GiB } },
        }),
      ),
      { log, inboundRetryMs: 200 },
    );
    const readyz = async () => {
      const res = await fetch(`${router!.url}/readyz`, {
        headers: { authorization: `Bearer ${prometheus.token}` },
      });
      return {
        status: res.status,
        checks: ((await res.json()) as { checks: Record<string, string> }).checks,
      };
    };
    const first = await readyz();
    expect(first.status).toBe(200);
    expect(first.checks['inboundStreams']).toContain(VN);
    expect(first.checks['inboundStreams']).not.toContain(SG);
    expect(lines.some((l) => l.includes('ERR_INBOUND_STREAMS_NOT_PROVISIONED'))).toBe(true);

    // The other agency is routed meanwhile.
    const sg = seizureReport(SG);
    await publishInbound(nc, sg, fx.keys[SG]!);
    await eventually(() => router!.store.routed(SG, sg.id), 20_000, 'SG routed');

    // Room again: the missing stream is made by the router's own retries, and VN is routed.
    await jsm.streams.delete('BLOCKER');
    await eventually(
      async () => ((await readyz()).checks['inboundStreams'] === 'ok' ? true : undefined),
      20_000,
      'the missing stream made',
    );
    expect((await jsm.streams.info(inboundStreamName(VN))).config.max_bytes).toBe(200 * GiB);
    const vn = seizureReport(VN);
    await publishInbound(nc, vn, fx.keys[VN]!);
    await eventually(() => router!.store.routed(VN, vn.id), 30_000, 'VN routed');
  }, 90_000);
});
