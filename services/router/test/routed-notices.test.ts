import { describe, expect, it } from 'vitest';
import { NOTICE_SCHEMA_ID, routedRefusals, type NoticeEvent } from '@alert-hub/core';
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
    const recipients = agencies('ZM', 2_500);
    // Each its own reason (as a near miss naming its agreements has): nothing to group.
    const denied = agencies('ZA', 1_700).map((recipient, i) => ({
      recipient,
      code: 'DENY_HANDLING',
      reason: `${i}: ${'handling above the agreement ceiling '.repeat(25)}`.slice(0, 1000),
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
    expect(routedRefusals(routed.flatMap((e) => e.denied))).toEqual(denied);
    expect(new Set(routed.map((e) => `${e.alertId} ${e.at} ${e.operation}`)).size).toBe(1);
  });

  it('refusals with the same code and reason are one item naming their recipients; the others stay one each', () => {
    const uncovered = agencies('ZW', 106).map((recipient) => ({
      recipient,
      code: 'DENY_ALERT_TYPE',
      reason: 'no agreement of both covers seizure-report',
    }));
    const own = [
      {
        recipient: 'KE-KWS',
        code: 'DENY_HANDLING',
        reason: 'A@1: TLP:AMBER is above the allowed TLP:GREEN',
      },
      {
        recipient: 'TH-DNP',
        code: 'DENY_DIRECTION',
        reason: 'B@2: does not let SG-NPARKS send to TH-DNP',
      },
    ];
    const denied = [own[0]!, ...uncovered.slice(0, 50), own[1]!, ...uncovered.slice(50)];
    const events = routedNotices(base, ['VN-CUSTOMS'], denied);
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(issues(e)).toEqual([]);
    if (e.event !== 'routed') throw new Error('not a routed event');
    // In the order of each item's first recipient.
    expect(e.denied).toEqual([
      own[0],
      {
        recipients: uncovered.map((d) => d.recipient),
        code: 'DENY_ALERT_TYPE',
        reason: 'no agreement of both covers seizure-report',
      },
      own[1],
    ]);
    expect(sorted(routedRefusals(e.denied))).toEqual(sorted(denied));
  });
  it('with grouping off (gateways older than the grouped form), one item per recipient, as before', () => {
    const denied = agencies('ZW', 3).map((recipient) => ({
      recipient,
      code: 'DENY_ALERT_TYPE',
      reason: 'no agreement of both covers seizure-report',
    }));
    const [e] = routedNotices(base, [], denied, false);
    expect(e).toMatchObject({ event: 'routed', denied });
  });
  it('a recipient listed twice is refused once, so a group stays valid', () => {
    const d = { code: 'DENY_ALERT_TYPE', reason: 'no agreement of both covers seizure-report' };
    const [e] = routedNotices(
      base,
      [],
      [
        { recipient: 'KE-KWS', ...d },
        { recipient: 'TH-DNP', ...d },
        { recipient: 'KE-KWS', ...d },
      ],
    );
    expect(issues(e!)).toEqual([]);
    expect(e).toMatchObject({ denied: [{ recipients: ['KE-KWS', 'TH-DNP'], ...d }] });
  });
  it('a group of more than 1,000 recipients is split into items of at most 1,000, each valid', () => {
    const denied = agencies('ZW', 2_001).map((recipient) => ({
      recipient,
      code: 'DENY_OPERATION_TYPE',
      reason: 'operation THUNDERBALL does not cover consignee-flag',
    }));
    const events = routedNotices(base, [], denied);
    for (const e of events) expect(issues(e)).toEqual([]);
    const items = events.flatMap((e) => (e.event === 'routed' ? e.denied : []));
    expect(items.map((d) => ('recipients' in d ? d.recipients.length : 1))).toEqual([
      1000, 1000, 1,
    ]);
    expect(sorted(routedRefusals(items))).toEqual(sorted(denied));
  });
  it('notice.v1 refuses a group of fewer than two recipients, a repeated recipient, or both forms at once', () => {
    const routed = (item: unknown) =>
      ({ event: 'routed', ...base, recipients: [], denied: [item] }) as unknown as NoticeEvent;
    const ok = { code: 'DENY_ALERT_TYPE', reason: 'no agreement of both covers seizure-report' };
    expect(issues(routed({ recipients: ['KE-KWS', 'TH-DNP'], ...ok }))).toEqual([]);
    expect(issues(routed({ recipients: ['KE-KWS'], ...ok }))).not.toEqual([]);
    expect(issues(routed({ recipients: ['KE-KWS', 'KE-KWS'], ...ok }))).not.toEqual([]);
    expect(
      issues(routed({ recipient: 'KE-KWS', recipients: ['TH-DNP', 'VN-CUSTOMS'], ...ok })),
    ).not.toEqual([]);
    expect(issues(routed({ recipients: ['KE-KWS', 'TH-DNP'], code: ok.code }))).not.toEqual([]);
  });
});

function sorted(list: readonly { recipient: string; code: string; reason: string }[]) {
  return [...list].sort((a, b) => a.recipient.localeCompare(b.recipient));
}
