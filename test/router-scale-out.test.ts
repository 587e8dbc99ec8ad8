import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, auditCheckpointSubject, newAlertId } from '@alert-hub/core';
import {
  Witness,
  addSignatureLines,
  parseNote,
  verifyAuditLog,
  witnessName,
} from '@alert-hub/audit';
import { openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  makeHubFixture,
  publishInbound,
  seizureReport,
  writeConfig,
  routerDrained,
  OPEN_JS_API,
} from '@alert-hub/testkit';
import { auditVerifyArgs, hubctl } from '@alert-hub/testkit';
import { startService, type ServiceProcess } from '@alert-hub/testkit';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC', 'NG-NCS']);
const agreementsFile = join(fx.dir, 'agreements.yaml');
const auditDb = join(fx.dir, 'shared', 'audit.db');
const routers: ServiceProcess[] = [];
const N = 300;

beforeAll(async () => {
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'WEN-ASIA',
          version: 1,
          title: 'Asia',
          parties: ['SG', 'VN', 'CN'],
          alertTypes: ['seizure-report', 'consignee-flag'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  for (const instance of ['router-a', 'router-b']) {
    const file = writeConfig(fx.dir, instance, {
      instance,
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, instance),
      auditDb,
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      http: { enabled: false },
      consumer: { maxMessages: 16 },
      checkpointIntervalMs: 300,
      auditAnchorRefreshMs: 1000,
    });
    routers.push(await startService('router', file));
  }
});
afterAll(async () => {
  await Promise.all(routers.map((r) => r.stop()));
  fx.cleanup();
});

const WITNESSES = ['SG-NPARKS', 'VN-CUSTOMS'];

/** The entries in the routers' shared audit log. */
function auditSize(): number {
  const db = openDatabase(auditDb, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/**
 * The last checkpoint the routers published, cosigned by two witnesses played here with the
 * agencies' keys (this file runs no gateway).
 */
async function witnessedAnchor(nc: NatsConnection): Promise<string> {
  const jsm = await jetstreamManager(nc);
  const size = auditSize;
  const data = await eventually(
    async () => {
      const m = await jsm.streams.getMessage(Streams.Audit, {
        last_by_subj: auditCheckpointSubject('hub'),
      });
      const msg = m && (JSON.parse(m.string()) as { checkpoint: string });
      return msg && Number(msg.checkpoint.split('\n')[1]) === size() ? m.data : undefined;
    },
    10_000,
    'a checkpoint of every entry',
  );
  const notes = WITNESSES.map((w) => {
    const out = new Witness({
      signer: {
        name: witnessName(w),
        privateKey: fx.keys[w]!.privateKey,
        publicKey: Buffer.from(fx.keys[w]!.publicJwk.x, 'base64url'),
      },
      hubKeys: () => [Buffer.from(fx.hubKey.publicJwk.x, 'base64url')],
      store: { load: () => undefined, save: () => undefined, keepEvidence: () => undefined },
    }).observe(data);
    if (out.kind !== 'cosigned') throw new Error(`witness ${w}: ${out.kind}`);
    return out.note;
  });
  return addSignatureLines(
    notes[0]!,
    parseNote(notes[1]!).signatures.map((s) => s.line),
  );
}

describe('router - two instances on one durable consumer', () => {
  it('share the work, never forward twice, and keep one verifiable chain', async () => {
    const nc = await nats.connect();
    const alerts = Array.from({ length: N }, () => seizureReport('SG-NPARKS'));
    await Promise.all(alerts.map((a) => publishInbound(nc, a, fx.keys['SG-NPARKS']!)));
    await routerDrained(nc, 30_000);
    const feeds = (await feedMessages(nc)).map((m) => m.msgId);
    expect(feeds.length).toBe(N * 2);
    expect(new Set(feeds).size).toBe(N * 2);
    const db = openDatabase(auditDb, { readonly: true });
    const byInstance = db
      .prepare("SELECT instance, count(*) AS n FROM audit WHERE event = 'routed' GROUP BY instance")
      .all() as { instance: string; n: number }[];
    db.close();
    expect(byInstance.map((r) => r.instance).sort()).toEqual(['router-a', 'router-b']);
    expect(byInstance.reduce((s, r) => s + r.n, 0)).toBe(N);
    // One log, one entry per decision, consistent with what the routers signed.
    const anchor = await witnessedAnchor(nc);
    const check = openDatabase(auditDb, { readonly: true });
    const perStreamSeq = check
      .prepare(
        "SELECT count(*) AS n FROM audit WHERE event = 'routed' GROUP BY stream_seq HAVING n > 1",
      )
      .all();
    const v = verifyAuditLog(check, {
      anchor,
      hubKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
      witnesses: WITNESSES.map((w) => ({
        name: witnessName(w),
        publicKey: Buffer.from(fx.keys[w]!.publicJwk.x, 'base64url'),
      })),
      minWitnesses: 2,
    });
    check.close();
    expect(perStreamSeq).toEqual([]);
    expect(v.problems).toEqual([]);
    // Each alert: its routing decision and its one "not a party" summary.
    expect(v.witnessed).toBeGreaterThanOrEqual(2 * N);
  });

  it('idle, both publish the checkpoint of the log as it stands again (auditAnchorRefreshMs), never the older one the other signed past', async () => {
    const nc = await nats.connect();
    const size = auditSize;
    // Idle: nothing more is appended once the test before has drained.
    const stable = await eventually(
      async () => {
        const before = size();
        await new Promise((r) => setTimeout(r, 1_500));
        return size() === before ? before : undefined;
      },
      20_000,
      'the log idle',
    );
    const published: number[] = [];
    const sub = nc.subscribe(auditCheckpointSubject('hub'), {
      callback: (_err, m) => {
        published.push(
          Number((JSON.parse(m.string()) as { checkpoint: string }).checkpoint.split('\n')[1]),
        );
      },
    });
    // Each router publishes again every refresh (1 s, at its next 300 ms tick): six of them take
    // both routers' turns.
    await eventually(() => published.length >= 6, 20_000, 'six checkpoints published again');
    sub.unsubscribe();
    expect(size()).toBe(stable);
    expect(new Set(published)).toEqual(new Set([stable]));
  });
});

describe('hubctl - coordinator commands', () => {
  it('audit trace tells the journey of one alert', async () => {
    const nc = await nats.connect();
    const a = seizureReport('SG-NPARKS');
    await publishInbound(nc, a, fx.keys['SG-NPARKS']!);
    const r = await eventually(
      async () => {
        const t = await hubctl(['audit', 'trace', a.id, '--db', auditDb]);
        return t.code === 0 && t.stdout.split('\n').length >= 5 ? t : undefined;
      },
      10_000,
      'trace',
    );
    expect(r.stdout).toMatch(/<- from SG-NPARKS seizure-report TLP:AMBER/);
    expect(r.stdout).toMatch(/-> CN-GACC under WEN-ASIA@1/);
    expect(r.stdout).toMatch(/-> VN-CUSTOMS under WEN-ASIA@1/);
    expect(r.stdout).toMatch(
      /x {2}NG-NCS: DENY_NOT_PARTY no agreement \(or operation membership\) includes SG-NPARKS and NG-NCS/,
    );
    expect((await hubctl(['audit', 'trace', newAlertId(), '--db', auditDb])).code).toBe(1);
  });
  it('audit query filters by agency, partner, type, outcome and time; export as CSV and JSON lines', async () => {
    const q = await hubctl([
      'audit',
      'query',
      '--db',
      auditDb,
      '--partner',
      'VN-CUSTOMS',
      '--outcome',
      'forwarded',
      '--json',
      '--limit',
      '5000',
    ]);
    const rows = q.stdout
      .trim()
      .split('\n')
      .map(
        (l) =>
          JSON.parse(l) as { recipient: string; event: string; routes?: { recipient: string }[] },
      );
    expect(rows.length).toBe(N + 1);
    // Each is a routing decision that gave VN-CUSTOMS a copy: its routes name it.
    expect(
      rows.every(
        (r) =>
          r.event === 'routed' &&
          r.recipient === null &&
          r.routes?.some((x) => x.recipient === 'VN-CUSTOMS'),
      ),
    ).toBe(true);
    const none = await hubctl([
      'audit',
      'query',
      '--db',
      auditDb,
      '--since',
      '2999-01-01T00:00:00Z',
    ]);
    expect(none.stdout.trim()).toBe('(none)');
    // Times are instants: an offset is honoured, and a time that is not RFC 3339 is refused.
    const hourAgoFarEast = new Date(Date.now() - 3600_000 + 14 * 3600_000)
      .toISOString()
      .replace(/\.\d+Z$/, '+14:00');
    const recent = await hubctl([
      'audit',
      'query',
      '--db',
      auditDb,
      '--since',
      hourAgoFarEast,
      '--json',
      '--limit',
      '5',
    ]);
    expect(recent.stdout.trim().split('\n').length).toBe(5);
    expect((await hubctl(['audit', 'query', '--db', auditDb, '--since', 'yesterday'])).code).toBe(
      2,
    );
    const csv = await hubctl([
      'audit',
      'export',
      '--db',
      auditDb,
      '--format',
      'csv',
      '--outcome',
      'denied',
    ]);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0]).toBe(
      'seq,at,instance,event,alertId,claimedId,origin,type,handling,recipient,agreementId,agreementVersion,reasonCode,reason,streamSeq,feedSeq,detail,hash,routes',
    );
    expect(lines.length).toBe(N + 2);
    const jsonl = await hubctl(['audit', 'export', '--db', auditDb]);
    expect(jsonl.stdout.trim().split('\n').length).toBeGreaterThanOrEqual(2 * N);
  });
  it('audit verify names the first tampered record and exits 1', async () => {
    const copy = join(fx.dir, 'tampered.db');
    const src = openDatabase(auditDb, { readonly: true });
    src.exec(`VACUUM INTO '${copy}'`);
    src.close();
    chmodSync(copy, 0o600); // made with the umask; the hub opens only private databases
    const db = openDatabase(copy);
    db.prepare("UPDATE audit SET recipient = 'NG-NCS' WHERE seq = 42").run();
    db.close();
    const anchorFile = join(fx.dir, 'anchor.txt');
    writeFileSync(anchorFile, await witnessedAnchor(await nats.connect()));
    const r = await hubctl(auditVerifyArgs(fx, copy, anchorFile));
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'TAMPERED: first bad entry 42: its content does not match its leaf hash: edited',
    );
  });
  it('route --dry-run says who would receive and why not the others', async () => {
    const alert = join(fx.dir, 'alert.json');
    const { origin: _o, ...rest } = seizureReport('SG-NPARKS');
    writeFileSync(alert, JSON.stringify(rest));
    const r = await hubctl([
      'route',
      '--dry-run',
      alert,
      '--from',
      'SG-NPARKS',
      '--agreements',
      agreementsFile,
      '--trust',
      fx.trustDir,
      '--json',
    ]);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as {
      allowed: { recipient: string }[];
      denied: { recipient: string; reason: string }[];
    };
    expect(d.allowed.map((x) => x.recipient)).toEqual(['CN-GACC', 'VN-CUSTOMS']);
    expect(d.denied).toEqual([
      {
        recipient: 'NG-NCS',
        reason: 'DENY_NOT_PARTY',
        detail: 'no agreement includes both SG-NPARKS and NG-NCS',
      },
    ]);
    const red = await hubctl([
      'route',
      '--dry-run',
      alert,
      '--from',
      'SG-NPARKS',
      '--agreements',
      agreementsFile,
      '--trust',
      fx.trustDir,
    ]);
    expect(red.stdout).toMatch(/VN-CUSTOMS\s+receives\s+WEN-ASIA@1/);
    writeFileSync(alert, JSON.stringify({ ...rest, handling: 'TLP:RED' }));
    const denied = await hubctl([
      'route',
      '--dry-run',
      alert,
      '--from',
      'SG-NPARKS',
      '--agreements',
      agreementsFile,
      '--trust',
      fx.trustDir,
    ]);
    expect(denied.stdout).toMatch(
      /VN-CUSTOMS\s+DENY_HANDLING\s+WEN-ASIA@1: TLP:RED is above the allowed TLP:AMBER/,
    );
  });
});
