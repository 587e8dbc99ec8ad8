import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@alert-hub/runtime';
import { seizureReport } from '@alert-hub/testkit';
import { RouterStore, type Outcome } from '../src/store.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-receipt-once-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The routing loop checks each receipt's deliveries against the store before it queues the
 * receipt, and handles several messages at once: two receipts listing the same delivery can both
 * pass that check and be written together. The store records the delivery once: one `delivered`
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
