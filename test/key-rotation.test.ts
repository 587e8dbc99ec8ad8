import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import { decodeEnvelope, openDelivery, parseJsonBytes } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  feedMessages,
  hubctl,
  routerDrained,
  seizureReport,
  spawnService,
  startSeizureHub,
  type LocalHub,
  type ServiceProcess,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';

/**
 * Rotating an agency's key while its alerts flow, in the order docs/operations.md gives, with
 * real processes: SG-NPARKS's gateway accepts alerts without pause while its key is rotated
 * (`hubctl keys rotate`), the new public key reaches the router and the partners (SIGHUP), and
 * then SG's gateway switches keys (SIGHUP). No alert may be refused or lost, none doubled, and
 * every copy delivered must verify.
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
const KE = 'KE-KWS';
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);

let hub: LocalHub;
let sg: ServiceProcess;
let hubNc: NatsConnection;

beforeAll(async () => {
  hub = await startSeizureHub({
    agencies: [SG, VN, KE],
    agreement: { id: 'ROTATION', title: 'Singapore, Viet Nam, Kenya' },
    // every copy on the feed stream is verified after the partners took it
    routerConfig: { streams: KEEP_READ_COPIES },
  });
  // As docs/operations.md asks: SG's gateway names its key directory, so that a reload picks
  // the newest valid key up without a configuration change.
  const file = join(hub.dir, `gateway-${SG}.yaml`);
  const config = parseYaml(readFileSync(file, 'utf8')) as { signingKey: string };
  writeFileSync(file, toYaml({ ...config, signingKey: dirname(config.signingKey) }));
  await hub.gateways[SG]!.stop();
  sg = await spawnService('gateway', file, {
    env: process.env,
    logFile: join(hub.dir, 'logs', `gateway-${SG}.log`),
    captureLogs: false,
  });
  hubNc = await hub.connectAs(LOCAL_ROUTER);
}, 180_000);

afterAll(async () => {
  await hubNc?.close();
  await sg?.stop();
  await hub?.stop();
});

const auth = () => ({ authorization: `Bearer ${hub.token}` });

function reloads(log: string): number {
  try {
    return readFileSync(join(hub.dir, 'logs', log), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"trust store and signing key reloaded"')).length;
  } catch {
    return 0;
  }
}

/** SIGHUP, then wait until the service logged the reload. */
async function reload(service: ServiceProcess, log: string): Promise<void> {
  const before = reloads(log);
  service.proc.kill('SIGHUP');
  await eventually(() => reloads(log) > before, 60_000, `${log} to reload`);
}

async function feedIds(agency: string): Promise<string[]> {
  const ids: string[] = [];
  for (let after = '0'; ;) {
    const res = await fetch(`${hub.gateways[agency]!.url}/v1/feed?limit=500&after=${after}`, {
      headers: auth(),
    });
    const page = (await res.json()) as { items: { id: string }[]; next: string; hasMore: boolean };
    ids.push(...page.items.map((i) => i.id));
    if (!page.hasMore) return ids;
    after = page.next;
  }
}

describe('key rotation - alerts keep flowing', () => {
  it('rotate, publish the key, switch the gateway: every alert accepted is delivered once to each partner and verifies; nothing refused', async () => {
    const accepted: string[] = [];
    const failures: string[] = [];
    let sending = true;
    const sender = (async () => {
      while (sending) {
        const alert = seizureReport(SG);
        const res = await fetch(`${sg.url}/v1/alerts`, {
          method: 'POST',
          headers: { ...auth(), 'content-type': 'application/json' },
          body: JSON.stringify(alert),
        });
        if (res.status === 202) accepted.push(alert.id);
        else failures.push(`${res.status} ${await res.text()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const atLeast = (n: number) =>
      eventually(() => accepted.length >= n, 120_000, `${n} alerts accepted`);

    await atLeast(15);
    const trustBefore = loadTrustStore(join(hub.certsDir, 'trust'), registry);
    const oldKids = trustBefore.keysOf(SG, 'agency').map((k) => k.kid);
    // 1. On the agency's side: a new key; the old one stays valid for the overlap.
    const rotated = await hubctl([
      'keys',
      'rotate',
      '--agency',
      SG,
      '--overlap-days',
      '7',
      '--certs',
      hub.certsDir,
    ]);
    expect(rotated.code, rotated.stderr).toBe(0);
    await atLeast(accepted.length + 10);
    // 2. The new public key in every trust store (one shared directory here): reload the router
    //    and the partners' gateways. SG's gateway is not reloaded yet: it still signs with the old key.
    await reload(hub.router, 'router.log');
    await reload(hub.gateways[VN]!, `gateway-${VN}.log`);
    await reload(hub.gateways[KE]!, `gateway-${KE}.log`);
    await atLeast(accepted.length + 10);
    // 3. SG's gateway: the newest valid key signs from now on.
    await reload(sg, `gateway-${SG}.log`);
    await atLeast(accepted.length + 15);
    sending = false;
    await sender;
    expect(failures).toEqual([]);

    await routerDrained(hubNc, 120_000);
    for (const partner of [VN, KE]) {
      const ids = await eventually(
        async () => {
          const got = await feedIds(partner);
          return accepted.every((id) => got.includes(id)) ? got : undefined;
        },
        120_000,
        `every alert at ${partner}`,
      );
      const mine = ids.filter((id) => accepted.includes(id));
      expect(mine.length, `${partner}: each alert once`).toBe(accepted.length);
      expect(new Set(mine).size).toBe(accepted.length);
    }

    // Nothing refused, nothing dead-lettered.
    const audit = await fetch(`${hub.router.url}/v1/audit?outcome=rejected`, {
      headers: { authorization: `Bearer ${hub.coordinatorToken}` },
    });
    expect(((await audit.json()) as { count: number }).count).toBe(0);

    // Every copy on the feeds verifies against the final trust store, each under its own key;
    // both keys signed some of them, the old one first.
    const trust = loadTrustStore(join(hub.certsDir, 'trust'), registry);
    const copies = (await feedMessages(hubNc)).filter((m) =>
      accepted.some((id) => m.msgId.startsWith(`${id}:`)),
    );
    expect(copies).toHaveLength(accepted.length * 2);
    const kidOf = new Map<string, string>();
    for (const c of copies) {
      const recipient = c.subject.split('.')[2]!;
      const opened = await openDelivery(c.data, c.subject, { trust, registry, recipient });
      expect(opened.ok, opened.ok ? '' : opened.error.code).toBe(true);
      const header = parseJsonBytes(
        Buffer.from(decodeEnvelope(c.data).signatures[0]!.protected, 'base64url'),
      ) as { kid: string; alert_id: string };
      kidOf.set(header.alert_id, header.kid);
    }
    const kids = accepted.map((id) => kidOf.get(id)!);
    const firstNew = kids.findIndex((k) => !oldKids.includes(k));
    expect(firstNew).toBeGreaterThan(0);
    expect(kids.slice(0, firstNew).every((k) => oldKids.includes(k))).toBe(true);
    expect(kids.slice(firstNew).every((k) => k === kids[firstNew])).toBe(true);
    expect(readFileSync(join(hub.certsDir, 'trust', `${SG}.jwks.json`), 'utf8')).toContain(
      kids[firstNew]!,
    );
  }, 600_000);
});
