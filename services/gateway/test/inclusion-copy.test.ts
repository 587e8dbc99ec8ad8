import { describe, expect, it } from 'vitest';
import { countersignDecision, encodeEnvelope, signAlert, type GeneralJws } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { makeHubFixture, seizureReport } from '@alert-hub/testkit';
import type { AuditRecord } from '@alert-hub/audit';
import { copyMatchesDecision } from '../src/witness.js';

const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS']);
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);

async function decide(recipients: string[]) {
  const alert = seizureReport('SG-NPARKS');
  const origin: GeneralJws = await signAlert(
    alert,
    fx.keys['SG-NPARKS']!,
    registry.schemaIdFor(alert.type, alert.version)!,
  );
  const d = await countersignDecision(origin, fx.hubKey, {
    origin: alert.origin,
    alertId: alert.id,
    routedAt: '2026-11-29T12:00:00Z',
    grants: recipients.map((recipient) => ({
      recipient,
      agreement: { id: 'WEN-ASIA', version: 1 },
      onward: false,
    })),
  });
  const record = (root: Buffer, size: number) =>
    ({
      event: 'routed',
      detail: JSON.stringify({
        feeds: Array.from({ length: size }, (_, i) => i + 1),
        root: root.toString('base64url'),
        size,
      }),
    }) as unknown as AuditRecord;
  return { d, record };
}

describe('gateway - a delivery proof is checked against the copy the agency holds', () => {
  it('the same decision matches; another decision, or another leaf, does not', async () => {
    const { d, record } = await decide(['KE-KWS', 'VN-CUSTOMS']);
    const vn = d.leaves.findIndex((l) => l.recipient === 'VN-CUSTOMS');
    const copy = encodeEnvelope(d.copies[1]!); // grants order: VN-CUSTOMS is the second grant
    const route = { leaf: d.leaves[vn]!.text, index: vn, path: [] };
    expect(copyMatchesDecision(copy, record(d.root, 2), route)).toBe(true);
    // An entry recording another decision (another tree) for the same alert.
    const other = await decide(['VN-CUSTOMS']);
    expect(copyMatchesDecision(copy, record(other.d.root, 1), route)).toBe(false);
    // The proof's leaf is not the one the copy carries.
    const ke = d.leaves.findIndex((l) => l.recipient === 'KE-KWS');
    expect(
      copyMatchesDecision(copy, record(d.root, 2), { ...route, leaf: d.leaves[ke]!.text }),
    ).toBe(false);
    // Bytes that are not an envelope.
    expect(copyMatchesDecision(new Uint8Array([1, 2, 3]), record(d.root, 2), route)).toBe(false);
  });
});
