import { spawn } from 'node:child_process';
import { createHash, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { encode as msgpack } from '@msgpack/msgpack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  MAX_INBOUND_ENVELOPE_BYTES,
  Streams,
  encodeEnvelope,
  inboundMsgId,
  inboundSubject,
  signAlert,
  type Alert,
  type SigningKey,
  inboundStreamName,
} from '@alert-hub/core';
import { generateKey, revokeKey } from '@alert-hub/operator';
import { createToken, openDatabase, readSigningKey } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  makeHubFixture,
  provision,
  registry,
  seizureReport,
  writeConfig,
  routerDrained,
  OPEN_JS_API,
} from '@alert-hub/testkit';
import { ROOT, SERVICE_MAINS, startService, type ServiceProcess } from '@alert-hub/testkit';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS']);
const token = createToken();
const SCHEMA = registry.schemaIdFor('seizure-report', 1)!;
let router: ServiceProcess;
let gateway: ServiceProcess;
let expiredKey: SigningKey;
const auditDb = join(fx.dir, 'router', 'audit.db');

beforeAll(async () => {
  // A second SG key that expired long ago, and a KE key revoked for compromise.
  const old = generateKey({
    certsDir: fx.certsDir,
    principal: 'SG-NPARKS',
    now: new Date('2018-01-01T00:00:00Z'),
    validDays: 30,
  });
  expiredKey = readSigningKey(old.privateFile, 'SG-NPARKS');
  revokeKey({ certsDir: fx.certsDir, kid: fx.keys['KE-KWS']!.kid, reason: 'keyCompromise' });
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'ALL',
          version: 1,
          title: 't',
          parties: ['SG', 'VN', 'KE'],
          alertTypes: ['seizure-report', 'consignee-flag', 'suspicious-shipment', 'retraction'],
          maxHandling: 'TLP:RED',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  await provision(await nats.connect(), ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS'], { ackWaitMs: 5000 });
  router = await startService(
    'router',
    writeConfig(fx.dir, 'router', {
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router'),
      nats: { servers: [nats.url] },
      http: { port: 0 },
    }),
  );
  gateway = await startService(
    'gateway',
    writeConfig(fx.dir, 'gw', {
      agency: 'SG-NPARKS',
      signingKey: fx.keyFiles['SG-NPARKS'],
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, 'gw'),
      http: { port: 0 },
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
      feed: { enabled: false },
    }),
    { readyMsg: 'gateway listening' },
  );
});
afterAll(async () => {
  await gateway?.stop();
  await router?.stop();
  fx.cleanup();
});

const b64 = (v: unknown) =>
  Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** A hand-made envelope: any header, any payload bytes, signed with `key` (or a given signature). */
function craft(
  header: Record<string, unknown>,
  payload: Buffer | string,
  key: SigningKey | null,
  signature?: string,
): Uint8Array {
  const p = b64(header);
  const body = Buffer.from(payload).toString('base64url');
  const sig =
    signature ??
    (key ? sign(null, Buffer.from(`${p}.${body}`), key.privateKey).toString('base64url') : '');
  return encodeEnvelope({ payload: body, signatures: [{ protected: p, signature: sig }] });
}

function headerFor(a: Alert, key: SigningKey, extra: Record<string, unknown> = {}) {
  return {
    alg: 'EdDSA',
    kid: key.kid,
    typ: 'ahub-alert+jws',
    agency: a.origin,
    alert_id: a.id,
    alert_type: a.type,
    schema: SCHEMA,
    issued_at: a.issuedAt,
    ...extra,
  };
}

/**
 * The audit entries of the message at `streamSeq` of `origin`'s inbound stream (each agency's
 * stream numbers its own messages: the origin, claimed by the subject, tells them apart).
 */
function auditOf(streamSeq: number, origin = 'SG-NPARKS') {
  const db = openDatabase(auditDb, { readonly: true });
  try {
    return db
      .prepare(
        'SELECT event, reason_code, detail FROM audit WHERE stream_seq = ? AND origin = ? ORDER BY seq',
      )
      .all(streamSeq, origin) as {
      event: string;
      reason_code: string | null;
      detail: string | null;
    }[];
  } finally {
    db.close();
  }
}

/** Whether an entry records copies forwarded: a routing decision with recipients, or a forward. */
function forwards(r: { event: string; detail: string | null }): boolean {
  return (
    r.event === 'forwarded' ||
    (r.event === 'routed' && (JSON.parse(r.detail ?? '{}') as { size?: number }).size! > 0)
  );
}

/** Publishes raw bytes on an inbound subject; expects the router to refuse them with `code`. */
async function expectRefused(
  bytes: Uint8Array,
  code: string,
  origin = 'SG-NPARKS',
  options: { msgID?: string; alertId?: string } = {},
) {
  const nc = await nats.connect();
  const ack = await jetstream(nc).publish(
    inboundSubject(origin, 'seizure-report'),
    bytes,
    options.msgID ? { msgID: options.msgID } : {},
  );
  const records = await eventually(
    () => {
      const r = auditOf(ack.seq, origin);
      return r.some((x) => x.event === 'dead-lettered') ? r : undefined;
    },
    10_000,
    `refusal of inbound ${ack.seq}`,
  );
  expect(records.find((r) => r.event === 'rejected')?.reason_code).toBe(code);
  expect(records.some(forwards)).toBe(false);
  if (options.alertId)
    expect((await feedMessages(nc)).some((m) => m.msgId.startsWith(options.alertId!))).toBe(false);
  expect(router.proc.exitCode).toBeNull();
}

describe('at rest - the audit log is private', () => {
  it('audit.db (and its WAL) is 0600 in a 0700 directory', async () => {
    const { statSync } = await import('node:fs');
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect([mode(join(fx.dir, 'router')), mode(auditDb), mode(`${auditDb}-wal`)]).toEqual([
      0o700, 0o600, 0o600,
    ]);
  });

  it('the router refuses to start on a data directory or audit.db that group or others can read (ERR_DATA_PERMISSIONS, exit 1), and leaves them as they were', async () => {
    const { chmodSync, mkdirSync, statSync } = await import('node:fs');
    const mode = (p: string) => statSync(p).mode & 0o777;
    const run = async (dir: string) => {
      const file = writeConfig(fx.dir, `router-perm-${dir}`, {
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile: join(fx.dir, 'agreements.yaml'),
        dataDir: join(fx.dir, dir),
        nats: { servers: [nats.url] },
        http: { port: 0 },
      });
      const proc = spawn(process.execPath, [SERVICE_MAINS.router, '--config', file], {
        cwd: ROOT,
      });
      let err = '';
      proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      // A router that started after all is stopped, and fails the test by its exit.
      const started = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      const code = await new Promise((res) => proc.on('exit', res));
      clearTimeout(started);
      return { code, err };
    };
    const openDir = join(fx.dir, 'router-open-dir');
    mkdirSync(openDir, { mode: 0o755 });
    chmodSync(openDir, 0o755);
    expect(await run('router-open-dir')).toMatchObject({
      code: 1,
      err: expect.stringContaining('[ERR_DATA_PERMISSIONS]') as string,
    });
    expect(mode(openDir)).toBe(0o755);

    const openFileDir = join(fx.dir, 'router-open-file');
    mkdirSync(openFileDir, { mode: 0o700 });
    const looseDb = join(openFileDir, 'audit.db');
    writeFileSync(looseDb, '', { mode: 0o644 });
    chmodSync(looseDb, 0o644);
    expect(await run('router-open-file')).toMatchObject({
      code: 1,
      err: expect.stringContaining('[ERR_DATA_PERMISSIONS]') as string,
    });
    expect(mode(looseDb)).toBe(0o644);
  }, 45_000);
});

describe('hostile input - at the router (raw NATS messages)', () => {
  const sg = () => fx.keys['SG-NPARKS']!;

  it('alg none', async () => {
    const a = seizureReport('SG-NPARKS');
    await expectRefused(
      craft(headerFor(a, sg(), { alg: 'none' }), JSON.stringify(a), null),
      'ERR_JWS_ALG_NOT_ALLOWED',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('HS256 with the public key as the secret', async () => {
    const a = seizureReport('SG-NPARKS');
    const { createHmac } = await import('node:crypto');
    const h = b64(headerFor(a, sg(), { alg: 'HS256' }));
    const body = b64(a);
    const secret = JSON.stringify(sg().publicJwk);
    const mac = createHmac('sha256', secret).update(`${h}.${body}`).digest('base64url');
    await expectRefused(
      msgpack({ payload: body, signatures: [{ protected: h, signature: mac }] }),
      'ERR_JWS_ALG_NOT_ALLOWED',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('an unknown crit header', async () => {
    const a = seizureReport('SG-NPARKS');
    await expectRefused(
      craft(
        headerFor(a, sg(), { crit: ['ahub-magic'], 'ahub-magic': true }),
        JSON.stringify(a),
        sg(),
      ),
      'ERR_JWS_CRIT_UNSUPPORTED',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it("another agency's kid", async () => {
    const a = seizureReport('SG-NPARKS');
    await expectRefused(
      craft(headerFor(a, fx.keys['VN-CUSTOMS']!), JSON.stringify(a), fx.keys['VN-CUSTOMS']!),
      'ERR_KEY_AGENCY_MISMATCH',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('an expired key', async () => {
    const a = seizureReport('SG-NPARKS');
    await expectRefused(
      encodeEnvelope(await signAlert(a, expiredKey, SCHEMA)),
      'ERR_KEY_NOT_VALID_AT',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('a revoked key', async () => {
    const a = seizureReport('KE-KWS');
    await expectRefused(
      encodeEnvelope(await signAlert(a, fx.keys['KE-KWS']!, SCHEMA)),
      'ERR_KEY_REVOKED',
      'KE-KWS',
      { alertId: a.id },
    );
  });
  it('issued-at far in the future', async () => {
    const a = seizureReport('SG-NPARKS', {
      issuedAt: new Date(Date.now() + 3 * 24 * 3600_000).toISOString(),
    });
    await expectRefused(
      encodeEnvelope(await signAlert(a, sg(), SCHEMA)),
      'ERR_ISSUED_AT_FUTURE',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('issued-at older than the freshness bound (a back-dated alert from a retired, unrevoked key)', async () => {
    const a = seizureReport('SG-NPARKS', {
      issuedAt: new Date(Date.now() - 25 * 3600_000).toISOString(),
    });
    await expectRefused(
      encodeEnvelope(await signAlert(a, sg(), SCHEMA)),
      'ERR_ISSUED_AT_TOO_OLD',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('a replay of an old valid alert after the duplicate window', async () => {
    const a = seizureReport('SG-NPARKS');
    const bytes = encodeEnvelope(await signAlert(a, sg(), SCHEMA));
    const nc = await nats.connect();
    const first = await jetstream(nc).publish(
      inboundSubject('SG-NPARKS', 'seizure-report'),
      bytes,
      { msgID: inboundMsgId('SG-NPARKS', a.id, bytes) },
    );
    await eventually(() => auditOf(first.seq).some(forwards), 10_000, 'first routing');
    // The same origin and id in a new envelope: JetStream stores it (its message id differs, as
    // a replay's would once the duplicate window has passed); the router refuses it.
    const again = encodeEnvelope(
      await signAlert(
        { ...a, issuedAt: new Date(Date.parse(a.issuedAt) + 1000).toISOString() },
        sg(),
        SCHEMA,
      ),
    );
    await expectRefused(again, 'ERR_DUPLICATE_ALERT', 'SG-NPARKS', {
      msgID: inboundMsgId('SG-NPARKS', a.id, again),
    });
    expect((await feedMessages(nc)).filter((m) => m.msgId.startsWith(a.id))).toHaveLength(2);
  });
  it('an envelope over the size limit is refused unread', async () => {
    await expectRefused(
      msgpack({
        payload: 'A'.repeat(258 * 1024),
        signatures: [{ protected: 'e30', signature: 'AA' }],
      }),
      'ERR_ENVELOPE_TOO_LARGE',
    );
    // Under the envelope limit, but without room for the router's countersignature: its copies
    // would be too large for their recipients, so the router refuses it at the door.
    const tight = msgpack({
      payload: 'A'.repeat(MAX_INBOUND_ENVELOPE_BYTES),
      signatures: [{ protected: 'e30', signature: 'AA' }],
    });
    expect(tight.byteLength).toBeLessThan(DEFAULT_MAX_ENVELOPE_BYTES);
    await expectRefused(tight, 'ERR_ENVELOPE_TOO_LARGE');
  });
  it('payloads and headers over the NATS and stream limits never reach the stream', async () => {
    const nc = await nats.connect();
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const before = (await jsm.streams.info(inboundStreamName('SG-NPARKS'))).state.messages;
    await expect(
      js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), new Uint8Array(300 * 1024)),
    ).rejects.toThrow(/message size exceeds maximum allowed/);
    await expect(
      js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), new Uint8Array(2 * 1024 * 1024)),
    ).rejects.toThrow(/max_payload/);
    const h = natsHeaders();
    h.set('X-Junk', 'x'.repeat(100 * 1024));
    await expect(
      js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), new Uint8Array(10), { headers: h }),
    ).rejects.toThrow(/header size exceeds maximum/);
    expect((await jsm.streams.info(inboundStreamName('SG-NPARKS'))).state.messages).toBe(before);
  });
  it('poison pill: messages of exactly the stream size limit end (dead letter of digest and prefix, audited, terminated) and routing goes on with maxAckPending 3', async () => {
    const nc = await nats.connect();
    const js = jetstream(nc);
    const jsm = await jetstreamManager(nc);
    const agencies = ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS'];
    await provision(nc, agencies, { ackWaitMs: 5000, routerMaxAckPending: 3 });
    try {
      const max = (await jsm.streams.info(inboundStreamName('SG-NPARKS'))).config.max_msg_size;
      const pills: { seq: number; data: Uint8Array }[] = [];
      for (let i = 0; i < 4; i++) {
        const data = new Uint8Array(max).fill(0x41 + i);
        const ack = await js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), data);
        pills.push({ seq: ack.seq, data });
      }
      const a = seizureReport('SG-NPARKS');
      const okBytes = encodeEnvelope(await signAlert(a, sg(), SCHEMA));
      const ok = await js.publish(inboundSubject('SG-NPARKS', 'seizure-report'), okBytes, {
        msgID: inboundMsgId('SG-NPARKS', a.id, okBytes),
      });
      await eventually(
        () => auditOf(ok.seq).some(forwards),
        20_000,
        'the valid alert behind the poison pills routed',
      );
      const db = openDatabase(auditDb, { readonly: true });
      try {
        for (const p of pills) {
          await eventually(
            () => auditOf(p.seq).some((r) => r.event === 'dead-lettered'),
            20_000,
            `the end of poison pill ${p.seq}`,
          );
          expect(auditOf(p.seq).find((r) => r.event === 'rejected')?.reason_code).toBe(
            'ERR_ENVELOPE_TOO_LARGE',
          );
          const { feed_seq } = db
            .prepare("SELECT feed_seq FROM audit WHERE stream_seq = ? AND event = 'dead-lettered'")
            .get(p.seq) as { feed_seq: number };
          const dl = await jsm.streams.getMessage(Streams.DeadLetter, { seq: feed_seq });
          expect(dl?.data.byteLength).toBe(4096);
          expect(dl?.header.get('Ahub-Truncated')).toBe('4096');
          expect(dl?.header.get('Ahub-Original-Bytes')).toBe(String(max));
          expect(dl?.header.get('Ahub-Original-Seq')).toBe(String(p.seq));
          expect(dl?.header.get('Ahub-Original-Sha256')).toBe(
            createHash('sha256').update(p.data).digest('hex'),
          );
        }
      } finally {
        db.close();
      }
      await routerDrained(nc, 20_000);
      expect((await fetch(`${router.url}/readyz`)).status).toBe(200);
    } finally {
      await provision(nc, agencies, { ackWaitMs: 5000 });
    }
  });
  it('a refused message is audited with the alert id it claims, marked unverified', async () => {
    const a = seizureReport('SG-NPARKS');
    // Signed with VN's key in SG's name: refused, but traceable by the id it claims.
    await expectRefused(
      craft(headerFor(a, fx.keys['VN-CUSTOMS']!), JSON.stringify(a), fx.keys['VN-CUSTOMS']!),
      'ERR_KEY_AGENCY_MISMATCH',
      'SG-NPARKS',
      { alertId: a.id },
    );
    const db = openDatabase(auditDb, { readonly: true });
    try {
      const rows = db
        .prepare('SELECT event, alert_id FROM audit WHERE claimed_id = ? ORDER BY seq')
        .all(a.id) as { event: string; alert_id: string | null }[];
      expect(rows.map((r) => r.event)).toEqual(['received', 'rejected', 'dead-lettered']);
      // Claimed, never recorded as a verified alert id.
      expect(rows.every((r) => r.alert_id === null)).toBe(true);
    } finally {
      db.close();
    }
  });
  it('deeply nested JSON, validly signed', async () => {
    const a = seizureReport('SG-NPARKS');
    const deep = `{"id":"${a.id}","x":${'['.repeat(5000)}${']'.repeat(5000)}}`;
    await expectRefused(craft(headerFor(a, sg()), deep, sg()), 'ERR_PAYLOAD_MALFORMED');
  });
  it('huge JSON within the size limit, validly signed: the schema refuses it', async () => {
    const a = seizureReport('SG-NPARKS', {
      references: Array.from({ length: 1500 }, () => ({
        id: seizureReport('SG-NPARKS').id,
        relation: 'relates-to',
      })),
    });
    await expectRefused(
      encodeEnvelope(await signAlert(a, sg(), SCHEMA)),
      'ERR_SCHEMA_INVALID',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('invalid UTF-8, validly signed', async () => {
    const a = seizureReport('SG-NPARKS');
    const bytes = Buffer.concat([
      Buffer.from(JSON.stringify(a).slice(0, -1)),
      Buffer.from(',"summary":"'),
      Buffer.from([0xc3, 0x28]),
      Buffer.from('"}'),
    ]);
    await expectRefused(
      craft(headerFor(a, sg()), bytes, sg()),
      'ERR_PAYLOAD_MALFORMED',
      'SG-NPARKS',
      { alertId: a.id },
    );
  });
  it('__proto__ and constructor keys, in the payload and in the protected header', async () => {
    const a = seizureReport('SG-NPARKS');
    const poisoned = JSON.stringify(a).replace('{', '{"__proto__":{"isAdmin":true},');
    await expectRefused(
      craft(headerFor(a, sg()), poisoned, sg()),
      'ERR_PAYLOAD_MALFORMED',
      'SG-NPARKS',
      { alertId: a.id },
    );
    const ctor = JSON.stringify(a).replace('{', '{"constructor":{"prototype":{"isAdmin":true}},');
    await expectRefused(
      craft(headerFor(a, sg()), ctor, sg()),
      'ERR_PAYLOAD_MALFORMED',
      'SG-NPARKS',
      { alertId: a.id },
    );
    const h = b64(`{"alg":"EdDSA","kid":"${sg().kid}","__proto__":{"alg":"none"}}`);
    await expectRefused(
      msgpack({ payload: b64(a), signatures: [{ protected: h, signature: 'AA' }] }),
      'ERR_PAYLOAD_MALFORMED',
    );
  });
  it('parser differentials: a member named twice, a byte-order mark, non-canonical base64url, two signatures, a msgpack key twice', async () => {
    const a = seizureReport('SG-NPARKS', { handling: 'TLP:AMBER' });
    const twice = JSON.stringify(a).replace('{', '{"handling":"TLP:RED",');
    await expectRefused(
      craft(headerFor(a, sg()), twice, sg()),
      'ERR_PAYLOAD_MALFORMED',
      'SG-NPARKS',
      {
        alertId: a.id,
      },
    );
    const b = seizureReport('SG-NPARKS');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(b))]);
    await expectRefused(
      craft(headerFor(b, sg()), bom, sg()),
      'ERR_PAYLOAD_MALFORMED',
      'SG-NPARKS',
      {
        alertId: b.id,
      },
    );
    // The payload spelt in standard base64 with padding, signed as spelt.
    const c = seizureReport('SG-NPARKS');
    const h = b64(headerFor(c, sg()));
    const text = JSON.stringify(c);
    const std = Buffer.from(text.length % 3 === 0 ? `${text} ` : text).toString('base64');
    const sig = sign(null, Buffer.from(`${h}.${std}`), sg().privateKey).toString('base64url');
    expect(std).toMatch(/[=+/]/);
    await expectRefused(
      msgpack({ payload: std, signatures: [{ protected: h, signature: sig }] }),
      'ERR_ENVELOPE_MALFORMED',
      'SG-NPARKS',
      { alertId: c.id },
    );
    // Two signatures inbound: the second would be replaced unread.
    const d = seizureReport('SG-NPARKS');
    const jws = await signAlert(d, sg(), SCHEMA);
    await expectRefused(
      encodeEnvelope({ ...jws, signatures: [jws.signatures[0]!, jws.signatures[0]!] }),
      'ERR_ENVELOPE_MALFORMED',
      'SG-NPARKS',
      { alertId: d.id },
    );
    // A msgpack map naming "payload" twice: an unsigned one first, then the signed one.
    const e = seizureReport('SG-NPARKS');
    const ejws = await signAlert(e, sg(), SCHEMA);
    const dup = Buffer.concat([
      Uint8Array.of(0x83),
      msgpack('payload'),
      msgpack(b64({ ...e, handling: 'TLP:CLEAR' })),
      msgpack('payload'),
      msgpack(ejws.payload),
      msgpack('signatures'),
      msgpack(ejws.signatures),
    ]);
    await expectRefused(dup, 'ERR_ENVELOPE_MALFORMED', 'SG-NPARKS', { alertId: e.id });
  });
  it('fuzzing: random messages on inbound subjects are all dead-lettered, nothing forwarded, the router alive', async () => {
    const nc = await nats.connect();
    const js = jetstream(nc);
    const feedsBefore = (await feedMessages(nc)).length;
    const seqs: number[] = [];
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 4096 }),
          fc.anything({ maxDepth: 3 }).map((v) => {
            try {
              return msgpack(v);
            } catch {
              return new Uint8Array([0xc1]);
            }
          }),
        ),
        async (bytes) => {
          seqs.push((await js.publish(inboundSubject('VN-CUSTOMS', 'seizure-report'), bytes)).seq);
        },
      ),
      { numRuns: 60 },
    );
    await routerDrained(nc, 20_000);
    for (const seq of seqs)
      expect(auditOf(seq, 'VN-CUSTOMS').map((r) => r.event)).toEqual([
        'received',
        'rejected',
        'dead-lettered',
      ]);
    expect((await feedMessages(nc)).length).toBe(feedsBefore);
    expect(router.proc.exitCode).toBeNull();
    expect((await fetch(`${router.url}/readyz`)).status).toBe(200);
  });
});

describe('hostile input - at the gateway (HTTP)', () => {
  const post = (body: string | Uint8Array, headers: Record<string, string> = {}) =>
    fetch(`${gateway.url}/v1/alerts`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Bearer ${token.token}`,
        ...headers,
      },
      body,
    });

  it('deep, huge, invalid UTF-8, poisoned keys and oversized headers are refused with 4xx and a code', async () => {
    const cases: [string | Uint8Array, number, string][] = [
      ['['.repeat(100_000) + ']'.repeat(100_000), 413, 'ERR_BODY_TOO_LARGE'],
      ['['.repeat(10_000) + ']'.repeat(10_000), 400, 'ERR_PAYLOAD_MALFORMED'],
      ['{"a":'.repeat(40) + '1' + '}'.repeat(40), 400, 'ERR_PAYLOAD_MALFORMED'],
      [
        JSON.stringify({ ...seizureReport('SG-NPARKS'), summary: 'x'.repeat(300_000) }),
        413,
        'ERR_BODY_TOO_LARGE',
      ],
      [
        Uint8Array.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xed, 0xa0, 0x80, 0x22, 0x7d]),
        400,
        'ERR_PAYLOAD_MALFORMED',
      ],
      ['{"__proto__":{"isAdmin":true},"type":"seizure-report"}', 400, 'ERR_PAYLOAD_MALFORMED'],
      ['{"constructor":{"prototype":{"isAdmin":true}}}', 400, 'ERR_PAYLOAD_MALFORMED'],
      // Parser differentials: a member named twice, a byte-order mark.
      [
        JSON.stringify(seizureReport('SG-NPARKS', { handling: 'TLP:AMBER' })).replace(
          '{',
          '{"handling":"TLP:RED",',
        ),
        400,
        'ERR_PAYLOAD_MALFORMED',
      ],
      [`\ufeff${JSON.stringify(seizureReport('SG-NPARKS'))}`, 400, 'ERR_PAYLOAD_MALFORMED'],
    ];
    for (const [body, status, code] of cases) {
      const res = await post(body);
      expect(res.status, code).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
    }
    const big = await post('{}', { 'x-junk': 'x'.repeat(64 * 1024) });
    expect(big.status).toBe(431);
  });
  it('fuzzing the HTTP body: never a 5xx, nothing invalid published, the gateway alive', async () => {
    const nc = await nats.connect();
    const jsm = await jetstreamManager(nc);
    const before = (
      await jsm.streams.info(inboundStreamName('SG-NPARKS'), {
        subjects_filter: 'ahub.in.SG-NPARKS.>',
      })
    ).state.messages;
    const bodies = fc.oneof(
      fc.string({ maxLength: 2000 }),
      fc.uint8Array({ maxLength: 2000 }),
      fc.json({ maxDepth: 6 }),
      fc
        .record({
          type: fc.constantFrom('seizure-report', 'retraction', 'x'),
          version: fc.anything(),
          handling: fc.string(),
          seizure: fc.anything(),
        })
        .map((o) => JSON.stringify(o)),
    );
    await fc.assert(
      fc.asyncProperty(bodies, async (body) => {
        const res = await post(body);
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        const json = (await res.json()) as { error?: { code?: string } };
        expect(json.error?.code).toMatch(/^ERR_/);
      }),
      { numRuns: 300 },
    );
    expect(
      (
        await jsm.streams.info(inboundStreamName('SG-NPARKS'), {
          subjects_filter: 'ahub.in.SG-NPARKS.>',
        })
      ).state.messages,
    ).toBe(before);
    expect(gateway.proc.exitCode).toBeNull();
    expect((await fetch(`${gateway.url}/healthz`)).status).toBe(200);
  });
});
