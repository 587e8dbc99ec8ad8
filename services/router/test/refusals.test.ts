import { describe, expect, it } from 'vitest';
import { DenyReason } from '@alert-hub/core';
import { summariseRefusals } from '../src/store.js';

describe('audit - refusals summarised by reason', () => {
  const near = (recipient: string, reason: DenyReason, detail: string) => ({
    recipient,
    reason,
    detail,
  });

  it('one entry per reason; a lone recipient is named, several are listed with their own reasons', () => {
    const entries = summariseRefusals('SG-NPARKS', [
      near('VN-CUSTOMS', DenyReason.AlertType, 'A1@1: does not cover consignee-flag'),
      near('KE-KWS', DenyReason.Expired, 'A2@1: ended 2020-01-01T00:00:00Z'),
      near('CN-GACC', DenyReason.AlertType, 'A3@1: does not cover consignee-flag'),
      near('HK-CED', DenyReason.NotParty, 'no agreement includes both SG-NPARKS and HK-CED'),
      near('US-FWS', DenyReason.NotParty, 'no agreement includes both SG-NPARKS and US-FWS'),
    ]);
    expect(entries).toEqual([
      {
        reasonCode: DenyReason.AlertType,
        reason: 'DENY_ALERT_TYPE for 2 agencies, each with its own agreements (detail.reasons)',
        detail: {
          recipients: ['VN-CUSTOMS', 'CN-GACC'],
          reasons: {
            'VN-CUSTOMS': 'A1@1: does not cover consignee-flag',
            'CN-GACC': 'A3@1: does not cover consignee-flag',
          },
        },
      },
      {
        recipient: 'KE-KWS',
        reasonCode: DenyReason.Expired,
        reason: 'A2@1: ended 2020-01-01T00:00:00Z',
      },
      {
        reasonCode: DenyReason.NotParty,
        reason: 'no agreement includes SG-NPARKS and any of 2 other agencies',
        detail: { recipients: ['HK-CED', 'US-FWS'] },
      },
    ]);
  });

  it('a thousand near misses make one entry, not a thousand', () => {
    const denied = Array.from({ length: 1000 }, (_, i) =>
      near(`VN-A${i}`, DenyReason.AlertType, `B${i}@1: does not cover seizure-report`),
    );
    const entries = summariseRefusals('SG-NPARKS', denied);
    expect(entries).toHaveLength(1);
    expect((entries[0]!.detail as { recipients: string[] }).recipients).toHaveLength(1000);
  });
});
