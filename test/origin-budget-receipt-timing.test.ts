import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamManager,
} from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  Streams,
  decodeEnvelope,
  encodeEnvelope,
  feedConsumerName,
  newAlertId,
  parseFeedSubject,
  receiptMsgId,
  receiptSubject,
  sha256Hex,
  signReceipt,
  type ReceiptDelivery,
} from '@alert-hub/core';
import { eventually, seizureAgreement, seizureReport } from '@alert-hub/testkit';
import { limitsRouter, provisionLimitsFeeds, useInProcessHub } from './support/inprocess-hub.js';

/**
 * With limits retention a copy's origin pays in advance (OriginBudget.copyCharge, 3,415 bytes)
 * for the `delivered` notice its partner's receipt will make. That reservation stores nothing in
 * the feed stream until the receipt comes, and the notice then stays a whole max age. When the
 * receipt moved the reservation to the time it was recorded, a partner reading the victim's
 * copies at once but sending each receipt just before the copy's charge aged out (here 12.3 s
 * after it was stored, the feed stream's max age being 12 s; 30 days in production, any receipt
 * the partner signs itself) made every reservation count almost twice as long: the same traffic
 * that fits the victim's budget with prompt receipts spent it with late ones (its inbound stream
 * no longer read, its next alert waiting 23.5 s; found by an attacker pass). Now the reservation
 * stays where it is and the partner pays for the time the notice outlives it (its lateness).
 * The attacker is a NATS client of its own reading its feed consumer and signing its receipts
 * with its key (what it may do within its account); real nats-server, the router and the
 * victim's gateway in this process.
 */
const VICTIM = 'TZ-WD';
const ATTACKER = 'KE-KWS';
const AGENCIES = [VICTIM, ATTACKER];
const VICTIM_BUDGET = 280_000;
const FEEDS_MAX_BYTES = 4 * 1024 * 1024;
/** A charge counts max age + slack (1 s) + two buckets (250 ms each): 13.5 s at most. */
const FEEDS_MAX_AGE_MS = 12_000;
/**
 * How long after its copy was stored the attacker receipts it, in the attack phase: before the
 * copy's charge ages out (13.25 s at least), with 0.95 s for the receipt to be recorded.
 */
const LATE_MS = 12_300;
/** The victim sends BATCH small alerts every EVERY_MS: PROMPT_MS with prompt receipts, LATE_PHASE_MS with late ones. */
const BATCH = 3;
/**
 * About 70% of the victim's budget with prompt receipts (measured: 192,294 of 280,000, and
 * 212,663 with late ones); where the receipt moved the reservation to its own time, the victim
 * was spent 35 s into the late phase (measured at 5f15572).
 */
const EVERY_MS = 1400;
const PROMPT_MS = 20_000;
const LATE_PHASE_MS = 35_000;
const hub = useInProcessHub(AGENCIES);
const { nats, fx, routerLog, submitAll, readiness, gauge } = hub;
let nc: NatsConnection;
let jsm: JetStreamManager;
let feed: ConsumerMessages | undefined;

beforeAll(async () => {
  nc = await nats.connect();
  jsm = await jetstreamManager(nc);
  await provisionLimitsFeeds(jsm, AGENCIES, {
    feedsMaxBytes: FEEDS_MAX_BYTES,
    feedsMaxAgeMs: FEEDS_MAX_AGE_MS,
    inboundMaxAgeMs: 60_000,
    duplicateWindowMs: FEEDS_MAX_AGE_MS / 2,
  });
  await hub.start({
    agreements: [seizureAgreement('VA', 'victim-attacker', [VICTIM, ATTACKER])],
    router: limitsRouter(FEEDS_MAX_BYTES, {
      heldRetryMs: 300,
      originMaxBytesFor: { [VICTIM]: VICTIM_BUDGET },
    }),
    // Only the victim runs a gateway (it reads its notices); the attacker is a client of its own.
    gateways: [VICTIM],
  });
}, 60_000);
afterAll(async () => {
  await feed?.close();
  await hub.close();
});

/** The attacker's own client: reads its feed at once, receipts each copy `lateMs` after it was stored. */
const received = new Map<string, number>();
const owed: { delivery: ReceiptDelivery; storedAt: number }[] = [];
let lateMs = 0;

async function readFeed(): Promise<void> {
  const js = jetstream(nc);
  const consumer = await js.consumers.get(Streams.Feeds, feedConsumerName(ATTACKER));
  feed = await consumer.consume({
    max_messages: 256,
    callback: (m) => {
      const s = parseFeedSubject(m.subject);
      if (s && s.origin === VICTIM) {
        const { id } = JSON.parse(
          Buffer.from(decodeEnvelope(m.data).payload, 'base64url').toString('utf8'),
        ) as { id: string };
        const storedAt = Math.floor(m.info.timestampNanos / 1e6);
        received.set(id, Date.now());
        owed.push({
          delivery: { alertId: id, origin: VICTIM, envelopeSha256: sha256Hex(m.data) },
          storedAt,
        });
      }
      m.ack();
    },
  });
}

let receipting = true;
async function sendReceipts(): Promise<void> {
  const js = jetstream(nc);
  const key = fx.keys[ATTACKER]!;
  while (receipting) {
    const now = Date.now();
    const due: ReceiptDelivery[] = [];
    while (owed.length > 0 && owed[0]!.storedAt + lateMs <= now) due.push(owed.shift()!.delivery);
    if (due.length > 0) {
      const receipt = {
        receipt: newAlertId(),
        agency: ATTACKER,
        committedAt: new Date().toISOString(),
        deliveries: due,
      };
      const bytes = encodeEnvelope(await signReceipt(receipt, key));
      await js.publish(receiptSubject(ATTACKER), bytes, {
        msgID: receiptMsgId(ATTACKER, receipt.receipt, bytes),
      });
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The victim sends BATCH alerts every EVERY_MS for `ms`, watching its budget. */
async function phase(
  ms: number,
  probe = false,
): Promise<{
  sent: string[];
  maxCharged: number;
  spentAt: number | null;
  spentLogs: number;
  probeMs: number | null;
}> {
  const sent: string[] = [];
  let maxCharged = 0;
  let spentAt: number | null = null;
  const logsBefore = routerLog.lines.length;
  const t0 = Date.now();
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      if (spentAt === null && (await readiness())['originBudgets']?.includes(VICTIM))
        spentAt = Date.now() - t0;
      maxCharged = Math.max(
        maxCharged,
        await gauge('ahub_router_origin_charged_bytes', 'agency', VICTIM),
      );
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  // The victim's next alert once it is found spent (or after the last batch): how long it waits.
  let probing: Promise<number> | undefined;
  const sendProbe = async (): Promise<number> => {
    const s = Date.now();
    const [id] = await submitAll(VICTIM, [seizureReport(VICTIM)]);
    await eventually(async () => received.has(id!) || undefined, 60_000, 'the probe read');
    return received.get(id!)! - s;
  };
  // A slot missed while the machine stalled is skipped, never made up in a burst.
  for (let next = t0; Date.now() - t0 < ms; next += EVERY_MS) {
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    else next = Date.now();
    if (probe && spentAt !== null && !probing) probing = sendProbe();
    sent.push(
      ...(await submitAll(
        VICTIM,
        Array.from({ length: BATCH }, () => seizureReport(VICTIM)),
      )),
    );
  }
  const probeMs = probe ? await (probing ?? sendProbe()) : null;
  // Until the last receipts are in.
  await new Promise((r) => setTimeout(r, lateMs + 1500));
  watching = false;
  await watcher;
  const spentLogs = routerLog.lines
    .slice(logsBefore)
    .filter((l) => l.includes('"msg":"origin budget spent') && l.includes(VICTIM)).length;
  return { sent, maxCharged, spentAt, spentLogs, probeMs };
}

describe('attack: a partner times its receipts to keep the victim’s reservations counting', () => {
  it('late receipts (within the max age) do not spend the victim’s budget', async () => {
    expect(await gauge('ahub_router_origin_budget_bytes', 'agency', VICTIM)).toBe(VICTIM_BUDGET);
    await readFeed();
    const receipts = sendReceipts();
    try {
      // Phase 1, the control: the attacker receipts each copy at once.
      lateMs = 0;
      const prompt = await phase(PROMPT_MS);
      await eventually(
        async () => prompt.sent.every((id) => received.has(id)) || undefined,
        30_000,
        'every copy of phase 1 read',
      );
      // Everything of phase 1 ages out of the budget (max age + slack + two buckets).
      await new Promise((r) => setTimeout(r, FEEDS_MAX_AGE_MS + 2000));
      // Phase 2, the attack: the same traffic; each receipt just before its copy's charge ages out.
      lateMs = LATE_MS;
      const late = await phase(LATE_PHASE_MS, true);
      const report = {
        budget: VICTIM_BUDGET,
        sent: [prompt.sent.length, late.sent.length],
        prompt: { maxCharged: prompt.maxCharged, spentAt: prompt.spentAt },
        late: {
          lateMs: LATE_MS,
          maxCharged: late.maxCharged,
          spentAt: late.spentAt,
          spentLogs: late.spentLogs,
        },
        probeMs: late.probeMs,
      };
      console.log('ATTACK-RECEIPT-TIMING', JSON.stringify(report));
      // The control: the victim's own traffic fits its budget.
      expect(prompt.spentAt, 'the victim spent with prompt receipts').toBeNull();
      expect(
        late.spentAt,
        'the victim found spent by the reservations the attacker kept counting with late receipts',
      ).toBeNull();
      // Spent, it would wait for its charges to age out (23.5 s measured); about 30 ms when not.
      expect(late.probeMs, "the victim's next alert reached its partner within ms").toBeLessThan(
        5000,
      );
    } finally {
      receipting = false;
      await receipts;
    }
  }, 240_000);
});
