import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkSchema } from '@alert-hub/audit';
import { RouterStore } from '@alert-hub/router';
import { openDatabase, type SqliteDatabase } from '@alert-hub/runtime';

/**
 * The router's state tables as earlier releases made them, keyed by alert id alone: an alert of
 * one agency then shadowed another's with the same id. Opening such a database with today's
 * router carries every row over to the (origin, id) tables once.
 */
const FIRST_RELEASE = `
CREATE TABLE routed (
  alert_id   TEXT    PRIMARY KEY,
  stream_seq INTEGER NOT NULL,
  origin     TEXT    NOT NULL,
  type       TEXT    NOT NULL,
  at         TEXT    NOT NULL
);
CREATE TABLE deliveries (
  alert_id          TEXT    NOT NULL,
  recipient         TEXT    NOT NULL,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  feed_seq          INTEGER NOT NULL,
  PRIMARY KEY (alert_id, recipient)
);
`;

/** The release with receipts and outcomes (columns added to `routed`/`deliveries`), before (origin, id). */
const WITH_RECEIPTS = `${FIRST_RELEASE}
ALTER TABLE routed ADD COLUMN operation TEXT;
ALTER TABLE deliveries ADD COLUMN forwarded_at TEXT;
ALTER TABLE deliveries ADD COLUMN envelope_sha256 TEXT;
ALTER TABLE deliveries ADD COLUMN delivered_at TEXT;
ALTER TABLE deliveries ADD COLUMN receipt_id TEXT;
CREATE TABLE receipts (
  receipt_id    TEXT    PRIMARY KEY,
  agency        TEXT    NOT NULL,
  stream_seq    INTEGER NOT NULL,
  kid           TEXT    NOT NULL,
  committed_at  TEXT    NOT NULL,
  receipt_sha256 TEXT   NOT NULL,
  verified_at   TEXT    NOT NULL
);
CREATE TABLE outcomes (
  alert_id  TEXT PRIMARY KEY,
  answers   TEXT NOT NULL,
  reporter  TEXT NOT NULL,
  result    TEXT NOT NULL,
  operation TEXT,
  at        TEXT NOT NULL
);
`;

const dir = mkdtempSync(join(tmpdir(), 'ahub-router-migration-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const AT = '2026-11-01T10:00:00.000Z';
const A = '0193f0a0-0000-7000-8000-00000000000a';
const B = '0193f0a0-0000-7000-8000-00000000000b';

function tables(db: SqliteDatabase): string[] {
  return (
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as {
      name: string;
    }[]
  ).map((t) => t.name);
}

function primaryKey(db: SqliteDatabase, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string; pk: number }[])
    .filter((c) => c.pk > 0)
    .sort((a, b) => a.pk - b.pk)
    .map((c) => c.name);
}

function oldDatabase(name: string, schema: string): string {
  const file = join(dir, name);
  const db = openDatabase(file);
  db.exec(schema);
  db.prepare(
    'INSERT INTO routed (alert_id, stream_seq, origin, type, at) VALUES (?, ?, ?, ?, ?)',
  ).run(A, 7, 'SG-NPARKS', 'seizure-report', AT);
  db.prepare(
    'INSERT INTO routed (alert_id, stream_seq, origin, type, at) VALUES (?, ?, ?, ?, ?)',
  ).run(B, 8, 'NG-NCS', 'seizure-report', AT);
  const delivery = db.prepare(
    'INSERT INTO deliveries (alert_id, recipient, agreement_id, agreement_version, onward, feed_seq) VALUES (?, ?, ?, 1, 0, ?)',
  );
  delivery.run(A, 'VN-CUSTOMS', 'WEN-ASIA', 11);
  delivery.run(A, 'CN-GACC', 'WEN-ASIA', 12);
  delivery.run(B, 'KE-KWS', 'AFRICA', 13);
  db.close();
  return file;
}

describe('router store - migration of a database keyed by alert id alone', () => {
  it('the first release’s routed/deliveries are carried over to the (origin, id) tables once, and the old tables dropped', () => {
    const file = oldDatabase('first.db', FIRST_RELEASE);
    let db = openDatabase(file);
    let store = new RouterStore(db, 'router-1');
    expect(tables(db)).not.toContain('routed');
    expect(tables(db)).not.toContain('deliveries');
    expect(primaryKey(db, 'routed_alerts')).toEqual(['origin', 'alert_id']);
    expect(primaryKey(db, 'alert_deliveries')).toEqual(['origin', 'alert_id', 'recipient']);
    expect(store.routed('SG-NPARKS', A)).toEqual({
      stream: 'AHUB_INBOUND',
      streamSeq: 7,
      origin: 'SG-NPARKS',
    });
    expect(store.routed('NG-NCS', A)).toBeUndefined();
    expect(store.routedByAnyOrigin(B)).toEqual([
      { stream: 'AHUB_INBOUND', streamSeq: 8, origin: 'NG-NCS' },
    ]);
    expect(store.deliveriesOf('SG-NPARKS', A)).toEqual([
      { recipient: 'CN-GACC', agreement: { id: 'WEN-ASIA', version: 1 }, onward: false },
      { recipient: 'VN-CUSTOMS', agreement: { id: 'WEN-ASIA', version: 1 }, onward: false },
    ]);
    // Columns added after the first release exist, empty.
    expect(store.delivery('NG-NCS', B, 'KE-KWS')).toEqual({
      alertId: B,
      origin: 'NG-NCS',
      recipient: 'KE-KWS',
      envelopeSha256: null,
      forwardedAt: null,
      deliveredAt: null,
      receiptId: null,
    });
    // Another agency's alert with the same id now has a row of its own.
    db.prepare(
      "INSERT INTO routed_alerts (origin, alert_id, stream_seq, type, at) VALUES ('KE-KWS', ?, 9, 'seizure-report', ?)",
    ).run(A, AT);
    expect(store.routedByAnyOrigin(A).map((r) => r.origin)).toEqual(['KE-KWS', 'SG-NPARKS']);
    db.close();

    // Opening again changes nothing.
    db = openDatabase(file);
    store = new RouterStore(db, 'router-1');
    expect((db.prepare('SELECT count(*) AS n FROM routed_alerts').get() as { n: number }).n).toBe(
      3,
    );
    expect(
      (db.prepare('SELECT count(*) AS n FROM alert_deliveries').get() as { n: number }).n,
    ).toBe(3);
    expect(store.routed('SG-NPARKS', A)).toEqual({
      stream: 'AHUB_INBOUND',
      streamSeq: 7,
      origin: 'SG-NPARKS',
    });
    db.close();
    // The state tables are the router's own: the schema `audit verify` checks is unchanged.
    const verify = openDatabase(file, { readonly: true });
    try {
      expect(checkSchema(verify)).toEqual([]);
    } finally {
      verify.close();
    }
  });

  it('the release with receipts: delivery state, receipts and outcomes kept; receipts keyed by (agency, id), outcomes by (reporter, id)', () => {
    const file = oldDatabase('receipts.db', WITH_RECEIPTS);
    let db = openDatabase(file);
    db.prepare(
      "UPDATE deliveries SET forwarded_at = ?, envelope_sha256 = 'ab12', delivered_at = ?, receipt_id = 'R-1' WHERE alert_id = ? AND recipient = 'VN-CUSTOMS'",
    ).run(AT, AT, A);
    db.prepare("UPDATE routed SET operation = 'THUNDERBALL' WHERE alert_id = ?").run(A);
    db.prepare("INSERT INTO receipts VALUES ('R-1', 'VN-CUSTOMS', 20, 'kid-vn', ?, 'cd34', ?)").run(
      AT,
      AT,
    );
    db.prepare(
      "INSERT INTO outcomes (alert_id, answers, reporter, result, operation, at) VALUES ('O-1', ?, 'VN-CUSTOMS', 'seizure', 'THUNDERBALL', ?)",
    ).run(A, AT);
    db.close();

    db = openDatabase(file);
    const store = new RouterStore(db, 'router-1');
    expect(store.delivery('SG-NPARKS', A, 'VN-CUSTOMS')).toEqual({
      alertId: A,
      origin: 'SG-NPARKS',
      recipient: 'VN-CUSTOMS',
      envelopeSha256: 'ab12',
      forwardedAt: AT,
      deliveredAt: AT,
      receiptId: 'R-1',
    });
    expect(
      db
        .prepare('SELECT operation FROM routed_alerts WHERE origin = ? AND alert_id = ?')
        .get('SG-NPARKS', A),
    ).toEqual({ operation: 'THUNDERBALL' });
    // A receipt id is Viet Nam's own: Kenya's receipt with the same id is another receipt.
    expect(primaryKey(db, 'receipts')).toEqual(['agency', 'receipt_id']);
    expect(store.receiptSeq('VN-CUSTOMS', 'R-1')).toMatchObject({
      stream: 'AHUB_INBOUND',
      streamSeq: 20,
    });
    expect(store.receiptSeq('KE-KWS', 'R-1')).toBeUndefined();
    expect(
      db
        .prepare(
          "INSERT INTO receipts (receipt_id, agency, stream_seq, kid, committed_at, receipt_sha256, verified_at) VALUES ('R-1', 'KE-KWS', 21, 'kid-ke', ?, 'ef56', ?)",
        )
        .run(AT, AT).changes,
    ).toBe(1);
    expect(store.receiptSeq('KE-KWS', 'R-1')).toMatchObject({ streamSeq: 21 });
    // Outcomes: every row kept, keyed by (reporter, id).
    expect(primaryKey(db, 'outcomes')).toEqual(['reporter', 'alert_id']);
    expect(
      db.prepare('SELECT reporter, alert_id, answers, result, operation FROM outcomes').all(),
    ).toEqual([
      {
        reporter: 'VN-CUSTOMS',
        alert_id: 'O-1',
        answers: A,
        result: 'seizure',
        operation: 'THUNDERBALL',
      },
    ]);
    db.close();
  });
});

/** The release before one inbound stream per agency: decisions keyed by the sequence alone. */
const BEFORE_STREAMS = `
CREATE TABLE routed_alerts (
  origin     TEXT    NOT NULL,
  alert_id   TEXT    NOT NULL,
  stream_seq INTEGER NOT NULL,
  type       TEXT    NOT NULL,
  at         TEXT    NOT NULL,
  operation  TEXT,
  PRIMARY KEY (origin, alert_id)
);
CREATE TABLE decisions (
  stream_seq INTEGER PRIMARY KEY,
  at         TEXT    NOT NULL
);
CREATE TABLE receipts (
  receipt_id    TEXT    NOT NULL,
  agency        TEXT    NOT NULL,
  stream_seq    INTEGER NOT NULL,
  kid           TEXT    NOT NULL,
  committed_at  TEXT    NOT NULL,
  receipt_sha256 TEXT   NOT NULL,
  verified_at   TEXT    NOT NULL,
  PRIMARY KEY (agency, receipt_id)
);
INSERT INTO routed_alerts VALUES ('SG-NPARKS', '${A}', 7, 'seizure-report', '${AT}', NULL);
INSERT INTO decisions VALUES (7, '${AT}');
INSERT INTO receipts VALUES ('R-1', 'VN-CUSTOMS', 20, 'kid-vn', '${AT}', 'cd34', '${AT}');
`;

describe('router store - inbound sequences qualified by their stream', () => {
  it('rows from before per-agency streams keep meaning the legacy stream; the same number in an agency stream is another message', () => {
    const file = join(dir, 'before-streams.db');
    const old = openDatabase(file);
    old.exec(BEFORE_STREAMS);
    old.close();
    const db = openDatabase(file);
    const store = new RouterStore(db, 'router-1');
    expect(primaryKey(db, 'decisions')).toEqual(['stream', 'stream_seq']);
    expect(db.prepare('SELECT stream, stream_seq FROM decisions').all()).toEqual([
      { stream: 'AHUB_INBOUND', stream_seq: 7 },
    ]);
    expect(store.routed('SG-NPARKS', A)).toEqual({
      stream: 'AHUB_INBOUND',
      streamSeq: 7,
      origin: 'SG-NPARKS',
    });
    expect(store.receiptSeq('VN-CUSTOMS', 'R-1')).toMatchObject({
      stream: 'AHUB_INBOUND',
      streamSeq: 20,
    });
    // Sequence 7 of Kenya's own stream is not the legacy stream's 7: its refusal is recorded.
    const refusal = (stream: string) => ({
      kind: 'rejected' as const,
      stream,
      streamSeq: 7,
      subject: 'ahub.in.KE-KWS.seizure-report',
      claimedOrigin: 'KE-KWS',
      code: 'ERR_ENVELOPE_MALFORMED',
      reason: 'not an envelope',
    });
    const rejected = () =>
      (
        db.prepare("SELECT count(*) AS n FROM audit WHERE event = 'rejected'").get() as {
          n: number;
        }
      ).n;
    store.write([refusal('AHUB_IN_KE-KWS')]);
    expect(rejected()).toBe(1);
    // The same message again (a redelivery) writes nothing; the legacy stream's 7 was decided.
    store.write([refusal('AHUB_IN_KE-KWS'), refusal('AHUB_INBOUND')]);
    expect(rejected()).toBe(1);
    store.write([refusal('AHUB_IN_NG-NCS')]);
    expect(rejected()).toBe(2);
    db.close();
    const verify = openDatabase(file, { readonly: true });
    try {
      expect(checkSchema(verify)).toEqual([]);
    } finally {
      verify.close();
    }
  });
});
