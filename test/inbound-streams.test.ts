import { describe, expect, it } from 'vitest';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  AckPolicy,
  DiscardPolicy,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import {
  INBOUND_ALL,
  LEGACY_INBOUND_SUBJECTS,
  ROUTER_CONSUMER,
  Streams,
  inboundStreamName,
  inboundSubject,
  inboundSubjects,
  leafJsApiPrefix,
  leafSourceDeliverPrefix,
  outboxStreamName,
} from '@alert-hub/core';
import { DEFAULT_STREAM_LIMITS, provisionHub } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';

/**
 * One inbound stream per agency (`AHUB_IN_<agency>`), each with its own byte limit, and the
 * migration of an older hub's shared `AHUB_INBOUND`: its subjects are taken away, nothing it holds
 * is lost, and its `router` consumer still delivers what the router had not handled.
 */
const fresh = useNatsServer();
const older = useNatsServer();
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const NG = 'NG-NCS';
const MiB = 1024 * 1024;

async function noStream(jsm: Awaited<ReturnType<typeof jetstreamManager>>, name: string) {
  const err = await jsm.streams.info(name).then(
    () => undefined,
    (e: unknown) => e,
  );
  return err instanceof JetStreamApiError && err.status === 404;
}

describe('inbound streams - provisioning', () => {
  it('creates one stream per agency with its quota (or its override), the router consumer on each, the leaf source on its own agency’s stream, and no shared stream', async () => {
    const nc = await fresh.connect();
    const jsm = await jetstreamManager(nc);
    const report = await provisionHub(jsm, [SG, VN, NG], {
      limits: { inboundMaxBytes: 64 * MiB, inboundMaxBytesFor: { [VN]: 128 * MiB } },
      leaves: [NG],
      ackWaitMs: 20_000,
      routerMaxAckPending: 512,
    });
    expect(report.legacyInbound).toBeUndefined();
    expect(await noStream(jsm, Streams.Inbound)).toBe(true);

    for (const [agency, maxBytes] of [
      [SG, 64 * MiB],
      [VN, 128 * MiB],
      [NG, 64 * MiB],
    ] as const) {
      const { config } = await jsm.streams.info(inboundStreamName(agency));
      expect(config).toMatchObject({
        subjects: [inboundSubjects(agency)],
        max_bytes: maxBytes,
        max_age: nanos(DEFAULT_STREAM_LIMITS.maxAgeMs),
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.New,
        deny_delete: true,
        deny_purge: true,
        duplicate_window: nanos(DEFAULT_STREAM_LIMITS.duplicateWindowMs),
      });
      const c = await jsm.consumers.info(inboundStreamName(agency), ROUTER_CONSUMER);
      expect(c.config).toMatchObject({
        durable_name: ROUTER_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(20_000),
        max_ack_pending: 512,
      });
      expect(c.config.filter_subject ?? '').toBe('');
      expect(config.sources ?? []).toEqual(
        agency === NG
          ? [
              expect.objectContaining({
                name: outboxStreamName(NG),
                filter_subject: inboundSubjects(NG),
                external: { api: leafJsApiPrefix(NG), deliver: leafSourceDeliverPrefix(NG) },
              }),
            ]
          : [],
      );
    }

    // Each agency's publish lands in its own stream.
    const js = jetstream(nc);
    for (const agency of [SG, VN])
      expect((await js.publish(inboundSubject(agency, 'sighting'), 'x')).stream).toBe(
        inboundStreamName(agency),
      );

    // A reload with a new agency gives it its stream; an agency gone from the trust store keeps
    // its own (evidence), with what it holds.
    const KE = 'KE-KWS';
    await provisionHub(jsm, [VN, NG, KE], { leaves: [NG] });
    expect((await jsm.streams.info(inboundStreamName(KE))).config.subjects).toEqual([
      inboundSubjects(KE),
    ]);
    expect((await jsm.streams.info(inboundStreamName(SG))).state.messages).toBe(1);
    // The override gone, the agency's stream takes the common limit again; a leaf no longer
    // configured is no longer sourced.
    expect((await jsm.streams.info(inboundStreamName(VN))).config.max_bytes).toBe(
      DEFAULT_STREAM_LIMITS.inboundMaxBytes,
    );
    await provisionHub(jsm, [VN, NG, KE]);
    expect((await jsm.streams.info(inboundStreamName(NG))).config.sources ?? []).toEqual([]);
  });
});

describe('inbound streams - an agency whose stream cannot be made', () => {
  it('does not keep the others’ from being made; provisioning then fails with ERR_INBOUND_STREAMS_NOT_PROVISIONED naming it', async () => {
    const jsm = await jetstreamManager(await fresh.connect());
    const [TZ, UG] = ['TZ-TAWA', 'UG-UWA'];
    // More than the server's JetStream may reserve (max_file_store): nats-server refuses it.
    const err = await provisionHub(jsm, [TZ, UG], {
      limits: { inboundMaxBytesFor: { [TZ]: 2 * 1024 ** 4 } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'ERR_INBOUND_STREAMS_NOT_PROVISIONED',
      failures: [expect.objectContaining({ agency: TZ })],
    });
    expect(await noStream(jsm, inboundStreamName(TZ))).toBe(true);
    expect((await jsm.consumers.info(inboundStreamName(UG), ROUTER_CONSUMER)).name).toBe(
      ROUTER_CONSUMER,
    );
  });
});

describe('inbound streams - migration of a hub with the shared AHUB_INBOUND', () => {
  it('takes the subjects and sources away from AHUB_INBOUND, keeps its unhandled messages for its router consumer, and new publishes land in each agency’s stream', async () => {
    const nc = await older.connect();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    // The hub as earlier versions made it: one stream for every agency, sourcing the leaf's outbox.
    await jsm.streams.add({
      name: Streams.Inbound,
      subjects: [INBOUND_ALL],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_bytes: 1024 * MiB,
      max_age: nanos(DEFAULT_STREAM_LIMITS.maxAgeMs),
      deny_delete: true,
      deny_purge: true,
      sources: [
        {
          name: outboxStreamName(NG),
          filter_subject: inboundSubjects(NG),
          external: { api: leafJsApiPrefix(NG), deliver: leafSourceDeliverPrefix(NG) },
        },
      ],
    });
    await jsm.consumers.add(Streams.Inbound, {
      durable_name: ROUTER_CONSUMER,
      ack_policy: AckPolicy.Explicit,
    });
    const sent = [
      [inboundSubject(SG, 'sighting'), 'sg-1'],
      [inboundSubject(VN, 'seizure-report'), 'vn-1'],
      [inboundSubject(SG, 'receipt'), 'sg-2'],
    ] as const;
    for (const [subject, data] of sent) await js.publish(subject, data, { msgID: data });
    // What the leaf's outbox gave it carries the outbox sequence (as nats-server's sourcing writes it).
    const h = natsHeaders();
    h.set('Nats-Stream-Source', `${outboxStreamName(NG)}:TtwnR7sx 41`);
    await js.publish(inboundSubject(NG, 'sighting'), 'ng-41', { headers: h, msgID: 'ng-41' });
    // The router handled the first one before the upgrade.
    const legacyConsumer = await js.consumers.get(Streams.Inbound, ROUTER_CONSUMER);
    const first = await legacyConsumer.next({ expires: 5000 });
    expect(first?.string()).toBe('sg-1');
    await first!.ackAck();

    const report = await provisionHub(jsm, [SG, VN, NG], { leaves: [NG] });
    expect(report.legacyInbound).toEqual({ messages: 4, unhandled: 3 });

    const legacy = await jsm.streams.info(Streams.Inbound);
    expect(legacy.config.subjects).toEqual([LEGACY_INBOUND_SUBJECTS]);
    expect(legacy.config.sources ?? []).toEqual([]);
    expect(legacy.state.messages).toBe(4);
    // What it reserved of the server's storage is down to what it holds.
    expect(legacy.config.max_bytes).toBeLessThan(1024 * MiB);
    expect(legacy.config.max_bytes).toBeGreaterThanOrEqual(legacy.state.bytes);
    // The leaf's outbox is sourced by its agency's stream, after what AHUB_INBOUND already took.
    expect((await jsm.streams.info(inboundStreamName(NG))).config.sources).toEqual([
      expect.objectContaining({ name: outboxStreamName(NG), opt_start_seq: 42 }),
    ]);

    // A new publish lands in the agency's own stream, not in the legacy one.
    const ack = await js.publish(inboundSubject(SG, 'sighting'), 'sg-3', { msgID: 'sg-3' });
    expect(ack.stream).toBe(inboundStreamName(SG));
    expect((await jsm.streams.info(Streams.Inbound)).state.messages).toBe(4);

    // The legacy router consumer still delivers every unhandled message, with its own subject.
    const rest: [string, string][] = [];
    for (let i = 0; i < 3; i++) {
      const m = await legacyConsumer.next({ expires: 5000 });
      expect(m).not.toBeNull();
      rest.push([m!.subject, m!.string()]);
      await m!.ackAck();
    }
    expect(rest).toEqual([
      [sent[1][0], 'vn-1'],
      [sent[2][0], 'sg-2'],
      [inboundSubject(NG, 'sighting'), 'ng-41'],
    ]);

    // Provisioning again changes nothing and reports the legacy stream handled.
    const again = await provisionHub(jsm, [SG, VN, NG], { leaves: [NG] });
    expect(again.legacyInbound).toEqual({ messages: 4, unhandled: 0 });
    expect((await jsm.streams.info(inboundStreamName(NG))).config.sources).toEqual([
      expect.objectContaining({ name: outboxStreamName(NG), opt_start_seq: 42 }),
    ]);
    expect((await jsm.streams.info(Streams.Inbound)).state.messages).toBe(4);
  });
});
