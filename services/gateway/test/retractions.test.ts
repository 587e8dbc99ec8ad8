import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newAlertId, type Alert } from '@alert-hub/core';
import { loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  eventually,
  makeHubFixture,
  memoryLogger,
  provision,
  publishToFeed,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
const { log } = memoryLogger('retractions-test');
let vn: Gateway;

beforeAll(async () => {
  await provision(await nats.connect(), ['SG-NPARKS', 'VN-CUSTOMS']);
  const file = writeConfig(fx.dir, 'VN-CUSTOMS', {
    agency: 'VN-CUSTOMS',
    signingKey: fx.keyFiles['VN-CUSTOMS'],
    trustDir: fx.trustDir,
    dataDir: `${fx.dir}/data-VN-CUSTOMS`,
    http: { port: 0 },
    nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
    clients: [{ name: 'analysts', tokenSha256: createToken().sha256, roles: ['read-feed'] }],
  });
  vn = await startGateway(loadConfig({}, file), { log });
});
afterAll(async () => {
  await vn?.close();
  fx.cleanup();
});

/**
 * SG-NPARKS's retraction of `retracts`, issued at `issuedAt`. The cases issue B a minute before
 * A and store it after: what decides is the order of storing, not `issuedAt`.
 */
function retraction(retracts: string, action: 'withdraw' | 'correct', issuedAt: Date): Alert {
  return {
    id: newAlertId(),
    type: 'retraction',
    version: 1,
    origin: 'SG-NPARKS',
    issuedAt: issuedAt.toISOString(),
    handling: 'TLP:AMBER',
    retracts,
    action,
    reason: `${action} of ${retracts}`,
    ...(action === 'correct' ? { correctedBy: newAlertId() } : {}),
  };
}

/** Publishes `alert` to VN-CUSTOMS's feed and waits until its gateway has stored it. */
async function deliver(alert: Alert) {
  const nc = await nats.connect();
  await publishToFeed(nc, alert, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
  await eventually(() => vn.store.receivedById(alert.id), 5000, `${alert.type} ${alert.id}`);
}

/** What the retraction `r` makes of the alert it retracts. */
function statusBy(r: Alert) {
  return {
    status: r.action === 'correct' ? 'corrected' : 'withdrawn',
    statusReason: r.reason,
    retractedBy: r.id,
    correctedBy: r.correctedBy,
  };
}

function statusOf(id: string) {
  const item = vn.store.receivedById(id)!;
  return {
    status: item.status,
    statusReason: item.statusReason,
    retractedBy: item.retractedBy,
    correctedBy: item.correctedBy,
  };
}

const ORDERS = [
  ['withdraw', 'correct'],
  ['correct', 'withdraw'],
] as const;

describe('gateway - two retractions of one alert: the one stored last decides', () => {
  it('the alert held, then retraction A, then retraction B: the status is B’s, withdraw then correct and correct then withdraw', async () => {
    for (const [first, second] of ORDERS) {
      const original = seizureReport('SG-NPARKS');
      await deliver(original);
      expect(statusOf(original.id).status).toBe('active');
      const now = Date.now();
      const a = retraction(original.id, first, new Date(now));
      const b = retraction(original.id, second, new Date(now - 60_000));
      await deliver(a);
      expect(statusOf(original.id), first).toEqual(statusBy(a));
      await deliver(b);
      expect(statusOf(original.id), `${first} then ${second}`).toEqual(statusBy(b));
    }
  });

  it('two retractions stored before the alert: when it arrives, the status is the one of the retraction stored last, withdraw then correct and correct then withdraw', async () => {
    for (const [first, second] of ORDERS) {
      const original = seizureReport('SG-NPARKS');
      const now = Date.now();
      const a = retraction(original.id, first, new Date(now));
      const b = retraction(original.id, second, new Date(now - 60_000));
      await deliver(a);
      await deliver(b);
      await deliver(original);
      expect(statusOf(original.id), `${first} then ${second}`).toEqual(statusBy(b));
    }
  });
});
