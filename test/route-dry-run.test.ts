import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstreamManager } from '@nats-io/jetstream';
import { Streams, decodeEnvelope, newAlertId, type Alert } from '@alert-hub/core';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  AGENCIES,
  AGREEMENTS,
  DEMO_ALERTS,
  feedMessages,
  hubctl,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  routerDrained,
  sampleRetraction,
  writeConfig,
} from '@alert-hub/testkit';

// The router and `hubctl route --dry-run` must give the same answer, because both call core's
// decideRoute. This plays every step of the demo (same agencies, agreements and alerts) and the
// retraction cases through a real router on a real nats-server, and asks the dry run about each
// alert before it is sent. What the router did is read from NATS itself: the countersigned
// copies on the feeds stream (recipient and agreement) and the dead-letter stream.

const IDS = AGENCIES.map((a) => a.id);
const nats = useNatsServer();
const fx = makeHubFixture(IDS);
const agreementsFile = join(fx.dir, 'agreements.yaml');
let router: Router;

beforeAll(async () => {
  writeFileSync(agreementsFile, toYaml(AGREEMENTS));
  const file = writeConfig(fx.dir, 'router', {
    instance: 'dry-run-test',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
  });
  router = await startRouter(loadConfig({}, file), { log: memoryLogger('dry-run-test').log });
});
afterAll(async () => {
  await router?.close();
  fx.cleanup();
});

interface DryRun {
  kind: 'route' | 'refuse';
  origin: string;
  code?: string;
  allowed?: { recipient: string; agreement: { id: string; version: number }; onward: boolean }[];
}

/** What `hubctl route --dry-run` says about `alert` (as its JSON output, and the file it is in). */
async function dryRun(alert: Alert, prior?: string): Promise<{ result: DryRun; file: string }> {
  const file = join(fx.dir, `dry-run-${alert.id}.json`);
  writeFileSync(file, JSON.stringify(alert));
  const r = await hubctl([
    'route',
    '--dry-run',
    file,
    '--from',
    alert.origin,
    '--agreements',
    agreementsFile,
    '--trust',
    fx.trustDir,
    '--json',
    ...(prior ? ['--prior', prior] : []),
  ]);
  expect(r.code, r.stderr).toBe(r.stdout.includes('"refuse"') ? 1 : 0);
  const out = join(fx.dir, `dry-run-${alert.id}.out.json`);
  writeFileSync(out, r.stdout);
  return { result: JSON.parse(r.stdout) as DryRun, file: out };
}

/** Sends `alert` through the router and reads what it did from the feeds and dead-letter streams. */
async function routeForReal(alert: Alert): Promise<{ forwarded: string[]; refused?: string }> {
  const nc = await nats.connect();
  const ack = await publishInbound(nc, alert, fx.keys[alert.origin]!);
  await routerDrained(nc);
  const forwarded = (await feedMessages(nc))
    .filter((m) => m.msgId.startsWith(`${alert.id}:`))
    .map((m) => {
      // The router's one countersignature per decision: recipient and agreement are in the leaf.
      const counter = decodeEnvelope(m.data).signatures[1]!;
      const header = JSON.parse(
        Buffer.from(counter.header!.leaf, 'base64url').toString('utf8'),
      ) as {
        recipient: string;
        agreement: { id: string; version: number };
      };
      return `${header.recipient} ${header.agreement.id}@${header.agreement.version}`;
    })
    .sort();
  const jsm = await jetstreamManager(nc);
  const dlq = await jsm.streams
    .getMessage(Streams.DeadLetter, { last_by_subj: `ahub.dlq.${alert.origin}` })
    .catch(() => null);
  const refused =
    dlq && dlq.header.get('Ahub-Original-Seq') === String(ack.seq)
      ? dlq.header.get('Ahub-Reason-Code')
      : undefined;
  return { forwarded, ...(refused ? { refused } : {}) };
}

function receivers(d: DryRun): string[] {
  return (d.allowed ?? [])
    .map((a) => `${a.recipient} ${a.agreement.id}@${a.agreement.version}`)
    .sort();
}

/** As the sender's gateway fills it in. */
function issued(from: string, submission: Record<string, unknown>): Alert {
  return {
    ...submission,
    id: newAlertId(),
    origin: from,
    issuedAt: new Date().toISOString(),
  } as Alert;
}

const ids: Record<string, string> = {};
const priors: Record<string, string> = {};

describe('route --dry-run - agrees with the router', () => {
  for (const name of Object.keys(DEMO_ALERTS) as (keyof typeof DEMO_ALERTS)[]) {
    it(`demo: ${name}`, async () => {
      const { from, submission } = DEMO_ALERTS[name];
      const alert = issued(from, submission(ids));
      const prior = name === 'retraction' ? priors['nigeriaFlag'] : undefined;
      const { result, file } = await dryRun(alert, prior);
      const real = await routeForReal(alert);
      ids[name] = alert.id;
      priors[name] = file;
      expect(result.kind).toBe('route');
      expect(real.refused).toBeUndefined();
      expect(real.forwarded).toEqual(receivers(result));
      if (name === 'nigeriaFlag' || name === 'retraction')
        expect(real.forwarded).toEqual([
          'SG-NPARKS NG-SG-MOU@1',
          'VN-CUSTOMS AFRICA-ASIA-ROUTES@1',
        ]);
    });
  }

  it('retraction: above a recipient’s handling ceiling it is denied there, like any alert; router and dry run agree', async () => {
    // TLP:AMBER+STRICT is above every demo agreement's maxHandling: the original's recipients
    // received the original under those ceilings, and a retraction obeys them too.
    const alert = issued(
      'NG-NCS',
      sampleRetraction('NG-NCS', ids['nigeriaFlag']!, { handling: 'TLP:AMBER+STRICT' }),
    );
    const { result } = await dryRun(alert, priors['nigeriaFlag']);
    const real = await routeForReal(alert);
    expect(real.forwarded).toEqual(receivers(result));
    expect(real.forwarded).toEqual([]);
    expect(result).toMatchObject({
      kind: 'route',
      denied: expect.arrayContaining([
        expect.objectContaining({ recipient: 'SG-NPARKS', reason: 'DENY_HANDLING' }),
        expect.objectContaining({ recipient: 'VN-CUSTOMS', reason: 'DENY_HANDLING' }),
      ]) as unknown,
    });
  });

  it('retraction: only the origin may retract; both refuse with the same code', async () => {
    const alert = issued('SG-NPARKS', sampleRetraction('SG-NPARKS', ids['nigeriaFlag']!));
    const { result } = await dryRun(alert, priors['nigeriaFlag']);
    const real = await routeForReal(alert);
    expect(result).toMatchObject({ kind: 'refuse', code: 'ERR_RETRACTION_NOT_ORIGIN' });
    expect(real).toEqual({ forwarded: [], refused: 'ERR_RETRACTION_NOT_ORIGIN' });
  });

  it('retraction: of an alert the hub never routed, the agreements alone decide', async () => {
    const alert = issued('HK-CED', sampleRetraction('HK-CED', newAlertId()));
    const { result } = await dryRun(alert);
    const real = await routeForReal(alert);
    expect(real.forwarded).toEqual(receivers(result));
    expect(real.forwarded.length).toBeGreaterThan(0);
  });
});
