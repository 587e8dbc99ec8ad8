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
    const [first, ...none] = store.pendingReceipts();
    expect(none).toEqual([]);
    expect(first!.agency).toBe(AGENCY);
    expect(first!.deliveries).toHaveLength(3);
    // A commit after sealing opens a new receipt; the sealed one is unchanged.
    store.write([delivery()]);
    expect(store.pendingReceipts()).toEqual([first]);
    // The process dies before the new one was sealed: the next sender seals it, and the first
    // one (perhaps published already) is sent again exactly as it was.
    store.close();
    store = open(file);
    store.receiptsSent([], true);
    const [again, second] = store.pendingReceipts();
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
    expect(store.pendingReceipts().map((r) => r.deliveries.length)).toEqual([600, 600]);
    // One commit of more than a receipt may list spans several receipts.
    store.write(Array.from({ length: 2500 }, delivery));
    store.receiptsSent([], true);
    expect(store.pendingReceipts(10).map((r) => r.deliveries.length)).toEqual([
      600, 600, 1000, 1000, 500,
    ]);
    store.close();
  });

  it('receipts owed in a database from before coalescing count as sealed (they may have been sent)', () => {
    const file = join(dir, 'old.db');
    const db = openDatabase(file);
    db.exec('CREATE TABLE receipt_out (receipt_id TEXT PRIMARY KEY, receipt TEXT NOT NULL)');
    const owed = {
      receipt: newAlertId(),
      agency: AGENCY,
      committedAt: new Date().toISOString(),
      deliveries: [{ alertId: newAlertId(), origin: 'SG-NPARKS', envelopeSha256: 'ab'.repeat(32) }],
    };
    db.prepare('INSERT INTO receipt_out VALUES (?, ?)').run(owed.receipt, JSON.stringify(owed));
    db.close();
    const store = new GatewayStore(openDatabase(file), { agency: AGENCY, receipts: true });
    store.write([delivery()]);
    expect(store.pendingReceipts()).toEqual([owed]);
    store.close();
  });
});
