import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { inboundStreamName, receiptSubject } from '@alert-hub/core';
import {
  OPEN_JS_API,
  eventually,
  hubctl,
  seizureAgreement,
  seizureReport,
  scrapeMetrics,
} from '@alert-hub/testkit';
import { useInProcessHub } from './support/inprocess-hub.js';

/**
 * The denial of service by a valid agency: one agency floods junk on its own inbound subject
 * (its delivery receipts) until its stream is full. With one stream per agency, only that
 * agency's new messages are refused; every other agency's alerts are still accepted and routed.
 */
const FLOODER = 'SG-NPARKS';
const HONEST = 'VN-CUSTOMS';
const PARTNER = 'KE-KWS';
const AGENCIES = [FLOODER, HONEST, PARTNER];
const QUOTA = 1024 * 1024;
const hub = useInProcessHub(AGENCIES);
const { nats, submit } = hub;

beforeAll(async () => {
  await hub.start({
    agreements: [seizureAgreement('ALL', 'all', AGENCIES)],
    router: { streams: { inboundMaxBytesFor: { [FLOODER]: QUOTA } } },
    gateways: [FLOODER, HONEST],
    gateway: () => ({
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API, publishTimeoutMs: 2000 },
    }),
  });
}, 60_000);
afterAll(() => hub.close());

async function fillRatio(stream: string): Promise<number> {
  const text = await scrapeMetrics(hub.router.url, hub.metricsToken);
  const m = new RegExp(
    `^ahub_router_stream_fill_ratio\\{[^}]*stream="${stream}"[^}]*\\} (\\S+)$`,
    'm',
  ).exec(text);
  expect(m, stream).not.toBeNull();
  return Number(m![1]);
}

describe('inbound streams - one agency fills its own stream', () => {
  it('its own new alerts are refused (503 ERR_INBOUND_STREAM_FULL, nothing stored), another agency’s alert is still accepted and routed', async () => {
    // Junk on the flooder's own receipt subject (a subject its NATS user may publish on; this
    // server has no accounts, so the test's own connection publishes it) until the stream
    // refuses (JetStream 10077: maximum bytes exceeded, discard new).
    const js = jetstream(await nats.connect());
    let refused: unknown;
    // large junk first, then ever smaller, until not even 200 bytes fit
    for (const size of [64 * 1024, 4096, 200]) {
      refused = undefined;
      for (let i = 0; i < 1000 && refused === undefined; i++)
        await js
          .publish(receiptSubject(FLOODER), new Uint8Array(size).fill(0x6a))
          .catch((err: unknown) => (refused = err));
      expect(refused).toBeInstanceOf(JetStreamApiError);
      expect((refused as JetStreamApiError).code).toBe(10077);
    }
    const jsm = await jetstreamManager(await nats.connect());
    const full = await jsm.streams.info(inboundStreamName(FLOODER));
    expect(full.config.max_bytes).toBe(QUOTA);
    expect(full.state.bytes).toBeGreaterThan(QUOTA - 1024);

    // The flooder's own gateway: refused, nothing stored.
    const stored = full.state.messages;
    const own = await submit(FLOODER, seizureReport(FLOODER));
    expect(own.status).toBe(503);
    expect(((await own.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_INBOUND_STREAM_FULL',
    );
    expect((await jsm.streams.info(inboundStreamName(FLOODER))).state.messages).toBe(stored);

    // Another agency: accepted, stored in its own stream, and routed to its partners.
    const alert = seizureReport(HONEST);
    const res = await submit(HONEST, alert);
    expect(res.status).toBe(202);
    const { id, sequence } = (await res.json()) as { id: string; sequence: number };
    expect(
      (await jsm.streams.getMessage(inboundStreamName(HONEST), { seq: sequence }))?.subject,
    ).toBe(`ahub.in.${HONEST}.seizure-report`);
    await eventually(
      () => hub.router.store.routed(HONEST, id) !== undefined,
      20_000,
      'the honest agency’s alert routed',
    );

    // The fill gauge says which stream is full, and only that one.
    expect(await fillRatio(inboundStreamName(FLOODER))).toBeGreaterThan(0.9);
    expect(await fillRatio(inboundStreamName(HONEST))).toBeLessThan(0.01);
    // Copies forwarded are counted by the agency whose alerts they are: the flooder forwarded none.
    const metrics = await scrapeMetrics(hub.router.url, hub.metricsToken);
    expect(metrics).toMatch(
      new RegExp(`^ahub_router_forwards_total\\{origin="${HONEST}"[,}].* [1-9]\\d*$`, 'm'),
    );
    expect(metrics).not.toContain(`ahub_router_forwards_total{origin="${FLOODER}"`);
  }, 60_000);
  it('hubctl send does not resend into a full stream: one refusal, ERR_INBOUND_STREAM_FULL, exit code 1', async () => {
    const file = join(hub.fx.dir, 'flooder-alert.json');
    writeFileSync(file, JSON.stringify(seizureReport(FLOODER)));
    const r = await hubctl(
      ['send', file, '--gateway', hub.gateways[FLOODER]!.url, '--retries', '3', '--json'],
      { env: { AHUB_TOKEN: hub.token.token } },
    );
    expect(r.code).toBe(1);
    expect((JSON.parse(r.stdout) as { error: { code: string } }).error.code).toBe(
      'ERR_INBOUND_STREAM_FULL',
    );
    // A 503 of NATS itself is resent ("hub unavailable; resending ..."); a full stream is not.
    expect(r.stderr).not.toContain('resending');
  });
});
