import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { auditCheckpointSubject, generateSigningJwk, importSigningKey } from '@alert-hub/core';
import {
  AuditAppender,
  AuditEvent,
  MerkleTree,
  cosignCheckpoint,
  formatCheckpoint,
  hashRecord,
  headOrigin,
  ROUTES_PAST_END,
  parseCheckpoint,
  parseNote,
  signNote,
  verifyAuditLog,
  witnessName,
  type AuditVerification,
  type SqliteDatabase,
} from '@alert-hub/audit';
import {
  WITNESS_STALL_CHECKPOINTS,
  loadConfig as gatewayConfig,
  startGateway,
  type Gateway,
} from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
  auditVerifyArgs,
  hubctl,
  OPEN_JS_API,
} from '@alert-hub/testkit';

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('tlog-test');
const agreementsFile = join(fx.dir, 'agreements.yaml');
const token = createToken();
const routerDir = join(fx.dir, 'router');
const auditDb = join(routerDir, 'audit.db');
let router: Router;
const gateways: Record<string, Gateway> = {};
let anchor = '';
/** A witnessed anchor of the first entries only: what follows it is covered by the signed head. */
let earlyAnchor = '';
let rollbackCopy = '';

const hubKey = Buffer.from(fx.hubKey.publicJwk.x, 'base64url');
const witnesses = AGENCIES.map((a) => ({
  name: witnessName(a),
  publicKey: Buffer.from(fx.keys[a]!.publicJwk.x, 'base64url'),
}));

/** The routers' metrics reader: what `/readyz` found is said to it (docs/operations.md). */
const prometheus = createToken();

function startHubRouter(
  dataDir = routerDir,
  auditLog = 'hub',
  settings: Record<string, unknown> = {},
): Promise<Router> {
  return startRouter(
    routerConfig(
      {},
      writeConfig(fx.dir, `router-${Date.now()}`, {
        instance: 'router-a',
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile,
        dataDir,
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: 0 },
        checkpointIntervalMs: 200,
        auditLog,
        metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
        ...settings,
      }),
    ),
    { log },
  );
}

/**
 * Appends to `file` the well-formed `forwarded` entry an insider with the database but not the
 * hub key would write after the last one, its leaf hash recomputed.
 */
function appendForged(
  file: string,
  o: { instance: string; recipient: string; feedSeq: number | null },
): void {
  const db = openDatabase(file);
  const last = db.prepare('SELECT seq, at FROM audit ORDER BY seq DESC LIMIT 1').get() as {
    seq: number;
    at: string;
  };
  const forged = {
    seq: last.seq + 1,
    at: last.at,
    instance: o.instance,
    event: 'forwarded' as const,
    alertId: null,
    claimedId: null,
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: null,
    recipient: o.recipient,
    agreementId: 'WEN-ASIA',
    agreementVersion: 1,
    reasonCode: null,
    reason: null,
    streamSeq: null,
    feedSeq: o.feedSeq,
    detail: null,
  };
  db.prepare(
    `INSERT INTO audit (seq, at, instance, event, origin, type, recipient, agreement_id, agreement_version, feed_seq, hash)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  ).run(
    forged.seq,
    forged.at,
    forged.instance,
    forged.event,
    forged.origin,
    forged.type,
    forged.recipient,
    forged.agreementId,
    forged.agreementVersion,
    forged.feedSeq,
    hashRecord(forged),
  );
  db.close();
}

/**
 * A router of its own (log `name`, in `router-<name>`), once it routed an alert and signed a
 * first checkpoint; and its audit database.
 */
async function checkpointedRouter(
  name: string,
  settings: Record<string, unknown> = {},
): Promise<{ r: Router; file: string }> {
  const dir = join(fx.dir, `router-${name}`);
  const r = await startHubRouter(dir, name, settings);
  await routeSome(1);
  await eventually(() => r.audit.latest, 20_000, 'a first checkpoint');
  return { r, file: join(dir, 'audit.db') };
}

async function routeSome(n: number): Promise<void> {
  const nc = await nats.connect();
  for (let i = 0; i < n; i++)
    await publishInbound(nc, seizureReport('SG-NPARKS'), fx.keys['SG-NPARKS']!);
}

function entries(file = auditDb): number {
  const db = openDatabase(file, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** The anchor a coordinator fetches from a gateway: the checkpoint it cosigned, with the others'. */
async function fetchAnchor(agency: string): Promise<string> {
  const res = await fetch(`${gateways[agency]!.url}/v1/audit/checkpoint`, {
    headers: { authorization: `Bearer ${token.token}` },
  });
  return res.ok ? res.text() : '';
}

/** Waits until every entry is in a checkpoint cosigned by all three witnesses. */
async function witnessedAnchor(): Promise<string> {
  return eventually(
    async () => {
      const a = await fetchAnchor('SG-NPARKS');
      if (!a) return undefined;
      const cp = parseCheckpoint(parseNote(a).text);
      const cosigs = parseNote(a).signatures.length - 1;
      return cp.size === entries() && cosigs === AGENCIES.length ? a : undefined;
    },
    20_000,
    'a checkpoint of every entry cosigned by every witness',
  );
}

function copyDb(from = auditDb): { db: SqliteDatabase; file: string } {
  const file = join(fx.dir, `copy-${Date.now()}-${Math.random().toString(36).slice(2)}.db`);
  const src = openDatabase(from, { readonly: true });
  src.exec(`VACUUM INTO '${file}'`);
  src.close();
  chmodSync(file, 0o600); // made with the umask; the hub opens only private databases
  return { db: openDatabase(file), file };
}

function verify(db: SqliteDatabase, a = anchor, minWitnesses = 2): AuditVerification {
  return verifyAuditLog(db, { anchor: a, hubKey, witnesses, minWitnesses });
}

function codes(v: AuditVerification): string[] {
  return [...new Set(v.problems.map((p) => p.code))];
}

/** Recomputes every leaf hash from the (edited) content: what an insider without keys can do. */
function rehash(db: SqliteDatabase): void {
  const rows = db.prepare('SELECT * FROM audit ORDER BY seq').all() as Record<string, unknown>[];
  const upd = db.prepare('UPDATE audit SET hash = ? WHERE seq = ?');
  for (const r of rows) {
    const h = hashRecord({
      seq: r['seq'] as number,
      at: r['at'] as string,
      instance: r['instance'] as string,
      event: r['event'] as 'received',
      alertId: r['alert_id'] as string | null,
      claimedId: r['claimed_id'] as string | null,
      origin: r['origin'] as string | null,
      type: r['type'] as string | null,
      handling: r['handling'] as string | null,
      recipient: r['recipient'] as string | null,
      agreementId: r['agreement_id'] as string | null,
      agreementVersion: r['agreement_version'] as number | null,
      reasonCode: r['reason_code'] as string | null,
      reason: r['reason'] as string | null,
      streamSeq: r['stream_seq'] as number | null,
      feedSeq: r['feed_seq'] as number | null,
      detail: r['detail'] as string | null,
    });
    upd.run(h, r['seq']);
  }
}

function hubSigner(key = fx.hubKey) {
  return {
    name: 'alert-hub/audit/hub',
    privateKey: key.privateKey,
    publicKey: Buffer.from(key.publicJwk.x, 'base64url'),
  };
}

beforeAll(async () => {
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [seizureAgreement('WEN-ASIA', 'Asia', AGENCIES)],
    }),
  );
  router = await startHubRouter();
  for (const agency of AGENCIES) {
    gateways[agency] = await startGateway(
      gatewayConfig(
        {},
        writeConfig(fx.dir, `gw-${agency}`, {
          agency,
          signingKey: fx.keyFiles[agency],
          trustDir: fx.trustDir,
          dataDir: join(fx.dir, `gw-${agency}`),
          http: { port: 0 },
          nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
          clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
        }),
      ),
      { log },
    );
  }
  await routeSome(5);
  earlyAnchor = await witnessedAnchor();
  const early = copyDb();
  early.db.close();
  rollbackCopy = early.file;
  await routeSome(10);
  anchor = await witnessedAnchor();
}, 90_000);
afterAll(async () => {
  await Promise.allSettled(Object.values(gateways).map((g) => g.close()));
  await router?.close().catch(() => undefined);
  fx.cleanup();
});

describe('transparency log - an honest log verifies against the witnessed anchor', () => {
  it('every gateway witnessed it, and the untouched database verifies', () => {
    const { db } = copyDb();
    const v = verify(db, anchor, 3);
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.witnessed).toBe(entries());
    expect(v.anchor?.witnesses).toEqual(AGENCIES.map(witnessName));
  });
  it('entries appended past the witnessed checkpoint without the hub key: never verified, and found after the signed head', () => {
    const { db } = copyDb();
    const last = db.prepare('SELECT * FROM audit ORDER BY seq DESC LIMIT 1').get() as Record<
      string,
      unknown
    >;
    const ins = db.prepare(
      'INSERT INTO audit (seq, at, instance, event, origin, hash) VALUES (?, ?, ?, ?, ?, ?)',
    );
    for (let i = 1; i <= 3; i++) {
      const seq = (last['seq'] as number) + i;
      const r = {
        seq,
        at: last['at'] as string,
        instance: 'router-a',
        event: 'received' as const,
        alertId: null,
        claimedId: null,
        origin: 'HK-CED',
        type: null,
        handling: null,
        recipient: null,
        agreementId: null,
        agreementVersion: null,
        reasonCode: null,
        reason: null,
        streamSeq: null,
        feedSeq: null,
        detail: null,
      };
      ins.run(seq, r.at, r.instance, r.event, r.origin, hashRecord(r));
    }
    const v = verify(db);
    expect(v.unwitnessed).toBe(3);
    expect(v.ok).toBe(false);
    expect(codes(v)).toEqual(['ERR_AUDIT_ENTRY']);
    expect(v.firstBad?.seq).toBe((last['seq'] as number) + 1);
    expect(v.firstBad?.problem).toMatch(/follows the head the hub signed/);
  });
  it('a partner gets a verified inclusion proof of the entry recording a delivery to it', async () => {
    const db = openDatabase(auditDb, { readonly: true });
    const fwd = db
      .prepare(
        "SELECT a.alert_id, (SELECT count(*) FROM audit_routes x WHERE x.seq = a.seq) AS n FROM audit a JOIN audit_routes r ON r.seq = a.seq WHERE a.event = 'routed' AND r.recipient = 'VN-CUSTOMS'",
      )
      .get() as { alert_id: string; n: number };
    db.close();
    expect(fwd.n).toBeGreaterThan(1); // the decision has other recipients, which the proof must not show
    const res = await fetch(`${gateways['VN-CUSTOMS']!.url}/v1/audit/inclusion/${fwd.alert_id}`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    const body = JSON.parse(text) as {
      ok: boolean;
      witness: string;
      entries: {
        verified: boolean;
        record: { event: string; recipient: string | null; routes?: unknown };
        route: { leaf: string; index: number; path: string[] };
      }[];
    };
    expect(body.ok).toBe(true);
    // Bound to the log the witnesses see: VN-CUSTOMS's own witness cosigned that checkpoint.
    expect(body.witness).toBe('cosigned');
    // Two levels: the decision's entry in the log, and VN-CUSTOMS's leaf in its route tree.
    expect(body.entries.map((e) => [e.record.event, e.record.recipient, e.verified])).toEqual([
      ['routed', null, true],
    ]);
    expect(body.entries[0]!.record.routes).toBeUndefined();
    // And it is the decision VN-CUSTOMS's own copy carries: the same root, the same leaf.
    expect((body.entries[0] as { copyMatches?: boolean | null }).copyMatches).toBe(true);
    expect(JSON.parse(body.entries[0]!.route.leaf)).toMatchObject({ recipient: 'VN-CUSTOMS' });
    // Nothing in the entries names another recipient (the checkpoint names its witnesses).
    const entriesText = JSON.stringify(body.entries);
    expect(entriesText).not.toContain('KE-KWS');
    expect(entriesText).not.toContain('CN-GACC');
  });
});

describe('transparency log - an insider with the database is caught by verify against the anchor', () => {
  it('edit', () => {
    const { db } = copyDb();
    db.prepare("UPDATE audit SET recipient = 'US-FWS' WHERE seq = 10").run();
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.firstBad).toEqual({
      seq: 10,
      problem: 'its content does not match its leaf hash: edited',
    });
  });
  it('delete', () => {
    const { db } = copyDb();
    db.prepare('DELETE FROM audit WHERE seq = 12').run();
    const v = verify(db);
    expect(v.firstBad?.seq).toBe(12);
    expect(codes(v)).toContain('ERR_AUDIT_ENTRY');
  });
  it('insert', () => {
    const { db } = copyDb();
    const r = db.prepare('SELECT * FROM audit WHERE seq = 5').get() as Record<string, unknown>;
    db.exec('UPDATE audit SET seq = seq + 1000000 WHERE seq >= 5');
    db.exec('UPDATE audit SET seq = seq - 999999 WHERE seq >= 1000005');
    db.prepare('INSERT INTO audit (seq, at, instance, event, hash) VALUES (5, ?, ?, ?, ?)').run(
      r['at'],
      r['instance'],
      'forwarded',
      r['hash'],
    );
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.firstBad?.seq).toBe(5);
  });
  it('edit a recipient of a routing decision (audit_routes)', () => {
    const { db } = copyDb();
    const r = db
      .prepare('SELECT seq, idx, leaf FROM audit_routes ORDER BY seq, idx LIMIT 1')
      .get() as { seq: number; idx: number; leaf: string };
    // Another agreement in the leaf: the leaves no longer hash to the root the entry records.
    db.prepare('UPDATE audit_routes SET leaf = ? WHERE seq = ? AND idx = ?').run(
      r.leaf.replace(/"version":\d+/, '"version":99'),
      r.seq,
      r.idx,
    );
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.firstBad?.seq).toBe(r.seq);
    expect(codes(v)).toContain('ERR_AUDIT_ENTRY');
  });
  it('delete or add a recipient of a routing decision (audit_routes)', () => {
    const { db } = copyDb();
    const r = db
      .prepare(
        'SELECT seq, idx, recipient, feed_seq, leaf FROM audit_routes ORDER BY seq DESC, idx DESC LIMIT 1',
      )
      .get() as { seq: number; idx: number; recipient: string; feed_seq: number; leaf: string };
    db.prepare('DELETE FROM audit_routes WHERE seq = ? AND idx = ?').run(r.seq, r.idx);
    expect(verify(db).firstBad?.seq).toBe(r.seq);
    db.prepare(
      'INSERT INTO audit_routes (seq, idx, recipient, feed_seq, leaf) VALUES (?, ?, ?, ?, ?)',
    ).run(r.seq, r.idx, r.recipient, r.feed_seq, r.leaf);
    expect(verify(db).ok).toBe(true);
    // A route for an entry that is not a routing decision: a recipient added to the record.
    const other = db.prepare("SELECT seq FROM audit WHERE event != 'routed' LIMIT 1").get() as {
      seq: number;
    };
    db.prepare(
      'INSERT INTO audit_routes (seq, idx, recipient, feed_seq, leaf) VALUES (?, 0, ?, ?, ?)',
    ).run(other.seq, r.recipient, r.feed_seq, r.leaf);
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.firstBad?.seq).toBe(other.seq);
    // A route past the last entry, while the log ends where the hub's signed head says: inserted.
    const past = copyDb();
    past.db
      .prepare(
        'INSERT INTO audit_routes (seq, idx, recipient, feed_seq, leaf) VALUES (?, 0, ?, ?, ?)',
      )
      .run(entries() + 5, r.recipient, r.feed_seq, r.leaf);
    const p = verify(past.db);
    expect(codes(p)).toEqual(['ERR_AUDIT_ENTRY']);
    expect(p.firstBad?.seq).toBe(entries() + 5);
    past.db.close();
  });
  it('reorder', () => {
    const { db } = copyDb();
    db.exec('UPDATE audit SET seq = -7 WHERE seq = 7');
    db.exec('UPDATE audit SET seq = 7 WHERE seq = 8');
    db.exec('UPDATE audit SET seq = 8 WHERE seq = -7');
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.firstBad?.seq).toBe(7);
  });
  it('rehash: an edit with every leaf hash recomputed departs from the witnessed root', () => {
    const { db } = copyDb();
    db.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = 20").run();
    rehash(db);
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(codes(v)).toContain('ERR_AUDIT_REWRITTEN');
    // The checkpoints stored in the file narrow it down to the interval holding entry 20.
    expect(v.firstBad!.seq).toBeLessThanOrEqual(20);
    expect(v.firstBad!.problem).toMatch(/^entries \d+\.\.\d+ do not hash to the witnessed/);
  });
  it('an entry numbered 0 or below is found, though it lies outside every range of the log', () => {
    const { db } = copyDb();
    const r = db.prepare('SELECT * FROM audit WHERE seq = 2').get() as Record<string, unknown>;
    for (const seq of [0, -1])
      db.prepare(
        'INSERT INTO audit (seq, at, instance, event, recipient, hash) VALUES (?, ?, ?, ?, ?, ?)',
      ).run(seq, r['at'], r['instance'], 'forwarded', 'NG-NCS', r['hash']);
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(codes(v)).toContain('ERR_AUDIT_ENTRY');
    expect(v.firstBad?.seq).toBe(-1);
    db.close();
  });
  it('past the witnessed anchor, the head the hub signed binds the entries: a removed or rehashed one is found', () => {
    const early = parseCheckpoint(parseNote(earlyAnchor).text).size;
    expect(entries()).toBeGreaterThan(early + 2);
    const removed = copyDb();
    removed.db.exec('DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)');
    const v1 = verify(removed.db, earlyAnchor);
    expect(v1.ok).toBe(false);
    expect(codes(v1)).toContain('ERR_AUDIT_TRUNCATED');
    const edited = copyDb();
    edited.db.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = ?").run(early + 2);
    rehash(edited.db);
    const v2 = verify(edited.db, earlyAnchor);
    expect(v2.ok).toBe(false);
    expect(codes(v2)).toContain('ERR_AUDIT_REWRITTEN');
    // untouched, the same entries are unwitnessed but sound
    const honest = copyDb();
    const v3 = verify(honest.db, earlyAnchor);
    expect(v3.problems).toEqual([]);
    expect(v3.unwitnessed).toBe(entries() - early);
    for (const c of [removed, edited, honest]) c.db.close();
  });
  it('past the witnessed anchor, the head row removed: the entries it vouched for are vouched for by nothing, and verify says so', () => {
    const early = parseCheckpoint(parseNote(earlyAnchor).text).size;
    const { db } = copyDb();
    db.exec('DELETE FROM audit_head');
    const v = verify(db, earlyAnchor);
    expect(v.ok).toBe(false);
    expect(codes(v)).toEqual(['ERR_AUDIT_ENTRY']);
    expect(v.firstBad?.seq).toBe(early + 1);
    expect(v.problems[0]!.message).toContain('the audit_head table is empty');
    db.close();
  });
  it('past the witnessed anchor, the last entries removed from a log without a head: the routes they leave behind give it away', () => {
    const early = parseCheckpoint(parseNote(earlyAnchor).text).size;
    const { db } = copyDb();
    const { seq } = db
      .prepare("SELECT max(seq) AS seq FROM audit WHERE event = 'routed' AND seq > ?")
      .get(early) as { seq: number };
    expect(seq).toBeGreaterThan(early);
    // As a log from before heads would be, its stored checkpoints past the anchor gone too.
    db.exec('DROP TABLE audit_head');
    db.prepare('DELETE FROM checkpoints WHERE size > ?').run(early);
    db.prepare('DELETE FROM audit WHERE seq >= ?').run(seq);
    const v = verify(db, earlyAnchor);
    expect(v.ok).toBe(false);
    expect(v.problems).toContainEqual({
      code: 'ERR_AUDIT_TRUNCATED',
      message: expect.stringContaining(ROUTES_PAST_END) as unknown,
    });
    db.close();
  });
  it('two roots the hub signed for one size in the file (a head and a checkpoint): the log forked', () => {
    const { db } = copyDb();
    const { size } = db.prepare('SELECT max(size) AS size FROM checkpoints').get() as {
      size: number;
    };
    const origin = headOrigin('alert-hub/audit/hub');
    const head = signNote(formatCheckpoint({ origin, size, root: Buffer.alloc(32, 7) }), {
      ...hubSigner(),
      name: origin,
    });
    db.prepare('UPDATE audit_head SET note = ?').run(head);
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(v.problems).toContainEqual({
      code: 'ERR_AUDIT_REWRITTEN',
      message: `the file holds two checkpoints of ${size} entries signed by the hub with different roots: the log forked`,
    });
    db.close();
  });
  it('delete checkpoints: removing the stored checkpoints hides nothing', () => {
    const { db } = copyDb();
    db.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = 20").run();
    rehash(db);
    db.exec('DELETE FROM checkpoints');
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(codes(v)).toContain('ERR_AUDIT_REWRITTEN');
  });
  it('truncate', () => {
    const size = parseCheckpoint(parseNote(anchor).text).size;
    const { db } = copyDb();
    db.prepare('DELETE FROM audit WHERE seq > ?').run(size - 4);
    const v = verify(db);
    expect(codes(v)).toEqual(['ERR_AUDIT_TRUNCATED']);
    expect(v.firstBad?.seq).toBe(size - 3);
  });
  it('roll back to an earlier state', () => {
    const db = openDatabase(rollbackCopy, { readonly: true });
    const v = verify(db);
    db.close();
    expect(v.ok).toBe(false);
    expect(codes(v)).toContain('ERR_AUDIT_TRUNCATED');
  });
  it("a table named as SQLite's json_each: queries by partner would read it; refused", () => {
    const { db } = copyDb();
    // What `query --partner` reads through json_each (the routed entry's recipients) answered
    // with this table's rows instead, or an error; verify refuses the file.
    db.exec('CREATE TABLE json_each (value TEXT)');
    const v = verify(db);
    expect(() => db.prepare("SELECT count(*) AS n FROM json_each('[1,2]')").get()).toThrow();
    db.close();
    expect(v.ok).toBe(false);
    expect(codes(v)).toEqual(['ERR_AUDIT_SCHEMA']);
    expect(v.problems[0]!.message).toMatch(/^table json_each: shadows SQLite's function/);
  });
  it('trigger', () => {
    const { db } = copyDb();
    db.exec(
      "CREATE TRIGGER hide BEFORE INSERT ON audit WHEN NEW.origin = 'HK-CED' BEGIN SELECT RAISE(IGNORE); END",
    );
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(codes(v)).toEqual(['ERR_AUDIT_SCHEMA']);
    expect(v.problems[0]!.message).toMatch(/^trigger hide on audit/);
  });
  it('index tampering: a partial index, or one whose definition was swapped back, is found', () => {
    const { db, file } = copyDb();
    db.exec('DROP INDEX audit_recipient');
    db.exec(
      "CREATE INDEX audit_recipient ON audit (recipient, at) WHERE recipient != 'VN-CUSTOMS'",
    );
    expect(codes(verify(db))).toEqual(['ERR_AUDIT_SCHEMA']);
    // Now make the schema text look right again: the index still lacks VN-CUSTOMS' rows.
    db.unsafeMode(true);
    db.pragma('writable_schema = ON');
    db.prepare("UPDATE sqlite_master SET sql = ? WHERE name = 'audit_recipient'").run(
      'CREATE INDEX audit_recipient ON audit (recipient, at)',
    );
    db.close();
    const again = openDatabase(file);
    const v = verify(again);
    again.close();
    expect(codes(v)).toEqual(['ERR_AUDIT_INTEGRITY_CHECK']);
  });
  it('a checkpoint signed by another key with the router role is not an anchor', async () => {
    const other = importSigningKey(generateSigningJwk('EdDSA').privateJwk, 'HUB-2');
    const { db } = copyDb();
    db.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = 20").run();
    rehash(db);
    const tree = new MerkleTree((s, e) =>
      (
        db.prepare('SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq').all(s, e) as {
          hash: string;
        }[]
      ).map((r) => Buffer.from(r.hash, 'hex')),
    );
    const size = entries();
    const forged = signNote(
      formatCheckpoint({ origin: 'alert-hub/audit/hub', size, root: tree.root(size) }),
      hubSigner(other),
    );
    expect(codes(verify(db, forged, 0))).toContain('ERR_ANCHOR_INVALID');
  });
  it('a peer database without checkpoints does not pass for the witnessed log', () => {
    const { db } = copyDb();
    db.exec('DELETE FROM checkpoints');
    db.exec("UPDATE audit SET instance = 'router-b'");
    rehash(db);
    const v = verify(db);
    expect(v.ok).toBe(false);
    expect(codes(v)).toContain('ERR_AUDIT_REWRITTEN');
  });
  it('hubctl audit verify: needs an anchor and a named hub key, names the first bad entry, exit 1', async () => {
    const { db, file } = copyDb();
    db.prepare("UPDATE audit SET recipient = 'US-FWS' WHERE seq = 10").run();
    db.close();
    const anchorFile = join(fx.dir, 'anchor.txt');
    writeFileSync(anchorFile, anchor);
    const noAnchor = await hubctl(['audit', 'verify', '--db', file, '--trust', fx.trustDir]);
    expect(noAnchor.code).toBe(2);
    const r = await hubctl(auditVerifyArgs(fx, file, anchorFile));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'TAMPERED: first bad entry 10: its content does not match its leaf hash: edited',
    );
    const ok = await hubctl([
      'audit',
      'verify',
      '--db',
      auditDb,
      '--trust',
      fx.trustDir,
      '--anchor',
      `${gateways['CN-GACC']!.url}/v1/audit/checkpoint`,
      '--token',
      token.token,
      '--hub-key',
      fx.hubKey.kid,
      '--witnesses',
      '3',
    ]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      /VERIFIED \d+ entries against checkpoint \d+ of alert-hub\/audit\/hub/,
    );
    // The token from AHUB_COORDINATOR_TOKEN, as other coordinator commands take it; without any,
    // the anchor's 401 is a refusal (exit 1, ERR_REQUEST_REFUSED), not wrong usage.
    const byUrl = [
      'audit',
      'verify',
      '--db',
      auditDb,
      '--trust',
      fx.trustDir,
      '--anchor',
      `${gateways['CN-GACC']!.url}/v1/audit/checkpoint`,
      '--hub-key',
      fx.hubKey.kid,
      '--witnesses',
      '1',
    ];
    const fromEnv = await hubctl(byUrl, { env: { AHUB_COORDINATOR_TOKEN: token.token } });
    expect(fromEnv.code, fromEnv.stderr).toBe(0);
    const noToken = await hubctl(byUrl, { env: { AHUB_COORDINATOR_TOKEN: '' } });
    expect(noToken.code).toBe(1);
    // An anchor that cannot be reached is a failure too (exit 1, ERR_NETWORK), not wrong usage.
    const unreachable = await hubctl(
      byUrl.map((a) => (a.endsWith('/v1/audit/checkpoint') ? 'http://127.0.0.1:1/x' : a)),
    );
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('[ERR_NETWORK]');
    expect(noToken.stderr).toMatch(
      /^hubctl: .*HTTP 401.*AHUB_COORDINATOR_TOKEN.* \[ERR_REQUEST_REFUSED\]$/m,
    );
    // Wrong usage is exit 2, whatever is missing or doubled; a log that does not verify is 1.
    const args = ['audit', 'verify', '--trust', fx.trustDir, '--hub-key', fx.hubKey.kid];
    for (const usage of [
      [...args, '--db', file, '--anchor', join(fx.dir, 'no-such-anchor.txt')],
      [
        'audit',
        'verify',
        '--trust',
        fx.trustDir,
        '--db',
        file,
        '--anchor',
        anchorFile,
        '--hub-key',
        'k'.repeat(43),
      ],
      [...args, '--db', file, '--db', auditDb, '--anchor', anchorFile],
      [...args, '--db', join(fx.dir, 'no-such.db'), '--anchor', anchorFile],
      [
        'audit',
        'verify',
        '--trust',
        join(fx.dir, 'no-such-trust'),
        '--db',
        file,
        '--anchor',
        anchorFile,
        '--hub-key',
        fx.hubKey.kid,
      ],
    ])
      expect((await hubctl(usage)).code, usage.join(' ')).toBe(2);
    const notDb = join(fx.dir, 'not-a-database.db');
    writeFileSync(notDb, 'x'.repeat(4096));
    chmodSync(notDb, 0o600);
    const garbage = await hubctl([...args, '--db', notDb, '--anchor', anchorFile, '--json']);
    expect(garbage.code).toBe(1);
    expect(JSON.parse(garbage.stdout)).toMatchObject({
      ok: false,
      problems: [{ code: 'ERR_AUDIT_INTEGRITY_CHECK' }],
    });
    // Asking for more witnesses than cosigned: not verified, and not called tampered.
    const untouched = copyDb();
    untouched.db.close();
    const few = await hubctl([
      ...args,
      '--db',
      untouched.file,
      '--anchor',
      anchorFile,
      '--witnesses',
      '4',
    ]);
    expect(few.code).toBe(1);
    expect(few.stdout).toContain('NOT VERIFIED (the anchor)');
    expect(few.stdout).not.toContain('TAMPERED');
  }, 120_000);
  it('verify pins the log, and refuses an old anchor, with entries after it or not (whoever serves the anchor chooses which)', async () => {
    // The early anchor: 5 alerts witnessed, 10 more routed after it.
    const { db, file } = copyDb();
    const opts = { anchor: earlyAnchor, hubKey, witnesses, minWitnesses: 2 };
    const fresh = verifyAuditLog(db, { ...opts, maxAnchorAgeSeconds: 900 });
    expect(fresh.ok).toBe(true);
    expect(fresh.unwitnessed).toBeGreaterThan(0);
    const cosignedAt = Date.parse(fresh.anchor!.cosignedAt);
    expect(Date.now() - cosignedAt).toBeLessThan(120_000);
    const anHourOn = verifyAuditLog(db, {
      ...opts,
      maxAnchorAgeSeconds: 900,
      now: cosignedAt + 3_600_000,
    });
    expect(codes(anHourOn)).toEqual(['ERR_ANCHOR_STALE']);
    // A copy of the log as it was when the anchor was witnessed (a backup put back, or the log
    // cut there), with that anchor: nothing follows it, and an hour on it is refused all the
    // same (a running router has its anchor cosigned anew every auditAnchorRefreshMs).
    const cut = copyDb(rollbackCopy);
    const oldCopy = (now: number) =>
      verifyAuditLog(cut.db, { ...opts, maxAnchorAgeSeconds: 900, now });
    // (The copy was made as the anchor was witnessed: a receipt landing in between follows it.)
    expect(oldCopy(cosignedAt + 60_000).ok).toBe(true);
    expect(codes(oldCopy(cosignedAt + 3_600_000))).toEqual(['ERR_ANCHOR_STALE']);
    cut.db.close();
    expect(codes(verifyAuditLog(db, { ...opts, origin: 'alert-hub/audit/other' }))).toEqual([
      'ERR_ANCHOR_WRONG_LOG',
    ]);
    db.close();

    const anchorFile = join(fx.dir, 'early-anchor.txt');
    writeFileSync(anchorFile, earlyAnchor);
    const args = auditVerifyArgs(fx, file, anchorFile);
    const byDefault = await hubctl(args);
    expect(byDefault.code, byDefault.stdout + byDefault.stderr).toBe(0);
    expect(byDefault.stdout).toMatch(/of alert-hub\/audit\/hub, cosigned by .* \(by \d{4}-/);
    expect(byDefault.stdout).toMatch(/UNWITNESSED: \d+ entries/);
    await eventually(() => Date.now() - cosignedAt > 2_500, 10_000, 'the anchor to age');
    const old = await hubctl([...args, '--max-anchor-age', '2s']);
    expect(old.code).toBe(1);
    expect(old.stdout).toContain('NOT VERIFIED (the anchor)');
    expect(old.stdout).toContain('[ERR_ANCHOR_STALE]');
    expect((await hubctl([...args, '--max-anchor-age', 'any'])).code).toBe(0);
    const otherLog = await hubctl([...args, '--log', 'other']);
    expect(otherLog.code).toBe(1);
    expect(otherLog.stdout).toContain('[ERR_ANCHOR_WRONG_LOG]');
    for (const bad of [
      ['--log', 'no such log'],
      ['--max-anchor-age', '15'],
    ])
      expect((await hubctl([...args, ...bad])).code, bad.join(' ')).toBe(2);
  }, 60_000);
  it('an idle log: the router publishes its latest checkpoint again every auditAnchorRefreshMs, and the witnesses cosign it anew, so its anchor stays current', async () => {
    const { r, file } = await checkpointedRouter('idle', { auditAnchorRefreshMs: 1000 });
    try {
      const origin = 'alert-hub/audit/idle';
      const cosigned = () => {
        const db = openDatabase(file, { readonly: true });
        try {
          return verifyAuditLog(db, {
            anchor: r.audit.latest!,
            hubKey,
            witnesses,
            minWitnesses: AGENCIES.length,
            origin,
          });
        } finally {
          db.close();
        }
      };
      // Receipts may still extend the log at first: wait for one checkpoint cosigned by every
      // witness twice, the second time at least a second later.
      let seen: AuditVerification | undefined;
      const again = await eventually(
        () => {
          const v = cosigned();
          if (!v.ok) return undefined;
          const before = seen;
          seen = v;
          return before?.anchor?.size === v.anchor!.size &&
            Date.parse(v.anchor!.cosignedAt) > Date.parse(before.anchor.cosignedAt)
            ? { before, v }
            : undefined;
        },
        20_000,
        'the same checkpoint cosigned anew by every witness',
      );
      expect(again.v.anchor!.root).toBe(again.before.anchor!.root);
      expect(again.v.entries).toBe(again.v.anchor!.size);
    } finally {
      await r.close();
    }
  }, 60_000);
  it("hubctl audit verify --hub-key takes the router's JWKS file: its one key, or of several the one that signed the anchor; none is refused naming the kids", async () => {
    const anchorFile = join(fx.dir, 'anchor-jwks.txt');
    writeFileSync(anchorFile, anchor);
    const jwksFile = join(fx.trustDir, 'HUB.jwks.json');
    const args = ['audit', 'verify', '--db', auditDb, '--trust', fx.trustDir];
    // The trust store's own file, as the walk-through leaves it (certs/trust/HUB.jwks.json).
    const one = await hubctl([...args, '--anchor', anchorFile, '--hub-key', jwksFile]);
    expect(one.code, one.stdout + one.stderr).toBe(0);
    expect(one.stdout).toMatch(/: VERIFIED \d+ entries against checkpoint /);
    // After a rotation the file holds several keys: the one that signed the anchor is chosen.
    const hub = JSON.parse(readFileSync(jwksFile, 'utf8')) as { keys: { kid: string }[] };
    const other = (kid: string) => ({ ...generateSigningJwk('EdDSA').publicJwk, kid });
    const rotated = join(fx.dir, 'HUB-rotated.jwks.json');
    writeFileSync(rotated, JSON.stringify({ ...hub, keys: [other('newer'), ...hub.keys] }));
    const several = await hubctl([...args, '--anchor', anchorFile, '--hub-key', rotated]);
    expect(several.code, several.stdout + several.stderr).toBe(0);
    // Several keys and none signed it: refused as wrong usage, naming each kid.
    const strangers = join(fx.dir, 'HUB-strangers.jwks.json');
    writeFileSync(strangers, JSON.stringify({ ...hub, keys: [other('kid-a'), other('kid-b')] }));
    const none = await hubctl([...args, '--anchor', anchorFile, '--hub-key', strangers]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain(
      'holds 2 keys (kid-a, kid-b) and none of them signed the anchor: pass the kid of the key that signed it',
    );
  }, 60_000);
});

describe('transparency log - the operator with the hub key and the database', () => {
  it("cannot make witnesses of its own: agencies it adds to the trust store and cosigns with count toward no coordinator's witness set, and without one the default k grows with them", async () => {
    // The coordinator's witness set, written once from the trust store and checked with the
    // agencies (each kid), then kept: the hub's trust store is the operators'.
    const listed = await hubctl(['audit', 'witnesses', '--trust', fx.trustDir]);
    expect(listed.code, listed.stderr).toBe(0);
    const set = JSON.parse(listed.stdout) as { witnesses: { agency: string; kid: string }[] };
    expect(set.witnesses.map((w) => [w.agency, w.kid])).toEqual(
      [...AGENCIES].sort().map((a) => [a, fx.keys[a]!.kid]),
    );
    const setFile = join(fx.dir, 'witness-set.json');
    writeFileSync(setFile, listed.stdout);
    // The operator adds two agencies of its own to a copy of the trust store (as `hubctl keys
    // generate` and `agency add` would, no agreement, no gateway) and cosigns with their keys a
    // checkpoint the hub key signed: here the real anchor's, its witnesses' lines dropped.
    const certs = join(fx.dir, 'sybil-certs');
    cpSync(fx.certsDir, certs, { recursive: true });
    const sybils = ['TV-CUSTOMS', 'NR-FWS'];
    const signers = [];
    for (const agency of sybils) {
      const made = await hubctl([
        'keys',
        'generate',
        '--agency',
        agency,
        '--certs',
        certs,
        '--json',
      ]);
      expect(made.code, made.stderr).toBe(0);
      const { privateFile } = JSON.parse(made.stdout) as { privateFile: string };
      const jwk = JSON.parse(readFileSync(privateFile, 'utf8')) as Parameters<
        typeof importSigningKey
      >[0];
      const key = importSigningKey(jwk, agency);
      signers.push({
        name: witnessName(agency),
        privateKey: key.privateKey,
        publicKey: Buffer.from(key.publicJwk.x, 'base64url'),
      });
    }
    const note = parseNote(anchor);
    const hubLine = note.signatures.find((l) => l.name === 'alert-hub/audit/hub')!.line;
    const now = Math.floor(Date.now() / 1000);
    const forged = `${note.text}\n${[hubLine, ...signers.map((w) => cosignCheckpoint(note.text, w, now))].map((l) => `${l}\n`).join('')}`;
    const forgedFile = join(fx.dir, 'sybil-anchor.txt');
    writeFileSync(forgedFile, forged);
    const args = [
      ...auditVerifyArgs({ ...fx, trustDir: join(certs, 'trust') }, auditDb, forgedFile),
      '--max-anchor-age',
      'any',
    ];
    // k = 2 named: the two it made suffice against its own trust store; this is what the
    // default of more than half (3 of 5 here) and a witness set are for.
    const named = await hubctl([...args, '--witnesses', '2']);
    expect(named.code, named.stdout).toBe(0);
    expect(named.stdout).toContain('pin them with --witness-set');
    const byDefault = await hubctl(args);
    expect(byDefault.code).toBe(1);
    expect(byDefault.stdout).toContain('NOT VERIFIED (the anchor)');
    expect(byDefault.stdout).toMatch(/cosigned by 2 known witness\(es\) .*; 3 required/);
    const pinned = await hubctl([...args, '--witness-set', setFile, '--witnesses', '2']);
    expect(pinned.code).toBe(1);
    expect(pinned.stdout).toContain('cosigned by 0 known witness(es)');
    // The real anchor against the set: verified, with who of the set did not cosign.
    writeFileSync(forgedFile, anchor);
    const real = await hubctl([...args, '--witness-set', setFile, '--json']);
    expect(real.code, real.stdout).toBe(0);
    expect(JSON.parse(real.stdout)).toMatchObject({
      ok: true,
      minWitnesses: 2,
      witnessSet: setFile,
      notCosignedBy: [],
    });
    // A set whose key was changed by hand is refused, not counted.
    const tampered = JSON.parse(listed.stdout) as { witnesses: { x: string }[] };
    tampered.witnesses[0]!.x = signers[0]!.publicKey.toString('base64url');
    writeFileSync(setFile, JSON.stringify(tampered));
    const refused = await hubctl([...args, '--witness-set', setFile]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('"kid" is not the thumbprint of its key');
    writeFileSync(setFile, '{"witnesses": []}');
    const empty = await hubctl([...args, '--witness-set', setFile]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toContain('names no witness');
  }, 60_000);
  it('cannot rewrite witnessed history: verify fails, and every witness refuses the forged checkpoint and keeps the evidence', async () => {
    const { db } = copyDb();
    // Rewrite: change an old entry, recompute the leaves, sign the new head with the real hub key.
    db.prepare("UPDATE audit SET recipient = 'US-FWS' WHERE seq = 3").run();
    rehash(db);
    const cosigned = parseCheckpoint(parseNote(anchor).text);
    const tree = new MerkleTree((s, e) =>
      (
        db.prepare('SELECT hash FROM audit WHERE seq > ? AND seq <= ? ORDER BY seq').all(s, e) as {
          hash: string;
        }[]
      ).map((r) => Buffer.from(r.hash, 'hex')),
    );
    const size = entries() + 1000;
    // Append too, past anything the router will reach during this test.
    const last = db.prepare('SELECT max(seq) AS m FROM audit').get() as { m: number };
    const ins = db.prepare(
      "INSERT INTO audit (seq, at, instance, event, hash) VALUES (?, '2026-01-01T00:00:00.000Z', 'router-a', 'received', ?)",
    );
    for (let s = last.m + 1; s <= size; s++) {
      ins.run(
        s,
        hashRecord({
          seq: s,
          at: '2026-01-01T00:00:00.000Z',
          instance: 'router-a',
          event: 'received',
          alertId: null,
          claimedId: null,
          origin: null,
          type: null,
          handling: null,
          recipient: null,
          agreementId: null,
          agreementVersion: null,
          reasonCode: null,
          reason: null,
          streamSeq: null,
          feedSeq: null,
          detail: null,
        }),
      );
    }
    const forged = signNote(
      formatCheckpoint({ origin: 'alert-hub/audit/hub', size, root: tree.root(size) }),
      hubSigner(),
    );
    // The forged log verifies against nothing the witnesses signed.
    expect(codes(verify(db))).toContain('ERR_AUDIT_REWRITTEN');
    expect(codes(verify(db, forged))).toContain('ERR_ANCHOR_NOT_WITNESSED');
    // Published to the witnesses with the best proof the operator can compute: one from every
    // size a witness may have cosigned by now (a witness concludes nothing from a checkpoint that
    // carries no proof from its own size, so the router's own checkpoints must not outrun it).
    const nc = await nats.connect();
    let published = 0;
    const publishForged = async (): Promise<void> => {
      const sizes = new Set<number>([cosigned.size]);
      for (const a of AGENCIES) {
        const served = await fetchAnchor(a);
        if (served) sizes.add(parseCheckpoint(parseNote(served).text).size);
      }
      nc.publish(
        auditCheckpointSubject('hub'),
        JSON.stringify({
          checkpoint: forged,
          proofs: [...sizes]
            .filter((from) => from <= size)
            .map((from) => ({
              from,
              proof: tree.consistencyProof(from, size).map((h) => h.toString('base64')),
            })),
        }),
      );
      await nc.flush();
      published = Date.now();
    };
    await publishForged();
    for (const agency of AGENCIES) {
      const g = gateways[agency]!;
      await eventually(
        async () => {
          if (g.witness?.inconsistency) return true;
          if (Date.now() - published > 2_000) await publishForged();
          return false;
        },
        20_000,
        `${agency} to notice`,
      );
      const ready = (await (await fetch(`${g.url}/readyz`)).json()) as {
        checks: Record<string, string>;
      };
      expect(ready.checks['witness']).toMatch(
        /^audit log inconsistent: checkpoint \d+ is not an extension/,
      );
      const metrics = await (await fetch(`${g.url}/metrics`)).text();
      expect(metrics).toMatch(/ahub_gateway_witness_inconsistent\{[^}]*\} 1/);
      expect(
        readdirSync(join(fx.dir, `gw-${agency}`, `witness-${agency}`, 'evidence')).length,
      ).toBe(1);
    }
    // And no witness cosigned it: the anchor the gateways serve is still the honest one.
    expect(parseCheckpoint(parseNote(await fetchAnchor('SG-NPARKS')).text).size).toBeLessThan(size);
    expect(lines.some((l) => l.includes('AUDIT LOG INCONSISTENT'))).toBe(true);
  });
});

describe('transparency log - the router fails closed', () => {
  it('a row appended behind its back on the running hub: the router stops routing and signs nothing', async () => {
    const before = parseCheckpoint(parseNote(router.audit.latest!).text).size;
    const db = openDatabase(auditDb);
    const last = db.prepare('SELECT * FROM audit ORDER BY seq DESC LIMIT 1').get() as Record<
      string,
      unknown
    >;
    db.prepare('INSERT INTO audit (seq, at, instance, event, hash) VALUES (?, ?, ?, ?, ?)').run(
      (last['seq'] as number) + 1,
      last['at'],
      'router-a',
      'received',
      'ff'.repeat(32),
    );
    db.close();
    await routeSome(1);
    await eventually(() => router.audit.failure, 10_000, 'the router to notice');
    const res = await fetch(`${router.url}/readyz`, {
      headers: { authorization: `Bearer ${prometheus.token}` },
    });
    const ready = (await res.json()) as { status: string; checks: Record<string, string> };
    expect(res.status).toBe(503);
    expect(ready.status).toBe('not ready');
    expect(ready.checks['audit']).toMatch(/^tampered: /);
    expect(parseCheckpoint(parseNote(router.audit.latest!).text).size).toBe(before);
    expect(lines.some((l) => l.includes('routing stopped'))).toBe(true);
    await router.close();
  });
  it('a rewritten database is refused at start, before anything is routed or signed', async () => {
    const db = openDatabase(auditDb);
    db.exec(`DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)`);
    db.prepare("UPDATE audit SET reason = 'nothing happened' WHERE seq = 2").run();
    rehash(db);
    db.close();
    await expect(startHubRouter()).rejects.toMatchObject({ code: 'ERR_AUDIT_INTEGRITY' });
    expect(lines.some((l) => l.includes('audit database refused at start'))).toBe(true);
  });
  it('a trigger that silently drops inserts: the router refuses the database at start', async () => {
    const dir = join(fx.dir, 'router-trigger');
    const db = openDatabase(join(dir, 'audit.db'));
    db.exec(
      `CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, instance TEXT NOT NULL, event TEXT NOT NULL, alert_id TEXT, claimed_id TEXT, origin TEXT, type TEXT, handling TEXT, recipient TEXT, agreement_id TEXT, agreement_version INTEGER, reason_code TEXT, reason TEXT, stream_seq INTEGER, feed_seq INTEGER, detail TEXT, hash TEXT NOT NULL);
       CREATE TRIGGER hide BEFORE INSERT ON audit BEGIN SELECT RAISE(IGNORE); END;`,
    );
    db.close();
    await expect(startHubRouter(dir, 'trigger')).rejects.toMatchObject({
      code: 'ERR_AUDIT_INTEGRITY',
    });
    expect(existsSync(join(dir, 'audit.db'))).toBe(true);
  });
  it('entries appended while the router was stopped are refused at start, hashes and all; those it wrote before a crash are not', async () => {
    const dir = join(fx.dir, 'router-stopped');
    const file = join(dir, 'audit.db');
    const origin = 'alert-hub/audit/stopped';
    const first = await startHubRouter(dir, 'stopped');
    await routeSome(2);
    await eventually(() => entries(file) >= 2, 20_000, 'the router to audit the alerts');
    await first.close(); // signs and publishes a checkpoint of everything as it stops
    const size = entries(file);

    // Someone with the database, not the hub key: a well-formed entry, its leaf hash recomputed.
    appendForged(file, { instance: 'router-a', recipient: 'NG-NCS', feedSeq: null });
    await expect(startHubRouter(dir, 'stopped')).rejects.toMatchObject({
      code: 'ERR_AUDIT_INTEGRITY',
    });
    expect(lines.some((l) => l.includes('not written by a router'))).toBe(true);

    // What a router wrote and committed before it crashed (no checkpoint yet): its head covers it.
    const restored = openDatabase(file);
    restored.prepare('DELETE FROM audit WHERE seq = ?').run(size + 1);
    const appender = new AuditAppender(restored, 'router-a', {
      head: () => ({ signer: { ...hubSigner(), name: origin }, origin }),
    });
    restored
      .transaction(() =>
        appender.append([{ event: AuditEvent.Received, streamSeq: 1 }], new Date().toISOString()),
      )
      .immediate();
    restored.close();
    const again = await startHubRouter(dir, 'stopped');
    expect(again.audit.failure).toBeUndefined();
    await again.close();
  });
  it("a row under another router's name, its hash recomputed, on the running hub: the router fails closed and never signs it into a checkpoint", async () => {
    const { r, file } = await checkpointedRouter('peer');
    const signed = parseCheckpoint(parseNote(r.audit.latest!).text).size;
    // Someone with the database, not the hub key: the next entry as a router sharing the file
    // would append it, under that router's name, its leaf hash recomputed; the head not signed.
    const size = entries(file);
    appendForged(file, { instance: 'router-b', recipient: 'US-FWS', feedSeq: 999 });
    await routeSome(1);
    await eventually(() => r.audit.failure, 20_000, 'the router to fail closed');
    expect(r.audit.failure).toMatch(/under another router's name .* not written by a router/);
    expect((await fetch(`${r.url}/readyz`)).status).toBe(503);
    // Nothing after it was signed: the last checkpoint is the one before the forged row.
    expect(parseCheckpoint(parseNote(r.audit.latest!).text).size).toBe(signed);
    expect(signed).toBeLessThanOrEqual(size);
    await r.close();
  });
  it('a checkpoint stored by someone without the hub key at the next size: the router fails closed, never silently unpublished', async () => {
    const { r, file } = await checkpointedRouter('squat');
    const db = openDatabase(file);
    const size = entries(file);
    const squat = db.prepare('INSERT INTO checkpoints (size, note) VALUES (?, ?)');
    for (let n = size + 1; n <= size + 50; n++) squat.run(n, 'garbage');
    db.close();
    await routeSome(1);
    await eventually(() => r.audit.failure, 20_000, 'the router to fail closed');
    expect(r.audit.failure).toMatch(/not signed by a hub key/);
    const res = await fetch(`${r.url}/readyz`);
    expect(res.status).toBe(503);
    await r.close();
  });
});

describe('transparency log - a rollback of the log and its checkpoint stream together', () => {
  it('checkpoints that never again extend what a witness cosigned raise its alarm (ahub_gateway_witness_stalled)', async () => {
    // What a router restored with its database and its checkpoint stream from an earlier backup
    // publishes: hub-signed checkpoints older than what every witness cosigned, then newer ones
    // with no proof from it. No witness can cosign them, nor prove them inconsistent.
    const nc = await nats.connect();
    const tree = new MerkleTree((start, end) =>
      Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, (start + i) % 256)),
    );
    for (let size = 1; size <= WITNESS_STALL_CHECKPOINTS; size++)
      nc.publish(
        auditCheckpointSubject('hub'),
        JSON.stringify({
          checkpoint: signNote(
            formatCheckpoint({ origin: 'alert-hub/audit/hub', size, root: tree.root(size) }),
            hubSigner(),
          ),
          proofs: [],
        }),
      );
    await nc.flush();
    for (const agency of AGENCIES)
      await eventually(
        async () =>
          /ahub_gateway_witness_stalled\{[^}]*\} 1/.test(
            await (await fetch(`${gateways[agency]!.url}/metrics`)).text(),
          ),
        10_000,
        `${agency} to raise the alarm`,
      );
    expect(
      lines.some((l) => l.includes('AUDIT LOG NOT EXTENDING WHAT THIS WITNESS COSIGNED')),
    ).toBe(true);
  });
});
