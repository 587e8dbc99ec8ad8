import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  ROUTER_CONSUMER,
  encodeEnvelope,
  inboundStreamName,
  newAlertId,
  receiptMsgId,
  receiptSubject,
  signReceipt,
  type DeliveryReceipt,
  type ReceiptDelivery,
} from '@alert-hub/core';
import {
  createBatchWriter,
  openDatabase,
  provisionHub,
  unhandled,
  type BatchWriter,
} from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  registry,
  seizureReport,
} from '@alert-hub/testkit';
import { createRouterMetrics } from '../src/metrics.js';
import { RoutingLoop } from '../src/routing-loop.js';
import { RouterStore, type Outcome } from '../src/store.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-receipt-once-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The store's backstop: two receipts listing the same delivery written together (as routers
 * sharing one database may, each past its own check against the store; one router's routing loop
 * never writes them together, see below). The store records the delivery once: one `delivered`
 * audit entry, one notice to the sender, one charge for it (before, each receipt made its own
 * notice, which with budgets cost its sender next to nothing and took back part of the
 * reservation each time).
 */
describe('router store - a delivery receipted twice at once', () => {
  it('is recorded, audited, notified and charged once', () => {
    const store = new RouterStore(openDatabase(join(dir, 'once.db')), 'test');
    const charged: [string, string | null, string, number][] = [];
    store.chargeDelivered = (...args) => charged.push(args);
    const alert = seizureReport('SG-NPARKS');
    const forwardedAt = new Date().toISOString();
    const envelopeSha256 = 'a'.repeat(64);
    store.write([
      {
        kind: 'routed',
        alert,
        stream: 'AHUB_IN_SG-NPARKS',
        streamSeq: 1,
        forwards: [
          {
            recipient: 'VN-CUSTOMS',
            agreement: { id: 'SG-VN', version: 1 },
            onward: false,
            viaOriginal: true,
            feedSeq: 1,
            envelopeSha256,
            forwardedAt,
          },
        ],
        denied: [],
        routeTree: { root: Buffer.alloc(32), leaves: [] },
      },
    ]);
    store.removeOutbox(store.outbox().map((r) => r.id));
    const receipt = (n: number): Outcome => ({
      kind: 'receipt',
      stream: 'AHUB_IN_VN-CUSTOMS',
      streamSeq: n,
      receipt: `r-${n}`,
      agency: 'VN-CUSTOMS',
      kid: 'k',
      committedAt: new Date().toISOString(),
      receiptSha256: String(n).repeat(64),
      deliveries: [{ alertId: alert.id, origin: 'SG-NPARKS', envelopeSha256 }],
    });
    store.write([receipt(2), receipt(3)]);
    const notices = store.outbox().filter((r) => r.event.event === 'delivered');
    expect(notices).toHaveLength(1);
    expect(notices[0]!.event).toMatchObject({ alertId: alert.id, receipt: 'r-2' });
    const audited = store.db
      .prepare("SELECT count(*) AS n FROM audit WHERE event = 'delivered'")
      .get() as { n: number };
    expect(audited.n).toBe(1);
    expect(charged).toHaveLength(1);
    expect(charged[0]!.slice(0, 3)).toEqual(['SG-NPARKS', forwardedAt, 'VN-CUSTOMS']);
    expect(store.delivery('SG-NPARKS', alert.id, 'VN-CUSTOMS')?.receiptId).toBe('r-2');
  });
});

const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const nats = useNatsServer();
const fx = makeHubFixture([SG, VN]);
afterAll(() => fx.cleanup());

/**
 * The routing loop handles several messages at once. A receipt listing a delivery, or bearing
 * the id of a receipt, that another receipt is being recorded with (checked against the store,
 * its write not committed yet) waits for that write and is checked again: it is refused
 * `ERR_RECEIPT_REPLAYED` as it would be after (docs/protocol.md §9.1), dead-lettered, audited and
 * the partner sent its refusal notice. Before, both passed the check; the second was acked,
 * stored and counted as accepted with its deliveries, which the store skipped: no entry, no
 * notice, no refusal. The router's loop runs here on a real nats-server with a real store; the
 * writer it is given holds the first receipt's write until the second receipt is being checked,
 * so the two meet whatever the machine's speed.
 */
describe('routing loop - two receipts of one delivery handled at once', () => {
  async function twoReceipts(
    name: string,
    second: (first: DeliveryReceipt, other: ReceiptDelivery) => DeliveryReceipt,
    /** 'store': the second is written to the store meanwhile, as another router sharing it would. */
    via: 'loop' | 'store' = 'loop',
  ) {
    const store = new RouterStore(openDatabase(join(dir, `${name}.db`)), 'test');
    const nc = await nats.connect();
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    await provisionHub(jsm, [SG, VN]);
    // Two alerts SG-NPARKS sent VN-CUSTOMS, routed (as the loop commits a routing decision).
    const deliveries: ReceiptDelivery[] = [];
    for (const [i, sha] of ['a', 'b'].entries()) {
      const alert = seizureReport(SG);
      const envelopeSha256 = sha.repeat(64);
      store.write([
        {
          kind: 'routed',
          alert,
          stream: inboundStreamName(SG),
          streamSeq: i + 1,
          forwards: [
            {
              recipient: VN,
              agreement: { id: 'SG-VN', version: 1 },
              onward: false,
              viaOriginal: true,
              feedSeq: i + 1,
              envelopeSha256,
              forwardedAt: new Date().toISOString(),
            },
          ],
          denied: [],
          routeTree: { root: Buffer.alloc(32), leaves: [] },
        },
      ]);
      deliveries.push({ alertId: alert.id, origin: SG, envelopeSha256 });
    }
    store.removeOutbox(store.outbox().map((r) => r.id));
    const first: DeliveryReceipt = {
      receipt: newAlertId(),
      agency: VN,
      committedAt: new Date().toISOString(),
      deliveries: [deliveries[0]!],
    };
    const other = second(first, deliveries[1]!);

    // The first receipt's write waits until the second is checked against the store.
    const receiptSeq = store.receiptSeq.bind(store);
    let secondChecked!: () => void;
    const secondReached = new Promise<void>((resolve) => (secondChecked = resolve));
    let firstHeld!: () => void;
    const firstWaits = new Promise<void>((resolve) => (firstHeld = resolve));
    let held = false;
    store.receiptSeq = (agency, id) => {
      if (held && agency === VN && id === other.receipt) secondChecked();
      return receiptSeq(agency, id);
    };
    const batches = createBatchWriter<Outcome>((outcomes) => store.write(outcomes));
    const writer: BatchWriter<Outcome> = {
      async enqueue(item) {
        if (!held && item.kind === 'receipt') {
          held = true;
          firstHeld();
          await secondReached;
        }
        return batches.enqueue(item);
      },
      flush: () => batches.flush(),
      get pending() {
        return batches.pending;
      },
    };
    const metrics = createRouterMetrics('receipt-once-test');
    const { log, lines } = memoryLogger('receipt-once-test');
    const loop = new RoutingLoop({
      js,
      store,
      writer,
      trust: () => loadTrustStore(fx.trustDir, registry),
      agreements: () => {
        throw new Error('a receipt is checked against no agreement');
      },
      registry,
      hubKey: () => fx.hubKey,
      metrics,
      log,
      maxMessages: 8,
      ackWaitMs: 30_000,
      copyBudgetBytes: 1 << 20,
      publishTimeoutMs: 5000,
      feeds: {
        publish: () => Promise.reject(new Error('a receipt forwards nothing')),
      },
    });
    await loop.start();
    const seqs: number[] = [];
    try {
      const send = async (r: DeliveryReceipt) => {
        const bytes = encodeEnvelope(await signReceipt(r, fx.keys[VN]!));
        const ack = await js.publish(receiptSubject(VN), bytes, {
          msgID: receiptMsgId(VN, r.receipt, bytes),
        });
        seqs.push(ack.seq);
      };
      await send(first);
      await firstWaits;
      if (via === 'loop') await send(other);
      else {
        store.write([
          {
            kind: 'receipt',
            stream: inboundStreamName(VN),
            streamSeq: 1_000,
            receipt: other.receipt,
            agency: VN,
            kid: fx.keys[VN]!.kid,
            committedAt: other.committedAt,
            receiptSha256: 'c'.repeat(64),
            deliveries: other.deliveries,
          },
        ]);
        secondChecked();
      }
      const consumer = await js.consumers.get(inboundStreamName(VN), ROUTER_CONSUMER);
      await eventually(
        async () => unhandled(await consumer.info()) === 0 || undefined,
        30_000,
        'both receipts handled',
      );
    } finally {
      await loop.stop();
    }
    const audit = (event: string) =>
      store.db
        .prepare('SELECT reason_code, reason, stream_seq FROM audit WHERE event = ? ORDER BY seq')
        .all(event) as { reason_code: string | null; reason: string | null; stream_seq: number }[];
    const counted = async (metric: 'receipts' | 'rejections' | 'delivered') =>
      (await metrics[metric].get()).values.map((v) => [v.labels, v.value]);
    const [firstSeq, secondSeq] = seqs;
    return { store, first, other, audit, counted, receiptSeq, lines, firstSeq, secondSeq };
  }

  it('one delivery in two receipts: recorded once, the second refused ERR_RECEIPT_REPLAYED with its notice', async () => {
    const { store, first, other, audit, counted, receiptSeq, firstSeq, secondSeq } =
      await twoReceipts('same-delivery', (first) => ({ ...first, receipt: newAlertId() }));
    const delivered = audit('delivered');
    expect(delivered).toHaveLength(1);
    expect(delivered[0]).toMatchObject({
      reason: `receipt ${first.receipt}`,
      stream_seq: firstSeq,
    });
    expect(audit('rejected')).toEqual([
      expect.objectContaining({ reason_code: 'ERR_RECEIPT_REPLAYED', stream_seq: secondSeq }),
    ]);
    expect(audit('dead-lettered')).toEqual([
      expect.objectContaining({ reason_code: 'ERR_RECEIPT_REPLAYED', stream_seq: secondSeq }),
    ]);
    expect(receiptSeq(VN, first.receipt)).toMatchObject({ streamSeq: firstSeq });
    expect(receiptSeq(VN, other.receipt)).toBeUndefined();
    const events = store.outbox().map((r) => ({ agency: r.agency, ...r.event }));
    expect(events).toEqual([
      expect.objectContaining({ agency: SG, event: 'delivered', receipt: first.receipt }),
      expect.objectContaining({
        agency: VN,
        event: 'refused',
        receipt: other.receipt,
        code: 'ERR_RECEIPT_REPLAYED',
      }),
    ]);
    expect(await counted('receipts')).toEqual([[{ outcome: 'accepted' }, 1]]);
    expect(await counted('delivered')).toEqual([[{}, 1]]);
    expect(await counted('rejections')).toEqual([[{ reason: 'ERR_RECEIPT_REPLAYED' }, 1]]);
  });

  it('a new delivery listed with it: the whole receipt refused, the new one not recorded', async () => {
    const { store, first, other, audit, counted, secondSeq } = await twoReceipts(
      'with-new',
      (first, b) => ({
        ...first,
        receipt: newAlertId(),
        deliveries: [...first.deliveries, b],
      }),
    );
    expect(audit('delivered')).toEqual([
      expect.objectContaining({ reason: `receipt ${first.receipt}` }),
    ]);
    expect(audit('rejected')).toEqual([
      expect.objectContaining({ reason_code: 'ERR_RECEIPT_REPLAYED', stream_seq: secondSeq }),
    ]);
    const b = other.deliveries[1]!;
    expect(store.delivery(b.origin, b.alertId, VN)?.deliveredAt).toBeNull();
    expect(await counted('delivered')).toEqual([[{}, 1]]);
  });

  it('a receipt id being recorded, other deliveries: refused ERR_RECEIPT_REPLAYED', async () => {
    const { store, first, other, audit, counted, secondSeq } = await twoReceipts(
      'same-id',
      (first, b) => ({
        ...first,
        deliveries: [b],
      }),
    );
    expect(audit('delivered')).toEqual([
      expect.objectContaining({ reason: `receipt ${first.receipt}` }),
    ]);
    expect(audit('rejected')).toEqual([
      expect.objectContaining({ reason_code: 'ERR_RECEIPT_REPLAYED', stream_seq: secondSeq }),
    ]);
    const b = other.deliveries[0]!;
    expect(store.delivery(b.origin, b.alertId, VN)?.deliveredAt).toBeNull();
    expect(await counted('receipts')).toEqual([[{ outcome: 'accepted' }, 1]]);
  });

  it('recorded first by another router sharing the database: acked, not recorded twice, not counted, a warning', async () => {
    const { store, first, other, audit, counted, lines } = await twoReceipts(
      'other-router',
      (first) => ({ ...first, receipt: newAlertId() }),
      'store',
    );
    expect(audit('delivered')).toEqual([
      expect.objectContaining({ reason: `receipt ${other.receipt}` }),
    ]);
    expect(audit('rejected')).toEqual([]);
    expect(store.outbox().map((r) => r.event)).toEqual([
      expect.objectContaining({ event: 'delivered', receipt: other.receipt }),
    ]);
    expect(await counted('receipts')).toEqual([]);
    expect(await counted('delivered')).toEqual([[{}, 0]]);
    const warned = lines.filter((l) => l.includes('another receipt recorded first'));
    expect(warned).toHaveLength(1);
    expect(JSON.parse(warned[0]!)).toMatchObject({ level: 40, deliveries: 1, recorded: 0 });
    expect(warned[0]).not.toContain(first.deliveries[0]!.alertId);
  });
});
