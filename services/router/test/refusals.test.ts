import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DenyReason } from '@alert-hub/core';
import { NEAR_MISSES, deniedRecipients, type AuditRecord } from '@alert-hub/audit';
import { canonicalJson } from '@alert-hub/core';
import { summariseRefusals } from '../src/store.js';

/** The record an entry becomes once appended (only the members `deniedRecipients` reads matter). */
function asRecord(e: ReturnType<typeof summariseRefusals>[number]): AuditRecord {
  return {
    seq: 1,
    at: '2026-11-29T00:00:00.000Z',
    instance: 'test',
    event: 'denied',
    alertId: 'A',
    claimedId: null,
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: 'TLP:AMBER',
    recipient: null,
    agreementId: null,
    agreementVersion: null,
    reasonCode: e.reasonCode,
    reason: e.reason,
    streamSeq: 1,
    feedSeq: null,
    detail: canonicalJson(e.detail),
    hash: '',
  };
}

describe('audit - refusals summarised per decision', () => {
  const near = (recipient: string, reason: DenyReason, detail: string) => ({
    recipient,
    reason,
    detail,
  });

  it('near misses are one entry with each recipient’s code and the count per code; non-parties one more', () => {
    const entries = summariseRefusals('SG-NPARKS', [
      near('VN-CUSTOMS', DenyReason.AlertType, 'A1@1: does not cover consignee-flag'),
      near('KE-KWS', DenyReason.Expired, 'A2@1: ended 2020-01-01T00:00:00Z'),
      near('CN-GACC', DenyReason.AlertType, 'A3@1: does not cover consignee-flag'),
      near('HK-CED', DenyReason.NotParty, 'no agreement includes both SG-NPARKS and HK-CED'),
      near('US-FWS', DenyReason.NotParty, 'no agreement includes both SG-NPARKS and US-FWS'),
    ]);
    expect(entries.map((e) => [e.reasonCode, e.detail])).toEqual([
      [
        NEAR_MISSES,
        {
          codes: {
            'VN-CUSTOMS': DenyReason.AlertType,
            'KE-KWS': DenyReason.Expired,
            'CN-GACC': DenyReason.AlertType,
          },
          counts: { [DenyReason.AlertType]: 2, [DenyReason.Expired]: 1 },
        },
      ],
      [DenyReason.NotParty, { recipients: ['HK-CED', 'US-FWS'] }],
    ]);
    // Each recipient is found with its own code (the stored detail is canonical JSON: keys sorted).
    expect(
      entries.flatMap((e) => deniedRecipients(asRecord(e))).map((d) => [d.recipient, d.reasonCode]),
    ).toEqual([
      ['CN-GACC', DenyReason.AlertType],
      ['KE-KWS', DenyReason.Expired],
      ['VN-CUSTOMS', DenyReason.AlertType],
      ['HK-CED', DenyReason.NotParty],
      ['US-FWS', DenyReason.NotParty],
    ]);
  });

  it('a lone near miss is summarised the same way', () => {
    const entries = summariseRefusals('SG-NPARKS', [
      near('KE-KWS', DenyReason.Expired, 'A2@1: ended 2020-01-01T00:00:00Z'),
    ]);
    expect(entries).toHaveLength(1);
    expect(entries[0]!.reasonCode).toBe(NEAR_MISSES);
    expect(deniedRecipients(asRecord(entries[0]!))).toEqual([
      { recipient: 'KE-KWS', reasonCode: DenyReason.Expired, reason: entries[0]!.reason },
    ]);
  });

  it('for any refusals, every recipient is found with exactly its own code, in two entries at most (property)', () => {
    const codes = Object.values(DenyReason);
    const refusals = fc.uniqueArray(
      fc.record({
        recipient: fc.stringMatching(/^[A-Z]{2}-[A-Z0-9]{2,6}$/),
        reason: fc.constantFrom(...codes),
        detail: fc.string({ maxLength: 40 }),
      }),
      { selector: (d) => d.recipient, maxLength: 200 },
    );
    fc.assert(
      fc.property(refusals, (denied) => {
        const entries = summariseRefusals('SG-NPARKS', denied);
        expect(entries.length).toBeLessThanOrEqual(2);
        const found = entries.flatMap((e) => deniedRecipients(asRecord(e)));
        expect(Object.fromEntries(found.map((d) => [d.recipient, d.reasonCode]))).toEqual(
          Object.fromEntries(denied.map((d) => [d.recipient, d.reason])),
        );
        expect(found).toHaveLength(denied.length);
      }),
    );
  });

  it('no refusal, no entry', () => {
    expect(summariseRefusals('SG-NPARKS', [])).toEqual([]);
  });

  it('a thousand near misses with long reasons make one entry holding codes, never their texts', () => {
    const long = 'X'.repeat(500);
    const denied = Array.from({ length: 1000 }, (_, i) =>
      near(`VN-A${i}`, i % 3 ? DenyReason.AlertType : DenyReason.Handling, `B${i}@1: ${long}`),
    );
    const entries = summariseRefusals('SG-NPARKS', denied);
    expect(entries).toHaveLength(1);
    const detail = entries[0]!.detail as {
      codes: Record<string, string>;
      counts: Record<string, number>;
    };
    expect(Object.keys(detail.codes)).toHaveLength(1000);
    expect(detail.counts).toEqual({ [DenyReason.Handling]: 334, [DenyReason.AlertType]: 666 });
    expect(canonicalJson(entries[0]).includes(long)).toBe(false);
  });

  it('an older summary (one entry per reason, with each recipient’s reason) is still read', () => {
    const older: AuditRecord = {
      ...asRecord({ reasonCode: DenyReason.AlertType, reason: 'r', detail: {} }),
      detail: canonicalJson({
        recipients: ['VN-CUSTOMS', 'CN-GACC'],
        reasons: { 'VN-CUSTOMS': 'A1@1: no', 'CN-GACC': 'A3@1: no' },
      }),
    };
    expect(deniedRecipients(older)).toEqual([
      { recipient: 'VN-CUSTOMS', reasonCode: DenyReason.AlertType, reason: 'A1@1: no' },
      { recipient: 'CN-GACC', reasonCode: DenyReason.AlertType, reason: 'A3@1: no' },
    ]);
  });
});
