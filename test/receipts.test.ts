import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  Streams,
  decodeEnvelope,
  encodeEnvelope,
  feedSubject,
  inboundMsgId,
  inboundSubject,
  newAlertId,
  receiptMsgId,
  receiptSubject,
  sha256Hex,
  signAlert,
  signReceipt,
  type DeliveryReceipt,
  type OperationReport,
  inboundStreamName,
} from '@alert-hub/core';
import { loadSigningKey } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  hubctl,
  registry,
  sampleRetraction,
  seizureReport,
  spawnService,
  startLocalHub,
  type LocalHub,
  type ServiceProcess,
} from '@alert-hub/testkit';

/**
 * Receipts, notices, status, outcomes, operations and alert identity (origin, id) with real
 * processes: nats-server with mutual TLS and per-agency permissions, the router and one gateway
 * per agency, as in production.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const SG = 'SG-NPARKS';
const CN = 'CN-GACC';
const day = 86_400_000;

let hub: LocalHub;
let sgRestarted: ServiceProcess | undefined;

beforeAll(async () => {
  hub = await startLocalHub({
    env: process.env,
    agencies: [NG, VN, KE, SG, CN].map((id) => ({ id, name: id })),
    agreements: {
      agreements: [
        {
          id: 'WEST-AFRICA-ASIA',
          version: 1,
          title: 'Nigeria, Viet Nam, Kenya, Singapore',
          parties: ['NG', 'VN', 'KE', 'SG'],
          alertTypes: ['seizure-report', 'consignee-flag', 'suspicious-shipment', 'retraction'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
      operations: [
        {
          id: 'THUNDERBALL',
          version: 1,
          name: 'Operation Thunderball',
          period: {
            from: new Date(Date.now() - day).toISOString(),
            until: new Date(Date.now() + 30 * day).toISOString(),
          },
          members: ['NG', 'VN', 'KE'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
        },
        {
          id: 'OLD-OP',
          version: 1,
          name: 'An operation that ended',
          period: { from: '2019-01-01T00:00:00Z', until: '2019-02-01T00:00:00Z' },
          members: ['NG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
        },
      ],
    },
    routerConfig: { undeliveredAfterMs: 1000 },
    gatewayConfig: { status: { pendingAlertMs: 1000 } },
  });
}, 120_000);

afterAll(async () => {
  await sgRestarted?.stop();
  await hub?.stop();
});

const auth = () => ({ authorization: `Bearer ${hub.token}` });
const coordinator = () => ({ authorization: `Bearer ${hub.coordinatorToken}` });
const gw = (agency: string) => (agency === SG && sgRestarted ? sgRestarted : hub.gateways[agency]!);

async function send(agency: string, alert: unknown): Promise<string> {
  const res = await fetch(`${gw(agency).url}/v1/alerts`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** POST /v1/alerts, answered with a refusal: its status and error envelope. */
async function post(
  agency: string,
  alert: unknown,
): Promise<{ status: number; error: { code: string; details?: { pointer: string }[] } }> {
  const res = await fetch(`${gw(agency).url}/v1/alerts`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify(alert),
  });
  const body = (await res.json()) as {
    error: { code: string; details?: { pointer: string }[] };
  };
  return { status: res.status, error: body.error };
}

interface Status {
  state: string;
  operation?: string;
  refused?: { code: string };
  recipients: {
    recipient: string;
    state: string;
    receiptVerified?: boolean;
    deliveredAt?: string;
    since?: string;
    overdue?: boolean;
    code?: string;
  }[];
  outcomes: { from: string; result: string; outcome: Record<string, unknown> }[];
}

async function status(agency: string, id: string): Promise<Status> {
  const res = await fetch(`${gw(agency).url}/v1/alerts/${id}/status`, { headers: auth() });
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

const states = (s: Status) =>
  Object.fromEntries(s.recipients.map((r) => [r.recipient, r.state])) as Record<string, string>;

async function audit(query: string) {
  const res = await fetch(`${hub.router.url}/v1/audit?${query}`, { headers: coordinator() });
  expect(res.status).toBe(200);
  return ((await res.json()) as { records: Record<string, unknown>[] }).records;
}

let shared: string;

describe('receipts - real processes', () => {
  it("the hub's directory, its logs directory and every service's log are private (0700, 0600)", () => {
    const mode = (p: string) => statSync(p).mode & 0o777;
    expect(mode(hub.dir)).toBe(0o700);
    expect(mode(join(hub.dir, 'logs'))).toBe(0o700);
    const logs = readdirSync(join(hub.dir, 'logs')).filter((f) => f.endsWith('.log'));
    expect(logs.length).toBeGreaterThan(0);
    for (const f of logs) expect([f, mode(join(hub.dir, 'logs', f))]).toEqual([f, 0o600]);
  });

  it('an alert to three partners, one gateway stopped: delivered x2 and pending x1, then delivered x3 after the restart', async () => {
    await hub.gateways[SG]!.stop();
    shared = await send(NG, seizureReport(NG));
    const two = await eventually(
      async () => {
        const s = await status(NG, shared);
        return s.recipients.filter((r) => r.state === 'delivered').length === 2 ? s : undefined;
      },
      60_000,
      'two receipts',
    );
    expect(two.state).toBe('routed');
    // China shares no agreement with Nigeria (DENY_NOT_PARTY): the notice does not name it, so
    // Nigeria's status does not list it (README, services/gateway/README.md).
    expect(states(two)).toEqual({ [KE]: 'delivered', [SG]: 'pending', [VN]: 'delivered' });
    expect(two.recipients.map((r) => r.recipient)).not.toContain(CN);
    for (const r of two.recipients.filter((x) => x.state === 'delivered')) {
      expect(r.receiptVerified).toBe(true);
      expect(Number.isNaN(Date.parse(r.deliveredAt!))).toBe(false);
    }
    expect(two.recipients.find((r) => r.recipient === SG)!.since).toBeTruthy();
    // Pending beyond the configured time (1 s here): flagged, and listed for coordinators.
    const flagged = await eventually(
      async () => (await status(NG, shared)).recipients.find((r) => r.overdue === true),
      30_000,
      'the pending recipient flagged overdue',
    );
    expect(flagged.recipient).toBe(SG);
    const undelivered = await eventually(
      async () => {
        const res = await fetch(`${hub.router.url}/v1/stats/undelivered`, {
          headers: coordinator(),
        });
        const body = (await res.json()) as { items: { alertId: string; recipient: string }[] };
        return body.items.some((i) => i.alertId === shared) ? body : undefined;
      },
      30_000,
      'the undelivered copy listed',
    );
    expect(undelivered.items.filter((i) => i.alertId === shared).map((i) => i.recipient)).toEqual([
      SG,
    ]);
    const metrics = await (await fetch(`${gw(NG).url}/metrics`)).text();
    expect(metrics).toMatch(/^ahub_gateway_deliveries_overdue\{[^}]*\} [1-9]/m);

    sgRestarted = await spawnService('gateway', join(hub.dir, `gateway-${SG}.yaml`), {
      env: process.env,
    });
    const three = await eventually(
      async () => {
        const s = await status(NG, shared);
        return s.recipients.every((r) => r.state === 'delivered') ? s : undefined;
      },
      60_000,
      'three receipts',
    );
    expect(states(three)).toEqual({ [KE]: 'delivered', [SG]: 'delivered', [VN]: 'delivered' });
    expect(three.recipients.every((r) => r.receiptVerified === true)).toBe(true);

    const delivered = await audit(`outcome=delivered&agency=${NG}`);
    expect(
      delivered
        .filter((r) => r['alertId'] === shared)
        .map((r) => r['recipient'])
        .sort(),
    ).toEqual([KE, SG, VN]);

    const cli = await hubctl(['status', shared, '--gateway', gw(NG).url], {
      env: { AHUB_TOKEN: hub.token },
    });
    expect(cli.code).toBe(0);
    expect(cli.stdout.match(/ delivered .* receipt verified/g)).toHaveLength(3);
  });

  it('a rejected alert shows refused with the router code at the sender', async () => {
    const id = await send(NG, seizureReport(NG, { operation: 'NO-SUCH-OPERATION' }));
    const s = await eventually(
      async () => {
        const v = await status(NG, id);
        return v.state === 'refused' ? v : undefined;
      },
      60_000,
      'the refusal notice',
    );
    expect(s.refused!.code).toBe('ERR_OPERATION_UNKNOWN');
    expect(s.recipients).toEqual([]);
    const cli = await hubctl(['status', id, '--gateway', gw(NG).url], {
      env: { AHUB_TOKEN: hub.token },
    });
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('ERR_OPERATION_UNKNOWN');
  });

  it('forged receipts (wrong key, wrong digest, replayed, an alert listed twice) are refused, audited, and the publishing agency is told', async () => {
    const hubNc = await hub.connectAs(LOCAL_ROUTER);
    const vnNc = await hub.connectAs(VN);
    try {
      // A genuine receipt VN's gateway sent, read back from the hub's stream.
      const jsm = await jetstreamManager(hubNc);
      const genuine = await jsm.streams.getMessage(inboundStreamName(VN), {
        last_by_subj: receiptSubject(VN),
      });
      expect(genuine).toBeTruthy();
      const original = JSON.parse(
        Buffer.from(decodeEnvelope(genuine!.data).payload, 'base64url').toString('utf8'),
      ) as DeliveryReceipt;
      const vnKey = loadSigningKey(join(hub.certsDir, 'private', VN), VN);
      const keKey = loadSigningKey(join(hub.certsDir, 'private', KE), KE);
      const js = jetstream(vnNc);

      // 1. Replayed: the same bytes again.
      await js.publish(receiptSubject(VN), genuine!.data);
      // 2. Wrong key: Kenya's key, claiming to be Viet Nam.
      const wrongKey: DeliveryReceipt = { ...original, receipt: newAlertId() };
      await js.publish(
        receiptSubject(VN),
        encodeEnvelope(await signReceipt(wrongKey, { ...keKey, principal: VN })),
      );
      // 3. Wrong digest: Viet Nam's own key, a digest that is not the forwarded envelope's.
      const wrongDigest: DeliveryReceipt = {
        ...original,
        receipt: newAlertId(),
        deliveries: original.deliveries.map((d) => ({
          ...d,
          envelopeSha256: d.envelopeSha256.replace(/^./, (c) => (c === '0' ? '1' : '0')),
        })),
      };
      const wrongDigestBytes = encodeEnvelope(await signReceipt(wrongDigest, vnKey));
      await js.publish(receiptSubject(VN), wrongDigestBytes, {
        msgID: receiptMsgId(VN, wrongDigest.receipt, wrongDigestBytes),
      });
      // 4. One alert listed twice (once with its real digest, once with another): the schema's
      // uniqueItems lets it through, the router refuses the receipt whole.
      const twice: DeliveryReceipt = {
        ...original,
        receipt: newAlertId(),
        deliveries: [original.deliveries[0]!, wrongDigest.deliveries[0]!],
      };
      const twiceBytes = encodeEnvelope(await signReceipt(twice, vnKey));
      await js.publish(receiptSubject(VN), twiceBytes, {
        msgID: receiptMsgId(VN, twice.receipt, twiceBytes),
      });

      const expected = [
        'ERR_KEY_AGENCY_MISMATCH',
        'ERR_RECEIPT_DIGEST_MISMATCH',
        'ERR_RECEIPT_INVALID',
        'ERR_RECEIPT_REPLAYED',
      ];
      const rejected = await eventually(
        async () => {
          const r = (await audit(`outcome=rejected&agency=${VN}`)).filter(
            (x) => x['type'] === 'receipt',
          );
          return r.length >= 4 ? r : undefined;
        },
        60_000,
        'four refused receipts in the audit',
      );
      expect(rejected.map((r) => r['reasonCode']).sort()).toEqual(expected);
      // Refusal notices go back to the agency whose subject carried them.
      const told = await eventually(
        async () => {
          const res = await fetch(`${gw(VN).url}/v1/refusals`, { headers: auth() });
          const body = (await res.json()) as { items: { code: string; receipt: string | null }[] };
          return body.items.length >= 4 ? body.items : undefined;
        },
        60_000,
        'four refusal notices at VN',
      );
      expect(told.map((t) => t.code).sort()).toEqual(expected);
      expect(told.find((t) => t.code === 'ERR_RECEIPT_DIGEST_MISMATCH')!.receipt).toBe(
        wrongDigest.receipt,
      );
      // Nothing a forged receipt named was marked delivered twice.
      const delivered = (await audit(`outcome=delivered&partner=${VN}`)).filter(
        (r) => r['alertId'] === shared,
      );
      expect(delivered).toHaveLength(1);
    } finally {
      await vnNc.close();
      await hubNc.close();
    }
  });

  it('an operation alert goes to its members during the period only, and to nobody outside it; the report counts the first, lists the second apart', async () => {
    const during = await send(NG, seizureReport(NG, { operation: 'THUNDERBALL' }));
    const s = await eventually(
      async () => {
        const v = await status(NG, during);
        return v.recipients.length === 2 && v.recipients.every((r) => r.state === 'delivered')
          ? v
          : undefined;
      },
      60_000,
      'the operation alert delivered to its members',
    );
    expect(s.operation).toBe('THUNDERBALL');
    // Singapore shares an agreement with Nigeria but is not a member: it receives nothing.
    expect(states(s)).toEqual({ [KE]: 'delivered', [VN]: 'delivered' });

    const after = await send(NG, seizureReport(NG, { operation: 'OLD-OP' }));
    const o = await eventually(
      async () => {
        const v = await status(NG, after);
        return v.state === 'routed' ? v : undefined;
      },
      60_000,
      'the out-of-period alert routed',
    );
    expect(o.recipients.every((r) => r.state === 'refused')).toBe(true);
    expect(o.recipients.map((r) => [r.recipient, r.code])).toEqual([[VN, 'DENY_OPERATION_PERIOD']]);
    const forwarded = await audit(`outcome=forwarded&agency=${NG}`);
    expect(forwarded.filter((r) => r['alertId'] === after)).toEqual([]);
    const denied = (await audit(`outcome=denied&agency=${NG}`)).filter(
      (r) => r['alertId'] === after,
    );
    expect(denied.map((r) => r['reasonCode'])).toContain('DENY_OPERATION_PERIOD');

    // An outcome for an alert the partner never received is refused.
    const orphan = await send(VN, {
      type: 'outcome',
      version: 1,
      origin: VN,
      handling: 'TLP:AMBER',
      answers: after,
      result: 'false-positive',
    });
    const refused = await eventually(
      async () => {
        const v = await status(VN, orphan);
        return v.state === 'refused' ? v : undefined;
      },
      60_000,
      'the orphan outcome refused',
    );
    expect(refused.refused!.code).toBe('ERR_OUTCOME_NOT_RECEIVED');

    // Viet Nam reports a seizure on Nigeria's operation alert; Nigeria sees it beside the alert.
    const outcome = await send(VN, {
      type: 'outcome',
      version: 1,
      origin: VN,
      handling: 'TLP:AMBER',
      answers: during,
      result: 'seizure',
      seizure: {
        date: new Date().toISOString().slice(0, 10),
        location: { country: 'VN', locode: 'VNHPH' },
        commodities: [
          {
            taxon: { scientificName: 'Manis javanica' },
            product: 'scales',
            quantity: { value: 450, unit: 'kg' },
          },
        ],
      },
    });
    const seen = await eventually(
      async () => {
        const v = await status(NG, during);
        return v.outcomes.length > 0 ? v : undefined;
      },
      60_000,
      'the outcome at Nigeria',
    );
    expect(seen.outcomes.map((x) => [x.from, x.result])).toEqual([[VN, 'seizure']]);
    const back = await eventually(
      async () => {
        const v = await status(VN, outcome);
        return v.recipients.length === 1 && v.recipients[0]!.state === 'delivered' ? v : undefined;
      },
      60_000,
      "Nigeria's receipt for the outcome",
    );
    expect(back.recipients[0]!.recipient).toBe(NG);

    const res = await fetch(`${hub.router.url}/v1/operations/THUNDERBALL/report`, {
      headers: coordinator(),
    });
    expect(res.status).toBe(200);
    const report = (await res.json()) as OperationReport;
    expect(report.countries).toEqual(['KE', 'NG', 'VN']);
    expect(report.alertsByType).toEqual({ 'seizure-report': 1, outcome: 1 });
    expect(report.deliveries.forwarded).toBe(2);
    expect(report.deliveries.delivered).toBe(2);
    expect(report.deliveries.latencyMs).not.toBeNull();
    expect(report.outcomes).toEqual({ seizure: 1 });
    expect(report.seizures).toContainEqual({
      country: 'VN',
      commodity: 'Manis javanica (scales)',
      unit: 'kg',
      quantity: 450,
      reports: 1,
    });
    const cli = await hubctl(['operation', 'report', 'THUNDERBALL', '--router', hub.router.url], {
      env: { AHUB_COORDINATOR_TOKEN: hub.coordinatorToken },
    });
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('countries taking part: KE, NG, VN');
    expect(cli.stdout).toMatch(/VN {2}Manis javanica \(scales\) {2}450 kg/);
    // Each agency's part, as the report gives it: Nigeria sent the alert, Viet Nam the outcome.
    expect(report.agencies.map((a) => a.agency)).toEqual(expect.arrayContaining([NG, VN]));
    for (const a of report.agencies)
      expect(cli.stdout).toContain(
        `${a.agency}  sent ${a.sent}  received ${a.received}  delivered ${a.delivered}  outcomes ${a.outcomes}`,
      );
    expect(report.agencies.find((a) => a.agency === NG)).toMatchObject({ sent: 1, outcomes: 0 });
    expect(report.agencies.find((a) => a.agency === VN)).toMatchObject({ outcomes: 1 });
    expect(report.refusedOutsidePeriod).toEqual([]);

    // The ended operation: Nigeria's alert naming it was refused to everyone, so it is no part of
    // the operation's activity (no country, no alert, no agency, no seizure), only listed apart.
    const old = await fetch(`${hub.router.url}/v1/operations/OLD-OP/report`, {
      headers: coordinator(),
    });
    expect(old.status).toBe(200);
    const ended = (await old.json()) as OperationReport;
    expect(ended.countries).toEqual([]);
    expect(ended.alertsByType).toEqual({});
    expect(ended.agencies).toEqual([]);
    expect(ended.seizures).toEqual([]);
    expect(ended.deliveries).toMatchObject({ forwarded: 0, delivered: 0, pending: 0 });
    expect(ended.refusedOutsidePeriod).toEqual([{ agency: NG, alerts: 1 }]);
    const endedCli = await hubctl(['operation', 'report', 'OLD-OP', '--router', hub.router.url], {
      env: { AHUB_COORDINATOR_TOKEN: hub.coordinatorToken },
    });
    expect(endedCli.code).toBe(0);
    expect(endedCli.stdout).toContain('countries taking part: (none)');
    expect(endedCli.stdout).toContain('alerts by type: (none)');
    expect(endedCli.stdout).toContain(`refused outside the operation's period: 1, from ${NG}`);
    expect(cli.stdout).not.toContain('refused outside');
  });
});

/** The origins of the items with id `id` the feed's live stream (SSE) sends, until `n` came. */
async function streamedOrigins(agency: string, id: string, n: number): Promise<string[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 30_000);
  const origins: string[] = [];
  try {
    const res = await fetch(`${gw(agency).url}/v1/feed/stream`, {
      headers: auth(),
      signal: abort.signal,
    });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const value of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(value, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const data = buffer
          .slice(0, end)
          .split('\n')
          .find((l) => l.startsWith('data: '));
        buffer = buffer.slice(end + 2);
        const item = data ? (JSON.parse(data.slice(6)) as { id: string; origin: string }) : null;
        if (item?.id === id) origins.push(item.origin);
      }
      if (origins.length >= n) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return origins.sort();
}

describe('alert identity is (origin, id) - real processes', () => {
  it('two agencies’ alerts with the same id both reach each partner’s inbox, feed and live stream, are receipted each, and a retraction withdraws only its own', async () => {
    // Nigeria's alert under Operation Thunderball reaches Viet Nam and Kenya only; Singapore,
    // which never received it (an agency may not reuse an id it received: ERR_ALERT_ID_REUSED),
    // sends one of its own under the same id, which reaches Nigeria, Viet Nam and Kenya.
    const id = newAlertId();
    await send(NG, seizureReport(NG, { id, operation: 'THUNDERBALL' }));
    await eventually(
      async () => (await status(NG, id)).state === 'routed' || undefined,
      60_000,
      "Nigeria's alert routed",
    );
    await send(SG, seizureReport(SG, { id }));
    for (const partner of [VN, KE]) {
      const items = await eventually(
        async () => {
          const res = await fetch(`${gw(partner).url}/v1/feed?limit=1000`, { headers: auth() });
          const body = (await res.json()) as { items: { id: string; origin: string }[] };
          const same = body.items.filter((i) => i.id === id);
          return same.length === 2 ? same : undefined;
        },
        60_000,
        `both alerts in ${partner}'s inbox`,
      );
      expect(items.map((i) => i.origin).sort()).toEqual([NG, SG]);
      expect(await streamedOrigins(partner, id, 2)).toEqual([NG, SG]);
      const ambiguous = await fetch(`${gw(partner).url}/v1/alerts/${id}`, { headers: auth() });
      expect(ambiguous.status).toBe(409);
      expect(((await ambiguous.json()) as { error: { code: string } }).error.code).toBe(
        'ERR_ALERT_ID_AMBIGUOUS',
      );
      const fromSg = await fetch(`${gw(partner).url}/v1/alerts/${id}?origin=${SG}`, {
        headers: auth(),
      });
      expect(fromSg.status).toBe(200);
      expect(await fromSg.json()).toMatchObject({ direction: 'received', id, origin: SG });
    }
    // Each sender sees its own alert receipted by every partner (receipts name (origin, id)).
    for (const [origin, partners] of [
      [NG, [KE, VN]],
      [SG, [KE, NG, VN]],
    ] as const) {
      const s = await eventually(
        async () => {
          const v = await status(origin, id);
          return v.recipients.length === partners.length &&
            v.recipients.every((r) => r.state === 'delivered')
            ? v
            : undefined;
        },
        60_000,
        `${origin}'s alert receipted by its partners`,
      );
      expect(s.recipients.map((r) => r.recipient).sort()).toEqual([...partners]);
    }

    // Nigeria withdraws its alert: Singapore's alert with the same id stays active everywhere.
    const retraction = await send(NG, sampleRetraction(NG, id, { reason: 'withdrawn' }));
    for (const partner of [VN, KE]) {
      const statuses = await eventually(
        async () => {
          const res = await fetch(`${gw(partner).url}/v1/feed?limit=1000`, { headers: auth() });
          const body = (await res.json()) as {
            items: { id: string; origin: string; status: string; retractedBy?: string }[];
          };
          const same = body.items.filter((i) => i.id === id);
          return same.some((i) => i.retractedBy === retraction) ? same : undefined;
        },
        60_000,
        `the retraction applied at ${partner}`,
      );
      expect(Object.fromEntries(statuses.map((i) => [i.origin, i.status]))).toEqual({
        [NG]: 'withdrawn',
        [SG]: 'active',
      });
    }
  });

  it('an outcome answers an alert by (origin, id): an agency reusing an id it received is refused, one that learned it elsewhere never receives the outcome, and an outcome above the ceiling goes to nobody', async () => {
    // Nigeria's alert, under Operation Thunderball, reaches Viet Nam and Kenya (not Singapore).
    const id = newAlertId();
    await send(NG, seizureReport(NG, { id, operation: 'THUNDERBALL' }));
    await eventually(
      async () => (await status(NG, id)).recipients.some((r) => r.recipient === KE) || undefined,
      60_000,
      "Nigeria's alert routed",
    );
    // Kenya received it: an alert of its own under that id is refused, and Kenya is told why.
    await send(KE, seizureReport(KE, { id }));
    const reused = await eventually(
      async () => {
        const v = await status(KE, id);
        return v.state === 'refused' ? v : undefined;
      },
      60_000,
      "Kenya's alert under Nigeria's id refused",
    );
    expect(reused.refused?.code).toBe('ERR_ALERT_ID_REUSED');
    // Singapore did not receive it, and sends an alert under the same id (learned elsewhere): it
    // is routed, and reaches Viet Nam too.
    await send(SG, seizureReport(SG, { id }));
    await eventually(
      async () => {
        const res = await fetch(`${gw(VN).url}/v1/feed?limit=1000`, { headers: auth() });
        const body = (await res.json()) as { items: { id: string }[] };
        return body.items.filter((i) => i.id === id).length === 2 || undefined;
      },
      60_000,
      "both alerts in Viet Nam's inbox",
    );
    const report = (extra: Record<string, unknown>) => ({
      type: 'outcome',
      version: 1,
      origin: VN,
      handling: 'TLP:AMBER',
      answers: id,
      result: 'arrest',
      arrests: 2,
      note: 'informant in the consignee company',
      ...extra,
    });

    // 1. Naming no origin at the gateway: it received the id from two, and says so. A version-1
    // outcome cannot name one (version 1 is frozen): the answer points at version 2 and its
    // answersOrigin; a version-2 one is told to fill it in.
    for (const [version, pointers] of [
      [1, ['/answersOrigin', '/version']],
      [2, ['/answersOrigin']],
    ] as const) {
      const unnamed = await post(VN, report({ version }));
      expect(unnamed.status).toBe(409);
      expect(unnamed.error.code).toBe('ERR_ALERT_ID_AMBIGUOUS');
      expect(unnamed.error.details?.map((d) => d.pointer)).toEqual(pointers);
    }

    // 2. Naming Nigeria in a version-2 outcome: Nigeria sees it beside its alert; Singapore, whose
    // alert has the same id, sees nothing.
    const named = await send(VN, report({ version: 2, answersOrigin: NG }));
    const atNg = await eventually(
      async () => {
        const v = await status(NG, id);
        return v.outcomes.length > 0 ? v : undefined;
      },
      60_000,
      'the outcome at Nigeria',
    );
    expect(atNg.outcomes.map((o) => [o.from, o.result, o.outcome['answersOrigin']])).toEqual([
      [VN, 'arrest', NG],
    ]);
    const toNg = await eventually(
      async () => {
        const v = await status(VN, named);
        return v.recipients.length === 1 && v.recipients[0]!.state === 'delivered' ? v : undefined;
      },
      60_000,
      "Nigeria's receipt for the outcome",
    );
    expect(toNg.recipients.map((r) => r.recipient)).toEqual([NG]);
    expect((await status(SG, id)).outcomes).toEqual([]);

    // 3. Past the gateway, signed by Viet Nam and published on its own subject: the router
    // refuses an outcome that leaves the origin open when two sent the id.
    const vnNc = await hub.connectAs(VN);
    try {
      const vnKey = loadSigningKey(join(hub.certsDir, 'private', VN), VN);
      const direct = { ...report({}), id: newAlertId(), issuedAt: new Date().toISOString() };
      const bytes = encodeEnvelope(
        await signAlert(direct as never, vnKey, registry.schemaIdFor('outcome', 1)!),
      );
      await jetstream(vnNc).publish(inboundSubject(VN, 'outcome'), bytes, {
        msgID: inboundMsgId(VN, direct.id, bytes),
      });
      const refused = await eventually(
        async () => {
          const res = await fetch(`${gw(VN).url}/v1/refusals`, { headers: auth() });
          const body = (await res.json()) as { items: { alertId: string | null; code: string }[] };
          return body.items.find((i) => i.alertId === direct.id);
        },
        60_000,
        'the refusal of the direct outcome told to Viet Nam',
      );
      expect(refused.code).toBe('ERR_OUTCOME_AMBIGUOUS');
    } finally {
      await vnNc.close();
    }

    // 4. Above the ceiling of the agreement Nigeria's alert came under (TLP:AMBER): to nobody.
    const red = await send(VN, report({ version: 2, answersOrigin: NG, handling: 'TLP:RED' }));
    const denied = await eventually(
      async () => {
        const v = await status(VN, red);
        return v.state === 'routed' && v.recipients.length === 1 ? v : undefined;
      },
      60_000,
      'the TLP:RED outcome routed',
    );
    expect(denied.recipients.map((r) => [r.recipient, r.state, r.code])).toEqual([
      [NG, 'refused', 'DENY_HANDLING'],
    ]);
    const reds = (await status(NG, id)).outcomes;
    expect(reds).toHaveLength(1);
  });

  it('an outcome of version 1 is sent as written, without answersOrigin, and reaches the one origin it answers; version 2 is given that origin; version 1 carrying it is refused', async () => {
    const id = await send(NG, seizureReport(NG));
    await eventually(
      async () =>
        (await status(NG, id)).recipients.some(
          (r) => r.recipient === VN && r.state === 'delivered',
        ) || undefined,
      60_000,
      "Nigeria's alert delivered to Viet Nam",
    );
    const report = (extra: Record<string, unknown>) => ({
      type: 'outcome',
      origin: VN,
      handling: 'TLP:AMBER',
      answers: id,
      result: 'under-investigation',
      ...extra,
    });

    // Version 1 as published: the gateway adds nothing, and the router finds the one origin.
    const v1 = await send(VN, report({ version: 1, note: 'v1' }));
    // Version 2 naming no origin: the gateway names the one this agency received the id from.
    const v2 = await send(VN, report({ version: 2, note: 'v2' }));
    const atNg = await eventually(
      async () => {
        const s = await status(NG, id);
        return s.outcomes.length === 2 ? s : undefined;
      },
      60_000,
      'both outcomes at Nigeria',
    );
    const seen = Object.fromEntries(atNg.outcomes.map((o) => [String(o.outcome['id']), o.outcome]));
    expect(seen[v1]).toMatchObject({ version: 1, answers: id, note: 'v1' });
    expect(Object.keys(seen[v1]!)).not.toContain('answersOrigin');
    expect(seen[v2]).toMatchObject({ version: 2, answers: id, answersOrigin: NG, note: 'v2' });
    for (const outcome of [v1, v2]) {
      const delivered = await eventually(
        async () => {
          const s = await status(VN, outcome);
          return s.recipients.length === 1 && s.recipients[0]!.state === 'delivered'
            ? s
            : undefined;
        },
        60_000,
        "Nigeria's receipt for the outcome",
      );
      expect(delivered.recipients.map((r) => r.recipient)).toEqual([NG]);
    }

    // Version 1 carrying answersOrigin: refused by the version-1 schema, at the member.
    const carrying = await post(VN, report({ version: 1, answersOrigin: NG }));
    expect(carrying.status).toBe(422);
    expect(carrying.error.code).toBe('ERR_SCHEMA_INVALID');
    expect(carrying.error.details?.map((d) => d.pointer)).toEqual(['/answersOrigin']);
  });

  it('receipt ids are bound to the agency: a receipt id another agency used is no squat, and a receipt under a message id of another form is refused', async () => {
    const hubNc = await hub.connectAs(LOCAL_ROUTER);
    const sgNc = await hub.connectAs(SG);
    const jsm = await jetstreamManager(hubNc);
    try {
      // Viet Nam's latest genuine receipt: Singapore reuses its id for a receipt of its own.
      const vnMsg = await jsm.streams.getMessage(inboundStreamName(VN), {
        last_by_subj: receiptSubject(VN),
      });
      const vnReceipt = JSON.parse(
        Buffer.from(decodeEnvelope(vnMsg!.data).payload, 'base64url').toString('utf8'),
      ) as DeliveryReceipt;

      // Singapore's gateway is down: the receipt of this delivery is sent by hand.
      await gw(SG).stop();
      const id = await send(NG, seizureReport(NG));
      const copy = await eventually(
        async () => {
          const m = await jsm.streams
            .getMessage(Streams.Feeds, { last_by_subj: feedSubject(SG, NG, 'seizure-report') })
            .catch(() => null);
          const alert = m
            ? (JSON.parse(
                Buffer.from(decodeEnvelope(m.data).payload, 'base64url').toString('utf8'),
              ) as { id: string })
            : undefined;
          return alert?.id === id ? m : undefined;
        },
        60_000,
        'the copy forwarded to SG',
      );
      const sgKey = loadSigningKey(join(hub.certsDir, 'private', SG), SG);
      const js = jetstream(sgNc);
      const receipt: DeliveryReceipt = {
        receipt: vnReceipt.receipt,
        agency: SG,
        committedAt: new Date().toISOString(),
        deliveries: [{ alertId: id, origin: NG, envelopeSha256: sha256Hex(copy.data) }],
      };

      // A message id of the agency's choosing (the old `receipt:<id>` form): refused.
      const chosen = { ...receipt, receipt: newAlertId() };
      await js.publish(receiptSubject(SG), encodeEnvelope(await signReceipt(chosen, sgKey)), {
        msgID: `receipt:${chosen.receipt}`,
      });
      const refused = await eventually(
        async () =>
          (await audit(`outcome=rejected&agency=${SG}`)).find(
            (r) => r['type'] === 'receipt' && r['reasonCode'] === 'ERR_MSG_ID_MISMATCH',
          ),
        60_000,
        'the receipt under a chosen message id refused',
      );
      expect(refused).toBeTruthy();

      // Viet Nam's receipt id, in Singapore's own receipt under its own message id: accepted.
      const bytes = encodeEnvelope(await signReceipt(receipt, sgKey));
      const ack = await js.publish(receiptSubject(SG), bytes, {
        msgID: receiptMsgId(SG, receipt.receipt, bytes),
      });
      expect(ack.duplicate).toBe(false);
      const s = await eventually(
        async () => {
          const v = await status(NG, id);
          return v.recipients.find((r) => r.recipient === SG && r.state === 'delivered');
        },
        60_000,
        "SG's receipt accepted",
      );
      expect(s).toMatchObject({ receiptVerified: true, receipt: vnReceipt.receipt });
    } finally {
      sgRestarted = await spawnService('gateway', join(hub.dir, `gateway-${SG}.yaml`), {
        env: process.env,
      });
      await sgNc.close();
      await hubNc.close();
    }
  });
});
