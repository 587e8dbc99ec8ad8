import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DenyReason, uncoveredDetail, type NoticeEvent } from '@alert-hub/core';
import { openDatabase } from '@alert-hub/runtime';
import { seizureReport } from '@alert-hub/testkit';
import { RouterStore } from '../src/store.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-notice-grouping-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Commits a decision refusing three agencies that share no agreement covering the type; returns the notice events queued. */
function routedEvents(options: { groupRefusals?: boolean }, name: string): NoticeEvent[] {
  const store = new RouterStore(openDatabase(join(dir, `${name}.db`)), 'test', options);
  const alert = seizureReport('SG-NPARKS');
  const detail = uncoveredDetail(alert.type);
  store.write([
    {
      kind: 'routed',
      alert,
      stream: 'AHUB_IN_TH-DNP',
      streamSeq: 1,
      forwards: [],
      denied: ['CN-GACC', 'KE-KWS', 'VN-CUSTOMS'].map((recipient) => ({
        recipient,
        reason: DenyReason.AlertType,
        detail,
      })),
      routeTree: { root: Buffer.alloc(32), leaves: [] },
    },
  ]);
  return store.outbox().map((r) => r.event);
}

describe('router - the routed notice of refusals with one code and reason', () => {
  const reason = 'no agreement of both covers seizure-report';
  it('by default, one item naming the agencies', () => {
    const [e] = routedEvents({}, 'default');
    expect(e).toMatchObject({
      event: 'routed',
      denied: [
        { recipients: ['CN-GACC', 'KE-KWS', 'VN-CUSTOMS'], code: 'DENY_ALERT_TYPE', reason },
      ],
    });
  });
  it('noticeGroupRefusals false (for gateways older than the grouped form): one item per agency', () => {
    const [e] = routedEvents({ groupRefusals: false }, 'ungrouped');
    expect(e).toMatchObject({
      event: 'routed',
      denied: ['CN-GACC', 'KE-KWS', 'VN-CUSTOMS'].map((recipient) => ({
        recipient,
        code: 'DENY_ALERT_TYPE',
        reason,
      })),
    });
  });
});
