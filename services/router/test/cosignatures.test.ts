import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import { Streams, auditCheckpointSubject, auditCosignatureSubject } from '@alert-hub/core';
import {
  MAX_NOTE_SIGNATURES,
  Witness,
  cosignCheckpoint,
  formatCheckpoint,
  parseCheckpoint,
  parseNote,
  signNote,
  witnessName,
  type CheckpointMessage,
} from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

// More witnesses than a signed note may carry lines (a hub of 100+ agencies): the router's
// gathered note keeps the first to cosign, so that it stays readable (`hubctl audit verify`).
const AGENCIES = Array.from(
  { length: MAX_NOTE_SIGNATURES + 2 },
  (_, i) => `SG-W${String(i).padStart(3, '0')}`,
);
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log } = memoryLogger('router-cosignatures-test');
let router: Router;

beforeAll(async () => {
  writeFileSync(join(fx.dir, 'agreements.yaml'), toYaml({ agreements: [] }));
  router = await startRouter(
    loadConfig(
      {},
      writeConfig(fx.dir, 'router', {
        instance: 'router-a',
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile: join(fx.dir, 'agreements.yaml'),
        dataDir: join(fx.dir, 'router'),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { enabled: false },
        checkpointIntervalMs: 100,
      }),
    ),
    { log },
  );
}, 60_000);
afterAll(async () => {
  await router.close();
  fx.cleanup();
});

describe('router cosignatures - more witnesses than a note carries', () => {
  it('the gathered note keeps the first witnesses up to the note limit, one line each, and stays readable', async () => {
    const nc = await nats.connect();
    // Refused (no agreement), audited all the same: one checkpoint of the whole log, the refusal
    // included (an earlier checkpoint would be replaced by the next, leaving the cosignatures of
    // this test on a note no longer the latest).
    const before = router.store.audit.size;
    await publishInbound(nc, seizureReport(AGENCIES[0]!), fx.keys[AGENCIES[0]!]!);
    const note = await eventually(
      () => {
        const n = router.audit.latest;
        const size = n && parseCheckpoint(parseNote(n).text).size;
        return size && size > before && size === router.store.audit.size ? n : undefined;
      },
      20_000,
      'a checkpoint of the whole log',
    );
    const text = parseNote(note).text;
    const at = Math.floor(Date.now() / 1000);
    for (const a of AGENCIES) {
      const key = fx.keys[a]!;
      const line = cosignCheckpoint(
        text,
        {
          name: witnessName(a),
          privateKey: key.privateKey,
          publicKey: Buffer.from(key.publicJwk.x, 'base64url'),
        },
        at,
      );
      nc.publish(auditCosignatureSubject('hub', a), `${note}${line}\n`);
    }
    await nc.flush();
    const gathered = await eventually(
      () => {
        const n = router.audit.latest;
        return n && parseNote(n).signatures.length === MAX_NOTE_SIGNATURES ? n : undefined;
      },
      20_000,
      'the note filled',
    );
    const names = parseNote(gathered).signatures.map((s) => s.name);
    expect(new Set(names).size).toBe(MAX_NOTE_SIGNATURES);
    expect(names.slice(1)).toEqual(
      AGENCIES.slice(0, MAX_NOTE_SIGNATURES - 1).map((a) => witnessName(a)),
    );
    expect(parseCheckpoint(parseNote(gathered).text)).toEqual(parseCheckpoint(text));
  });
});

describe('router checkpoints - a proof for every size the witnesses last cosigned', () => {
  it('more than 64 witnesses at as many sizes: each size gets its proof, and a witness at one of them cosigns the next checkpoint', async () => {
    const nc = await nats.connect();
    const origin = 'alert-hub/audit/hub';
    const hub = {
      name: origin,
      privateKey: fx.hubKey.privateKey,
      publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
    };
    const signer = (a: string) => ({
      name: witnessName(a),
      privateKey: fx.keys[a]!.privateKey,
      publicKey: Buffer.from(fx.keys[a]!.publicJwk.x, 'base64url'),
    });
    // Entries enough for 70 sizes (each refused alert is one entry: no agreement).
    const before = router.store.audit.size;
    for (let i = 0; i < 72; i++)
      await publishInbound(nc, seizureReport(AGENCIES[0]!), fx.keys[AGENCIES[0]!]!);
    await eventually(() => router.store.audit.size >= before + 72 || undefined, 20_000, 'entries');
    // Witness i tells the router it cosigned size before + i + 1 (a checkpoint of the router's own
    // tree, beyond what it cosigned in the case above).
    const witnesses = AGENCIES.slice(0, 70);
    const sizeOf = (i: number) => before + i + 1;
    const at = Math.floor(Date.now() / 1000);
    const states = witnesses.map((a, i) => {
      const size = sizeOf(i);
      const text = formatCheckpoint({ origin, size, root: router.store.audit.tree.root(size) });
      const note = `${signNote(text, hub)}`;
      const cosigned = `${note}${cosignCheckpoint(text, signer(a), at)}\n`;
      nc.publish(auditCosignatureSubject('hub', a), cosigned);
      return {
        origin,
        size,
        root: router.store.audit.tree.root(size).toString('base64'),
        note: cosigned,
      };
    });
    await nc.flush();
    // A checkpoint signed after the router has read them all carries a proof from each size.
    const jsm = await jetstreamManager(nc);
    const msg = await eventually(
      async () => {
        await publishInbound(nc, seizureReport(AGENCIES[0]!), fx.keys[AGENCIES[0]!]!);
        const m = await jsm.streams.getMessage(Streams.Audit, {
          last_by_subj: auditCheckpointSubject('hub'),
        });
        const body = m && (JSON.parse(new TextDecoder().decode(m.data)) as CheckpointMessage);
        return body && body.proofs.length >= witnesses.length ? body : undefined;
      },
      30_000,
      'a checkpoint with a proof from every witness size',
    );
    // (and from the size the other witnesses of the case above cosigned)
    const froms = msg.proofs.map((p) => p.from);
    expect(froms).toEqual(expect.arrayContaining(witnesses.map((_, i) => sizeOf(i))));
    // The witness at size 65 (the 65th distinct size) reads the message and cosigns it.
    const w = new Witness({
      signer: signer(witnesses[64]!),
      hubKeys: () => [hub.publicKey],
      store: { load: () => states[64], save: () => undefined, keepEvidence: () => undefined },
    });
    const out = w.observe(Buffer.from(JSON.stringify(msg)));
    expect(out.kind).toBe('cosigned');
    await nc.close();
  }, 60_000);
});
