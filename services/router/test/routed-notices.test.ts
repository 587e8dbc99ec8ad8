import { describe, expect, it } from 'vitest';
import { NOTICE_SCHEMA_ID, type NoticeEvent } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { NOTICE_MAX_ITEMS, routedNotices } from '../src/store.js';

const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const base = { alertId: '0169fb6c-1a80-7000-8000-000000000001', at: '2026-11-29T12:00:00.000Z' };

/** A notice holding one event, checked against notice.v1 as every gateway checks it. */
function issues(event: NoticeEvent) {
  return registry.validateDocument(NOTICE_SCHEMA_ID, {
    notice: '0169fb6c-1a80-7000-8000-000000000002',
    hub: 'HUB',
    to: 'SG-NPARKS',
    issuedAt: base.at,
    events: [event],
  });
}

function agencies(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-A${String(i).padStart(4, '0')}`);
}

describe('router - the routed notice of a very large decision', () => {
  it('an ordinary decision is one event', () => {
    const events = routedNotices(
      base,
      ['KE-KWS'],
      [{ recipient: 'VN-CUSTOMS', code: 'DENY_ALERT_TYPE', reason: 'not this type' }],
    );
    expect(events).toHaveLength(1);
    expect(issues(events[0]!)).toEqual([]);
  });
  it('beyond what one event may list: several events, each valid, together listing everyone once', () => {
    const recipients = agencies('XR', 2_500);
    const denied = agencies('XD', 1_700).map((recipient) => ({
      recipient,
      code: 'DENY_HANDLING',
      reason: 'handling above the agreement ceiling '.repeat(25).slice(0, 1000),
    }));
    const events = routedNotices({ ...base, operation: 'THUNDERBALL' }, recipients, denied);
    expect(events.length).toBeGreaterThan(2);
    for (const e of events) {
      expect(issues(e)).toEqual([]);
      expect(e.event === 'routed' && e.recipients.length).toBeLessThanOrEqual(NOTICE_MAX_ITEMS);
      expect(JSON.stringify(e).length).toBeLessThan(128 * 1024);
    }
    const routed = events.flatMap((e) => (e.event === 'routed' ? [e] : []));
    expect(routed.flatMap((e) => e.recipients)).toEqual(recipients);
    expect(routed.flatMap((e) => e.denied)).toEqual(denied);
    expect(new Set(routed.map((e) => `${e.alertId} ${e.at} ${e.operation}`)).size).toBe(1);
  });
});
