import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import {
  AUDIT_SCHEMA,
  AuditAppender,
  AuditEvent,
  checkSchema,
  flowStats,
  forwardedCopies,
  hashRecord,
  queryAudit,
  routeInclusion,
  traceAlert,
  type AuditEntry,
} from '@alert-hub/audit';
import { BLANK_ENTRY, ROUTE_LEAVES, ROUTE_ROOT_HEX } from './vectors.js';

const AT = BLANK_ENTRY.at;
const ALERT = '0169fb6c-1a80-7000-8000-000000000001';
const who = { alertId: ALERT, origin: 'SG-NPARKS', type: 'seizure-report', streamSeq: 3 };

/** The routing decision of the route-tree vector, with `held`'s copy held (no feed sequence). */
function routeDecision(held?: string): AuditEntry {
  return {
    event: AuditEvent.Routed,
    ...who,
    routeTree: {
      root: Buffer.from(ROUTE_ROOT_HEX, 'hex'),
      leaves: ROUTE_LEAVES.map((text, i) => {
        const recipient = (JSON.parse(text) as { recipient: string }).recipient;
        return { recipient, text, feedSeq: recipient === held ? null : 7 + i };
      }),
    },
  };
}

/** A log with the routing decision of the route-tree vector: KE-KWS and NG-CUSTOMS forwarded, VN-CUSTOMS held. */
function decisionLog() {
  const db = new Database(':memory:');
  const appender = new AuditAppender(db, 'router-a');
  db.transaction(() => appender.append([routeDecision('VN-CUSTOMS')], AT)).immediate();
  return { db };
}

describe('audit - a routing decision read back', () => {
  it('a held copy is not forwarded: not by query, flows or the partner proof, until its own entry', () => {
    const { db } = decisionLog();
    const forwardedTo = (partner: string) =>
      queryAudit(db, { partner, outcome: 'forwarded' }).map((r) => r.event);
    expect(forwardedTo('KE-KWS')).toEqual(['routed']);
    expect(forwardedTo('VN-CUSTOMS')).toEqual([]);
    // Still a recipient of the decision: found without the outcome filter.
    expect(queryAudit(db, { partner: 'VN-CUSTOMS' }).map((r) => r.event)).toEqual(['routed']);
    expect(flowStats(db).map((f) => f.recipient)).toEqual(['KE-KWS', 'NG-CUSTOMS']);
    expect(routeInclusion(db, 1, 'VN-CUSTOMS')).toBeUndefined();
    expect(routeInclusion(db, 1, 'KE-KWS')).toMatchObject({ index: 0 });
    expect(forwardedCopies(traceAlert(db, ALERT)).map((f) => f.recipient)).toEqual([
      'KE-KWS',
      'NG-CUSTOMS',
    ]);
  });
  it('a route the database does not store stops the append: nothing of the decision is written', () => {
    // The routes are written several to a statement: one of them ignored by a trigger is still
    // found, and the transaction (entry and routes) rolls back.
    const db = new Database(':memory:');
    const appender = new AuditAppender(db, 'router-a');
    db.exec(
      "CREATE TRIGGER drop_one BEFORE INSERT ON audit_routes WHEN NEW.recipient = 'NG-CUSTOMS' BEGIN SELECT RAISE(IGNORE); END",
    );
    expect(() => db.transaction(() => appender.append([routeDecision()], AT)).immediate()).toThrow(
      `2 of the 3 routes of audit entry 1 were stored`,
    );
    expect(db.prepare('SELECT count(*) AS n FROM audit_routes').get()).toEqual({ n: 0 });
    expect(appender.size).toBe(0);
  });
  it('a route that is not what the entry commits to reads as an error, never as no recipient', () => {
    const { db } = decisionLog();
    db.prepare("UPDATE audit_routes SET recipient = 'US-FWS' WHERE idx = 1").run();
    const [r] = traceAlert(db, ALERT);
    expect(r!.routes).toBeUndefined();
    expect(r!.routesError).toMatch(/route 1/);
  });
  it('a router opening a log whose routes were edited refuses it at start', () => {
    const { db } = decisionLog();
    db.prepare('UPDATE audit_routes SET feed_seq = 99 WHERE idx = 0').run();
    expect(() => new AuditAppender(db, 'router-a')).toThrow(
      expect.objectContaining({ code: 'ERR_AUDIT_INTEGRITY' }),
    );
  });
});

describe('audit - a log written before routing decisions were one entry', () => {
  /** The log's tables as routers created them before audit_routes, with one decision per copy. */
  function olderLog() {
    const db = new Database(':memory:');
    for (const o of AUDIT_SCHEMA.filter((x) => x.table !== 'audit_routes')) db.exec(o.sql);
    const base = { ...BLANK_ENTRY, ...who };
    const rows = [
      { ...base, seq: 1, event: 'received' as const },
      {
        ...base,
        seq: 2,
        event: 'forwarded' as const,
        recipient: 'KE-KWS',
        agreementId: 'AFRICA-PANGOLIN',
        agreementVersion: 1,
        feedSeq: 7,
      },
    ];
    const insert = db.prepare(
      'INSERT INTO audit (seq, at, instance, event, alert_id, claimed_id, origin, type, handling, recipient, agreement_id, agreement_version, reason_code, reason, stream_seq, feed_seq, detail, hash) VALUES (@seq, @at, @instance, @event, @alertId, @claimedId, @origin, @type, @handling, @recipient, @agreementId, @agreementVersion, @reasonCode, @reason, @streamSeq, @feedSeq, @detail, @hash)',
    );
    for (const r of rows) insert.run({ ...r, hash: hashRecord(r) });
    return db;
  }
  it('its schema is the router’s, and query, trace and flows read it as before', () => {
    const db = olderLog();
    expect(checkSchema(db)).toEqual([]);
    expect(queryAudit(db, { partner: 'KE-KWS', outcome: 'forwarded' }).map((r) => r.seq)).toEqual([
      2,
    ]);
    expect(queryAudit(db, { outcome: 'received' }).map((r) => r.seq)).toEqual([1]);
    expect(traceAlert(db, ALERT).map((r) => r.event)).toEqual(['received', 'forwarded']);
    expect(flowStats(db).map((f) => [f.recipient, f.count])).toEqual([['KE-KWS', 1]]);
  });
  it('but a routing decision without its table is not', () => {
    const db = olderLog();
    db.prepare("UPDATE audit SET event = 'routed' WHERE seq = 1").run();
    expect(checkSchema(db)).toEqual(['table audit_routes is missing']);
  });
});
