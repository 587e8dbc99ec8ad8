import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  decodeEnvelope,
  newAlertId,
  verifyOrigin,
  type Alert,
  inboundStreamName,
} from '@alert-hub/core';
import { loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  provision,
  publishToFeed,
  registry,
  seizureReport,
  writeConfig,
  sampleAirSuspiciousShipmentV2,
  sampleConsigneeFlagV2,
  sampleSeizureReportV2,
  OPEN_JS_API,
} from '@alert-hub/testkit';

const T0 = new Date('2019-04-08T03:15:00Z');
const seizureReportV2 = (origin: string) => sampleSeizureReportV2(origin, {}, { now: T0 });
const suspiciousAirV2 = (origin: string) => sampleAirSuspiciousShipmentV2(origin, {}, { now: T0 });
const consigneeFlagV2 = (origin: string) => sampleConsigneeFlagV2(origin, {}, { now: T0 });

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment --
   the cases edit alerts as untyped JSON, as an officer's client would: that is what is under test */

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
const { log } = memoryLogger('gateway-v2-test');
let sg: Gateway;
let vn: Gateway;

function configFor(agency: string) {
  return loadConfig(
    {},
    writeConfig(fx.dir, agency, {
      agency,
      signingKey: fx.keyFiles[agency],
      trustDir: fx.trustDir,
      dataDir: `${fx.dir}/data-${agency}`,
      http: { port: 0 },
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      clients: [{ name: 'officers', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
    }),
  );
}

beforeAll(async () => {
  await provision(await nats.connect(), AGENCIES);
  sg = await startGateway(configFor('SG-NPARKS'), { log });
  vn = await startGateway(configFor('VN-CUSTOMS'), { log });
});
afterAll(async () => {
  await sg?.close();
  await vn?.close();
  fx.cleanup();
});

async function post(body: unknown) {
  const res = await fetch(`${sg.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

async function signedAt(sequence: number) {
  const jsm = await jetstreamManager(await nats.connect());
  const stored = (await jsm.streams.getMessage(inboundStreamName('SG-NPARKS'), { seq: sequence }))!;
  return verifyOrigin(decodeEnvelope(stored.data), {
    trust: loadTrustStore(fx.trustDir, registry),
    registry,
  });
}

describe('gateway - v2 intake', () => {
  it('normalises identifiers as typed, says what it changed, and signs the machine form under the v2 schema id', async () => {
    const typed: any = seizureReportV2('SG-NPARKS');
    typed.seizure.shipment.containers[0].number = 'CSQU 305438 3';
    typed.seizure.shipment.vessel.imo = 'IMO 9074729';
    const res = await post(typed);
    expect(res.status).toBe(202);
    expect(res.body.normalised).toEqual([
      {
        pointer: '/seizure/shipment/containers/0/number',
        from: 'CSQU 305438 3',
        to: 'CSQU3054383',
        rule: 'container',
      },
      { pointer: '/seizure/shipment/vessel/imo', from: 'IMO 9074729', to: '9074729', rule: 'imo' },
    ]);
    const { alert, header } = await signedAt(res.body.sequence as number);
    expect(header.schema).toBe('https://schemas.alert-hub.example/alerts/seizure-report/v2.json');
    expect((alert as any).seizure.shipment.containers[0].number).toBe('CSQU3054383');
    expect((alert as any).seizure.shipment.vessel.imo).toBe('9074729');
  });

  it('an air waybill typed with a space is normalised; the same alert spelt the machine way is the same content', async () => {
    const typed: any = suspiciousAirV2('SG-NPARKS');
    typed.shipment.masterAirWaybill = '618-1234 5675';
    const first = await post(typed);
    expect(first.status).toBe(202);
    expect(first.body.normalised[0]).toMatchObject({ to: '618-12345675' });
    const again = await post({
      ...typed,
      shipment: { ...typed.shipment, masterAirWaybill: '618-12345675' },
    });
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ id: typed.id, duplicate: true });
  });

  it('a v2 alert that breaks a rule is refused with every issue; a rewritten value says how it was typed', async () => {
    const typed: any = suspiciousAirV2('SG-NPARKS');
    typed.shipment.vessel = { imo: 'IMO 9074728' };
    typed.expiresAt = '2019-01-01T00:00:00Z';
    const res = await post(typed);
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('ERR_SCHEMA_INVALID');
    const details = res.body.error.details as { pointer: string; message: string }[];
    expect(details.map((d) => d.pointer)).toEqual(['/shipment/vessel', '/shipment/vessel/imo']);
    expect(details[1]!.message).toContain('(typed as "IMO 9074728")');

    const late: any = seizureReportV2('SG-NPARKS');
    late.expiresAt = late.issuedAt;
    const r2 = await post(late);
    expect(r2.status).toBe(422);
    expect(r2.body.error.details).toEqual([
      { pointer: '/expiresAt', message: expect.stringContaining('after issuedAt') },
    ]);
  });

  it('v1 alerts are accepted as before, with no normalised member when nothing changed', async () => {
    const res = await post(seizureReport('SG-NPARKS'));
    expect(res.status).toBe(202);
    expect(res.body).not.toHaveProperty('normalised');
    const { header } = await signedAt(res.body.sequence as number);
    expect(header.schema).toBe('https://schemas.alert-hub.example/alerts/seizure-report/v1.json');
  });
});

describe('gateway - v2 feed and consignee flags past review', () => {
  async function feedIds(): Promise<string[]> {
    const res = await fetch(`${vn.url}/v1/feed?limit=1000`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
  }
  async function byIdStatus(id: string): Promise<number> {
    const res = await fetch(`${vn.url}/v1/alerts/${id}`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    await res.arrayBuffer();
    return res.status;
  }

  it('stores v2 alerts beside v1; hides a consignee flag after its review date or expiry', async () => {
    const nc = await nats.connect();
    const key = fx.keys['SG-NPARKS']!;
    const seizure = seizureReportV2('SG-NPARKS') as unknown as Alert;
    const current = {
      ...consigneeFlagV2('SG-NPARKS'),
      reviewBy: '2099-01-01T00:00:00Z',
    } as unknown as Alert;
    const pastReview = consigneeFlagV2('SG-NPARKS') as unknown as Alert; // reviewBy 2019-10-08
    const v1Expired = {
      id: newAlertId(),
      type: 'consignee-flag',
      version: 1,
      origin: 'SG-NPARKS',
      issuedAt: '2019-04-08T03:15:00Z',
      expiresAt: '2020-01-01T00:00:00Z',
      handling: 'TLP:AMBER',
      consignee: { name: 'Hai Phong Trading Co', country: 'VN' },
      reason: 'prior-seizure',
    } as unknown as Alert;
    for (const a of [seizure, current, pastReview, v1Expired])
      await publishToFeed(nc, a, key, fx.hubKey, 'VN-CUSTOMS');
    // stored (the sequence advanced past all four) ...
    await eventually(() => vn.store.receivedById(current.id), 5000, 'the current flag');
    await eventually(
      () => vn.store.receivedById(pastReview.id, new Date('2019-05-01T00:00:00Z')),
      5000,
      'the flag, as seen before its review date',
    );
    // ... but only what is not past review is shown
    const ids = await feedIds();
    expect(ids).toContain(seizure.id);
    expect(ids).toContain(current.id);
    expect(ids).not.toContain(pastReview.id);
    expect(ids).not.toContain(v1Expired.id);
    expect(await byIdStatus(pastReview.id)).toBe(404);
    expect(await byIdStatus(current.id)).toBe(200);
    expect(vn.store.quarantineCount()).toBe(0);
  });

  it('the live stream (SSE) hides a consignee flag past its review date or expiry too, live and from a cursor', async () => {
    /** The ids the stream sends after `cursor`, up to and including `last`. */
    const streamedIds = async (cursor: string, last: string) => {
      const ctrl = new AbortController();
      const res = await fetch(`${vn.url}/v1/feed/stream`, {
        headers: { authorization: `Bearer ${token.token}`, 'last-event-id': cursor },
        signal: ctrl.signal,
      });
      expect(res.status).toBe(200);
      const ids: string[] = [];
      const decoder = new TextDecoder();
      const reader = res.body!.getReader();
      let buf = '';
      while (ids.at(-1) !== last) {
        const { value, done } = (await reader.read()) as { value?: Uint8Array; done: boolean };
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const data = /^data: (.*)$/m.exec(buf.slice(0, at))?.[1];
          buf = buf.slice(at + 2);
          if (data) ids.push((JSON.parse(data) as { id: string }).id);
        }
      }
      ctrl.abort();
      return ids;
    };
    const nc = await nats.connect();
    const key = fx.keys['SG-NPARKS']!;
    const cursor = vn.store.lastCursor();
    const seizure = seizureReportV2('SG-NPARKS') as unknown as Alert;
    const current = {
      ...consigneeFlagV2('SG-NPARKS'),
      id: newAlertId(),
      reviewBy: '2099-01-01T00:00:00Z',
    } as unknown as Alert;
    const pastReview = { ...consigneeFlagV2('SG-NPARKS'), id: newAlertId() } as unknown as Alert;
    const expired = {
      ...consigneeFlagV2('SG-NPARKS'),
      id: newAlertId(),
      reviewBy: '2099-01-01T00:00:00Z',
      expiresAt: '2020-01-01T00:00:00Z',
    } as unknown as Alert;
    const last = seizureReport('SG-NPARKS');
    const live = streamedIds(cursor, last.id);
    for (const a of [seizure, pastReview, current, expired, last])
      await publishToFeed(nc, a, key, fx.hubKey, 'VN-CUSTOMS');
    const shown = [seizure.id, current.id, last.id];
    expect(await live).toEqual(shown);
    // Stored, all five: hidden when read, not dropped.
    expect(vn.store.receivedById(pastReview.id, new Date('2019-05-01T00:00:00Z'))?.id).toBe(
      pastReview.id,
    );
    expect(vn.store.receivedById(expired.id, new Date('2019-05-01T00:00:00Z'))?.id).toBe(
      expired.id,
    );
    // From the same cursor again, now read from the inbox: the same three.
    expect(await streamedIds(cursor, last.id)).toEqual(shown);
  });
});
