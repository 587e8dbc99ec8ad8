import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import {
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import {
  AUDIT_CHECKPOINTS_ALL,
  AUDIT_COSIGNATURES_ALL,
  Streams,
  auditCheckpointSubject,
  auditCosignatureSubject,
  auditProofSubject,
  feedConsumerName,
  inboxPrefix,
} from '@alert-hub/core';
import {
  MAX_COSIGNATURE_MESSAGE_SIGNATURES,
  cosignCheckpoint,
  parseCheckpoint,
  parseNote,
  witnessName,
} from '@alert-hub/audit';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import {
  COSIGNATURE_MESSAGES_BURST,
  COSIGNATURE_MESSAGES_PER_CHECKPOINT,
  COSIGNATURE_VERIFICATIONS,
  DEFAULT_PROOF_REQUESTS_PER_SECOND,
  loadConfig as routerConfig,
  startRouter,
  type Router,
} from '@alert-hub/router';
import { createDevPki, devPkiPaths, renderNatsSecurityConfig } from '@alert-hub/operator';
import {
  AUDIT_COSIGNATURE_MAX_BYTES,
  connectNats,
  createToken,
  provisionHub,
} from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
  scrapeMetrics,
} from '@alert-hub/testkit';

// What one agency can do to the hub's transparency log with its own NATS credentials and its own
// agency key (KE-KWS, a malicious insider): flood or shadow the audit streams, burn the router's
// CPU with cosignature notes, bloat the gathered anchor. SG-NPARKS and VN-CUSTOMS are honest
// witnesses (whole gateways). The hub runs with one NATS account per agency, as `hubctl
// nats-config` renders it, and audit streams of 1 MiB: a few messages show what 256 MiB would.
const WITNESSES = ['SG-NPARKS', 'VN-CUSTOMS'];
const ATTACKER = 'KE-KWS';
const AGENCIES = [...WITNESSES, ATTACKER];
const AUDIT_MAX_BYTES = 1024 * 1024;
const CHECKPOINT_INTERVAL_MS = 100;
/** The cosignature messages per second the router reads of one agency (4 per checkpoint). */
const COSIGNATURES_PER_SECOND =
  (COSIGNATURE_MESSAGES_PER_CHECKPOINT * 1000) / CHECKPOINT_INTERVAL_MS;
const fx = makeHubFixture(AGENCIES);
const pkiDir = join(fx.dir, 'certs', 'dev');
const tls = (who: string) => {
  const p = devPkiPaths(pkiDir, who);
  return { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile };
};
const nats = useNatsServer({
  config: async () => {
    await createDevPki({ dir: pkiDir, principals: ['HUB', ...AGENCIES] });
    const p = devPkiPaths(pkiDir);
    return renderNatsSecurityConfig({
      agencies: AGENCIES,
      routers: ['HUB'],
      tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
    });
  },
});
// A plain server for the upgrade of an older hub's audit stream.
const plain = useNatsServer();
const token = createToken();
const prometheus = createToken();
const { log, lines } = memoryLogger('audit-stream');
const agreementsFile = join(fx.dir, 'agreements.yaml');
const running: { close(): Promise<void> }[] = [];
const gateways: Record<string, Gateway> = {};
let router: Router;
let hub: NatsConnection;
let jsm: JetStreamManager;
let sg: NatsConnection;
let attacker: NatsConnection & { violations: string[] };

async function as(who: string): Promise<NatsConnection & { violations: string[] }> {
  const nc = await connectNats({
    servers: nats.url,
    name: who,
    inboxPrefix: inboxPrefix(who),
    tls: tls(who),
  });
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') violations.push(String(s.error));
  })();
  running.push({ close: () => nc.close() });
  return Object.assign(nc, { violations });
}

/** Provisions the hub's streams (small audit streams), as the router's user. */
function provision(): Promise<unknown> {
  return provisionHub(jsm, AGENCIES, { limits: { auditMaxBytes: AUDIT_MAX_BYTES } });
}

async function startHubRouter(tag: string): Promise<Router> {
  const r = await startRouter(
    routerConfig(
      {},
      writeConfig(fx.dir, `router-${tag}`, {
        instance: 'router-a',
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile,
        dataDir: join(fx.dir, 'router'),
        nats: { servers: [nats.url], tls: tls('HUB') },
        http: { port: 0 },
        metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
        checkpointIntervalMs: CHECKPOINT_INTERVAL_MS,
        // provisioned here, with small audit streams
        provision: false,
      }),
    ),
    { log },
  );
  return r;
}

/** Routes one alert from SG to VN: one more audit entry, so one more checkpoint. */
async function routeOne(): Promise<void> {
  const a = seizureReport('SG-NPARKS');
  await publishInbound(sg, a, fx.keys['SG-NPARKS']!);
  await eventually(() => gateways['VN-CUSTOMS']!.store.receivedById(a.id), 10_000, 'the alert');
}

/** Witness names whose cosignature lines a note carries, one entry per line. */
function cosigners(note: string | undefined): string[] {
  return note ? parseNote(note).signatures.map((s) => s.name) : [];
}

/** Waits until the router's latest checkpoint covers every entry and both honest witnesses cosigned it. */
async function witnessedByAll(): Promise<string> {
  return eventually(
    () => {
      const note = router.audit.latest;
      if (!note) return undefined;
      const size = parseCheckpoint(parseNote(note).text).size;
      const names = cosigners(note);
      return size === router.store.audit.size &&
        WITNESSES.every((w) => names.includes(witnessName(w)))
        ? note
        : undefined;
    },
    20_000,
    'the latest checkpoint cosigned by every honest witness',
  );
}

/** A counter of the router's, summed over its labels, or over those with `outcome` only. */
async function metric(name: string, outcome?: string): Promise<number> {
  const text = await scrapeMetrics(router.url, prometheus.token);
  return text
    .split('\n')
    .filter(
      (l) =>
        (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) &&
        (outcome === undefined || l.includes(`outcome="${outcome}"`)),
    )
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const attackerSigner = () => ({
  name: witnessName(ATTACKER),
  privateKey: fx.keys[ATTACKER]!.privateKey,
  publicKey: Buffer.from(fx.keys[ATTACKER]!.publicJwk.x, 'base64url'),
});

/** The attacker's note over `text`: the hub's lines of `note`, if any, then `n` valid cosignature lines of its own. */
function attackerNote(note: string, n: number, from = Math.floor(Date.now() / 1000)): string {
  const parsed = parseNote(note);
  const own = Array.from({ length: n }, (_, i) =>
    cosignCheckpoint(parsed.text, attackerSigner(), from + i),
  );
  const hubLines = parsed.signatures.filter((s) => !s.name.startsWith('alert-hub/witness/'));
  return `${parsed.text}\n${[...hubLines.map((s) => s.line), ...own].map((l) => `${l}\n`).join('')}`;
}

/** A JetStream publish as the attacker, through its account's import: the ack, or the error. */
async function attackerPublish(
  subject: string,
  data: string | Uint8Array,
  msgId?: string,
): Promise<{ seq?: number; duplicate?: boolean; error?: { err_code?: number } }> {
  const h = headers();
  if (msgId) h.set('Nats-Msg-Id', msgId);
  const r = await attacker.request(subject, data, { timeout: 5_000, headers: h });
  return r.json();
}

async function streamSubjects(stream: string): Promise<Record<string, number>> {
  const info = await jsm.streams.info(stream, { subjects_filter: '>' });
  return info.state.subjects ?? {};
}

beforeAll(async () => {
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [seizureAgreement('SG-VN', 't', ['SG-NPARKS', 'VN-CUSTOMS'])],
    }),
  );
  hub = await as('HUB');
  jsm = await jetstreamManager(hub);
  await provision();
  router = await startHubRouter('first');
  for (const agency of WITNESSES) {
    const g = await startGateway(
      gatewayConfig(
        {},
        writeConfig(fx.dir, `gw-${agency}`, {
          agency,
          signingKey: fx.keyFiles[agency],
          trustDir: fx.trustDir,
          dataDir: join(fx.dir, `gw-${agency}`),
          http: { port: 0 },
          nats: { servers: [nats.url], tls: tls(agency) },
          clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
        }),
      ),
      { log },
    );
    running.push(g);
    gateways[agency] = g;
  }
  sg = await as('SG-NPARKS');
  attacker = await as(ATTACKER);
  await routeOne();
  await witnessedByAll();
}, 60_000);

afterAll(async () => {
  for (const r of running.reverse()) await r.close().catch(() => undefined);
  await router?.close();
  fx.cleanup();
});

describe('audit streams - an agency cannot evict, shadow or crowd out the log’s published history', () => {
  it('a flood on its own cosignature subject keeps one message; other logs’ subjects and oversized notes are refused; every checkpoint and every other witness’s cosignature stays', async () => {
    const before = await jsm.streams.info(Streams.Audit);
    const checkpointsBefore = before.state.messages;
    expect(checkpointsBefore).toBeGreaterThan(0);
    // 40 x 60 KB: more than twice what the 1 MiB audit streams hold.
    const junk = 'A'.repeat(60_000);
    for (let i = 0; i < 40; i++) {
      const ack = await attackerPublish(auditCosignatureSubject('hub', ATTACKER), `${junk}${i}`);
      expect(ack.error).toBeUndefined();
    }
    // Larger than a signed note: refused by the stream, nothing stored.
    const big = await attackerPublish(
      auditCosignatureSubject('hub', ATTACKER),
      'B'.repeat(AUDIT_COSIGNATURE_MAX_BYTES + 1),
    );
    expect(big.error?.err_code).toBe(10054);
    // Subjects of another log (unbounded subjects in the stream) and the checkpoint subject:
    // refused by the agency's NATS permissions.
    for (const subject of [
      auditCosignatureSubject('junk', ATTACKER),
      auditCheckpointSubject('hub'),
    ])
      attacker.publish(subject, 'x');
    await attacker.flush();
    await eventually(
      () => attacker.violations.filter((v) => /permissions violation/i.test(v)).length >= 2,
      5_000,
      'both publishes refused by nats-server',
    );

    const cosigs = await streamSubjects(Streams.AuditCosignatures);
    expect(cosigs).toEqual({
      [auditCosignatureSubject('hub', 'SG-NPARKS')]: 1,
      [auditCosignatureSubject('hub', 'VN-CUSTOMS')]: 1,
      [auditCosignatureSubject('hub', ATTACKER)]: 1,
    });
    const after = await jsm.streams.info(Streams.Audit);
    // Nothing evicted (a checkpoint may have been added meanwhile: receipts are audited too).
    expect(after.state.first_seq).toBe(before.state.first_seq);
    expect(after.state.messages).toBeGreaterThanOrEqual(checkpointsBefore);
    expect(Object.keys(await streamSubjects(Streams.Audit))).toEqual([
      auditCheckpointSubject('hub'),
    ]);
    // The hub goes on: the next checkpoint is stored and cosigned by both honest witnesses.
    await routeOne();
    await witnessedByAll();
    expect((await jsm.streams.info(Streams.Audit)).state.messages).toBeGreaterThan(
      after.state.messages,
    );
  });

  it('message ids taken first for the next checkpoints (the old predictable id) do not stop the router’s checkpoints from being stored', async () => {
    const before = router.store.audit.size;
    for (let n = before + 1; n <= before + 20; n++) {
      const ack = await attackerPublish(
        auditCosignatureSubject('hub', ATTACKER),
        'x',
        `alert-hub/audit/hub:${n}`,
      );
      expect(ack.error).toBeUndefined();
    }
    await routeOne();
    const note = await witnessedByAll();
    const size = parseCheckpoint(parseNote(note).text).size;
    // The checkpoint witnesses cosigned is the one stored last (never answered "duplicate").
    const stored = await eventually(
      async () => {
        const m = await jsm.streams.getMessage(Streams.Audit, {
          last_by_subj: auditCheckpointSubject('hub'),
        });
        const cp = m && parseNote(m.json<{ checkpoint: string }>().checkpoint);
        return cp?.text === parseNote(note).text ? cp : undefined;
      },
      10_000,
      'the cosigned checkpoint stored in the audit stream',
    );
    expect(parseCheckpoint(stored.text).size).toBe(size);
    expect(size).toBeGreaterThan(before);
  });
});

describe('audit cosignatures - one agency cannot burn the router’s CPU nor bloat the anchor', () => {
  it('hundreds of notes of 100 valid lines cost the router no Ed25519 verification; fresh valid lines cost at most its budget per checkpoint', async () => {
    const note = await witnessedByAll();
    const verifiedBefore = await metric('ahub_router_audit_cosignature_verifications_total');
    const seenBefore = await metric('ahub_router_audit_cosignatures_total');
    const limitedBefore = await metric('ahub_router_audit_cosignatures_total', 'limited');
    const started = performance.now();
    const checkpointsBefore = await metric('ahub_router_audit_checkpoints_total');
    const checkpointsSince = async () =>
      (await metric('ahub_router_audit_checkpoints_total')) - checkpointsBefore;
    const fake = `alert-hub/audit/hub\n5\n${Buffer.alloc(32, 1).toString('base64')}\n`;
    const fakeNote = attackerNote(`${fake}\n— x AAAAAAAA\n`, 100 - 1);
    const realNote = attackerNote(note, 100 - 1);
    let sent = 0;
    for (let i = 0; i < 300; i++, sent++)
      attacker.publish(auditCosignatureSubject('hub', ATTACKER), fakeNote);
    for (let i = 0; i < 50; i++, sent++)
      attacker.publish(auditCosignatureSubject('hub', ATTACKER), realNote);
    // Within the line limit, each with a fresh valid line: only the budget is verified.
    for (let i = 0; i < 50; i++, sent++)
      attacker.publish(
        auditCosignatureSubject('hub', ATTACKER),
        attackerNote(note, MAX_COSIGNATURE_MESSAGE_SIGNATURES - 1, 1_700_000_000 + i * 10),
      );
    await attacker.flush();
    await eventually(
      async () => {
        // and the honest witnesses' cosignature of each checkpoint signed meanwhile (receipts); at
        // least: one signed just before the count began may add its two
        const honest = WITNESSES.length * (await checkpointsSince());
        return (await metric('ahub_router_audit_cosignatures_total')) - seenBefore >= sent + honest;
      },
      20_000,
      'the router to have read every note',
    );
    // Beyond its rate the router did not even parse the attacker's notes: it read at most its
    // burst and what its rate gave back while the flood lasted.
    const seconds = (performance.now() - started) / 1000;
    const limited =
      (await metric('ahub_router_audit_cosignatures_total', 'limited')) - limitedBefore;
    expect(sent - limited).toBeLessThanOrEqual(
      COSIGNATURE_MESSAGES_BURST + Math.ceil(COSIGNATURES_PER_SECOND * seconds),
    );
    // The attacker's budget (renewed by each checkpoint) and one per honest cosignature; it was
    // 35,000 when every line was verified.
    const cps = await checkpointsSince();
    expect(
      (await metric('ahub_router_audit_cosignature_verifications_total')) - verifiedBefore,
    ).toBeLessThanOrEqual(COSIGNATURE_VERIFICATIONS * (1 + cps) + WITNESSES.length * cps);
    // Routing goes on for everybody.
    await routeOne();
    await witnessedByAll();
  });

  it('proof requests beyond an agency’s rate are answered ERR_RATE_LIMITED without being read; another agency is still served', async () => {
    const a = seizureReport('SG-NPARKS');
    await publishInbound(sg, a, fx.keys['SG-NPARKS']!);
    await eventually(() => gateways['VN-CUSTOMS']!.store.receivedById(a.id), 10_000, 'the alert');
    await witnessedByAll();
    const servedBefore = await metric('ahub_router_audit_proof_requests_total', 'ERR_NOT_FOUND');
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 300 }, () =>
        attacker
          .request(auditProofSubject('hub', ATTACKER), JSON.stringify({ alertId: a.id }), {
            timeout: 10_000,
          })
          .then((m) => m.json<{ error?: { code: string; retryAfterMs?: number } }>()),
      ),
    );
    const seconds = (performance.now() - started) / 1000;
    const limited = answers.filter((x) => x.error?.code === 'ERR_RATE_LIMITED');
    // Read: at most the burst (twice the rate) and what the rate gave back meanwhile; each of
    // them answered (KE-KWS received nothing of this alert).
    const read = answers.length - limited.length;
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThanOrEqual(
      2 * DEFAULT_PROOF_REQUESTS_PER_SECOND +
        Math.ceil(DEFAULT_PROOF_REQUESTS_PER_SECOND * seconds),
    );
    expect(answers.filter((x) => x.error?.code === 'ERR_NOT_FOUND')).toHaveLength(read);
    expect(
      (await metric('ahub_router_audit_proof_requests_total', 'ERR_NOT_FOUND')) - servedBefore,
    ).toBe(read);
    expect(limited.every((x) => x.error!.retryAfterMs! > 0)).toBe(true);
    // VN-CUSTOMS, in the same second: its own rate, its verified proof.
    const proof = await gateways['VN-CUSTOMS']!.witness!.inclusionProof('hub', a.id);
    expect(proof.ok).toBe(true);
    // A fault of the router's own while it answers (here its tree, made to throw once) is
    // ERR_INTERNAL, the gateway's 502 ERR_HUB_INTERNAL: never the client's 400, and the fault's
    // text stays in the router's log.
    const tree = router.store.audit.tree;
    const inclusionProof = tree.inclusionProof.bind(tree);
    tree.inclusionProof = () => {
      throw new Error('disk I/O error at /var/lib/secret.db');
    };
    const failed = await fetch(`${gateways['VN-CUSTOMS']!.url}/v1/audit/inclusion/${a.id}`, {
      headers: { authorization: `Bearer ${token.token}` },
    }).finally(() => {
      tree.inclusionProof = inclusionProof;
    });
    expect(failed.status).toBe(502);
    const failure = (await failed.json()) as { error: { code: string; message: string } };
    expect(failure.error.code).toBe('ERR_HUB_INTERNAL');
    expect(failure.error.message).not.toContain('secret');
    // Not an alert id: the gateway answers 400 itself (the router would refuse it), never a 503
    // to retry, and the agency's budget is not spent on it.
    const typo = await fetch(`${gateways['VN-CUSTOMS']!.url}/v1/audit/inclusion/not-an-id`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { error: { code: string } }).error.code).toBe('ERR_BAD_REQUEST');
    // Its gateway's clients see the limit as 429 with Retry-After, once they ask too fast: three
    // times the rate at once, again while none is refused (on a loaded machine the requests of
    // one round may reach the router over more than a second, and the rate refills meanwhile).
    const url = `${gateways['VN-CUSTOMS']!.url}/v1/audit/inclusion/${a.id}`;
    const auth = { authorization: `Bearer ${token.token}` };
    const replies: Response[] = [];
    for (let round = 0; round < 10 && !replies.some((r) => r.status === 429); round++)
      replies.push(
        ...(await Promise.all(
          Array.from({ length: 3 * DEFAULT_PROOF_REQUESTS_PER_SECOND }, () =>
            fetch(url, { headers: auth }),
          ),
        )),
      );
    const tooMany = replies.filter((r) => r.status === 429);
    expect(tooMany.length).toBeGreaterThan(0);
    expect(Number(tooMany[0]!.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(((await tooMany[0]!.json()) as { error: { code: string } }).error.code).toBe(
      'ERR_RATE_LIMITED',
    );
    expect(replies.filter((r) => r.status !== 429).every((r) => r.status === 200)).toBe(true);
  });

  it('the gathered anchor keeps one line per witness, the newest valid: an agency cannot make it unusable', async () => {
    const note = await witnessedByAll();
    // The attacker's cosignature rate refilled after the floods above: its five notes are read.
    await sleep((1000 * COSIGNATURE_MESSAGES_BURST) / COSIGNATURES_PER_SECOND);
    const t = Math.floor(Date.now() / 1000);
    // One by one, each a fresh valid line: the router keeps only the newest.
    for (let i = 0; i < 5; i++)
      attacker.publish(auditCosignatureSubject('hub', ATTACKER), attackerNote(note, 1, t + i));
    await attacker.flush();
    const expected = cosignCheckpoint(parseNote(note).text, attackerSigner(), t + 4);
    const anchor = await eventually(
      () => (router.audit.latest?.includes(expected) ? router.audit.latest : undefined),
      10_000,
      'the attacker’s newest line in the anchor',
    );
    const names = cosigners(anchor);
    expect(names.filter((n) => n === witnessName(ATTACKER))).toHaveLength(1);
    expect(names).toHaveLength(1 + AGENCIES.length);
    for (const w of WITNESSES) expect(names.filter((n) => n === witnessName(w))).toHaveLength(1);
    // An honest gateway's gathered anchor: one line per witness too.
    const gathered = gateways['SG-NPARKS']!.witness!.latest('hub');
    const gatheredNames = cosigners(gathered);
    expect(new Set(gatheredNames).size).toBe(gatheredNames.length);
    // The anchor verifies with hubctl's checks: it parses (at most 100 lines) and is cosigned.
    expect(parseNote(anchor).signatures.length).toBeLessThanOrEqual(1 + AGENCIES.length);
  });
});

describe('audit subjects - the reply an agency names', () => {
  it('an agency’s client cannot send a proof request or cosignature with a JetStream ack reply: nats-server refuses it', async () => {
    // nats-server 2.9 reserves `$JS.ACK.` replies: it refuses them from any client connection,
    // whatever the user's permissions (with KE-KWS allowed to publish `>` this passes too). A
    // leaf connection is not checked so, hence the router's guard (its `refused` counts: unchanged
    // here).
    // What reaches the hub's account on the agency's two subjects: the reply of each message.
    const proofs: (string | undefined)[] = [];
    const cosigs: (string | undefined)[] = [];
    const spies = [
      hub.subscribe(auditProofSubject('hub', ATTACKER), {
        callback: (_err, m) => void proofs.push(m.reply),
      }),
      hub.subscribe(auditCosignatureSubject('hub', ATTACKER), {
        callback: (_err, m) => void cosigs.push(m.reply),
      }),
    ];
    await hub.flush();
    const violationsBefore = attacker.violations.length;
    const refusedBefore = [
      await metric('ahub_router_audit_proof_requests_total', 'refused'),
      await metric('ahub_router_audit_cosignatures_total', 'refused'),
    ];
    // Ack subjects of the hub's account: of a stream it has no grant on, and of its own feed
    // consumer, whose acks it may publish.
    const replies = [
      `$JS.ACK.${Streams.AuditCosignatures}.c.1.1.1.1.1`,
      `$JS.ACK.${Streams.Feeds}.${feedConsumerName(ATTACKER)}.1.1.1.1.1`,
    ];
    const request = JSON.stringify({ alertId: seizureReport(ATTACKER).id });
    for (const reply of replies) {
      attacker.publish(auditProofSubject('hub', ATTACKER), request, { reply });
      attacker.publish(auditCosignatureSubject('hub', ATTACKER), 'a cosignature', { reply });
    }
    // The same from the same connection with its own inbox as the reply, sent after: answered,
    // and stored.
    const answer = await attacker.request(auditProofSubject('hub', ATTACKER), request, {
      timeout: 5_000,
    });
    expect(answer.json<{ error?: { code: string } }>().error?.code).toMatch(
      /^ERR_(NOT_FOUND|RATE_LIMITED)$/,
    );
    expect((await attackerPublish(auditCosignatureSubject('hub', ATTACKER), 'x')).error).toBe(
      undefined,
    );
    await eventually(
      () => proofs.length > 0 && cosigs.length > 0,
      5_000,
      'the request and the cosignature with an inbox reply at the hub',
    );
    for (const s of spies) s.unsubscribe();
    // Only those two reached the hub's account (the reply remapped by the service import): none
    // of the four sent before them.
    expect(proofs).toEqual([expect.stringMatching(/^_R_\./)]);
    expect(cosigs).toEqual([expect.stringMatching(/^_R_\./)]);
    // nats-server refused each of the four, naming its reply, and the connection stays.
    await eventually(
      () => attacker.violations.length - violationsBefore >= 2 * replies.length,
      5_000,
      'the four publishes refused by nats-server',
    );
    const violations = attacker.violations.slice(violationsBefore);
    expect(violations).toHaveLength(2 * replies.length);
    for (const reply of replies)
      expect(
        violations.filter((v) => /permissions violation/i.test(v) && v.includes(`"${reply}"`)),
      ).toHaveLength(2);
    // The router's own guard had nothing to refuse.
    expect([
      await metric('ahub_router_audit_proof_requests_total', 'refused'),
      await metric('ahub_router_audit_cosignatures_total', 'refused'),
    ]).toEqual(refusedBefore);
  });
});

describe('audit witnesses - the deadlock heals when the stored cosignatures are gone', () => {
  it('after the cosignature stream is lost and the router restarts, witnesses make their size known again and cosign again', async () => {
    await witnessedByAll();
    await router.close();
    // Everything the router learns witnesses' sizes from, gone (as after the flood of an older hub).
    await jsm.streams.delete(Streams.AuditCosignatures);
    await provision();
    expect((await jsm.streams.info(Streams.AuditCosignatures)).state.messages).toBe(0);
    router = await startHubRouter('second');
    // A checkpoint without any consistency proof: no witness can cosign it, each says what it
    // cosigned instead.
    await routeOne();
    await eventually(
      async () => {
        const stored = await streamSubjects(Streams.AuditCosignatures);
        return WITNESSES.every((w) => stored[auditCosignatureSubject('hub', w)] === 1);
      },
      10_000,
      'each witness’s last cosignature published again',
    );
    expect(lines.some((l) => l.includes('last cosignature published again'))).toBe(true);
    // The next checkpoint carries the proofs: both witnesses cosign it.
    await routeOne();
    await witnessedByAll();
    for (const w of WITNESSES) expect(gateways[w]!.witness!.stalled).toBeUndefined();
  });
});

describe('audit streams - upgrading an older hub', () => {
  it('the audit stream of an older hub gives the cosignature subjects up to their own stream and keeps its checkpoints', async () => {
    const nc = await plain.connect();
    const m = await jetstreamManager(nc);
    const js = jetstream(nc);
    await m.streams.add({
      name: Streams.Audit,
      subjects: [AUDIT_CHECKPOINTS_ALL, AUDIT_COSIGNATURES_ALL],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      deny_delete: true,
      deny_purge: true,
    });
    await js.publish(auditCheckpointSubject('hub'), '{"checkpoint":"old"}');
    await js.publish(auditCosignatureSubject('hub', 'SG-NPARKS'), 'old cosignature');
    await provisionHub(m, ['SG-NPARKS']);
    const audit = await m.streams.info(Streams.Audit);
    expect(audit.config.subjects).toEqual([AUDIT_CHECKPOINTS_ALL]);
    expect(audit.state.messages).toBe(2);
    const cosigs = await m.streams.info(Streams.AuditCosignatures);
    expect(cosigs.config).toMatchObject({
      subjects: [AUDIT_COSIGNATURES_ALL],
      max_msgs_per_subject: 1,
      max_msg_size: AUDIT_COSIGNATURE_MAX_BYTES,
      discard: DiscardPolicy.New,
      deny_delete: true,
      deny_purge: true,
    });
    const ack = await js.publish(auditCosignatureSubject('hub', 'SG-NPARKS'), 'new cosignature');
    expect(ack.stream).toBe(Streams.AuditCosignatures);
    // Provisioning again changes nothing.
    await provisionHub(m, ['SG-NPARKS']);
    expect((await m.streams.info(Streams.Audit)).config.subjects).toEqual([AUDIT_CHECKPOINTS_ALL]);
  });
});
