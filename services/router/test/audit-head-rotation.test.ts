import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { auditOrigin } from '@alert-hub/core';
import {
  AuditAppender,
  headOrigin,
  hubCheckpoint,
  parseCheckpoint,
  parseNote,
} from '@alert-hub/audit';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { generateKey, revokeKey, rotateKey } from '@alert-hub/operator';
import { openDatabase, readSigningKey } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

// Rotating the router's own key (docs/operations.md, "Rotating an agency's key", with the hub's
// principal): the new key in the router's key directory and the trust store, then a reload. The
// router signs its audit head again with the new key at the reload (docs/protocol.md §8.3), so
// that the head verifies once the old key no longer counts.
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const { log, lines } = memoryLogger('audit-head-rotation-test');
const dataDir = join(fx.dir, 'router');
const auditDb = join(dataDir, 'audit.db');
const origin = auditOrigin('hub');
let router: Router | undefined;

function start(): Promise<Router> {
  return startRouter(
    loadConfig(
      {},
      writeConfig(fx.dir, `router-${Date.now()}`, {
        instance: 'router-a',
        // The key directory, as `hubctl keys` lays it out: a reload picks the newest valid key.
        signingKey: dirname(fx.hubKeyFile),
        trustDir: fx.trustDir,
        agreementsFile: join(fx.dir, 'agreements.yaml'),
        dataDir,
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: 0 },
        checkpointIntervalMs: 100,
      }),
    ),
    { log },
  );
}

/** The stored head, and the log's size. */
function storedHead(): { note: string; size: number } {
  const db = openDatabase(auditDb, { readonly: true });
  try {
    const head = db.prepare('SELECT note FROM audit_head').get() as { note: string };
    const size = (db.prepare('SELECT count(*) AS n FROM audit').get() as { n: number }).n;
    return { note: head.note, size };
  } finally {
    db.close();
  }
}

function storedHeadSize(): number {
  try {
    return storedHead().size;
  } catch {
    return 0; // no head yet: nothing appended
  }
}

const raw = (x: string) => Buffer.from(x, 'base64url');

/** Routes one alert and waits until a checkpoint of every entry is published. */
async function routeOne(r: Router): Promise<void> {
  const nc = await nats.connect();
  const before = storedHeadSize();
  await publishInbound(nc, seizureReport('SG-NPARKS'), fx.keys['SG-NPARKS']!);
  await eventually(
    () => {
      const latest = r.audit.latest;
      const { size } = storedHead();
      return latest && size > before && parseCheckpoint(parseNote(latest).text).size === size;
    },
    20_000,
    'a checkpoint of every entry',
  );
}

beforeAll(async () => {
  writeFileSync(
    join(fx.dir, 'agreements.yaml'),
    toYaml({ agreements: [seizureAgreement('WEN-ASIA', 'Asia', AGENCIES)] }),
  );
  router = await start();
}, 60_000);
afterAll(async () => {
  await router?.close().catch(() => undefined);
  fx.cleanup();
});

describe('router - the audit head is vouched for by a key the router holds', () => {
  it('an insider who adds a router key of its own to the trust store and signs a head with it over entries it appended is refused at start', async () => {
    await routeOne(router!);
    await router!.close();
    router = undefined;
    const files = [auditDb, `${auditDb}-wal`, `${auditDb}-shm`].filter((f) => existsSync(f));
    for (const f of files) copyFileSync(f, `${f}.sound`);
    const trustFile = join(fx.trustDir, 'HUB.jwks.json');
    const trusted = readFileSync(trustFile, 'utf8');
    // The insider's key: made outside the router's key directory, published in its trust store
    // as a key of the hub, role router.
    const elsewhere = mkdtempSync(join(tmpdir(), 'ahub-insider-'));
    try {
      const k2 = generateKey({ certsDir: elsewhere, principal: 'HUB', role: 'router' });
      const jwks = JSON.parse(trusted) as { keys: unknown[] };
      writeFileSync(trustFile, JSON.stringify({ ...jwks, keys: [...jwks.keys, k2.publicJwk] }));
      const k2Key = readSigningKey(k2.privateFile, 'HUB');
      // A forged receipt appended with the log's own code, the head signed with the insider's key.
      const db = openDatabase(auditDb);
      try {
        const forger = new AuditAppender(db, 'router-a', {
          head: () => ({
            signer: {
              name: headOrigin(origin),
              privateKey: k2Key.privateKey,
              publicKey: raw(k2Key.publicJwk.x),
            },
            origin,
          }),
        });
        db.transaction(() =>
          forger.append(
            [
              {
                event: 'delivered',
                alertId: 'FORGED-1',
                origin: 'SG-NPARKS',
                recipient: 'VN-CUSTOMS',
              },
            ],
            '2019-04-08T03:14:15.926Z',
          ),
        ).immediate();
      } finally {
        db.close();
      }
      await expect(start()).rejects.toMatchObject({ code: 'ERR_AUDIT_INTEGRITY' });
    } finally {
      // The sound log and trust store back, for the cases below.
      writeFileSync(trustFile, trusted);
      rmSync(elsewhere, { recursive: true, force: true });
      for (const f of [auditDb, `${auditDb}-wal`, `${auditDb}-shm`]) rmSync(f, { force: true });
      for (const f of files) copyFileSync(`${f}.sound`, f);
    }
    router = await start();
    expect(router.audit.failure).toBeUndefined();
  });
});

describe('router - the audit head after a rotation of the router key', () => {
  it('a reload signs the head again with the new key; restarted with the old key revoked for compromise at once, the router starts, held to the last checkpoint and vouched for by the head', async () => {
    await routeOne(router!);
    const oldKey = fx.hubKey;
    const before = storedHead();
    expect(hubCheckpoint(before.note, headOrigin(origin), [raw(oldKey.publicJwk.x)])).toBeDefined();

    // 1. A new key in the router's key directory and the trust store (`hubctl keys rotate`).
    const rotated = rotateKey({ certsDir: fx.certsDir, principal: 'HUB' });
    const newKey = readSigningKey(rotated.privateFile, 'HUB');
    // 2. The reload, as on SIGHUP: nothing appended, the head is signed again.
    await router!.reload();
    const after = storedHead();
    expect(after.size).toBe(before.size);
    const head = hubCheckpoint(after.note, headOrigin(origin), [raw(newKey.publicJwk.x)]);
    expect(head?.size).toBe(after.size);
    expect(hubCheckpoint(after.note, headOrigin(origin), [raw(oldKey.publicJwk.x)])).toBe(
      undefined,
    );

    // 3. The old key revoked for compromise at once, before any checkpoint under the new key is
    // out: the last checkpoint on NATS verifies under no key that counts. The router still
    // starts: that checkpoint only bounds the log, and the head signed at the reload vouches
    // for it (docs/protocol.md §8.3).
    await router!.close();
    router = undefined;
    revokeKey({ certsDir: fx.certsDir, kid: oldKey.kid, reason: 'keyCompromise' });
    router = await start();
    expect(router.audit.failure).toBeUndefined();
    expect((await fetch(`${router.url}/readyz`)).status).toBe(200);
    expect(lines.some((l) => l.includes('revoked for compromise'))).toBe(true);
    // The next checkpoint is signed with the new key, and nothing else counts at the next start.
    await routeOne(router);
    const latest = parseNote(router.audit.latest!);
    expect(hubCheckpoint(router.audit.latest!, origin, [raw(newKey.publicJwk.x)])?.size).toBe(
      parseCheckpoint(latest.text).size,
    );
    await router.close();
    router = undefined;
    router = await start();
    expect(router.audit.failure).toBeUndefined();
    await routeOne(router);

    // 4. Rotated again, but the key revoked for compromise with no reload in between: the head
    // is still under the revoked key, nothing that counts vouches for the log, and the router
    // refuses to start (docs/operations.md, "Rotating the router's key").
    rotateKey({ certsDir: fx.certsDir, principal: 'HUB' });
    await router.close();
    router = undefined;
    revokeKey({ certsDir: fx.certsDir, kid: newKey.kid, reason: 'keyCompromise' });
    await expect(start()).rejects.toMatchObject({ code: 'ERR_AUDIT_INTEGRITY' });
  });
});
