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
  LEAF_OUTBOX_SEQ_HEADER,
  leafJsApiPrefix,
  outboxStreamName,
} from '@alert-hub/core';
import { DEFAULT_STREAM_LIMITS, leafOutboxProgress, provisionHub } from '@alert-hub/runtime';
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
  it('creates one stream per agency with its quota (or its override), the router consumer on each, no source, and no shared stream', async () => {
    const nc = await fresh.connect();
    const jsm = await jetstreamManager(nc);
    const report = await provisionHub(jsm, [SG, VN, NG], {
      limits: { inboundMaxBytes: 64 * MiB, inboundMaxBytesFor: { [VN]: 128 * MiB } },
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
      // No source, an agency's leaf node or not: the routers read a leaf's outbox themselves.
      expect(config.sources ?? []).toEqual([]);
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
    await provisionHub(jsm, [VN, NG, KE]);
    expect((await jsm.streams.info(inboundStreamName(KE))).config.subjects).toEqual([
      inboundSubjects(KE),
    ]);
    expect((await jsm.streams.info(inboundStreamName(SG))).state.messages).toBe(1);
    // The override gone, the agency's stream takes the common limit again.
    expect((await jsm.streams.info(inboundStreamName(VN))).config.max_bytes).toBe(
      DEFAULT_STREAM_LIMITS.inboundMaxBytes,
    );
  });
});

describe('inbound streams - a hub whose agency’s stream sourced its leaf node', () => {
  it('loses the source, and the routers read the outbox on after the last message it sourced or they took', async () => {
    const nc = await fresh.connect();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const ZM = 'ZM-DNPW';
    // The agency's stream as the previous release made it: sourcing the leaf's outbox.
    await jsm.streams.add({
      name: inboundStreamName(ZM),
      subjects: [inboundSubjects(ZM)],
      max_bytes: 64 * MiB,
      sources: [
        {
          name: outboxStreamName(ZM),
          filter_subject: inboundSubjects(ZM),
          external: { api: leafJsApiPrefix(ZM), deliver: `ahub.leafsrc.${ZM}` },
        },
      ],
    });
    expect(await leafOutboxProgress(jsm, ZM)).toBe(0);
    // What the source stored carries the outbox sequence (as nats-server's sourcing writes it);
    // another source's header is not the outbox's.
    const sourced = (name: string, seq: number) => {
      const h = natsHeaders();
      h.set('Nats-Stream-Source', `${name}:TtwnR7sx ${seq} > >`);
      return h;
    };
    await js.publish(inboundSubject(ZM, 'sighting'), 'a', {
      headers: sourced(outboxStreamName(ZM), 7),
    });
    await js.publish(inboundSubject(ZM, 'receipt'), 'b', {
      headers: sourced(outboxStreamName(ZM), 9),
    });
    await js.publish(inboundSubject(ZM, 'seizure-report'), 'c', {
      headers: sourced('AHUB_OTHER', 99),
    });
    await provisionHub(jsm, [ZM]);
    expect((await jsm.streams.info(inboundStreamName(ZM))).config.sources ?? []).toEqual([]);
    expect(await leafOutboxProgress(jsm, ZM)).toBe(9);
    // What the routers take names its outbox sequence in a header of its own.
    const h = natsHeaders();
    h.set(LEAF_OUTBOX_SEQ_HEADER, '12');
    await js.publish(inboundSubject(ZM, 'sighting'), 'd', { headers: h });
    expect(await leafOutboxProgress(jsm, ZM)).toBe(12);
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
          // as an older hub named its deliver prefix
          external: { api: leafJsApiPrefix(NG), deliver: `ahub.leafsrc.${NG}` },
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

    const report = await provisionHub(jsm, [SG, VN, NG]);
    expect(report.legacyInbound).toEqual({ messages: 4, unhandled: 3 });

    const legacy = await jsm.streams.info(Streams.Inbound);
    expect(legacy.config.subjects).toEqual([LEGACY_INBOUND_SUBJECTS]);
    expect(legacy.config.sources ?? []).toEqual([]);
    expect(legacy.state.messages).toBe(4);
    // What it reserved of the server's storage is down to what it holds.
    expect(legacy.config.max_bytes).toBeLessThan(1024 * MiB);
    expect(legacy.config.max_bytes).toBeGreaterThanOrEqual(legacy.state.bytes);
    // The leaf's outbox is read after what AHUB_INBOUND already took from it.
    expect(await leafOutboxProgress(jsm, NG)).toBe(41);

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
    const again = await provisionHub(jsm, [SG, VN, NG]);
    expect(again.legacyInbound).toEqual({ messages: 4, unhandled: 0 });
    expect(await leafOutboxProgress(jsm, NG)).toBe(41);
    expect((await jsm.streams.info(Streams.Inbound)).state.messages).toBe(4);
  });
});

/** An older hub's shared stream, as earlier versions made it. */
async function addSharedStream(
  jsm: Awaited<ReturnType<typeof jetstreamManager>>,
  maxBytes: number,
): Promise<void> {
  await jsm.streams.add({
    name: Streams.Inbound,
    subjects: [INBOUND_ALL],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.New,
    max_bytes: maxBytes,
    max_age: nanos(DEFAULT_STREAM_LIMITS.maxAgeMs),
    deny_delete: true,
    deny_purge: true,
  });
}

const busy = useNatsServer();
const upgrading = useNatsServer();

describe('inbound streams - retiring AHUB_INBOUND while agencies publish', () => {
  it('keeps every message stored in AHUB_INBOUND up to its retirement, and its max_bytes is at least what it holds', async () => {
    const nc = await busy.connect();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    await addSharedStream(jsm, 1024 * MiB);
    // More than the 1 MiB the shared stream keeps at least once retired.
    const big = new Uint8Array(100 * 1024);
    for (let i = 0; i < 20; i++) await js.publish(inboundSubject(SG, 'sighting'), big);
    // A gateway goes on publishing while the router provisions.
    let stop = false;
    let inShared = 20;
    const publisher = (async () => {
      while (!stop) {
        const ack = await js.publish(inboundSubject(VN, 'sighting'), big).catch(() => undefined);
        if (ack?.stream === Streams.Inbound) inShared++;
      }
    })();
    await provisionHub(jsm, [SG, VN]);
    stop = true;
    await publisher;
    const legacy = await jsm.streams.info(Streams.Inbound);
    expect(legacy.config.subjects).toEqual([LEGACY_INBOUND_SUBJECTS]);
    expect(legacy.state.first_seq).toBe(1);
    expect(legacy.state.messages).toBe(inShared);
    expect(legacy.config.max_bytes).toBeGreaterThanOrEqual(legacy.state.bytes);
    expect(legacy.config.max_bytes).toBeLessThan(1024 * MiB);
  });
});

describe('inbound streams - a lower byte limit than a stream holds', () => {
  it('keeps every message and reports the limit it kept instead', async () => {
    const nc = await busy.connect();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    const KE = 'KE-KWS';
    await provisionHub(jsm, [KE], { limits: { inboundMaxBytes: 8 * MiB } });
    const big = new Uint8Array(100 * 1024);
    for (let i = 0; i < 30; i++) await js.publish(inboundSubject(KE, 'sighting'), big);
    const before = await jsm.streams.info(inboundStreamName(KE));
    const report = await provisionHub(jsm, [KE], { limits: { inboundMaxBytes: MiB } });
    const after = await jsm.streams.info(inboundStreamName(KE));
    expect(after.state.messages).toBe(30);
    expect(after.state.first_seq).toBe(1);
    expect(after.config.max_bytes).toBeGreaterThanOrEqual(before.state.bytes);
    expect(report.clamped).toEqual([
      {
        stream: inboundStreamName(KE),
        configured: MiB,
        kept: after.config.max_bytes,
        bytes: before.state.bytes,
      },
    ]);
    // Raised again, the configured limit applies and nothing is reported.
    const raised = await provisionHub(jsm, [KE], { limits: { inboundMaxBytes: 16 * MiB } });
    expect(raised.clamped).toEqual([]);
    expect((await jsm.streams.info(inboundStreamName(KE))).config.max_bytes).toBe(16 * MiB);
  });
});

describe('inbound streams - an upgrade whose streams cannot all be reserved', () => {
  it('leaves AHUB_INBOUND taking every agency’s alerts (ERR_INBOUND_STREAMS_NOT_PROVISIONED, sharedStreamKept); with room, the migration completes', async () => {
    const nc = await upgrading.connect();
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc);
    // Sized for the whole hub, as the older release asked: the same value per agency does not fit
    // the server's max_file_store (1 TiB in the harness) next to it.
    const wholeHub = 600 * 1024 ** 3;
    await addSharedStream(jsm, wholeHub);
    await js.publish(inboundSubject(SG, 'sighting'), 'sg-1');
    const err = await provisionHub(jsm, [SG, VN, NG], {
      limits: { inboundMaxBytes: wholeHub },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({
      code: 'ERR_INBOUND_STREAMS_NOT_PROVISIONED',
      sharedStreamKept: true,
      wholeHubSize: true,
      failures: [
        expect.objectContaining({ agency: SG }),
        expect.objectContaining({ agency: VN }),
        expect.objectContaining({ agency: NG }),
      ],
    });
    const kept = await jsm.streams.info(Streams.Inbound);
    expect(kept.config.subjects).toEqual([INBOUND_ALL]);
    expect(kept.config.max_bytes).toBe(wholeHub);
    expect((await js.publish(inboundSubject(VN, 'sighting'), 'vn-1')).stream).toBe(Streams.Inbound);

    // One agency's override still too large: nothing changes either, though the others fit.
    const one = await provisionHub(jsm, [SG, VN, NG], {
      limits: { inboundMaxBytes: 64 * MiB, inboundMaxBytesFor: { [VN]: wholeHub } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(one).toMatchObject({
      code: 'ERR_INBOUND_STREAMS_NOT_PROVISIONED',
      sharedStreamKept: true,
      wholeHubSize: false,
      failures: [expect.objectContaining({ agency: VN })],
    });
    expect((await jsm.streams.info(Streams.Inbound)).config.subjects).toEqual([INBOUND_ALL]);
    // The streams already reserved take no agency's subjects yet: nats-server gave each its own
    // name as subject, which no agency may publish to.
    for (const agency of [SG, NG])
      expect((await jsm.streams.info(inboundStreamName(agency))).config.subjects).toEqual([
        inboundStreamName(agency),
      ]);
    expect((await js.publish(inboundSubject(SG, 'sighting'), 'sg-2')).stream).toBe(Streams.Inbound);

    // With room, the migration completes and nothing the shared stream holds is lost.
    const report = await provisionHub(jsm, [SG, VN, NG], { limits: { inboundMaxBytes: 64 * MiB } });
    expect(report.legacyInbound).toEqual({ messages: 3, unhandled: 3 });
    const legacy = await jsm.streams.info(Streams.Inbound);
    expect(legacy.config.subjects).toEqual([LEGACY_INBOUND_SUBJECTS]);
    expect(legacy.state.messages).toBe(3);
    for (const agency of [SG, VN, NG]) {
      expect((await jsm.streams.info(inboundStreamName(agency))).config.subjects).toEqual([
        inboundSubjects(agency),
      ]);
      expect((await js.publish(inboundSubject(agency, 'sighting'), 'new')).stream).toBe(
        inboundStreamName(agency),
      );
    }
  });
});
