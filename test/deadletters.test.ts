import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  Streams,
  encodeEnvelope,
  inboundSubject,
  signAlert,
  type JwksDocument,
  type SigningKey,
  inboundStreamName,
} from '@alert-hub/core';
import { generateKey } from '@alert-hub/operator';
import { createToken, readSigningKey } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  feedMessages,
  hubctl,
  publishInbound,
  registry,
  routerDrained,
  seizureReport,
  startSeizureHub,
  type LocalHub,
  type ServiceProcess,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';

/**
 * Dead letters for operators, with real processes: nats-server with mutual TLS and one account
 * per agency, the router and a gateway per agency. An alert signed with a key the hub does not
 * know yet (an agency rotated and the trust store was not updated) is dead-lettered; once the key
 * is in the trust store, an operator requeues it and it is routed and delivered once.
 */
const NG = 'NG-CUSTOMS';
const VN = 'VN-CUSTOMS';

let hub: LocalHub;
let ngNc: NatsConnection;
let hubNc: NatsConnection;
let keyDir: string;
let newKey: SigningKey;
let newKeyFile: string;
let newPublic: JwksDocument['keys'][number];
const operator = createToken();
const SCHEMA = registry.schemaIdFor('seizure-report', 1)!;

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: [NG, VN],
    agreement: { id: 'NG-VN', title: 'Nigeria and Viet Nam' },
    routerConfig: {
      operators: [{ name: 'hub-ops', tokenSha256: operator.sha256 }],
      // the requeued alert's copies are counted on the feed stream after the partner took them
      streams: KEEP_READ_COPIES,
    },
  });
  ngNc = await hub.connectAs(NG);
  hubNc = await hub.connectAs(LOCAL_ROUTER);
  // NG's next key, made on NG's side and not yet in the hub's trust store.
  keyDir = mkdtempSync(join(tmpdir(), 'ahub-ng-next-'));
  const g = generateKey({ certsDir: keyDir, principal: NG, now: new Date(Date.now() - 60_000) });
  newKey = readSigningKey(g.privateFile, NG);
  newKeyFile = g.privateFile;
  newPublic = g.publicJwk;
}, 180_000);

afterAll(async () => {
  await ngNc?.close();
  await hubNc?.close();
  await hub?.stop();
  rmSync(keyDir, { recursive: true, force: true });
});

const ops = () => ({ authorization: `Bearer ${operator.token}` });
const coordinator = () => ({ authorization: `Bearer ${hub.coordinatorToken}` });

interface Summary {
  seq: number;
  origin: string;
  claimedAlertId?: string;
  code: string;
  originalSubject: string;
  originalSeq: number | null;
  truncated: boolean;
  requeued?: { by: string; inboundSeq: number | null };
}

async function get(path: string, headers: Record<string, string> = ops()) {
  const res = await fetch(`${hub.router.url}${path}`, { headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function deadLetterOf(alertId: string): Promise<Summary> {
  return eventually(
    async () => {
      const { body } = await get('/v1/deadletters');
      return (body['items'] as Summary[]).find((s) => s.claimedAlertId === alertId);
    },
    60_000,
    `a dead letter for ${alertId}`,
  );
}

/** NG's key in the hub's trust store. */
function registeredKey(): SigningKey {
  const privateDir = join(hub.certsDir, 'private', NG);
  return readSigningKey(join(privateDir, readdirSync(privateDir)[0]!), NG);
}

/** The dead letter the router made of inbound message `inboundSeq`. */
async function deadLetterOfInbound(inboundSeq: number): Promise<Summary> {
  return eventually(
    async () => {
      const { body } = await get('/v1/deadletters?limit=1000');
      return (body['items'] as Summary[]).find((s) => s.originalSeq === inboundSeq);
    },
    60_000,
    `the dead letter of inbound ${inboundSeq}`,
  );
}

/** A requeue id as anyone who knows the bytes can compute it: the digest of the bytes alone. */
const requeueIdOf = (seq: number, bytes: Uint8Array) =>
  `requeue:${seq}:${createHash('sha256').update(bytes).digest('base64url').slice(0, 22)}`;

async function requeue(seq: number) {
  const res = await fetch(`${hub.router.url}/v1/deadletters/${seq}/requeue`, {
    method: 'POST',
    headers: ops(),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function countLines(file: string, msg: string): number {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.includes(`"msg":"${msg}"`)).length;
  } catch {
    return 0;
  }
}

/** Sends SIGHUP and waits until the service logged that it reloaded its trust store. */
async function reload(proc: ServiceProcess, log: string) {
  const file = join(hub.dir, 'logs', log);
  const before = countLines(file, 'trust store and signing key reloaded');
  proc.proc.kill('SIGHUP');
  await eventually(
    () => countLines(file, 'trust store and signing key reloaded') > before,
    60_000,
    `${log} to reload`,
  );
}

async function vnFeedIds(): Promise<string[]> {
  const res = await fetch(`${hub.gateways[VN]!.url}/v1/feed?limit=1000`, {
    headers: { authorization: `Bearer ${hub.token}` },
  });
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
}

const run = (args: string[], token = operator.token) =>
  hubctl(['deadletters', ...args, '--router', hub.router.url], {
    env: { AHUB_OPERATOR_TOKEN: token },
  });

describe('deadletters - operator tokens', () => {
  it('hubctl tokens create --roles operator prints the router operators entry; operator mixes with no other role', async () => {
    const r = await hubctl(['tokens', 'create', '--name', 'hub-ops', '--roles', 'operator']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('add to the router configuration under operators:');
    const mixed = await hubctl(['tokens', 'create', '--name', 'x', '--roles', 'operator,submit']);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain('ERR_INPUT_INVALID');
  });
});

describe('deadletters - list, show, requeue with real processes', () => {
  const lost = seizureReport(NG);
  const routedMeanwhile = seizureReport(NG);
  let dl: Summary;
  let dlRouted: Summary;

  it('an alert signed with a key the hub does not know is dead-lettered and listed with its code, never its content', async () => {
    await publishInbound(ngNc, lost, newKey);
    dl = await deadLetterOf(lost.id);
    expect(dl).toMatchObject({
      origin: NG,
      code: 'ERR_KEY_UNKNOWN',
      originalSubject: inboundSubject(NG, 'seizure-report'),
    });
    expect(dl.requeued).toBeUndefined();

    // hubctl lists it (sequence, origin, claimed id, code).
    const list = await run(['list', '--origin', NG]);
    expect(list.code, list.stderr).toBe(0);
    const line = list.stdout.split('\n').find((l) => l.includes(lost.id));
    expect(line).toMatch(new RegExp(`^${dl.seq}\\s.*${NG}\\s+${lost.id}\\s+ERR_KEY_UNKNOWN`));
    // The API lists by agency id, or "unknown"; anything else is refused, not an empty page.
    expect((await get(`/v1/deadletters?origin=${NG}`)).status).toBe(200);
    expect((await get('/v1/deadletters?origin=unknown')).status).toBe(200);
    const lower = await get(`/v1/deadletters?origin=${NG.toLowerCase()}`);
    expect(lower.status).toBe(400);
    expect(lower.body['error']).toMatchObject({ code: 'ERR_BAD_REQUEST' });
    // Nothing of the alert's content is in the list, nor in the router's log.
    expect(list.stdout).not.toContain('Example Trading Co');
    expect(readFileSync(join(hub.dir, 'logs', 'router.log'), 'utf8')).not.toContain(
      'Example Trading Co',
    );
    // Nothing was forwarded.
    expect((await feedMessages(hubNc)).filter((m) => m.msgId.startsWith(`${lost.id}:`))).toEqual(
      [],
    );
  });

  it('show: headers and protected headers for coordinators; the alert only for operators', async () => {
    const meta = await get(`/v1/deadletters/${dl.seq}`, coordinator());
    expect(meta.status).toBe(200);
    expect(meta.body['headers']).toMatchObject({
      'Ahub-Reason-Code': 'ERR_KEY_UNKNOWN',
      'Ahub-Original-Subject': inboundSubject(NG, 'seizure-report'),
    });
    expect(meta.body['envelope']).toMatchObject({
      signatures: [{ kid: newKey.kid, agency: NG, alert_id: lost.id }],
    });
    expect(meta.body['alert']).toBeUndefined();
    expect(JSON.stringify(meta.body)).not.toContain('Example Trading Co');

    const forbidden = await get(`/v1/deadletters/${dl.seq}?body=true`, coordinator());
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toMatchObject({ error: { code: 'ERR_FORBIDDEN' } });
    const requeueByCoordinator = await fetch(`${hub.router.url}/v1/deadletters/${dl.seq}/requeue`, {
      method: 'POST',
      headers: coordinator(),
    });
    expect(requeueByCoordinator.status).toBe(403);
    expect((await get('/v1/deadletters', {})).status).toBe(401);
    // Without a token nothing of the request is read: not its parameters, not a body.
    expect((await get('/v1/deadletters/not-a-number?body=maybe', {})).status).toBe(401);
    const anonymous = await fetch(`${hub.router.url}/v1/deadletters/${dl.seq}/requeue`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"not json',
    });
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ error: { code: 'ERR_UNAUTHENTICATED' } });
    expect((await get('/v1/deadletters/999999')).body).toMatchObject({
      error: { code: 'ERR_NOT_FOUND' },
    });

    const full = await run(['show', String(dl.seq), '--body', '--json']);
    expect(full.code, full.stderr).toBe(0);
    expect(JSON.parse(full.stdout)).toMatchObject({
      seq: dl.seq,
      code: 'ERR_KEY_UNKNOWN',
      alert: { id: lost.id, origin: NG, type: 'seizure-report' },
    });
  });

  it('a poison message is dead-lettered, shown as undecodable, and the router lives on', async () => {
    const ack = await jetstream(ngNc).publish(
      inboundSubject(NG, 'seizure-report'),
      new Uint8Array([0xc1, 0x00, 0xff]),
    );
    expect(ack.seq).toBeGreaterThan(0);
    const poison = await eventually(
      async () => {
        const { body } = await get(`/v1/deadletters?after=${dl.seq}`);
        return (body['items'] as (Summary & { seq: number })[]).find(
          (s) => s.claimedAlertId === undefined && s.origin === NG,
        );
      },
      60_000,
      'the poison dead letter',
    );
    const shown = await get(`/v1/deadletters/${poison.seq}`);
    expect(shown.status).toBe(200);
    expect(typeof shown.body['undecodable']).toBe('string');
    expect(shown.body['envelope']).toBeUndefined();
  });

  it('a dead letter that kept only the first bytes of an oversized message, or that came from no inbound subject, is never requeued (409 ERR_DEADLETTER_NOT_REQUEUEABLE)', async () => {
    const max = (await jetstreamManager(hubNc).then((m) => m.streams.info(inboundStreamName(NG))))
      .config.max_msg_size;
    const js = jetstream(ngNc);
    const oversized = await js.publish(
      inboundSubject(NG, 'seizure-report'),
      new Uint8Array(max).fill(0x41),
    );
    // Inside NG's publish permission (ahub.in.NG-CUSTOMS.>) but not of the form ahub.in.<agency>.<type>.
    const stray = await js.publish(
      `${inboundSubject(NG, 'seizure-report')}.x`,
      encodeEnvelope(await signAlert(seizureReport(NG), registeredKey(), SCHEMA)),
    );
    const truncated = await deadLetterOfInbound(oversized.seq);
    expect(truncated).toMatchObject({ truncated: true, bytes: max });
    const notInbound = await deadLetterOfInbound(stray.seq);
    expect(notInbound).toMatchObject({ code: 'ERR_SUBJECT_INVALID', truncated: false });
    for (const d of [truncated, notInbound]) {
      const r = await requeue(d.seq);
      expect(r.status, String(d.seq)).toBe(409);
      expect(r.body).toMatchObject({ error: { code: 'ERR_DEADLETTER_NOT_REQUEUEABLE' } });
      expect(
        ((await get('/v1/deadletters?limit=1000')).body['items'] as Summary[]).find(
          (s) => s.seq === d.seq,
        )?.requeued,
      ).toBeUndefined();
    }
    const cli = await run(['requeue', String(truncated.seq)]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('[ERR_DEADLETTER_NOT_REQUEUEABLE]');
  });

  it('requeue after the key is in the trust store: routed and delivered once; the audit says dead-lettered, requeued, routed', async () => {
    // A second alert dead-lettered the same way, then sent again with NG's registered key: it
    // is routed, so its dead letter must never be requeued.
    await publishInbound(ngNc, routedMeanwhile, newKey);
    dlRouted = await deadLetterOf(routedMeanwhile.id);
    await publishInbound(ngNc, routedMeanwhile, registeredKey());
    await eventually(async () => (await vnFeedIds()).includes(routedMeanwhile.id), 60_000);

    // The rotation's steps in the wrong order (operations.md): NG's new public key reaches NG's
    // gateway, which signs with it from now on, before the router has reloaded. The gateway's own
    // check passes (202); the router cannot verify the alert (ERR_KEY_UNKNOWN), so its refusal
    // notice names no alert id, and the gateway finds its alert by the inbound sequence.
    const trustFile = join(hub.certsDir, 'trust', `${NG}.jwks.json`);
    const jwks = JSON.parse(readFileSync(trustFile, 'utf8')) as JwksDocument;
    writeFileSync(trustFile, JSON.stringify({ ...jwks, keys: [...jwks.keys, newPublic] }));
    const ngKeyDir = join(hub.certsDir, 'private', NG);
    const ngKeyFile = join(ngKeyDir, readdirSync(ngKeyDir)[0]!);
    const registered = readFileSync(ngKeyFile);
    writeFileSync(ngKeyFile, readFileSync(newKeyFile));
    await reload(hub.gateways[NG]!, `gateway-${NG}.log`);
    const ngGateway = (path: string, init?: RequestInit) =>
      fetch(`${hub.gateways[NG]!.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
      });
    const sent = await ngGateway('/v1/alerts', {
      method: 'POST',
      body: JSON.stringify(seizureReport(NG)),
    });
    expect(sent.status).toBe(202);
    const { id: sentId } = (await sent.json()) as { id: string };
    const refused = await eventually(
      async () => {
        const st = (await (await ngGateway(`/v1/alerts/${sentId}/status`)).json()) as {
          state: string;
          refused?: { code: string };
        };
        return st.state === 'refused' ? st : undefined;
      },
      60_000,
      'the refusal in the sender’s status',
    );
    expect(refused.refused?.code).toBe('ERR_KEY_UNKNOWN');
    const sentDl = await deadLetterOf(sentId);
    // NG's gateway back on its registered key (the later cases sign with it).
    writeFileSync(ngKeyFile, registered);
    await reload(hub.gateways[NG]!, `gateway-${NG}.log`);

    // The cause fixed: the router and the partner reload the trust store.
    await reload(hub.router, 'router.log');
    await reload(hub.gateways[VN]!, `gateway-${VN}.log`);

    const r = await run(['requeue', String(dl.seq)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`dead letter #${dl.seq} requeued on ${dl.originalSubject}`);
    // The gateway's alert too: once routed, its status says so (a routing after the refusal).
    expect((await run(['requeue', String(sentDl.seq)])).code).toBe(0);
    await eventually(
      async () => {
        const st = (await (await ngGateway(`/v1/alerts/${sentId}/status`)).json()) as {
          state: string;
          recipients: { recipient: string }[];
        };
        return st.state === 'routed' && st.recipients.some((x) => x.recipient === VN);
      },
      60_000,
      'the requeued alert routed in the sender’s status',
    );

    await eventually(async () => (await vnFeedIds()).includes(lost.id), 60_000, 'delivery');
    await routerDrained(hubNc);
    expect((await vnFeedIds()).filter((id) => id === lost.id)).toHaveLength(1);
    const copies = (await feedMessages(hubNc)).filter((m) => m.msgId.startsWith(`${lost.id}:`));
    expect(copies.map((c) => c.subject)).toEqual([`ahub.feed.${VN}.${NG}.seizure-report`]);

    const trace = await get(`/v1/audit/trace/${lost.id}`, coordinator());
    const events = (trace.body['records'] as { event: string }[]).map((x) => x.event);
    const at = (e: string) => events.indexOf(e);
    expect(at('dead-lettered')).toBeGreaterThanOrEqual(0);
    expect(at('requeued')).toBeGreaterThan(at('dead-lettered'));
    // Routed once after the requeue: one decision, one copy.
    expect(at('routed')).toBeGreaterThan(at('requeued'));
    expect(events.filter((e) => e === 'routed')).toHaveLength(1);
    const summary = trace.body['summary'] as { forwardedTo: { recipient: string }[] };
    expect(summary.forwardedTo.map((f) => f.recipient)).toEqual([VN]);

    const listed = (await get('/v1/deadletters')).body['items'] as Summary[];
    expect(listed.find((s) => s.seq === dl.seq)?.requeued).toMatchObject({ by: 'hub-ops' });
    expect(listed.find((s) => s.seq === dl.seq)?.requeued?.inboundSeq).toBeGreaterThan(0);
  }, 120_000);

  it('an agency publishing under a requeue id (requeue:<dead-letter seq>:<digest>) changes nothing', async () => {
    const js = jetstream(ngNc);
    const subject = inboundSubject(NG, 'seizure-report');
    // Its own new alerts under the requeue id of the dead letter requeued above and of one
    // never requeued, each id computed over the bytes sent: refused, dead-lettered, not forwarded.
    for (const of of [dl.seq, dlRouted.seq]) {
      const a = seizureReport(NG);
      const bytes = encodeEnvelope(await signAlert(a, newKey, SCHEMA));
      const ack = await js.publish(subject, bytes, { msgID: requeueIdOf(of, bytes) });
      expect(ack.duplicate).toBe(false);
      expect(await deadLetterOf(a.id)).toMatchObject({ code: 'ERR_MSG_ID_MISMATCH' });
      expect(
        (await feedMessages(hubNc)).filter((m) => m.msgId.startsWith(`${a.id}:`)),
        `forwarded under the requeue id of ${of}`,
      ).toEqual([]);
    }
    // The requeued dead letter's own bytes, under the requeue id it can compute from them.
    const jsm = await jetstreamManager(hubNc);
    const original = (await jsm.streams.getMessage(Streams.DeadLetter, { seq: dl.seq }))!.data;
    const again = await js.publish(dl.originalSubject, original, {
      msgID: requeueIdOf(dl.seq, original),
    });
    expect(await deadLetterOfInbound(again.seq)).toMatchObject({ code: 'ERR_MSG_ID_MISMATCH' });
    await routerDrained(hubNc);
    expect((await vnFeedIds()).filter((id) => id === lost.id)).toHaveLength(1);
    const trace = await get(`/v1/audit/trace/${lost.id}`, coordinator());
    const events = (trace.body['records'] as { event: string }[]).map((x) => x.event);
    expect(events.filter((e) => e === 'routed')).toHaveLength(1);
  });

  it('an agency cannot take a requeue id ahead of the operator: the requeue still routes the dead letter, once', async () => {
    const js = jetstream(ngNc);
    const subject = inboundSubject(NG, 'seizure-report');
    const a = seizureReport(NG);
    const bytes = encodeEnvelope(await signAlert(a, registeredKey(), SCHEMA));
    // Dead-lettered for a cause the requeue removes: a message id not bound to the envelope.
    const first = await js.publish(subject, bytes, { msgID: `chosen-${a.id}` });
    const d = await deadLetterOfInbound(first.seq);
    expect(d.code).toBe('ERR_MSG_ID_MISMATCH');
    // Its origin knows the bytes, and publishes them first under the requeue id it can compute
    // (were that the router's id, JetStream would drop the requeue's publish as a duplicate).
    const taken = await js.publish(subject, bytes, { msgID: requeueIdOf(d.seq, bytes) });
    expect(taken.duplicate).toBe(false);
    expect(await deadLetterOfInbound(taken.seq)).toMatchObject({ code: 'ERR_MSG_ID_MISMATCH' });
    const r = await requeue(d.seq);
    expect(r.status).toBe(200);
    expect(r.body['inboundSeq']).toBeGreaterThan(taken.seq);
    await eventually(async () => (await vnFeedIds()).includes(a.id), 60_000, 'delivery');
    await routerDrained(hubNc);
    expect((await vnFeedIds()).filter((id) => id === a.id)).toHaveLength(1);
  });

  it('a second requeue is refused (ERR_DEADLETTER_REQUEUED); a dead letter whose alert was routed since is refused (ERR_ALERT_ALREADY_ROUTED)', async () => {
    const again = await run(['requeue', String(dl.seq)]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('[ERR_DEADLETTER_REQUEUED]');
    const res = await fetch(`${hub.router.url}/v1/deadletters/${dl.seq}/requeue`, {
      method: 'POST',
      headers: ops(),
    });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_DEADLETTER_REQUEUED' } });

    const twice = await fetch(`${hub.router.url}/v1/deadletters/${dlRouted.seq}/requeue`, {
      method: 'POST',
      headers: ops(),
    });
    expect(twice.status).toBe(409);
    expect(await twice.json()).toMatchObject({ error: { code: 'ERR_ALERT_ALREADY_ROUTED' } });
    await routerDrained(hubNc);
    expect((await vnFeedIds()).filter((id) => id === lost.id)).toHaveLength(1);
    expect((await vnFeedIds()).filter((id) => id === routedMeanwhile.id)).toHaveLength(1);
  });
});
