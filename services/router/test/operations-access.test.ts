import Fastify, { type FastifyInstance } from 'fastify';
import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  READINESS_WITHHELD,
  createToken,
  installErrorEnvelope,
  registerOperationsRoutes,
} from '@alert-hub/runtime';
import { ROUTER_PUBLIC_CHECKS, routerOperationsAccess, type RouterTokens } from '../src/http.js';

// The router's operations routes with its access policy, on real Fastify routes: whatever its
// checks find and its series hold, an agency's name reaches only a metrics reader, an operator or
// a coordinator. The checks here all name one (the router's own strings: router.ts `readiness`);
// test/feeds-full.test.ts shows one withheld on a running hub.
const AGENCY = 'VN-CUSTOMS';
const reader = createToken();
const operator = createToken();
const coordinator = createToken();
const tokens: RouterTokens = {
  metricsReaders: [{ name: 'prometheus', tokenSha256: reader.sha256 }],
  operators: [{ name: 'on-call', tokenSha256: operator.sha256 }],
  coordinators: [{ name: 'wco', tokenSha256: coordinator.sha256 }],
};
const CHECKS: Record<string, string> = {
  nats: 'connected',
  consumer: 'consuming',
  routing: 'ok',
  feedsRetention: 'interest',
  audit: `tampered: entry 12 of ${AGENCY} changed`,
  feeds: `held: ${AGENCY} 4 copies since 2026-12-02T07:00:00.000Z`,
  notices: `waiting: ${AGENCY} 3 event(s)`,
  originBudgets: `spent: ${AGENCY} (copies held)`,
  inboundStreams: `degraded: not provisioned for ${AGENCY} (retrying)`,
  leafOutboxes: `unreachable: ${AGENCY}`,
  database: `SQLITE_CORRUPT: /var/lib/alert-hub/${AGENCY}`,
  // A check a later release adds: withheld until it is listed as public.
  somethingNew: `about ${AGENCY}`,
};
let app: FastifyInstance;

beforeAll(async () => {
  const registry = new Registry();
  new Counter({
    name: 'ahub_router_forwards_total',
    help: 'h',
    labelNames: ['origin'],
    registers: [registry],
  })
    .labels(AGENCY)
    .inc();
  app = Fastify();
  installErrorEnvelope(app, { realm: 'alert-hub coordinators' });
  registerOperationsRoutes(
    app,
    async () => ({ ready: true, checks: CHECKS }),
    registry,
    routerOperationsAccess(() => tokens),
  );
  await app.ready();
});
afterAll(() => app.close());

const get = (url: string, authorization?: string) =>
  app.inject({ url, headers: authorization === undefined ? {} : { authorization } });

describe("router - /readyz and /metrics say agencies' names only to its readers", () => {
  const strangers = [
    undefined,
    `Bearer ${createToken().token}`,
    'Bearer',
    `Basic ${reader.token}`,
    `Bearer ${reader.sha256}`,
    `bearer  ${reader.token}`,
  ];

  it('without a reader token: the status, the public checks, and only "ok" or not for the others; /metrics 401', async () => {
    for (const authorization of strangers) {
      const ready = await get('/readyz', authorization);
      expect(ready.statusCode, String(authorization)).toBe(200);
      expect(ready.body).not.toContain(AGENCY);
      const { checks } = ready.json<{ checks: Record<string, string> }>();
      for (const name of Object.keys(CHECKS))
        expect(checks[name], name).toBe(
          (ROUTER_PUBLIC_CHECKS as readonly string[]).includes(name)
            ? CHECKS[name]
            : READINESS_WITHHELD,
        );
      const metrics = await get('/metrics', authorization);
      expect(metrics.statusCode, String(authorization)).toBe(401);
      expect(metrics.body).not.toContain(AGENCY);
    }
  });

  it('a metrics reader, an operator and a coordinator read every finding and the series', async () => {
    for (const t of [reader, operator, coordinator]) {
      const ready = await get('/readyz', `Bearer ${t.token}`);
      expect(ready.json()).toEqual({ status: 'ready', checks: CHECKS });
      const metrics = await get('/metrics', `Bearer ${t.token}`);
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toContain(`ahub_router_forwards_total{origin="${AGENCY}"} 1`);
    }
  });

  it('/healthz answers anyone', async () => {
    expect((await get('/healthz')).json()).toEqual({ status: 'ok' });
  });
});

describe('router - /readyz when working out its checks fails', () => {
  let failing: FastifyInstance;
  beforeAll(async () => {
    failing = Fastify();
    installErrorEnvelope(failing, { realm: 'alert-hub coordinators' });
    registerOperationsRoutes(
      failing,
      () => Promise.reject(new Error(`SQLITE_IOERR: disk I/O error under ${AGENCY}`)),
      new Registry(),
      routerOperationsAccess(() => tokens),
    );
    await failing.ready();
  });
  afterAll(() => failing.close());

  it('answers 503 not ready (not 500), with what failed only to a reader', async () => {
    const anonymous = await failing.inject({ url: '/readyz' });
    expect(anonymous.statusCode).toBe(503);
    expect(anonymous.json()).toEqual({
      status: 'not ready',
      checks: { readiness: READINESS_WITHHELD },
    });
    const read = await failing.inject({
      url: '/readyz',
      headers: { authorization: `Bearer ${reader.token}` },
    });
    expect(read.statusCode).toBe(503);
    expect(read.json()).toEqual({
      status: 'not ready',
      checks: { readiness: `failed: SQLITE_IOERR: disk I/O error under ${AGENCY}` },
    });
  });
});
