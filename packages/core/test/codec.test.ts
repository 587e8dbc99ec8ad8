import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  copyEncoder,
  countersignDecision,
  encodeEnvelope,
  signAlert,
  type RouteGrant,
} from '@alert-hub/core';
import { makeKey, registry, seizureReport } from './helpers.js';

const sg = makeKey('SG-NPARKS');
const hub = makeKey('HUB', 'router');
const schemaId = registry.schemaIdFor('seizure-report', 1)!;

function grants(n: number): RouteGrant[] {
  return Array.from({ length: n }, (_, i) => ({
    recipient: `P${String(i).padStart(3, '0')}`,
    agreement: { id: `AGR-${i % 3}`, version: 1 },
    onward: i % 2 === 0,
  }));
}

describe('codec - the copies of one routing decision', () => {
  it('copyEncoder gives exactly the bytes of encodeEnvelope, and their SHA-256, for every copy', async () => {
    // Non-ASCII text and a long payload, so that msgpack's longer string forms are exercised.
    const alert = seizureReport('SG-NPARKS', {
      summary: `écailles de pangolin ${'x'.repeat(70_000)}`,
    });
    const origin = await signAlert(alert as never, sg.key, schemaId);
    for (const k of [1, 2, 5, 108]) {
      const { copies } = await countersignDecision(origin, hub.key, {
        origin: alert.origin,
        alertId: alert.id,
        routedAt: '2019-04-08T03:15:02Z',
        grants: grants(k),
      });
      const encode = copyEncoder(origin);
      for (const copy of copies) {
        const expected = encodeEnvelope(copy);
        const got = encode(copy);
        expect(Buffer.from(got.bytes).equals(Buffer.from(expected))).toBe(true);
        expect(got.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      }
    }
  });
  it('copyEncoder gives the bytes of encodeEnvelope for countersignatures of every string length', async () => {
    // The leaf, path, protected header and signature cross msgpack's fixstr / str 8 / str 16 /
    // str 32 boundaries, in ASCII and not; copies of one decision share the protected header and
    // signature, and a copy with others is encoded with its own.
    const origin = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    const encode = copyEncoder(origin);
    const lengths = [0, 1, 31, 32, 255, 256, 65_535, 65_536];
    for (const [i, n] of lengths.entries())
      for (const text of ['a'.repeat(n), `é${'b'.repeat(Math.max(0, n - 2))}`]) {
        const routed = {
          protected: i % 2 ? text : 'eyJhbGciOiJFZERTQSJ9',
          header: { leaf: text, path: lengths[(i + 3) % lengths.length]! ? `p${text}` : '' },
          signature: i % 3 ? 'sig' : text,
        };
        const copy = { payload: origin.payload, signatures: [origin.signatures[0]!, routed] };
        const got = encode(copy);
        const expected = Buffer.from(encodeEnvelope(copy));
        expect(Buffer.from(got.bytes).equals(expected)).toBe(true);
        expect(got.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      }
  });
  it('a copy of another shape (another payload, one signature) is encoded whole, correctly', async () => {
    const a = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    const b = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    const encode = copyEncoder(a);
    for (const other of [b, { ...a, signatures: [a.signatures[0]!] }]) {
      const got = encode(other);
      expect(Buffer.from(got.bytes).equals(Buffer.from(encodeEnvelope(other)))).toBe(true);
      expect(got.sha256).toBe(createHash('sha256').update(got.bytes).digest('hex'));
    }
  });
});
