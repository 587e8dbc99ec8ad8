import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MAX_RECEIPT_DELIVERIES, newAlertId } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, openDatabase } from '@alert-hub/runtime';
import { seizureReport } from '@alert-hub/testkit';
import { GatewayStore, type FeedWrite } from '../src/store.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-receipt-coalescing-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const AGENCY = 'VN-CUSTOMS';
let seq = 0;
const delivery = (): FeedWrite => {
  const alert = { ...seizureReport('SG-NPARKS'), id: newAlertId() };
  seq++;
  return {
    kind: 'alert',
    item: {
      alert,
      envelope: new Uint8Array([seq]),
      agreement: { id: 'SG-VN', version: 1 },
      onward: false,
      streamSeq: seq,
      receivedAt: new Date().toISOString(),
      envelopeSha256: seq.toString(16).padStart(64, '0'),
    },
  };
};
/** A sealed receipt as an older gateway stored it in receipt_out: one delivery. */
const owedReceipt = () => ({
  receipt: newAlertId(),
  agency: AGENCY,
  committedAt: new Date().toISOString(),
  deliveries: [{ alertId: newAlertId(), origin: 'SG-NPARKS', envelopeSha256: 'ab'.repeat(32) }],
});
const open = (name: string) =>
  new GatewayStore(openDatabase(join(dir, name)), { agency: AGENCY, receipts: true });

describe('gateway - delivery receipts coalesced per window', () => {
  it('commits before the sender seals share one receipt; a sealed receipt never changes; after a restart the open one is sealed and sent', () => {
    const file = 'a.db';
    let store = open(file);
    store.write([delivery(), delivery()]);
    store.write([delivery()]);
    // Nothing is sendable until sealed: the window is still open.
    expect(store.pendingReceipts()).toEqual([]);
    store.receiptsSent([], true);
    const [first, ...none] = store.pendingReceipts().map((p) => p.receipt);
    expect(none).toEqual([]);
    expect(first!.agency).toBe(AGENCY);
    expect(first!.deliveries).toHaveLength(3);
    // A commit after sealing opens a new receipt; the sealed one is unchanged.
    store.write([delivery()]);
    expect(store.pendingReceipts()).toEqual([{ receipt: first }]);
    // The process dies before the new one was sealed: the next sender seals it, and the first
    // one (perhaps published already) is sent again exactly as it was.
    store.close();
    store = open(file);
    store.receiptsSent([], true);
    const [again, second] = store.pendingReceipts().map((p) => p.receipt);
    expect(again).toEqual(first);
    expect(second!.deliveries).toHaveLength(1);
    expect(second!.receipt).not.toBe(first!.receipt);
    store.receiptsSent([first!.receipt, second!.receipt]);
    expect(store.pendingReceipts()).toEqual([]);
    store.close();
  });

  it('a receipt lists at most the schema limit of deliveries; more start the next receipt', () => {
    const schema = JSON.parse(
      readFileSync(join(DEFAULT_SCHEMAS_DIR, 'delivery-receipt.v1.schema.json'), 'utf8'),
    ) as { properties: { deliveries: { maxItems: number } } };
    expect(MAX_RECEIPT_DELIVERIES).toBe(schema.properties.deliveries.maxItems);
    const store = open('b.db');
    store.write(Array.from({ length: 600 }, delivery));
    store.write(Array.from({ length: 600 }, delivery));
    store.receiptsSent([], true);
    expect(store.pendingReceipts().map((p) => p.receipt.deliveries.length)).toEqual([600, 600]);
    // One commit of more than a receipt may list spans several receipts.
    store.write(Array.from({ length: 2500 }, delivery));
    store.receiptsSent([], true);
    expect(store.pendingReceipts(10).map((p) => p.receipt.deliveries.length)).toEqual([
      600, 600, 1000, 1000, 500,
    ]);
    store.close();
  });

  it('a sealed receipt is signed once: the first signed bytes stored are the ones every send publishes; an open receipt is never signed', () => {
    const file = 'signed.db';
    let store = open(file);
    store.write([delivery()]);
    const peek = openDatabase(join(dir, file));
    const { receipt_id: openId } = peek
      .prepare('SELECT receipt_id FROM receipt_out WHERE sealed = 0')
      .get() as { receipt_id: string };
    expect(store.storeSignedReceipt(openId, Buffer.from('open'))).toBeUndefined();
    store.receiptsSent([], true);
    const [pending] = store.pendingReceipts();
    expect(pending!.receipt.receipt).toBe(openId);
    expect(pending!.signed).toBeUndefined();
    const first = Buffer.from('first signature');
    expect(Buffer.from(store.storeSignedReceipt(openId, first)!)).toEqual(first);
    expect(Buffer.from(store.storeSignedReceipt(openId, Buffer.from('second'))!)).toEqual(first);
    // After a restart the receipt is sent again with exactly the bytes stored.
    store.close();
    store = open(file);
    store.receiptsSent([], true);
    const [again, ...none] = store.pendingReceipts();
    expect(none).toEqual([]);
    expect(again!.receipt).toEqual(pending!.receipt);
    expect(Buffer.from(again!.signed!)).toEqual(first);
    store.receiptsSent([openId]);
    expect(store.pendingReceipts()).toEqual([]);
    peek.close();
    store.close();
  });

  it('receipts owed in a database from before receipts were stored signed are signed at their next send, and kept', () => {
    const file = join(dir, 'unsigned.db');
    const db = openDatabase(file);
    db.exec(
      'CREATE TABLE receipt_out (receipt_id TEXT PRIMARY KEY, receipt TEXT NOT NULL, sealed INTEGER NOT NULL DEFAULT 1)',
    );
    const owed = owedReceipt();
    db.prepare('INSERT INTO receipt_out VALUES (?, ?, 1)').run(owed.receipt, JSON.stringify(owed));
    db.close();
    let store = new GatewayStore(openDatabase(file), { agency: AGENCY, receipts: true });
    expect(store.pendingReceipts()).toEqual([{ receipt: owed }]);
    const signed = Buffer.from('signed at the first send');
    expect(Buffer.from(store.storeSignedReceipt(owed.receipt, signed)!)).toEqual(signed);
    store.close();
    store = new GatewayStore(openDatabase(file), { agency: AGENCY, receipts: true });
    const [pending] = store.pendingReceipts();
    expect(pending!.receipt).toEqual(owed);
    expect(Buffer.from(pending!.signed!)).toEqual(signed);
    store.close();
  });

  it('receipts owed in a database from before coalescing count as sealed (they may have been sent)', () => {
    const file = join(dir, 'old.db');
    const db = openDatabase(file);
    db.exec('CREATE TABLE receipt_out (receipt_id TEXT PRIMARY KEY, receipt TEXT NOT NULL)');
    const owed = owedReceipt();
    db.prepare('INSERT INTO receipt_out VALUES (?, ?)').run(owed.receipt, JSON.stringify(owed));
    db.close();
    const store = new GatewayStore(openDatabase(file), { agency: AGENCY, receipts: true });
    store.write([delivery()]);
    expect(store.pendingReceipts()).toEqual([{ receipt: owed }]);
    store.close();
  });
});
