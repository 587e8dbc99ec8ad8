import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { auditCosignatureSubject } from '@alert-hub/core';
import {
  MAX_NOTE_SIGNATURES,
  cosignCheckpoint,
  parseCheckpoint,
  parseNote,
  witnessName,
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
