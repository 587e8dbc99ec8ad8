import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Streams,
  inboundStreamName,
  newAlertId,
  type NoticeEvent,
  type RoutedDenied,
} from '@alert-hub/core';
import { openDatabase } from '@alert-hub/runtime';
import { GatewayStore } from '../src/store.js';

const dir = mkdtempSync(join(tmpdir(), 'ahub-routed-merge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** SG-NPARKS's gateway store, holding alert `id` as sent and accepted at `at`. */
function senderStore(file: string, id: string, at: string): GatewayStore {
  const store = new GatewayStore(openDatabase(join(dir, file)), { agency: 'SG-NPARKS' });
  store.putSent([
    { id, sequence: 1, contentSha256: '00', acceptedAt: at, type: 'seizure-report', client: 'c' },
  ]);
  return store;
}

describe('gateway - a decision told in several routed events', () => {
  it('the events merge, in either order, into the state one event would give', () => {
    const id = newAlertId();
    const at = '2026-11-29T12:00:00.000Z';
    const part = (recipients: string[], denied: string[]): NoticeEvent => ({
      event: 'routed',
      alertId: id,
      at,
      operation: 'THUNDERBALL',
      recipients,
      denied: denied.map((recipient) => ({ recipient, code: 'DENY_HANDLING', reason: 'above' })),
    });
    const states = [
      [part(['KE-KWS', 'NG-NCS'], ['US-FWS']), part(['VN-CUSTOMS'], ['CN-GACC'])],
      [part(['VN-CUSTOMS'], ['CN-GACC']), part(['KE-KWS', 'NG-NCS'], ['US-FWS'])],
      [part(['KE-KWS', 'NG-NCS', 'VN-CUSTOMS'], ['CN-GACC', 'US-FWS'])],
    ].map((events, i) => {
      const store = senderStore(`${i}.db`, id, at);
      for (const e of events) store.applyNotice([e]);
      const s = store.statusOf(id, Date.parse(at), 60_000)!;
      return {
        state: s.state,
        operation: s.operation,
        recipients: s.recipients.map((r) => `${r.recipient} ${r.state}`),
      };
    });
    expect(states[0]).toEqual(states[2]);
    expect(states[1]).toEqual(states[2]);
    expect(states[2]!.recipients).toHaveLength(5);
  });

  it('an item naming several recipients gives each its own refusal, as one item each would', () => {
    const id = newAlertId();
    const at = '2026-11-29T12:00:00.000Z';
    const reason = 'no agreement of both covers seizure-report';
    const event = (denied: readonly RoutedDenied[]): NoticeEvent => ({
      event: 'routed',
      alertId: id,
      at,
      recipients: ['VN-CUSTOMS'],
      denied,
    });
    const states = [
      event([
        { recipient: 'KE-KWS', code: 'DENY_HANDLING', reason: 'A@1: above' },
        { recipients: ['CN-GACC', 'US-FWS', 'NG-NCS'], code: 'DENY_ALERT_TYPE', reason },
      ]),
      event([
        { recipient: 'KE-KWS', code: 'DENY_HANDLING', reason: 'A@1: above' },
        ...['CN-GACC', 'US-FWS', 'NG-NCS'].map((recipient) => ({
          recipient,
          code: 'DENY_ALERT_TYPE',
          reason,
        })),
      ]),
    ].map((e, i) => {
      const store = senderStore(`group-${i}.db`, id, at);
      store.applyNotice([e]);
      return store.statusOf(id, Date.parse(at), 60_000)!.recipients;
    });
    expect(states[0]).toEqual(states[1]);
    expect(states[0]!.filter((r) => r.state === 'refused')).toHaveLength(4);
    expect(states[0]!.find((r) => r.recipient === 'US-FWS')).toMatchObject({
      state: 'refused',
      code: 'DENY_ALERT_TYPE',
      reason,
    });
  });
});

describe('gateway - an alert’s state from the hub’s notices', () => {
  const at = '2026-11-29T12:00:00.000Z';
  const routed = (id: string): NoticeEvent => ({
    event: 'routed',
    alertId: id,
    at,
    recipients: ['VN-CUSTOMS'],
    denied: [],
  });
  const refused = (e: { alertId?: string; streamSeq: number; subject?: string }): NoticeEvent => ({
    event: 'refused',
    subject: e.subject ?? 'ahub.in.SG-NPARKS.seizure-report',
    streamSeq: e.streamSeq,
    at,
    code: 'ERR_KEY_UNKNOWN',
    reason: 'no key',
    ...(e.alertId ? { alertId: e.alertId } : {}),
  });
  const OWN = inboundStreamName('SG-NPARKS');
  const sent = (id: string, stream: string | undefined) => ({
    id,
    sequence: 7,
    ...(stream ? { stream } : {}),
    contentSha256: '00',
    acceptedAt: at,
    type: 'seizure-report',
    client: 'c',
  });
  function store(file: string, id: string, stream: string | undefined): GatewayStore {
    const s = new GatewayStore(openDatabase(join(dir, file)), { agency: 'SG-NPARKS' });
    s.putSent([sent(id, stream)]);
    return s;
  }

  it('a refusal naming no alert id is this gateway’s alert at that inbound sequence and subject, and only that', () => {
    const id = newAlertId();
    const s = store('seq.db', id, OWN);
    // Another sequence, or another type's subject at that sequence: not this alert.
    s.applyNotice([refused({ streamSeq: 8 })]);
    s.applyNotice([refused({ streamSeq: 7, subject: 'ahub.in.SG-NPARKS.outcome' })]);
    expect(s.statusOf(id, Date.parse(at), 60_000)!.state).toBe('accepted');
    s.applyNotice([refused({ streamSeq: 7 })]);
    expect(s.statusOf(id, Date.parse(at), 60_000)).toMatchObject({
      state: 'refused',
      refused: { code: 'ERR_KEY_UNKNOWN' },
    });
    // Published before the hub's upgrade, into the shared stream of older hubs: matched there.
    const before = newAlertId();
    const l = store('legacy.db', before, Streams.Inbound);
    l.applyNotice([refused({ streamSeq: 7 })]);
    expect(l.statusOf(before, Date.parse(at), 60_000)!.state).toBe('refused');
    // This gateway sent a message at that sequence into both: it cannot tell which, matches neither.
    const legacyOne = newAlertId();
    const both = store('both.db', legacyOne, Streams.Inbound);
    const ownOne = newAlertId();
    both.putSent([sent(ownOne, OWN)]);
    both.applyNotice([refused({ streamSeq: 7 })]);
    expect(both.statusOf(ownOne, Date.parse(at), 60_000)!.state).toBe('accepted');
    expect(both.statusOf(legacyOne, Date.parse(at), 60_000)!.state).toBe('accepted');
    // The refusal is kept in the list of refusals, naming no alert.
    expect(both.refusals()).toEqual([
      expect.objectContaining({ alertId: null, code: 'ERR_KEY_UNKNOWN' }),
    ]);
    // Acknowledged by a leaf's outbox, another agency's stream, or recorded before streams were:
    // its sequence is not this agency's inbound stream's, nothing is matched.
    for (const [file, stream] of [
      ['outbox.db', 'AHUB_OUTBOX_SG-NPARKS'],
      ['other.db', inboundStreamName('VN-CUSTOMS')],
      ['old.db', undefined],
    ] as const) {
      const other = newAlertId();
      const o = store(file, other, stream);
      o.applyNotice([refused({ streamSeq: 7 })]);
      expect(o.statusOf(other, Date.parse(at), 60_000)!.state).toBe('accepted');
    }
  });

  it('routed once is routed: a refused duplicate does not hide it, and a requeued alert routed after its refusal is routed', () => {
    const dup = newAlertId();
    const a = store('dup.db', dup, OWN);
    a.applyNotice([routed(dup)]);
    a.applyNotice([refused({ alertId: dup, streamSeq: 9 })]);
    expect(a.statusOf(dup, Date.parse(at), 60_000)!.state).toBe('routed');
    const requeued = newAlertId();
    const b = store('requeued.db', requeued, OWN);
    b.applyNotice([refused({ streamSeq: 7 })]);
    b.applyNotice([routed(requeued)]);
    const st = b.statusOf(requeued, Date.parse(at), 60_000)!;
    expect(st.state).toBe('routed');
    expect(st).not.toHaveProperty('refused');
  });
});
