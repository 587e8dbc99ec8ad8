import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  auditOrigin,
  canonicalJson,
  decodeEnvelope,
  encodeEnvelope,
  inboundMsgId,
  inboundSubject,
  isJsonObject,
  newAlertId,
  verifyOrigin,
  type Alert,
  inboundStreamName,
} from '@alert-hub/core';
import { formatCheckpoint, signNote } from '@alert-hub/audit';
import { loadConfig, startGateway, type FeedItem, type Gateway } from '@alert-hub/gateway';
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKey, revokeKey } from '@alert-hub/operator';
import { createToken, openDatabase } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { answeringProofs } from './support/proof-replies.js';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  provision,
  publishToFeed,
  registry,
  routedEnvelope,
  seizureReport,
  writeConfig,
  OPEN_JS_API,
} from '@alert-hub/testkit';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS', 'NG-NCS']);
/** Singapore's inbound stream, where its gateway's alerts are stored. */
const SG_INBOUND = inboundStreamName('SG-NPARKS');
const submitter = createToken();
const reader = createToken();
const { log, lines } = memoryLogger('gateway-test');
let sg: Gateway;
let vn: Gateway;

function configFor(agency: string, extra: Record<string, unknown> = {}) {
  const file = writeConfig(fx.dir, agency, {
    agency,
    signingKey: fx.keyFiles[agency],
    trustDir: fx.trustDir,
    dataDir: `${fx.dir}/data-${agency}`,
    http: { port: 0, bodyLimitBytes: 64 * 1024 },
    nats: { servers: [nats.url], publishTimeoutMs: 1500, jsApiPrefix: OPEN_JS_API },
    clients: [
      { name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] },
      { name: 'analysts', tokenSha256: reader.sha256, roles: ['read-feed'] },
    ],
    retryAfterSeconds: 3,
    ...extra,
  });
  return loadConfig({}, file);
}

beforeAll(async () => {
  await provision(await nats.connect(), ['SG-NPARKS', 'VN-CUSTOMS', 'NG-NCS']);
  sg = await startGateway(configFor('SG-NPARKS'), { log });
  vn = await startGateway(configFor('VN-CUSTOMS'), { log });
});
afterAll(async () => {
  await sg?.close();
  await vn?.close();
  fx.cleanup();
});

function post(
  gw: Gateway,
  path: string,
  body: unknown,
  token: string | null = submitter.token,
  contentType = 'application/json',
) {
  return fetch(gw.url + path, {
    method: 'POST',
    headers: {
      'content-type': contentType,
      ...(token === null ? {} : { authorization: `Bearer ${token}` }),
    },
    body: typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
}

async function get(gw: Gateway, path: string, token = reader.token) {
  const res = await fetch(gw.url + path, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('gateway - intake (POST /v1/alerts)', () => {
  it('validates, signs and publishes; answers 202 only after JetStream acknowledged', async () => {
    const alert = seizureReport('SG-NPARKS');
    const res = await post(sg, '/v1/alerts', alert);
    expect(res.status).toBe(202);
    const receipt = (await res.json()) as { id: string; sequence: number; duplicate: boolean };
    expect(receipt).toEqual({
      id: alert.id,
      sequence: expect.any(Number) as number,
      duplicate: false,
    });
    const jsm = await jetstreamManager(await nats.connect());
    const stored = (await jsm.streams.getMessage(SG_INBOUND, { seq: receipt.sequence }))!;
    expect(stored.subject).toBe('ahub.in.SG-NPARKS.seizure-report');
    // Bound to the origin, the id and the envelope, so no other agency can take it first.
    expect(stored.header.get('Nats-Msg-Id')).toBe(inboundMsgId('SG-NPARKS', alert.id, stored.data));
    const verified = await verifyOrigin(decodeEnvelope(stored.data), {
      trust: loadTrustStore(fx.trustDir, registry),
      registry,
    });
    expect(verified.alert).toEqual(alert);
  });

  it('fills in id, origin and issuedAt when the sender leaves them out', async () => {
    const { id: _id, origin: _o, issuedAt: _i, ...rest } = seizureReport('SG-NPARKS');
    const res = await post(sg, '/v1/alerts', rest);
    expect(res.status).toBe(202);
    const { id, sequence } = (await res.json()) as { id: string; sequence: number };
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    // Resent under the id the gateway gave it (as the README tells senders): the same alert,
    // never a conflict, never a second one.
    await eventually(() => sg.store.sentById(id), 5000, 'receipt');
    const again = await post(sg, '/v1/alerts', { ...rest, id });
    expect(again.status).toBe(202);
    expect(await again.json()).toEqual({ id, sequence, duplicate: true });
  });

  it('a re-post of the same alert returns the original receipt; the stream holds it once', async () => {
    const alert = seizureReport('SG-NPARKS');
    const first = (await (await post(sg, '/v1/alerts', alert)).json()) as { sequence: number };
    const again = await Promise.all(
      [1, 2, 3, 4].map(() =>
        post(sg, '/v1/alerts', alert).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { sequence: number; duplicate: boolean },
        })),
      ),
    );
    for (const r of again)
      expect(r).toEqual({
        status: 202,
        body: { id: alert.id, sequence: first.sequence, duplicate: true },
      });
    const jsm = await jetstreamManager(await nats.connect());
    const msgs = [];
    for (
      let seq = first.sequence;
      seq <= (await jsm.streams.info(SG_INBOUND)).state.last_seq;
      seq++
    ) {
      const m = (await jsm.streams.getMessage(SG_INBOUND, { seq }))!;
      if (m.header.get('Nats-Msg-Id').startsWith(`SG-NPARKS:${alert.id}:`)) msgs.push(m.seq);
    }
    expect(msgs).toEqual([first.sequence]);
  });

  it('an alert accepted before the id left the content digest: its resend is still a duplicate', async () => {
    const alert = seizureReport('SG-NPARKS');
    // What an earlier release stored for an alert whose sender gave the id: the digest with it.
    sg.store.putSent([
      {
        id: alert.id,
        sequence: 999_999,
        contentSha256: createHash('sha256').update(canonicalJson(alert)).digest('hex'),
        acceptedAt: new Date().toISOString(),
        type: alert.type,
        client: 'c',
      },
    ]);
    const res = await post(sg, '/v1/alerts', alert);
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ id: alert.id, sequence: 999_999, duplicate: true });
    const other = await post(sg, '/v1/alerts', { ...alert, handling: 'TLP:RED' });
    expect(other.status).toBe(409);
  });

  it('the same id with different content is a conflict (409), not a silent overwrite', async () => {
    const alert = seizureReport('SG-NPARKS');
    expect((await post(sg, '/v1/alerts', alert)).status).toBe(202);
    await eventually(() => sg.store.sentById(alert.id), 5000, 'receipt');
    const res = await post(sg, '/v1/alerts', { ...alert, handling: 'TLP:RED' });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({
      error: { code: 'ERR_ALERT_ID_CONFLICT', details: [{ pointer: '/id' }] },
    });
  });

  it('one id sent twice at once: with different content one is accepted and the other a conflict (409), never both; with the same content the second is its duplicate', async () => {
    const alert = seizureReport('SG-NPARKS');
    const [a, b] = await Promise.all([
      post(sg, '/v1/alerts', alert),
      post(sg, '/v1/alerts', { ...alert, handling: 'TLP:RED' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([202, 409]);
    // In one batch, the items are submitted at once.
    const other = seizureReport('SG-NPARKS');
    const batch = await post(sg, '/v1/alerts:batch', [
      other,
      { ...other, handling: 'TLP:RED' },
      other,
    ]);
    const body = (await batch.json()) as {
      results: { status: number; sequence?: number; duplicate?: boolean }[];
    };
    expect(body.results.map((r) => r.status)).toEqual([202, 409, 202]);
    expect(body.results[2]).toMatchObject({ duplicate: true, sequence: body.results[0]!.sequence });
  });
});

describe('gateway - every refusal (4xx) with a specific code', () => {
  const cases: [string, () => Promise<Response>, number, string][] = [
    [
      'no token',
      () => post(sg, '/v1/alerts', seizureReport('SG-NPARKS'), null),
      401,
      'ERR_UNAUTHENTICATED',
    ],
    [
      'wrong token',
      () => post(sg, '/v1/alerts', seizureReport('SG-NPARKS'), 'ahub_wrong'),
      401,
      'ERR_UNAUTHENTICATED',
    ],
    [
      'reader cannot submit',
      () => post(sg, '/v1/alerts', seizureReport('SG-NPARKS'), reader.token),
      403,
      'ERR_FORBIDDEN',
    ],
    ['not JSON', () => post(sg, '/v1/alerts', '{"id": '), 400, 'ERR_BAD_JSON'],
    ['empty body', () => post(sg, '/v1/alerts', ''), 400, 'ERR_BAD_JSON'],
    [
      'invalid UTF-8',
      () => post(sg, '/v1/alerts', Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])),
      400,
      'ERR_PAYLOAD_MALFORMED',
    ],
    [
      '__proto__ key',
      () => post(sg, '/v1/alerts', '{"__proto__":{"admin":true}}'),
      400,
      'ERR_PAYLOAD_MALFORMED',
    ],
    [
      'deep nesting',
      () => post(sg, '/v1/alerts', '['.repeat(2000) + ']'.repeat(2000)),
      400,
      'ERR_PAYLOAD_MALFORMED',
    ],
    [
      'wrong media type',
      () => post(sg, '/v1/alerts', 'id=1', submitter.token, 'application/x-www-form-urlencoded'),
      415,
      'ERR_UNSUPPORTED_MEDIA_TYPE',
    ],
    [
      'too large',
      () =>
        post(sg, '/v1/alerts', { ...seizureReport('SG-NPARKS'), summary: 'x'.repeat(70 * 1024) }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'origin of another agency',
      () => post(sg, '/v1/alerts', seizureReport('VN-CUSTOMS')),
      422,
      'ERR_ORIGIN_MISMATCH',
    ],
    [
      'unknown type',
      () => post(sg, '/v1/alerts', { ...seizureReport('SG-NPARKS'), type: 'rumour' }),
      422,
      'ERR_SCHEMA_UNKNOWN',
    ],
    ['unknown route', () => post(sg, '/v1/nothing', {}), 404, 'ERR_NOT_FOUND'],
    // What the router would refuse, said before a 202 (attacker's review, finding 7).
    [
      'issuedAt before the signing key is valid',
      () =>
        post(sg, '/v1/alerts', {
          ...seizureReport('SG-NPARKS'),
          issuedAt: '2018-06-01T00:00:00Z',
        }),
      422,
      'ERR_KEY_NOT_VALID_AT',
    ],
    [
      'issuedAt in the future',
      () =>
        post(sg, '/v1/alerts', {
          ...seizureReport('SG-NPARKS'),
          issuedAt: new Date(Date.now() + 24 * 3600_000).toISOString(),
        }),
      422,
      'ERR_ISSUED_AT_FUTURE',
    ],
    [
      'issuedAt with an ISO 8601 offset RFC 3339 forbids',
      () =>
        post(sg, '/v1/alerts', {
          ...seizureReport('SG-NPARKS'),
          issuedAt: '2026-01-01T08:00:00+08',
        }),
      422,
      'ERR_SCHEMA_INVALID',
    ],
  ];
  for (const [name, send, status, code] of cases) {
    it(`${name}: ${status} ${code}`, async () => {
      const res = await send();
      expect(res.status).toBe(status);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe(code);
      if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    });
  }

  it('422 lists every schema error by JSON pointer', async () => {
    const a = seizureReport('SG-NPARKS') as Alert & {
      seizure: { shipment: { containers: string[] } };
    };
    a.seizure.shipment.containers = ['CSQU3054384'];
    const res = await post(sg, '/v1/alerts', { ...a, handling: 'AMBER', handeling: 'x' });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      id: a.id,
      error: {
        code: 'ERR_SCHEMA_INVALID',
        message: 'the alert does not match its schema',
        details: [
          { pointer: '/handeling', message: 'is not a known member; did you mean "handling"?' },
          {
            pointer: '/handling',
            message:
              'must be one of: "TLP:CLEAR", "TLP:GREEN", "TLP:AMBER", "TLP:AMBER+STRICT", "TLP:RED"',
          },
          {
            pointer: '/seizure/shipment/containers/0',
            message: 'ISO 6346 check digit is 4, expected 3',
          },
        ],
      },
    });
  });

  it('400 for a bad feed query, with the parameter named', async () => {
    const r = await get(vn, '/v1/feed?limit=5000&type=gossip');
    expect(r.status).toBe(400);
    expect(r.body).toMatchObject({
      error: {
        code: 'ERR_BAD_REQUEST',
        details: [{ pointer: '/query/limit' }, { pointer: '/query/type' }],
      },
    });
  });

  it('a gateway keeps serving after all of that', async () => {
    expect((await fetch(`${sg.url}/healthz`)).status).toBe(200);
    expect((await post(sg, '/v1/alerts', seizureReport('SG-NPARKS'))).status).toBe(202);
  });
});

describe('gateway - a signing key the router would refuse: 422 with its code before any 202, nothing published', () => {
  // Each case runs a gateway of NG-NCS with its own data directory and the trust store or signing
  // key that makes the router refuse its alerts.
  const cases: [string, string, () => { trustDir: string; signingKey: string }][] = [
    [
      'its key revoked in the trust store',
      'ERR_KEY_REVOKED',
      () => {
        const certsDir = `${fx.dir}/certs-revoked`;
        cpSync(fx.trustDir, `${certsDir}/trust`, { recursive: true });
        revokeKey({ certsDir, kid: fx.keys['NG-NCS']!.kid, reason: 'keyCompromise' });
        return { trustDir: `${certsDir}/trust`, signingKey: fx.keyFiles['NG-NCS']! };
      },
    ],
    [
      'a key the trust store does not hold',
      'ERR_KEY_UNKNOWN',
      () => {
        const g = generateKey({ certsDir: `${fx.dir}/certs-unknown`, principal: 'NG-NCS' });
        return { trustDir: fx.trustDir, signingKey: g.privateFile };
      },
    ],
    [
      'the key of another agency',
      'ERR_KEY_AGENCY_MISMATCH',
      () => ({ trustDir: fx.trustDir, signingKey: fx.keyFiles['VN-CUSTOMS']! }),
    ],
  ];
  for (const [name, code, keys] of cases) {
    it(`${name}: 422 ${code}`, async () => {
      const subject = inboundSubject('NG-NCS', 'seizure-report');
      const jsm = await jetstreamManager(await nats.connect());
      const stored = async () =>
        (await jsm.streams.info(inboundStreamName('NG-NCS'), { subjects_filter: subject })).state
          .subjects?.[subject] ?? 0;
      const before = await stored();
      const ng = await startGateway(
        configFor('NG-NCS', { ...keys(), dataDir: `${fx.dir}/data-key-${code}` }),
        { log },
      );
      try {
        const alert = seizureReport('NG-NCS');
        const res = await post(ng, '/v1/alerts', alert);
        expect(res.status).toBe(422);
        const body = (await res.json()) as { error: { details?: unknown } };
        expect(body).toMatchObject({ id: alert.id, error: { code } });
        // About the gateway's key, not a member of the alert: no pointer into it.
        expect(body.error.details).toBeUndefined();
        const batch = await post(ng, '/v1/alerts:batch', [seizureReport('NG-NCS')]);
        expect(await batch.json()).toMatchObject({
          accepted: 0,
          results: [{ status: 422, error: { code } }],
        });
        expect(ng.store.sentById(alert.id)).toBeUndefined();
        expect(await stored()).toBe(before);
      } finally {
        await ng.close();
      }
    });
  }
});

describe('gateway - batch (POST /v1/alerts:batch)', () => {
  it('JSON array: one result per item, valid ones accepted, invalid ones explained', async () => {
    const good = seizureReport('SG-NPARKS');
    const res = await post(sg, '/v1/alerts:batch', [
      good,
      { ...seizureReport('SG-NPARKS'), handling: 'TLP:PURPLE' },
      good,
    ]);
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      accepted: number;
      rejected: number;
      results: {
        index: number;
        status: number;
        id?: string;
        duplicate?: boolean;
        error?: { code: string };
      }[];
    };
    expect(body.accepted).toBe(2);
    expect(body.rejected).toBe(1);
    expect(body.results.map((r) => r.status)).toEqual([202, 422, 202]);
    expect(body.results[1]!.error?.code).toBe('ERR_SCHEMA_INVALID');
    expect(body.results.filter((r) => r.duplicate === true)).toHaveLength(1);
  });
  it('NDJSON, with a line that is not JSON', async () => {
    const ndjson = `${JSON.stringify(seizureReport('SG-NPARKS'))}\n{oops\n${JSON.stringify(seizureReport('SG-NPARKS'))}\n`;
    const res = await post(sg, '/v1/alerts:batch', ndjson, submitter.token, 'application/x-ndjson');
    const body = (await res.json()) as {
      results: { status: number; error?: { code: string; details: { message: string }[] } }[];
    };
    expect(body.results.map((r) => r.status)).toEqual([202, 400, 202]);
    expect(body.results[1]!.error?.details[0]!.message).toMatch(/^line 2:/);
  });
});

describe('gateway - feed', () => {
  it('stores verified alerts, serves them by cursor, and by id', async () => {
    const a = seizureReport('SG-NPARKS');
    await publishToFeed(await nats.connect(), a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    const item = await eventually(() => vn.store.receivedById(a.id), 5000, 'feed item');
    expect(item).toMatchObject({
      id: a.id,
      origin: 'SG-NPARKS',
      status: 'active',
      agreement: { id: 'TEST', version: 1 },
      alert: a,
    });
    const byId = await get(vn, `/v1/alerts/${a.id}`);
    expect(byId.body).toMatchObject({ direction: 'received', id: a.id });
    expect((await get(vn, `/v1/alerts/${a.id}`, submitter.token)).status).toBe(404);
  });

  it('pagination never skips or repeats an item while new items arrive', async () => {
    const nc = await nats.connect();
    const start = (await get(vn, '/v1/feed?limit=1000')).body as { next: string };
    const ids = Array.from({ length: 120 }, () => seizureReport('NG-NCS'));
    const producing = (async () => {
      for (const a of ids) await publishToFeed(nc, a, fx.keys['NG-NCS']!, fx.hubKey, 'VN-CUSTOMS');
    })();
    const seen: string[] = [];
    let cursor = start.next;
    const deadline = Date.now() + 20_000;
    while (seen.length < ids.length && Date.now() < deadline) {
      const page = (await get(vn, `/v1/feed?after=${cursor}&limit=7&type=seizure-report`)).body as {
        items: FeedItem[];
        next: string;
      };
      for (const i of page.items) if (i.origin === 'NG-NCS') seen.push(i.id);
      cursor = page.next;
      if (page.items.length === 0) await new Promise((r) => setTimeout(r, 10));
    }
    await producing;
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(new Set(ids.map((a) => a.id)));
  });

  it('SSE: live items, then resume after a disconnect with Last-Event-ID, nothing missed or repeated', async () => {
    const nc = await nats.connect();
    const before = (await get(vn, '/v1/feed?limit=1000')).body as { next: string };
    const first = Array.from({ length: 5 }, () => seizureReport('SG-NPARKS'));
    const second = Array.from({ length: 5 }, () => seizureReport('SG-NPARKS'));

    const read = async (lastEventId: string, count: number) => {
      const ctrl = new AbortController();
      const res = await fetch(`${vn.url}/v1/feed/stream`, {
        headers: { authorization: `Bearer ${reader.token}`, 'last-event-id': lastEventId },
        signal: ctrl.signal,
      });
      expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
      // The live feed carries the alerts themselves: stored by no cache, read as what it says.
      expect(res.headers.get('cache-control')).toBe('no-store, no-transform');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const events: { id: string; item: FeedItem }[] = [];
      const decoder = new TextDecoder();
      let buf = '';
      const stream = res.body!.getReader();
      while (events.length < count) {
        const { value, done } = (await stream.read()) as { value?: Uint8Array; done: boolean };
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, at);
          buf = buf.slice(at + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (id && data) events.push({ id, item: JSON.parse(data) as FeedItem });
        }
      }
      ctrl.abort();
      return events;
    };

    // The alerts published, each once, in the order of their cursors (the inbox stores them as
    // their verifications end, which run in parallel: not always the order they were published).
    const expectOnceInCursorOrder = (
      got: { id: string; item: FeedItem }[],
      sent: readonly { id: string }[],
    ) => {
      expect(got.map((e) => e.item.id).sort()).toEqual(sent.map((a) => a.id).sort());
      const cursors = got.map((e) => Number(e.id));
      expect(cursors).toEqual([...cursors].sort((x, y) => x - y));
      expect(new Set(cursors).size).toBe(cursors.length);
    };
    const live = read(before.next, 5);
    for (const a of first)
      await publishToFeed(nc, a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    const got1 = await live;
    expectOnceInCursorOrder(got1, first);
    // Disconnected: more arrive meanwhile.
    for (const a of second)
      await publishToFeed(nc, a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    await eventually(() => vn.store.receivedById(second[4]!.id), 5000, 'second batch');
    const got2 = await read(got1[got1.length - 1]!.id, 5);
    expectOnceInCursorOrder(got2, second);
    // Resumed from a cursor past the end: the stream starts from the last real cursor, so what
    // arrives next is delivered, never skipped for cursors the client wrongly asked past.
    const third = Array.from({ length: 2 }, () => seizureReport('SG-NPARKS'));
    const pastEnd = read(String(Number(got2[got2.length - 1]!.id) + 1000), 2);
    await new Promise((r) => setTimeout(r, 200));
    for (const a of third)
      await publishToFeed(nc, a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    expectOnceInCursorOrder(await pastEnd, third);
  });

  it('a tampered message is quarantined with its reason, counted, and never served', async () => {
    const nc = await nats.connect();
    const tampered = seizureReport('SG-NPARKS');
    await publishToFeed(nc, tampered, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS', (bytes) => {
      const b = Buffer.from(bytes);
      const at = b.indexOf('eyJ'); // start of the base64url payload
      b[at + 40] = b[at + 40] === 0x41 ? 0x42 : 0x41;
      return b;
    });
    const forOther = seizureReport('SG-NPARKS');
    // Countersigned for NG-NCS but published onto VN-CUSTOMS's feed.
    const { routedEnvelope } = await import('@alert-hub/testkit');
    const { encodeEnvelope, feedSubject } = await import('@alert-hub/core');
    const { jetstream } = await import('@nats-io/jetstream');
    await jetstream(nc).publish(
      feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report'),
      encodeEnvelope(await routedEnvelope(forOther, fx.keys['SG-NPARKS']!, fx.hubKey, 'NG-NCS')),
    );

    // A notice signed by an agency's key, on a notice subject (docs/protocol.md §6.2).
    const { noticeSubject, signNotice } = await import('@alert-hub/core');
    const forged = await signNotice(
      {
        notice: newAlertId(),
        hub: 'SG-NPARKS',
        to: 'VN-CUSTOMS',
        issuedAt: new Date().toISOString(),
        events: [],
      },
      fx.keys['SG-NPARKS']!,
    );
    await jetstream(nc).publish(noticeSubject('VN-CUSTOMS', 'SG-NPARKS'), encodeEnvelope(forged));

    const q = await eventually(
      () => {
        const rows = vn.store.quarantined();
        return rows.length >= 3 ? rows : undefined;
      },
      5000,
      'quarantine rows',
    );
    expect(q.map((r) => r.code).sort()).toEqual([
      'ERR_ENVELOPE_HEADER_MISMATCH',
      'ERR_KEY_AGENCY_MISMATCH',
      'ERR_SIGNATURE_INVALID',
    ]);
    expect(vn.store.receivedById(tampered.id)).toBeUndefined();
    expect(vn.store.receivedById(forOther.id)).toBeUndefined();
    // Each refused message is acked once quarantined: nothing waits for an ack or is delivered
    // again, and each is quarantined once (docs/protocol.md §6.2).
    const jsm = await jetstreamManager(nc);
    await eventually(
      async () => {
        const c = await jsm.consumers.info('AHUB_FEEDS', 'feed-VN-CUSTOMS');
        return c.num_ack_pending === 0 && c.num_pending === 0 ? c : undefined;
      },
      5000,
      'every feed message acked',
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect(vn.store.quarantined()).toHaveLength(3);
    expect((await jsm.consumers.info('AHUB_FEEDS', 'feed-VN-CUSTOMS')).num_redelivered).toBe(0);
    const metrics = await (await fetch(`${vn.url}/metrics`)).text();
    expect(metrics).toMatch(
      /ahub_gateway_feed_quarantined_total\{reason="ERR_SIGNATURE_INVALID",agency="VN-CUSTOMS"\} 1/,
    );
  });

  it('a per-copy countersignature (the retired form) is stored by default, and quarantined with ERR_ROUTE_FORM_RETIRED where the gateway refuses it', async () => {
    const nc = await nats.connect();
    const { countersign, encodeEnvelope, feedSubject } = await import('@alert-hub/core');
    const { routedEnvelope } = await import('@alert-hub/testkit');
    const { jetstream } = await import('@nats-io/jetstream');
    const js = jetstream(nc);
    // Signed by the origin, then countersigned per copy as the previous router release did.
    const perCopy = async (a: Alert, recipient: string) => {
      const routed = await routedEnvelope(a, fx.keys['SG-NPARKS']!, fx.hubKey, recipient);
      const origin = { payload: routed.payload, signatures: [routed.signatures[0]!] };
      return encodeEnvelope(
        await countersign(origin, fx.hubKey, {
          recipient,
          agreement: { id: 'TEST', version: 1 },
          routed_at: new Date().toISOString(),
          onward: false,
          alert_id: a.id,
        }),
      );
    };
    const ng = await startGateway(
      configFor('NG-NCS', { feed: { perCopyCountersignature: 'refuse' } }),
      { log },
    );
    try {
      const forVn = seizureReport('SG-NPARKS');
      const forNg = seizureReport('SG-NPARKS');
      const current = seizureReport('SG-NPARKS');
      await js.publish(
        feedSubject('VN-CUSTOMS', 'SG-NPARKS', 'seizure-report'),
        await perCopy(forVn, 'VN-CUSTOMS'),
      );
      await js.publish(
        feedSubject('NG-NCS', 'SG-NPARKS', 'seizure-report'),
        await perCopy(forNg, 'NG-NCS'),
      );
      await publishToFeed(nc, current, fx.keys['SG-NPARKS']!, fx.hubKey, 'NG-NCS');
      // VN-CUSTOMS (default: accept) stores the per-copy form.
      await eventually(() => vn.store.receivedById(forVn.id), 5000, 'per-copy copy stored');
      // NG-NCS (refuse) stores the current form and quarantines the retired one.
      await eventually(() => ng.store.receivedById(current.id), 5000, 'tree-form copy stored');
      const q = await eventually(
        () => ng.store.quarantined().find((r) => r.code === 'ERR_ROUTE_FORM_RETIRED'),
        5000,
        'retired form quarantined',
      );
      expect(q.code).toBe('ERR_ROUTE_FORM_RETIRED');
      expect(ng.store.receivedById(forNg.id)).toBeUndefined();
    } finally {
      await ng.close();
    }
  });

  it('a retraction marks the original withdrawn, even when it arrives first', async () => {
    const nc = await nats.connect();
    const original = seizureReport('SG-NPARKS');
    const retraction = {
      id: newAlertId(),
      type: 'retraction',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: new Date().toISOString(),
      handling: 'TLP:AMBER',
      retracts: original.id,
      action: 'withdraw',
      reason: 'container number was wrong',
    } as Alert;
    await publishToFeed(nc, retraction, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    await eventually(() => vn.store.receivedById(retraction.id), 5000, 'retraction');
    await publishToFeed(nc, original, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    const item = await eventually(() => vn.store.receivedById(original.id), 5000, 'original');
    expect(item).toMatchObject({
      status: 'withdrawn',
      statusReason: 'container number was wrong',
      retractedBy: retraction.id,
    });
  });
});

describe('gateway - an alert is identified by (origin, id)', () => {
  it('two agencies’ alerts with the same id both land; ?origin names one; a retraction touches only its own origin’s', async () => {
    const nc = await nats.connect();
    const id = newAlertId();
    const fromSg = seizureReport('SG-NPARKS', { id });
    const fromNg = seizureReport('NG-NCS', { id });
    await publishToFeed(nc, fromSg, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    await publishToFeed(nc, fromNg, fx.keys['NG-NCS']!, fx.hubKey, 'VN-CUSTOMS');
    const both = await eventually(
      () => (vn.store.receivedWithId(id).length === 2 ? vn.store.receivedWithId(id) : undefined),
      5000,
      'both alerts',
    );
    expect(both.map((i) => i.origin).sort()).toEqual(['NG-NCS', 'SG-NPARKS']);

    // Neither hides the other: the id alone is ambiguous, the origin picks one.
    const ambiguous = await get(vn, `/v1/alerts/${id}`);
    expect(ambiguous.status).toBe(409);
    expect((ambiguous.body['error'] as { code: string }).code).toBe('ERR_ALERT_ID_AMBIGUOUS');
    const ng = await get(vn, `/v1/alerts/${id}?origin=NG-NCS`);
    expect(ng.status).toBe(200);
    expect(ng.body).toMatchObject({ direction: 'received', id, origin: 'NG-NCS', alert: fromNg });
    const sigs = await get(vn, `/console/api/alerts/${id}/signatures?origin=SG-NPARKS`);
    expect(sigs.body).toMatchObject({ origin: { agency: 'SG-NPARKS' } });
    expect((await get(vn, `/v1/alerts/${id}?origin=KE-KWS`)).status).toBe(404);
    // Not an agency id: refused, never an empty answer (a lower-case id names no agency)
    for (const origin of ['a.b', 'sg-nparks', 'SG_NPARKS', 'SGNPARKS']) {
      const bad = await get(vn, `/v1/alerts/${id}?origin=${origin}`);
      expect(bad.status, origin).toBe(400);
      expect((bad.body['error'] as { code: string }).code).toBe('ERR_BAD_REQUEST');
    }
    const feed = (await get(vn, '/v1/feed?limit=1000')).body as { items: FeedItem[] };
    expect(
      feed.items
        .filter((i) => i.id === id)
        .map((i) => i.origin)
        .sort(),
    ).toEqual(['NG-NCS', 'SG-NPARKS']);

    // SG withdraws its alert: NG's alert with the same id stays active.
    const retraction = {
      id: newAlertId(),
      type: 'retraction',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: new Date().toISOString(),
      handling: 'TLP:AMBER',
      retracts: id,
      action: 'withdraw',
      reason: 'withdrawn',
    } as Alert;
    await publishToFeed(nc, retraction, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    await eventually(() => vn.store.receivedById(retraction.id), 5000, 'retraction');
    const after = Object.fromEntries(vn.store.receivedWithId(id).map((i) => [i.origin, i.status]));
    expect(after).toEqual({ 'SG-NPARKS': 'withdrawn', 'NG-NCS': 'active' });
  });
});

/** The inbox as the first release made it: one row per alert id, whatever its origin. */
const INBOX_KEYED_BY_ID = `
CREATE TABLE inbox (
  seq               INTEGER PRIMARY KEY AUTOINCREMENT,
  alert_id          TEXT    NOT NULL UNIQUE,
  type              TEXT    NOT NULL,
  origin            TEXT    NOT NULL,
  handling          TEXT    NOT NULL,
  issued_at         TEXT    NOT NULL,
  received_at       TEXT    NOT NULL,
  agreement_id      TEXT    NOT NULL,
  agreement_version INTEGER NOT NULL,
  onward            INTEGER NOT NULL,
  stream_seq        INTEGER NOT NULL,
  retracts          TEXT,
  status            TEXT    NOT NULL DEFAULT 'active',
  status_reason     TEXT,
  corrected_by      TEXT,
  retracted_by      TEXT,
  alert             TEXT    NOT NULL,
  envelope          BLOB    NOT NULL
);
CREATE INDEX inbox_type_seq ON inbox (type, seq);
CREATE INDEX inbox_retracts ON inbox (retracts) WHERE retracts IS NOT NULL;
`;

describe('gateway - inbox migration', () => {
  it('an inbox keyed by alert id alone is rebuilt keyed by (origin, id): rows, cursors and statuses kept, a cursor never reused; then the same id from another origin lands', async () => {
    const agency = 'NG-NCS';
    // A data directory of its own: other tests run a gateway of this agency too.
    const dir = `${fx.dir}/data-migration-${agency}`;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const db = openDatabase(`${dir}/gateway-${agency}.db`);
    db.exec(INBOX_KEYED_BY_ID);
    const old = [
      seizureReport('SG-NPARKS'),
      seizureReport('SG-NPARKS'),
      seizureReport('VN-CUSTOMS'),
    ];
    const insert = db.prepare(
      `INSERT INTO inbox (alert_id, type, origin, handling, issued_at, received_at, agreement_id, agreement_version, onward, stream_seq, status, status_reason, alert, envelope)
       VALUES (?, ?, ?, ?, ?, ?, 'TEST', 1, 0, ?, ?, ?, ?, ?)`,
    );
    for (const [i, a] of [...old, seizureReport('SG-NPARKS')].entries()) {
      const envelope = encodeEnvelope(
        await routedEnvelope(a, fx.keys[a.origin]!, fx.hubKey, agency),
      );
      insert.run(
        a.id,
        a.type,
        a.origin,
        a.handling,
        a.issuedAt,
        a.issuedAt,
        i + 1,
        i === 1 ? 'withdrawn' : 'active',
        i === 1 ? 'wrong container' : null,
        JSON.stringify(a),
        envelope,
      );
    }
    // The newest row is gone (cursor 4 was handed out once): the next alert must not get it again.
    db.prepare('DELETE FROM inbox WHERE seq = 4').run();
    db.close();

    const ng = await startGateway(configFor(agency, { dataDir: dir }), { log });
    try {
      const before = (await get(ng, '/v1/feed?limit=1000')).body as { items: FeedItem[] };
      expect(before.items.map((i) => [i.cursor, i.id, i.origin, i.status])).toEqual([
        ['1', old[0]!.id, 'SG-NPARKS', 'active'],
        ['2', old[1]!.id, 'SG-NPARKS', 'withdrawn'],
        ['3', old[2]!.id, 'VN-CUSTOMS', 'active'],
      ]);
      expect(before.items[1]!.statusReason).toBe('wrong container');
      const sigs = await get(ng, `/console/api/alerts/${old[2]!.id}/signatures`);
      expect(sigs.body).toMatchObject({ verified: true, origin: { agency: 'VN-CUSTOMS' } });

      // Singapore's alert with the id Viet Nam used is stored beside it, at a new cursor.
      const same = seizureReport('SG-NPARKS', { id: old[2]!.id });
      await publishToFeed(await nats.connect(), same, fx.keys['SG-NPARKS']!, fx.hubKey, agency);
      const both = await eventually(
        () =>
          ng.store.receivedWithId(same.id).length === 2
            ? ng.store.receivedWithId(same.id)
            : undefined,
        5000,
        'both alerts with the same id',
      );
      expect(both.map((i) => [i.cursor, i.origin])).toEqual([
        ['3', 'VN-CUSTOMS'],
        ['5', 'SG-NPARKS'],
      ]);
    } finally {
      await ng.close();
    }
  });
});

describe('gateway - operations', () => {
  it('readyz reports each check', async () => {
    const r = await get(vn, '/readyz');
    expect(r).toEqual({
      status: 200,
      body: {
        status: 'ready',
        checks: {
          nats: 'connected',
          jetstream: 'ok',
          database: 'writable',
          feed: 'consuming',
          witness: 'ok',
        },
      },
    });
  });
  it('metrics count accepted and rejected alerts by reason', async () => {
    const text = await (await fetch(`${sg.url}/metrics`)).text();
    expect(text).toMatch(
      /ahub_gateway_alerts_accepted_total\{type="seizure-report",agency="SG-NPARKS"\} \d+/,
    );
    expect(text).toMatch(
      /ahub_gateway_alerts_rejected_total\{reason="ERR_SCHEMA_INVALID",agency="SG-NPARKS"\} \d+/,
    );
    expect(text).toMatch(/ahub_gateway_intake_seconds_bucket/);
  });
  it('logs one line per request with the alert id, and never a token or a named party', async () => {
    const a = seizureReport('SG-NPARKS', { summary: 'consignee Example Trading Co, Hai Phong' });
    await post(sg, '/v1/alerts', a);
    await eventually(() => lines.some((l) => l.includes(a.id)), 2000, 'request log line');
    const line = JSON.parse(
      lines.find((l) => l.includes(a.id) && l.includes('"request"'))!,
    ) as Record<string, unknown>;
    expect(line).toMatchObject({
      method: 'POST',
      route: '/v1/alerts',
      status: 202,
      client: 'risk-engine',
      alertId: a.id,
    });
    const all = lines.join('\n');
    expect(all).not.toContain(submitter.token);
    expect(all).not.toContain(reader.token);
    expect(all).not.toContain('Example Trading Co');
    expect(all).not.toContain('"d":');
  });
  it('an alert refused for an id that is not an alert id: the id is not logged', async () => {
    // The answer may say what the client sent; the log keeps only ids (docs/security.md).
    const text = 'Jane Doe passport X1234567';
    const res = await post(sg, '/v1/alerts', seizureReport('SG-NPARKS', { id: text }));
    expect(res.status).toBe(422);
    await eventually(
      () => lines.some((l) => l.includes('"request"') && l.includes('"status":422')),
      2000,
      'request log line',
    );
    expect(lines.join('\n')).not.toContain('Jane');
  });
});

describe('gateway - a proof of delivery the hub cannot give', () => {
  const path = `/v1/audit/inclusion/${seizureReport('SG-NPARKS').id}`;
  /** VN-CUSTOMS's reader asks for the proof; the router is played by a reply of `reply`, if any. */
  async function proofRequest(reply?: string): Promise<Response> {
    const ask = () =>
      fetch(vn.url + path, { headers: { authorization: `Bearer ${reader.token}` } });
    if (reply === undefined) return ask();
    const nc = await nats.connect();
    try {
      return await answeringProofs(nc, 'hub', 'VN-CUSTOMS', reply, ask);
    } finally {
      await nc.close();
    }
  }
  const errorOf = async (res: Response) =>
    ((await res.json()) as { error: { code: string; message: string } }).error;
  /** A checkpoint of size 1 the hub's key signed, as the router serves one. */
  const hubSigned = () =>
    signNote(formatCheckpoint({ origin: auditOrigin('hub'), size: 1, root: Buffer.alloc(32, 7) }), {
      name: auditOrigin('hub'),
      privateKey: fx.hubKey.privateKey,
      publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
    });

  it('no router answers: 503 ERR_NATS_UNAVAILABLE with Retry-After (a retry may help), never a 500', async () => {
    const res = await proofRequest();
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('3');
    expect((await errorOf(res)).code).toBe('ERR_NATS_UNAVAILABLE');
  });
  it('a reply that is not one of the protocol: 502 ERR_HUB_REPLY_INVALID, never a 500', async () => {
    const res = await proofRequest('{"checkpoint": 1, "entries": []}');
    expect(res.status).toBe(502);
    const error = await errorOf(res);
    expect(error.code).toBe('ERR_HUB_REPLY_INVALID');
    expect(error.message).toMatch(/no string checkpoint/);
  });
  it('a hub-signed reply whose record names no string origin: answered, not ok, never a 500', async () => {
    // The shape is checked member by member only for what the gateway reads before it verifies;
    // the record is typed by the verification, which this one fails.
    const res = await proofRequest(
      JSON.stringify({
        checkpoint: hubSigned(),
        entries: [
          {
            record: { origin: { not: 'a string' } },
            index: 0,
            proof: [],
            route: { leaf: '{}', index: 0, path: [] },
          },
        ],
      }),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      ok: boolean;
      entries: { verified: boolean; copyMatches: boolean | null }[];
    };
    expect(body.ok).toBe(false);
    expect(body.entries).toMatchObject([{ verified: false, copyMatches: null }]);
  });
  it("a fault of this gateway after the router answered (its witness's state unreadable) is a 500, not a 503 blaming the router", async () => {
    const state = join(
      fx.dir,
      'data-VN-CUSTOMS',
      'witness-VN-CUSTOMS',
      `log-${createHash('sha256').update(auditOrigin('hub')).digest('hex').slice(0, 16)}.json`,
    );
    expect(existsSync(state)).toBe(false);
    writeFileSync(state, '{');
    try {
      const res = await proofRequest(JSON.stringify({ checkpoint: hubSigned(), entries: [] }));
      expect(res.status).toBe(500);
      expect(res.headers.get('retry-after')).toBeNull();
      expect((await errorOf(res)).code).toBe('ERR_INTERNAL');
    } finally {
      rmSync(state);
    }
  });
});

describe('gateway - NATS outage', () => {
  it('503 with Retry-After while NATS is down, nothing half-sent; after restart everything is accepted and nothing lost', async () => {
    const before = seizureReport('SG-NPARKS');
    const r1 = (await (await post(sg, '/v1/alerts', before)).json()) as { sequence: number };
    await nats.server.kill();
    const during = seizureReport('SG-NPARKS');
    const res = await eventually(
      async () => {
        const r = await post(sg, '/v1/alerts', during);
        return r.status === 503 ? r : undefined;
      },
      10_000,
      '503',
    );
    expect(res.headers.get('retry-after')).toBe('3');
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_NATS_UNAVAILABLE',
    );
    expect((await fetch(`${sg.url}/readyz`)).status).toBe(503);

    await nats.server.restart();
    const r2 = await eventually(
      async () => {
        const r = await post(sg, '/v1/alerts', during);
        return r.status === 202
          ? ((await r.json()) as { sequence: number; duplicate: boolean })
          : undefined;
      },
      15_000,
      'accepted after restart',
    );
    const jsm = await jetstreamManager(await nats.connect());
    expect(
      (await jsm.streams.getMessage(SG_INBOUND, { seq: r1.sequence }))!.header.get('Nats-Msg-Id'),
    ).toMatch(new RegExp(`^SG-NPARKS:${before.id}:`));
    const copies = [];
    const last = (await jsm.streams.info(SG_INBOUND)).state.last_seq;
    for (let seq = r1.sequence; seq <= last; seq++) {
      const m = await jsm.streams.getMessage(SG_INBOUND, { seq }).catch(() => undefined);
      if (m?.header.get('Nats-Msg-Id').startsWith(`SG-NPARKS:${during.id}:`)) copies.push(seq);
    }
    expect(copies).toEqual([r2.sequence]);
    await eventually(
      async () => (await fetch(`${sg.url}/readyz`)).status === 200,
      10_000,
      'ready again',
    );
  });
});

describe('gateway - overload', () => {
  it('live feeds: beyond http.maxFeedStreamsPerClient a client gets 429 while another still opens one; one closed frees its place; http.maxFeedStreams bounds them all', async () => {
    const other = createToken();
    const small = await startGateway(
      configFor('VN-CUSTOMS', {
        dataDir: `${fx.dir}/data-streams`,
        http: { port: 0, maxFeedStreamsPerClient: 3, maxFeedStreams: 5 },
        feed: { enabled: false },
        clients: [
          { name: 'analysts', tokenSha256: reader.sha256, roles: ['read-feed'] },
          { name: 'night-desk', tokenSha256: other.sha256, roles: ['read-feed'] },
        ],
      }),
      { log },
    );
    const open: AbortController[] = [];
    const stream = async (token: string) => {
      const ctrl = new AbortController();
      const res = await fetch(`${small.url}/v1/feed/stream`, {
        headers: { authorization: `Bearer ${token}` },
        signal: ctrl.signal,
      });
      if (res.status === 200) {
        open.push(ctrl);
        return { status: 200, code: undefined };
      }
      const body = (await res.json()) as { error: { code: string } };
      return { status: res.status, code: body.error.code };
    };
    try {
      for (let i = 0; i < 3; i++) expect((await stream(reader.token)).status).toBe(200);
      expect(await stream(reader.token)).toEqual({ status: 429, code: 'ERR_RATE_LIMITED' });
      expect((await stream(other.token)).status).toBe(200);
      // One of the first client's closed: it may open another.
      open.shift()!.abort();
      await eventually(
        async () => (await stream(reader.token)).status === 200,
        5_000,
        'a freed place',
      );
      // Five open in all: the gateway's bound, for every client.
      expect((await stream(other.token)).status).toBe(200);
      expect(await stream(other.token)).toEqual({ status: 429, code: 'ERR_RATE_LIMITED' });
    } finally {
      for (const c of open) c.abort();
      await small.close();
    }
  });
  it('beyond http.maxInFlight it answers 503 ERR_OVERLOADED at once, and accepts again after', async () => {
    const small = await startGateway(
      configFor('SG-NPARKS', {
        dataDir: `${fx.dir}/data-overload`,
        http: { port: 0, maxInFlight: 3 },
      }),
      { log },
    );
    try {
      const res = await post(
        small,
        '/v1/alerts:batch',
        Array.from({ length: 10 }, () => seizureReport('SG-NPARKS')),
      );
      const body = (await res.json()) as {
        accepted: number;
        results: { status: number; error?: { code: string } }[];
      };
      expect(body.accepted).toBe(3);
      expect(body.results.filter((r) => r.error?.code === 'ERR_OVERLOADED')).toHaveLength(7);
      const single = await post(small, '/v1/alerts', seizureReport('SG-NPARKS'));
      expect(single.status).toBe(202);
    } finally {
      await small.close();
    }
  });
});

describe('gateway - console API', () => {
  it('console validate gives the codes and issues of intake, without publishing', async () => {
    const drafts: unknown[] = [
      seizureReport('SG-NPARKS'),
      { ...seizureReport('SG-NPARKS'), handling: 'TLP:PINK' },
      { ...seizureReport('SG-NPARKS'), origin: 'VN-CUSTOMS' },
      { type: 'no-such-type', version: 1 },
      [],
    ];
    for (const draft of drafts) {
      const v = await post(sg, '/console/api/validate', draft);
      expect(v.status).toBe(200);
      const verdict = (await v.json()) as { ok: boolean; error?: unknown };
      // Intake on the same draft, with a fresh id so nothing is a duplicate.
      const withId = isJsonObject(draft) ? { ...draft, id: undefined } : draft;
      const s = await post(sg, '/v1/alerts', withId);
      if (verdict.ok) expect(s.status).toBe(202);
      // The same error as intake's (intake's answer names the alert's id besides).
      else
        expect({ error: verdict.error }).toEqual({
          error: ((await s.json()) as { error: unknown }).error,
        });
    }
  });

  it('console validate and schemas need a token with the right role', async () => {
    expect((await post(sg, '/console/api/validate', {}, null)).status).toBe(401);
    expect((await post(sg, '/console/api/validate', {}, reader.token)).status).toBe(403);
    const schemas = await get(sg, '/console/api/schemas');
    expect(schemas.status).toBe(200);
    expect(schemas.body['agency']).toBe('SG-NPARKS');
    expect((schemas.body['schemas'] as { $id: string }[]).map((s) => s.$id)).toContain(
      'https://schemas.alert-hub.example/common/v1.json',
    );
  });

  it('console signatures: the verified headers of a received alert; ERR_NOT_FOUND otherwise; a path naming no alert id is 400 on every route about one alert', async () => {
    const a = seizureReport('SG-NPARKS');
    await publishToFeed(await nats.connect(), a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    const sigs = await eventually(async () => {
      const r = await get(vn, `/console/api/alerts/${a.id}/signatures`);
      return r.status === 200 ? r.body : undefined;
    });
    expect(sigs['verified']).toBe(true);
    expect(sigs['origin']).toMatchObject({ agency: 'SG-NPARKS', kid: fx.keys['SG-NPARKS']!.kid });
    expect(sigs['hub']).toMatchObject({ recipient: 'VN-CUSTOMS', kid: fx.hubKey.kid });
    const missing = await get(
      vn,
      `/console/api/alerts/${seizureReport('SG-NPARKS').id}/signatures`,
    );
    expect(missing.status).toBe(404);
    expect((missing.body['error'] as { code: string }).code).toBe('ERR_NOT_FOUND');
    // Not an alert id: refused as such, never looked up (nor logged, nor repeated).
    for (const [path, token] of [
      ['/console/api/alerts/nope/signatures', reader.token],
      ['/console/api/alerts/nope/reported', submitter.token],
      ['/v1/alerts/nope', reader.token],
      ['/v1/alerts/nope/status', submitter.token],
      [`/v1/alerts/${a.id.toUpperCase()}`, reader.token],
    ] as const) {
      const r = await get(vn, path, token);
      expect(r.status, path).toBe(400);
      expect(r.body['error'], path).toMatchObject({
        code: 'ERR_BAD_REQUEST',
        details: [{ pointer: '/params/id' }],
      });
    }
  });
  it('console sent list: newest first; the outcomes an agency reported are listed under the alert they answer', async () => {
    const answered = seizureReport('SG-NPARKS').id;
    const first = seizureReport('VN-CUSTOMS');
    expect((await post(vn, '/v1/alerts', first)).status).toBe(202);
    const outcome = {
      type: 'outcome',
      version: 1,
      handling: 'TLP:AMBER',
      answers: answered,
      result: 'arrest',
      arrests: 3,
    };
    const res = await post(vn, '/v1/alerts', outcome);
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const list = await eventually(async () => {
      const r = await get(vn, '/console/api/sent', submitter.token);
      const items = r.body['items'] as { id: string }[];
      return items.some((i) => i.id === id) ? items : undefined;
    });
    expect(list.map((i) => i.id).indexOf(id)).toBeLessThan(list.map((i) => i.id).indexOf(first.id));
    expect(list.find((i) => i.id === id)).toMatchObject({
      type: 'outcome',
      state: 'accepted',
      answers: answered,
      result: 'arrest',
      recipients: { pending: 0, delivered: 0, refused: 0 },
      outcomes: 0,
    });
    const reported = await get(vn, `/console/api/alerts/${answered}/reported`, submitter.token);
    expect(reported.status).toBe(200);
    expect(reported.body['items']).toEqual([
      {
        id,
        acceptedAt: expect.any(String) as string,
        result: 'arrest',
        status: expect.objectContaining({ id, type: 'outcome', state: 'accepted' }) as unknown,
      },
    ]);
    const none = await get(vn, `/console/api/alerts/${first.id}/reported`, submitter.token);
    expect(none.body['items']).toEqual([]);
    // Sent alerts are for those who may send.
    expect((await get(vn, '/console/api/sent', reader.token)).status).toBe(403);
    expect((await get(vn, `/console/api/alerts/${answered}/reported`, reader.token)).status).toBe(
      403,
    );
  });
  it('a status lists the 100 newest outcomes partners reported, oldest first, and counts them all', async () => {
    const sent = seizureReport('SG-NPARKS');
    expect((await post(sg, '/v1/alerts', sent)).status).toBe(202);
    const nc = await nats.connect();
    const ids: string[] = [];
    for (let i = 0; i < 102; i++) {
      const outcome = {
        id: newAlertId(),
        type: 'outcome',
        version: 2,
        origin: 'VN-CUSTOMS',
        issuedAt: new Date().toISOString(),
        handling: 'TLP:AMBER',
        answers: sent.id,
        answersOrigin: 'SG-NPARKS',
        result: 'under-investigation',
      } as unknown as Alert;
      ids.push(outcome.id);
      await publishToFeed(nc, outcome, fx.keys['VN-CUSTOMS']!, fx.hubKey, 'SG-NPARKS');
    }
    const status = await eventually(async () => {
      const r = await fetch(`${sg.url}/v1/alerts/${sent.id}/status`, {
        headers: { authorization: `Bearer ${submitter.token}` },
      });
      const body = (await r.json()) as { outcomes: { id: string }[]; outcomesTotal: number };
      return body.outcomesTotal === 102 ? body : undefined;
    });
    // In the order the inbox stored them (its feed cursors): verification runs in parallel, so
    // that may differ from the order they were published in.
    const feed = (await (
      await fetch(`${sg.url}/v1/feed?limit=1000`, {
        headers: { authorization: `Bearer ${reader.token}` },
      })
    ).json()) as { items: { id: string; cursor: string }[] };
    const stored = feed.items
      .filter((i) => ids.includes(i.id))
      .sort((a, b) => Number(a.cursor) - Number(b.cursor))
      .map((i) => i.id);
    expect([...stored].sort()).toEqual([...ids].sort());
    expect(status.outcomes.map((o) => o.id)).toEqual(stored.slice(2));
  });
});
