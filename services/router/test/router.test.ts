import { sign as cryptoSign } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  Streams,
  encodeEnvelope,
  generateSigningJwk,
  importSigningKey,
  inboundSubject,
  newAlertId,
  signAlert,
  type Alert,
} from '@alert-hub/core';
import {
  deniedRecipients,
  forwardedCopies,
  parseCheckpoint,
  parseNote,
  queryAudit,
  traceAlert,
  verifyAuditLog,
} from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { revokeKey } from '@alert-hub/operator';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  registry,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC', 'NG-NCS', 'KE-KWS', 'US-FWS', 'HK-CED'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('router-test');
const agreementsFile = join(fx.dir, 'agreements.yaml');
const ASIA = {
  id: 'WEN-ASIA',
  version: 1,
  title: 'Wildlife enforcement network, Asia',
  parties: ['SG', 'VN-CUSTOMS', 'CN'],
  alertTypes: ['seizure-report', 'suspicious-shipment', 'retraction'],
  maxHandling: 'TLP:AMBER',
  validFrom: '2019-01-01T00:00:00Z',
  validUntil: '2030-01-01T00:00:00Z',
};
const agreements = [
  ASIA,
  {
    id: 'NG-TO-SG',
    version: 2,
    title: 'Nigeria to Singapore',
    parties: ['NG', 'SG'],
    flows: [{ from: ['NG'], to: ['SG'] }],
    alertTypes: ['seizure-report', 'consignee-flag', 'suspicious-shipment', 'retraction'],
    maxHandling: 'TLP:AMBER+STRICT',
    validFrom: '2019-01-01T00:00:00Z',
  },
  {
    id: 'SG-KE-2019',
    version: 1,
    title: 'ended',
    parties: ['SG', 'KE'],
    alertTypes: ['seizure-report'],
    maxHandling: 'TLP:RED',
    validFrom: '2019-01-01T00:00:00Z',
    validUntil: '2020-01-01T00:00:00Z',
  },
  {
    id: 'SG-US-FUTURE',
    version: 1,
    title: 'not yet',
    parties: ['SG', 'US'],
    alertTypes: ['seizure-report'],
    maxHandling: 'TLP:RED',
    validFrom: '2099-01-01T00:00:00Z',
  },
];
let router: Router;
const coordinator = createToken();

beforeAll(async () => {
  writeFileSync(agreementsFile, toYaml({ agreements }));
  const file = writeConfig(fx.dir, 'router', {
    instance: 'router-test',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
    checkpointIntervalMs: 200,
    coordinators: [{ name: 'analyst', tokenSha256: coordinator.sha256 }],
  });
  router = await startRouter(loadConfig({}, file), { log });
});
afterAll(async () => {
  await router?.close();
  fx.cleanup();
});

const key = (a: string) => fx.keys[a]!;

/**
 * An inbound message: its sequence, the stream that stored it, and the agency its subject names
 * (whose audit entries carry it as origin). A sequence is its stream's: each agency's inbound
 * stream numbers its messages from 1, so the sequence alone may name another agency's message.
 */
interface Inbound {
  readonly seq: number;
  readonly stream: string;
  /** Null for a subject that names no agency. */
  readonly origin: string | null;
}

/** Publishes and waits until the router has written the alert's audit trail. */
async function route(
  alert: Alert,
  options: Parameters<typeof publishInbound>[3] = {},
  signer = key(alert.origin),
): Promise<Inbound> {
  const nc = await nats.connect();
  const ack = await publishInbound(nc, alert, signer, options);
  const m = { seq: ack.seq, stream: ack.stream, origin: options.subjectOrigin ?? alert.origin };
  await eventually(() => traceAudit(m).length > 0, 10_000, `audit of inbound ${ack.seq}`);
  return m;
}

function traceAudit(m: Inbound) {
  const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
  try {
    return db
      .prepare('SELECT * FROM audit WHERE stream_seq = ? AND origin IS ? ORDER BY seq')
      .all(m.seq, m.origin) as {
      event: string;
      recipient: string | null;
      reason_code: string | null;
      reason: string | null;
      agreement_id: string | null;
      alert_id: string | null;
      detail: string | null;
    }[];
  } finally {
    db.close();
  }
}

/** The copies a routing decision forwarded: its routes in the log, as `<recipient> <agreement>`. */
function forwardedBy(m: Inbound): string[] {
  const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
  try {
    return (
      db
        .prepare(
          "SELECT r.recipient, r.leaf FROM audit_routes r JOIN audit a ON a.seq = r.seq WHERE a.stream_seq = ? AND a.origin IS ? AND a.event = 'routed' AND r.feed_seq IS NOT NULL",
        )
        .all(m.seq, m.origin) as { recipient: string; leaf: string }[]
    )
      .map(
        (r) =>
          `${r.recipient} ${(JSON.parse(r.leaf) as { agreement: { id: string } }).agreement.id}`,
      )
      .sort();
  } finally {
    db.close();
  }
}

function outcome(m: Inbound) {
  const records = traceAudit(m);
  return {
    forwarded: forwardedBy(m),
    // Near misses, recipient by recipient: each one's code in the decision's one summary.
    denied: Object.fromEntries(
      records
        .filter((r) => r.event === 'denied' && r.reason_code !== 'DENY_NOT_PARTY')
        .flatMap((r) =>
          r.recipient
            ? [[r.recipient, r.reason_code]]
            : Object.entries(
                (JSON.parse(r.detail ?? '{}') as { codes: Record<string, string> }).codes,
              ),
        ),
    ),
    rejected: records.find((r) => r.event === 'rejected')?.reason_code,
  };
}

describe('router - the agreement matrix', () => {
  it('allowed: forwarded to each entitled partner under the agreement; others denied with a reason', async () => {
    const a = seizureReport('SG-NPARKS');
    const seq = await route(a);
    const o = outcome(seq);
    expect(o.forwarded).toEqual(['CN-GACC WEN-ASIA', 'VN-CUSTOMS WEN-ASIA']);
    expect(o.denied).toEqual({
      'KE-KWS': 'DENY_EXPIRED',
      'US-FWS': 'DENY_NOT_YET_VALID',
      'NG-NCS': 'DENY_DIRECTION',
    });
    const notParty = traceAudit(seq).find(
      (r) => r.event === 'denied' && r.reason_code === 'DENY_NOT_PARTY',
    );
    expect(notParty).toMatchObject({
      reason_code: 'DENY_NOT_PARTY',
      reason: 'no agreement (or operation membership) includes SG-NPARKS and HK-CED',
    });
    const feeds = (await feedMessages(await nats.connect())).filter((m) =>
      m.msgId.startsWith(a.id),
    );
    expect(feeds.map((m) => m.subject).sort()).toEqual([
      'ahub.feed.CN-GACC.SG-NPARKS.seizure-report',
      'ahub.feed.VN-CUSTOMS.SG-NPARKS.seizure-report',
    ]);
  });
  it('wrong type', async () => {
    const flag = {
      id: newAlertId(),
      type: 'consignee-flag',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: new Date().toISOString(),
      handling: 'TLP:GREEN',
      consignee: { name: 'Example Trading Co', country: 'VN' },
      reason: 'prior-seizure',
    } as Alert;
    const o = outcome(await route(flag));
    expect(o.forwarded).toEqual([]);
    expect(o.denied['VN-CUSTOMS']).toBe('DENY_ALERT_TYPE');
  });
  it('handling code too high', async () => {
    const o = outcome(await route(seizureReport('SG-NPARKS', { handling: 'TLP:RED' })));
    expect(o.denied['VN-CUSTOMS']).toBe('DENY_HANDLING');
    expect(o.denied['CN-GACC']).toBe('DENY_HANDLING');
    expect(o.forwarded).toEqual([]);
  });
  it('near misses are one summary per decision, and a query for one partner still says why not', async () => {
    const a = seizureReport('SG-NPARKS', { handling: 'TLP:RED' });
    const seq = await route(a);
    // Five near misses for three reasons: one entry, each recipient with its own code.
    const near = traceAudit(seq).filter((r) => r.reason_code === 'DENY_NEAR_MISSES');
    expect(near).toHaveLength(1);
    expect(near[0]!.recipient).toBeNull();
    expect(JSON.parse(near[0]!.detail!)).toEqual({
      codes: {
        'CN-GACC': 'DENY_HANDLING',
        'KE-KWS': 'DENY_EXPIRED',
        'NG-NCS': 'DENY_DIRECTION',
        'US-FWS': 'DENY_NOT_YET_VALID',
        'VN-CUSTOMS': 'DENY_HANDLING',
      },
      counts: {
        DENY_DIRECTION: 1,
        DENY_EXPIRED: 1,
        DENY_HANDLING: 2,
        DENY_NOT_YET_VALID: 1,
      },
    });
    expect(traceAudit(seq).filter((r) => r.event === 'denied')).toHaveLength(2);
    const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
    try {
      const found = queryAudit(db, { partner: 'CN-GACC', outcome: 'denied', alertId: a.id });
      expect(found.map((r) => r.reasonCode)).toEqual(['DENY_NEAR_MISSES']);
      expect(
        found.flatMap(deniedRecipients).find((d) => d.recipient === 'CN-GACC')?.reasonCode,
      ).toBe('DENY_HANDLING');
      // A partner the alert went to, or that is refused nothing, is not found among the refusals.
      expect(queryAudit(db, { partner: 'SG-NPARKS', outcome: 'denied', alertId: a.id })).toEqual(
        [],
      );
    } finally {
      db.close();
    }
    const res = await fetch(`${router.url}/v1/audit/trace/${a.id}`, {
      headers: { authorization: `Bearer ${coordinator.token}` },
    });
    const { summary } = (await res.json()) as {
      summary: { deniedTo: { recipient: string; reason: string; detail: string }[] };
    };
    expect(Object.fromEntries(summary.deniedTo.map((d) => [d.recipient, d.reason]))).toEqual({
      'CN-GACC': 'DENY_HANDLING',
      'KE-KWS': 'DENY_EXPIRED',
      'NG-NCS': 'DENY_DIRECTION',
      'US-FWS': 'DENY_NOT_YET_VALID',
      'VN-CUSTOMS': 'DENY_HANDLING',
      'HK-CED': 'DENY_NOT_PARTY',
    });
  });
  it('expired, and not yet valid', async () => {
    const o = outcome(await route(seizureReport('SG-NPARKS')));
    expect(o.denied['KE-KWS']).toBe('DENY_EXPIRED');
    expect(o.denied['US-FWS']).toBe('DENY_NOT_YET_VALID');
  });
  it('not a party', async () => {
    const seq = await route(seizureReport('HK-CED'));
    expect(outcome(seq).forwarded).toEqual([]);
    const denied = traceAudit(seq).filter((r) => r.event === 'denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ recipient: null, reason_code: 'DENY_NOT_PARTY' });
  });
  it('directed: NG may send to SG, SG may not send to NG', async () => {
    expect(
      outcome(await route(seizureReport('NG-NCS', { handling: 'TLP:AMBER+STRICT' }))).forwarded,
    ).toEqual(['SG-NPARKS NG-TO-SG']);
    expect(outcome(await route(seizureReport('SG-NPARKS'))).denied['NG-NCS']).toBe(
      'DENY_DIRECTION',
    );
  });
});

/** The message was refused with `code`: audited, dead-lettered (returned), nothing forwarded. */
async function expectRejected(inbound: Inbound, code: string, alertId?: string) {
  expect(outcome(inbound).rejected).toBe(code);
  const jsm = await jetstreamManager(await nats.connect());
  const dlq = await eventually(
    async () => {
      const info = await jsm.streams.info(Streams.DeadLetter);
      for (let s = info.state.last_seq; s >= info.state.first_seq && info.state.messages > 0; s--) {
        const m = await jsm.streams.getMessage(Streams.DeadLetter, { seq: s });
        if (
          m?.header.get('Ahub-Original-Seq') === String(inbound.seq) &&
          m.header.get('Ahub-Original-Stream') === inbound.stream
        )
          return m;
      }
      return undefined;
    },
    5000,
    'dead letter',
  );
  expect(dlq.header.get('Ahub-Reason-Code')).toBe(code);
  if (alertId)
    expect(
      (await feedMessages(await nats.connect())).some((m) => m.msgId.startsWith(alertId)),
    ).toBe(false);
  return dlq;
}

describe('router - refusals are dead-lettered with their reason, nothing forwarded, the router alive', () => {
  it("impersonation: agency A's signature on B's subject", async () => {
    const a = seizureReport('SG-NPARKS');
    const seq = await route(a, { subjectOrigin: 'VN-CUSTOMS' });
    const dlq = await expectRejected(seq, 'ERR_SUBJECT_MISMATCH', a.id);
    expect(dlq.subject).toBe('ahub.dlq.VN-CUSTOMS');
    expect(dlq.header.get('Ahub-Reason')).toBe(
      'signed by SG-NPARKS but published on the subject of VN-CUSTOMS',
    );
  });
  it("impersonation: B's id claimed with A's key", async () => {
    const a = seizureReport('VN-CUSTOMS');
    await expectRejected(
      await route(a, {}, { ...key('SG-NPARKS'), principal: 'VN-CUSTOMS' }),
      'ERR_KEY_AGENCY_MISMATCH',
      a.id,
    );
  });
  it('bad signature', async () => {
    const a = seizureReport('SG-NPARKS');
    const seq = await route(a, {
      mutate: (b) => {
        const c = Buffer.from(b);
        const at = c.indexOf('eyJ') + 30;
        c[at] = c[at] === 0x41 ? 0x42 : 0x41;
        return c;
      },
    });
    await expectRejected(seq, 'ERR_SIGNATURE_INVALID', a.id);
  });
  it('unknown key', async () => {
    const stranger = importSigningKey(generateSigningJwk().privateJwk, 'SG-NPARKS');
    const a = seizureReport('SG-NPARKS');
    await expectRejected(await route(a, {}, stranger), 'ERR_KEY_UNKNOWN', a.id);
  });
  it('malformed msgpack', async () => {
    const nc = await nats.connect();
    const ack = await jetstream(nc).publish(
      inboundSubject('SG-NPARKS', 'seizure-report'),
      Buffer.from([0x82, 0xa7, 0x70, 0x61, 0x79]),
    );
    const m = { seq: ack.seq, stream: ack.stream, origin: 'SG-NPARKS' };
    await eventually(() => traceAudit(m).length > 0, 5000, 'audit');
    await expectRejected(m, 'ERR_ENVELOPE_MALFORMED');
  });
  it('a subject that is not an inbound subject of the form ahub.in.<agency>.<type>', async () => {
    const nc = await nats.connect();
    // Without a type it is no agency's inbound subject: no stream stores it.
    await expect(jetstream(nc).publish('ahub.in.SG-NPARKS', 'x')).rejects.toThrow();
    // Within the agency's subjects (ahub.in.SG-NPARKS.>) but of another form: stored, refused.
    const ack = await jetstream(nc).publish(
      'ahub.in.SG-NPARKS.seizure-report.extra',
      encodeEnvelope(
        await signAlert(
          seizureReport('SG-NPARKS'),
          key('SG-NPARKS'),
          registry.schemaIdFor('seizure-report', 1)!,
        ),
      ),
    );
    // Its stream proves who stored it: audited with that origin, dead-lettered in its subject.
    const m = { seq: ack.seq, stream: ack.stream, origin: 'SG-NPARKS' };
    await eventually(() => traceAudit(m).length > 0, 5000, 'audit');
    const dlq = await expectRejected(m, 'ERR_SUBJECT_INVALID');
    expect(dlq.subject).toBe('ahub.dlq.SG-NPARKS');
  });
  it('a refused message leaves none of its text in the audit log or the log: no kid, alg, claimed agency, subject type, unknown member or value, no member named twice, and at most 1,000 characters of reason', async () => {
    const text = 'Jane Doe passport X1234567';
    const token = 'Jane_Doe_passport_X1234567';
    const nc = await nats.connect();
    const js = jetstream(nc);
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const raw = (header: Record<string, unknown>) =>
      encodeEnvelope({
        payload: b64({ note: text }),
        signatures: [{ protected: b64(header), signature: Buffer.alloc(64).toString('base64url') }],
      });
    const header = {
      alg: 'EdDSA',
      kid: key('SG-NPARKS').kid,
      typ: 'ahub-alert+jws',
      agency: 'SG-NPARKS',
      alert_id: newAlertId(Date.now()),
      alert_type: 'seizure-report',
      issued_at: new Date().toISOString(),
    };
    const inbound: Inbound[] = [];
    const send = async (subject: string, bytes: Uint8Array) => {
      const ack = await js.publish(subject, bytes);
      inbound.push({ seq: ack.seq, stream: ack.stream, origin: 'SG-NPARKS' });
    };
    const subject = inboundSubject('SG-NPARKS', 'seizure-report');
    await send(subject, raw({ ...header, kid: text }));
    await send(subject, raw({ ...header, alg: text }));
    await send(subject, raw({ ...header, agency: text }));
    const signed = async (alert: Alert) =>
      encodeEnvelope(
        await signAlert(alert, key('SG-NPARKS'), registry.schemaIdFor('seizure-report', 1)!),
      );
    await send(`ahub.in.SG-NPARKS.${token}`, await signed(seizureReport('SG-NPARKS')));
    await send(
      `ahub.in.SG-NPARKS.seizure-report.${token}`,
      await signed(seizureReport('SG-NPARKS')),
    );
    // Validly signed, refused by the schema: a member named with the text, the text as a country,
    // and thousands of unknown members.
    const many = Object.fromEntries(
      Array.from({ length: 2000 }, (_, i) => [`${token}${i}`.padEnd(40, 'x'), 1]),
    );
    const sample = seizureReport('SG-NPARKS') as unknown as { seizure: Record<string, unknown> };
    await send(
      subject,
      await signed(
        seizureReport('SG-NPARKS', {
          [token]: 1,
          seizure: { ...sample.seizure, location: { country: text } },
        }),
      ),
    );
    await send(subject, await signed(seizureReport('SG-NPARKS', many)));
    // Validly signed, but its JSON names a member twice (core's parser tells the sender which).
    const twice = Buffer.from(`{"${token}":1,"${token}":2}`).toString('base64url');
    const twiceHeader = b64(header);
    await send(
      subject,
      encodeEnvelope({
        payload: twice,
        signatures: [
          {
            protected: twiceHeader,
            signature: cryptoSign(
              null,
              Buffer.from(`${twiceHeader}.${twice}`),
              key('SG-NPARKS').privateKey,
            ).toString('base64url'),
          },
        ],
      }),
    );
    const codes: (string | null)[] = [];
    for (const m of inbound) {
      await eventually(
        () => traceAudit(m).some((r) => r.event === 'rejected'),
        10_000,
        `refusal of inbound ${m.seq}`,
      );
      const rows = traceAudit(m);
      codes.push(rows.find((r) => r.event === 'rejected')!.reason_code);
      const recorded = JSON.stringify(rows);
      expect(recorded).not.toMatch(/Jane/);
      for (const r of rows) expect((r.reason ?? '').length).toBeLessThanOrEqual(1000);
    }
    expect(codes).toEqual([
      'ERR_KEY_UNKNOWN',
      'ERR_JWS_ALG_NOT_ALLOWED',
      'ERR_KEY_AGENCY_MISMATCH',
      'ERR_SUBJECT_MISMATCH',
      'ERR_SUBJECT_INVALID',
      'ERR_SCHEMA_INVALID',
      'ERR_SCHEMA_INVALID',
      'ERR_PAYLOAD_MALFORMED',
    ]);
    // Where and why are still said: the place of the unknown members, and the field refused.
    const schema = traceAudit(inbound[5]!).find((r) => r.event === 'rejected')!.reason!;
    expect(schema).toContain('/ holds a member the schema does not know');
    expect(schema).toContain('/seizure/location/country the value is not an ISO 3166-1');
    expect(lines.some((l) => /Jane/.test(JSON.stringify(l)))).toBe(false);
  });
  it('a validly signed alert whose id is not an alert id is refused without its id in the audit log or the log', async () => {
    // The origin signed it, so its id passed the signature check; the schema refuses it, and
    // until then the id is the sender's text like any other member.
    const token = 'Jane_Doe_passport_X1234567';
    const a = seizureReport('SG-NPARKS', { id: token });
    const m = await route(a);
    await expectRejected(m, 'ERR_SCHEMA_INVALID');
    const rows = traceAudit(m);
    expect(rows.some((r) => r.event === 'rejected')).toBe(true);
    expect(JSON.stringify(rows)).not.toMatch(/Jane/);
    expect(lines.some((l) => /Jane/.test(JSON.stringify(l)))).toBe(false);
  });
  it('schema-invalid even though validly signed', async () => {
    const a = seizureReport('SG-NPARKS', { handling: 'TLP:WHITE' });
    await expectRejected(await route(a), 'ERR_SCHEMA_INVALID', a.id);
  });
  it('a duplicate alert id, even after JetStream de-duplication is bypassed (a replay after the window)', async () => {
    const a = seizureReport('SG-NPARKS');
    const first = await route(a);
    expect(outcome(first).forwarded).toHaveLength(2);
    // The same origin and id again, as a new envelope (its message id differs, so JetStream
    // stores it, as it would a replay after its window).
    const again = { ...a, issuedAt: new Date(Date.parse(a.issuedAt) + 1000).toISOString() };
    const replay = await route(again);
    await expectRejected(replay, 'ERR_DUPLICATE_ALERT');
    expect(
      (await feedMessages(await nats.connect())).filter((m) => m.msgId.startsWith(a.id)),
    ).toHaveLength(2);
  });
  it('alert identity is (origin, id): another agency can squat no message id, and cannot reuse an alert id it was delivered', async () => {
    const id = seizureReport('SG-NPARKS').id;
    const nc = await nats.connect();
    // SG publishes junk under the message ids VN's alert might be given ...
    for (const msgID of [id, `VN-CUSTOMS:${id}`])
      await jetstream(nc).publish(inboundSubject('SG-NPARKS', 'seizure-report'), 'junk', { msgID });
    // ... VN's alert with that id is stored by JetStream and routed all the same.
    const vnSeq = await route(seizureReport('VN-CUSTOMS', { id }));
    expect(outcome(vnSeq).forwarded).toContain('SG-NPARKS WEN-ASIA');
    // SG was delivered it: an alert of its own under that id would make the id name two alerts
    // at every partner that received both (an outcome could no longer say which): refused.
    const reuse = seizureReport('SG-NPARKS', { id });
    await expectRejected(await route(reuse), 'ERR_ALERT_ID_REUSED');
    // Only VN's copies carry that id.
    const copies = (await feedMessages(nc)).filter((m) => m.msgId.startsWith(id));
    expect(copies.length).toBeGreaterThan(0);
    expect(copies.every((m) => m.subject.split('.')[3] === 'VN-CUSTOMS')).toBe(true);
    // A message whose Nats-Msg-Id is not the one bound to its envelope is refused.
    const c = seizureReport('SG-NPARKS');
    await expectRejected(await route(c, { msgID: c.id }), 'ERR_MSG_ID_MISMATCH', c.id);
  });
  it('a revoked key: still routed until the trust store is reloaded, refused after', async () => {
    const a = seizureReport('CN-GACC');
    expect(outcome(await route(a)).forwarded).toEqual([
      'SG-NPARKS WEN-ASIA',
      'VN-CUSTOMS WEN-ASIA',
    ]);
    revokeKey({ certsDir: fx.certsDir, kid: key('CN-GACC').kid, reason: 'keyCompromise' });
    // Revoked in the trust store, not yet reloaded: the router still accepts what the key signs.
    const meanwhile = seizureReport('CN-GACC');
    const o = outcome(await route(meanwhile));
    expect(o.rejected).toBeUndefined();
    expect(o.forwarded).toEqual(['SG-NPARKS WEN-ASIA', 'VN-CUSTOMS WEN-ASIA']);
    await router.reload();
    const b = seizureReport('CN-GACC');
    await expectRejected(await route(b), 'ERR_KEY_REVOKED', b.id);
  });
  it('the router is still routing', async () => {
    expect(outcome(await route(seizureReport('SG-NPARKS'))).forwarded).toHaveLength(2);
    expect((await fetch(`${router.url}/readyz`)).status).toBe(200);
  });
});

describe('router - retractions and hot reload', () => {
  it('a retraction reaches every recipient of the original, even after the agreement ended', async () => {
    const original = seizureReport('SG-NPARKS');
    expect(outcome(await route(original)).forwarded).toEqual([
      'CN-GACC WEN-ASIA',
      'VN-CUSTOMS WEN-ASIA',
    ]);
    writeFileSync(
      agreementsFile,
      toYaml({
        agreements: [
          { ...ASIA, version: 2, validUntil: '2019-06-01T00:00:00Z' },
          ...agreements.slice(1),
        ],
      }),
    );
    await eventually(
      () => lines.some((l) => l.includes('"agreements reloaded"') && l.includes('WEN-ASIA@2')),
      5000,
      'reload',
    );
    expect(outcome(await route(seizureReport('SG-NPARKS'))).denied['VN-CUSTOMS']).toBe(
      'DENY_EXPIRED',
    );

    const retraction = {
      id: newAlertId(),
      type: 'retraction',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: new Date().toISOString(),
      handling: 'TLP:AMBER',
      retracts: original.id,
      action: 'withdraw',
      reason: 'wrong container',
    } as Alert;
    const seq = await route(retraction);
    expect(outcome(seq).forwarded).toEqual(['CN-GACC WEN-ASIA', 'VN-CUSTOMS WEN-ASIA']);
    expect(
      traceAudit(seq)
        .filter((r) => r.event === 'routed')
        .map((r) => r.reason),
    ).toEqual(['retraction sent to every recipient of the original']);
  });
  it('a retraction obeys each partner’s handling ceiling: above it, it is denied; a withdrawal notice within it goes', async () => {
    const original = seizureReport('NG-NCS');
    expect(outcome(await route(original)).forwarded).toEqual(['SG-NPARKS NG-TO-SG']);
    const retraction = (handling: string, reason: string) =>
      ({
        id: newAlertId(),
        type: 'retraction',
        version: 1,
        origin: 'NG-NCS',
        issuedAt: new Date().toISOString(),
        handling,
        retracts: original.id,
        action: 'withdraw',
        reason,
      }) as Alert;
    // NG-TO-SG allows at most TLP:AMBER+STRICT: a TLP:RED retraction with free text goes nowhere.
    const red = outcome(await route(retraction('TLP:RED', 'the informant is at risk')));
    expect(red.forwarded).toEqual([]);
    expect(red.denied['SG-NPARKS']).toBe('DENY_HANDLING');
    // The minimal withdrawal notice (docs/security.md), labelled within the ceiling, reaches SG.
    expect(outcome(await route(retraction('TLP:GREEN', 'withdrawn'))).forwarded).toEqual([
      'SG-NPARKS NG-TO-SG',
    ]);
  });
  it('only the origin may retract', async () => {
    const original = seizureReport('NG-NCS');
    await route(original);
    const forged = {
      id: newAlertId(),
      type: 'retraction',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: new Date().toISOString(),
      handling: 'TLP:GREEN',
      retracts: original.id,
      action: 'withdraw',
      reason: 'not ours to withdraw',
    } as Alert;
    expect(outcome(await route(forged)).rejected).toBe('ERR_RETRACTION_NOT_ORIGIN');
  });
  it('an invalid agreements file is refused with the place named; the old agreements stay in force', async () => {
    writeFileSync(
      agreementsFile,
      toYaml({ agreements: [{ ...ASIA, version: 3, maxHandling: 'AMBER' }] }),
    );
    const line = await eventually(
      () => lines.find((l) => l.includes('agreements file refused')),
      5000,
      'refusal',
    );
    expect(line).toMatch(/agreements\.yaml:\d+:\d+ must be one of/);
    expect(line).toContain('/agreements/0/maxHandling');
    expect(outcome(await route(seizureReport('SG-NPARKS'))).denied['VN-CUSTOMS']).toBe(
      'DENY_EXPIRED',
    ); // version 2 still applies
    writeFileSync(agreementsFile, 'agreements: [ {');
    await eventually(
      () => lines.filter((l) => l.includes('agreements file refused')).length >= 2,
      5000,
      'second refusal',
    );
    expect(router.reloadAgreements()).toBe(false);
  });
  it('a valid file takes effect', async () => {
    writeFileSync(
      agreementsFile,
      toYaml({ agreements: [{ ...ASIA, version: 4, parties: [...ASIA.parties, 'KE-KWS'] }] }),
    );
    await eventually(
      () => lines.some((l) => l.includes('"agreements reloaded"') && l.includes('WEN-ASIA@4')),
      5000,
      'reload',
    );
    expect(outcome(await route(seizureReport('SG-NPARKS'))).forwarded).toEqual([
      'CN-GACC WEN-ASIA',
      'KE-KWS WEN-ASIA',
      'VN-CUSTOMS WEN-ASIA',
    ]);
  });
});

describe('router - audit log', () => {
  it('the log verifies against the checkpoint the router signed and published', async () => {
    await eventually(
      () => lines.some((l) => l.includes('audit checkpoint signed')),
      5000,
      'checkpoint',
    );
    expect((await fetch(`${router.url}/v1/audit/checkpoint`)).status).toBe(401);
    const anchor = router.audit.latest!;
    const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
    const v = verifyAuditLog(db, {
      anchor,
      hubKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
      witnesses: [],
      minWitnesses: 0,
    });
    db.close();
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.witnessed).toBeGreaterThan(50);
  });
  it('the trace of an alert tells who received it under which agreement, and who was refused and why', async () => {
    const a = seizureReport('SG-NPARKS');
    await route(a);
    const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
    const t = traceAlert(db, a.id);
    db.close();
    // One entry for the decision, naming its recipients beside it; the refusals summed up.
    expect(t.map((r) => r.event)).toEqual(['routed', 'denied']);
    expect(
      forwardedCopies(t).map((f) => `${f.recipient}:${f.agreementId}@${f.agreementVersion}`),
    ).toEqual(['CN-GACC:WEN-ASIA@4', 'KE-KWS:WEN-ASIA@4', 'VN-CUSTOMS:WEN-ASIA@4']);
    expect(t[0]!.recipient).toBeNull();
  });
  it('a "not a party" refusal is found by a query for that partner', async () => {
    const a = seizureReport('SG-NPARKS');
    await route(a);
    const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
    const denied = queryAudit(db, { partner: 'US-FWS', outcome: 'denied', alertId: a.id });
    db.close();
    expect(denied.map((r) => r.reasonCode)).toEqual(['DENY_NOT_PARTY']);
  });
  it('a query parameter /v1/audit does not know is a 400 naming it, never ignored', async () => {
    const res = await fetch(`${router.url}/v1/audit?event=routed&outcome=denied`, {
      headers: { authorization: `Bearer ${coordinator.token}` },
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; details: { pointer: string }[] } };
    expect(body.error.code).toBe('ERR_BAD_REQUEST');
    expect(body.error.details.map((d) => d.pointer)).toEqual(['/query/event']);
  });
  it('since and until are RFC 3339 instants: an offset is honoured, anything else is a 400', async () => {
    const get = (q: string) =>
      fetch(`${router.url}/v1/audit?${q}`, {
        headers: { authorization: `Bearer ${coordinator.token}` },
      });
    const bad = await get('since=yesterday');
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('ERR_BAD_REQUEST');
    expect((await get('until=2026-11-28T09:00:00')).status).toBe(400);
    // An hour ago, written in UTC+14: as text it sorts after every record; as an instant it is
    // an hour ago.
    const farEast = new Date(Date.now() - 3600_000 + 14 * 3600_000)
      .toISOString()
      .replace(/\.\d+Z$/, '+14:00');
    const res = await get(`since=${encodeURIComponent(farEast)}&limit=3`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { count: number }).count).toBe(3);
  });
  it('dashboard health - a second look without new entries reads none; after new entries, only those', async () => {
    type Health = {
      logs: { ok: boolean; records: number; check: { mode: string; from: number; to: number } }[];
    };
    const health = async () =>
      (await (
        await fetch(`${router.url}/dashboard/api/health`, {
          headers: { authorization: `Bearer ${coordinator.token}` },
        })
      ).json()) as Health;
    const size = () => {
      const db = openDatabase(join(fx.dir, 'router', 'audit.db'), { readonly: true });
      const n = (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
      db.close();
      return n;
    };
    const checkpointed = (n: number) =>
      eventually(
        () =>
          router.audit.latest && parseCheckpoint(parseNote(router.audit.latest).text).size === n,
        10_000,
        `a checkpoint of ${n} entries`,
      );
    await route(seizureReport('SG-NPARKS'));
    const before = size();
    await checkpointed(before);
    const first = (await health()).logs[0]!;
    expect(first).toMatchObject({ ok: true, records: before, check: { mode: 'full', to: before } });
    const second = (await health()).logs[0]!;
    expect(second).toMatchObject({
      ok: true,
      records: before,
      check: { mode: 'incremental', from: before, to: before },
    });
    await route(seizureReport('SG-NPARKS'));
    const after = size();
    expect(after).toBeGreaterThan(before);
    await checkpointed(after);
    const third = (await health()).logs[0]!;
    expect(third).toMatchObject({
      ok: true,
      records: after,
      check: { mode: 'incremental', from: before, to: after },
    });
  });
  it('the coordinator API needs a coordinator token', async () => {
    expect((await fetch(`${router.url}/v1/audit`)).status).toBe(401);
    expect((await fetch(`${router.url}/dashboard/api/health`)).status).toBe(401);
    const page = await fetch(`${router.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'");
  });
});

describe('router - an agency removed from the trust store', () => {
  it('what its stream holds unhandled is still read: refused (unknown key), audited and dead-lettered', async () => {
    // Removed and reloaded: the router no longer reads its stream as a trusted agency's.
    rmSync(join(fx.trustDir, 'HK-CED.jwks.json'));
    await router.reload();
    // Stored by its stream all the same (its subjects stay until the stream is removed), so its
    // gateway was told 202.
    const a = seizureReport('HK-CED');
    const ack = await publishInbound(await nats.connect(), a, key('HK-CED'));
    const m = { seq: ack.seq, stream: ack.stream, origin: 'HK-CED' };
    await router.reload();
    await eventually(() => traceAudit(m).length > 0, 10_000, 'audit of the former agency');
    const dlq = await expectRejected(m, 'ERR_KEY_UNKNOWN', a.id);
    expect(dlq.subject).toBe('ahub.dlq.HK-CED');
  });
});

describe('router - privacy of the logs', () => {
  it('the log never holds a key or a named party', () => {
    const all = lines.join('\n');
    expect(all).not.toContain('"d":');
    expect(all).not.toContain('Example Trading Co');
    expect(readFileSync(fx.hubKeyFile, 'utf8')).toContain('"d"');
  });
});
