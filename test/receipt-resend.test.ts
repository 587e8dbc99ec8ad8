import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { Streams, deadLetterSubject, receiptSubject, inboundStreamName } from '@alert-hub/core';
import { databaseFile, loadConfig as gatewayConfig } from '@alert-hub/gateway';
import {
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  loadTrustStore,
  openDatabase,
  type SqliteDatabase,
} from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  routerDrained,
  seizureAgreement,
  seizureReport,
  spawnService,
  startLocalHub,
  type LocalHub,
  type ServiceProcess,
} from '@alert-hub/testkit';

/**
 * A delivery receipt resent after a crash is the same bytes, whatever the algorithm of the
 * agency's key, with real processes: nats-server, the router, Singapore's gateway, and Viet Nam's
 * gateway whose agency key is ES256 (P-256: a new signature differs each time it is made).
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';

let hub: LocalHub;
let hubNc: NatsConnection;
let vn: ServiceProcess;

beforeAll(async () => {
  hub = await startLocalHub({
    env: process.env,
    agencies: [
      { id: SG, name: SG },
      { id: VN, name: VN, alg: 'ES256' },
    ],
    agreements: { agreements: [seizureAgreement('SG-VN', 'Singapore, Viet Nam', [SG, VN])] },
  });
  vn = hub.gateways[VN]!;
  hubNc = await hub.connectAs(LOCAL_ROUTER);
}, 120_000);

afterAll(async () => {
  await hubNc?.close();
  await vn?.stop();
  await hub?.stop();
});

const auth = () => ({ authorization: `Bearer ${hub.token}` });

/** How many entries the router's audit log holds. */
function auditEntries(): number {
  const db = openDatabase(hub.auditDb, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  } finally {
    db.close();
  }
}
const vnConfig = () => join(hub.dir, `gateway-${VN}.yaml`);
const vnDatabase = () => databaseFile(gatewayConfig({}, vnConfig()));

/** Uses Viet Nam's gateway database on a connection of its own, beside the gateway's (WAL). */
function onVnDatabase<T>(use: (db: SqliteDatabase) => T): T {
  const db = openDatabase(vnDatabase());
  try {
    return use(db);
  } finally {
    db.close();
  }
}

const receiptsOwed = () =>
  onVnDatabase(
    (db) => (db.prepare('SELECT count(*) AS n FROM receipt_out').get() as { n: number }).n,
  );

/** How many messages `stream` holds on `subject`. */
async function countOn(stream: string, subject: string): Promise<number> {
  const jsm = await jetstreamManager(hubNc);
  const info = await jsm.streams.info(stream, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

/** Singapore's view of who received its alert `id`. */
async function recipientsOf(id: string): Promise<{ recipient: string; state: string }[]> {
  const res = await fetch(`${hub.gateways[SG]!.url}/v1/alerts/${id}/status`, { headers: auth() });
  expect(res.status).toBe(200);
  return ((await res.json()) as { recipients: { recipient: string; state: string }[] }).recipients;
}

/**
 * Singapore sends an alert; Viet Nam's gateway stores it and publishes its receipt, which the hub
 * accepts, but cannot delete the receipt once JetStream acknowledged it (as if the process died
 * right after the acknowledgement), and is then killed. Returns the alert's id.
 */
async function deliverAndCrash(): Promise<string> {
  onVnDatabase((db) =>
    db.exec(`CREATE TRIGGER crash_before_delete BEFORE DELETE ON receipt_out
             BEGIN SELECT RAISE(ABORT, 'the gateway died before deleting the receipt'); END`),
  );
  const alert = seizureReport(SG);
  const res = await fetch(`${hub.gateways[SG]!.url}/v1/alerts`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  await eventually(
    async () =>
      (await recipientsOf(alert.id)).some((r) => r.recipient === VN && r.state === 'delivered'),
    60_000,
    "the hub to accept VN's receipt",
  );
  expect(receiptsOwed()).toBe(1);
  await vn.kill();
  return alert.id;
}

/** Restarts Viet Nam's gateway (the receipt still owed is sent again) and waits until it was. */
async function restartVn(): Promise<void> {
  onVnDatabase((db) => db.exec('DROP TRIGGER crash_before_delete'));
  vn = await spawnService('gateway', vnConfig(), {
    env: process.env,
    logFile: join(hub.dir, 'logs', `gateway-${VN}.log`),
    captureLogs: false,
  });
  await eventually(() => receiptsOwed() === 0, 60_000, 'the receipt resent and acknowledged');
  await routerDrained(hubNc);
}

describe('receipts - a resend after a crash is byte-identical (ES256 agency key)', () => {
  it('a sealed receipt published and acknowledged, not deleted before the crash: after the restart it is resent as the same bytes, JetStream drops it, nothing is refused and the delivery counts once', async () => {
    const trust = loadTrustStore(
      join(hub.certsDir, 'trust'),
      loadSchemaRegistry(DEFAULT_SCHEMAS_DIR),
    );
    expect(trust.keysOf(VN, 'agency').map((k) => k.alg)).toEqual(['ES256']);

    const id = await deliverAndCrash();
    expect(await countOn(inboundStreamName(VN), receiptSubject(VN))).toBe(1);
    await restartVn();

    // The same bytes under the same message id: JetStream kept one, the router saw one.
    expect(await countOn(inboundStreamName(VN), receiptSubject(VN))).toBe(1);
    expect(await countOn(Streams.DeadLetter, deadLetterSubject(VN))).toBe(0);
    expect((await recipientsOf(id)).map((r) => [r.recipient, r.state])).toEqual([
      [VN, 'delivered'],
    ]);
    const refusals = await fetch(`${vn.url}/v1/refusals`, { headers: auth() });
    expect(
      ((await refusals.json()) as { items: { code: string }[] }).items.map((r) => r.code),
    ).toEqual([]);
  });
  it('resent after the duplicate window, the same bytes are stored again: the router recognises them and acknowledges them quietly; the delivery stays delivered, counted once', async () => {
    const jsm = await jetstreamManager(hubNc);
    const window = (await jsm.streams.info(inboundStreamName(VN))).config.duplicate_window;
    const id = await deliverAndCrash();
    const first = await jsm.streams.getMessage(inboundStreamName(VN), {
      last_by_subj: receiptSubject(VN),
    });
    // The gateway stays down longer than the window (shortened here to one second).
    await jsm.streams.update(inboundStreamName(VN), { duplicate_window: nanos(1000) });
    try {
      await new Promise((r) => setTimeout(r, 3000));
      const before = await countOn(inboundStreamName(VN), receiptSubject(VN));
      const refusedBefore = await countOn(Streams.DeadLetter, deadLetterSubject(VN));
      await routerDrained(hubNc);
      const entriesBefore = auditEntries();
      await restartVn();
      expect(await countOn(inboundStreamName(VN), receiptSubject(VN))).toBe(before + 1);
      const resent = await jsm.streams.getMessage(inboundStreamName(VN), {
        last_by_subj: receiptSubject(VN),
      });
      // Byte-identical to the receipt the hub accepted, under the same message id.
      expect(Buffer.from(resent!.data)).toEqual(Buffer.from(first!.data));
      expect(resent!.header.get('Nats-Msg-Id')).toBe(first!.header.get('Nats-Msg-Id'));
      await routerDrained(hubNc);
      // Acknowledged as the receipt it already accepted: no dead letter, no refusal, no entry.
      expect(await countOn(Streams.DeadLetter, deadLetterSubject(VN))).toBe(refusedBefore);
      expect(auditEntries()).toBe(entriesBefore);
      expect((await recipientsOf(id)).map((r) => [r.recipient, r.state])).toEqual([
        [VN, 'delivered'],
      ]);
      const res = await fetch(`${vn.url}/v1/refusals`, { headers: auth() });
      expect(((await res.json()) as { items: unknown[] }).items).toEqual([]);
    } finally {
      await jsm.streams.update(inboundStreamName(VN), { duplicate_window: window });
    }
  });
});
