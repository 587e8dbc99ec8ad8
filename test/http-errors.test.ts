import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import {
  ROUTER_BODY_LIMIT_BYTES,
  loadConfig as routerConfig,
  startRouter,
  type Router,
} from '@alert-hub/router';
import { HTTP_STATUS, SIGN_IN_BODY_LIMIT_BYTES, createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { makeHubFixture, memoryLogger, writeConfig, OPEN_JS_API } from '@alert-hub/testkit';

// Both services answer every refusal in one envelope, {error: {code, message, ...}}, with the
// status of one table: their own refusals and those Fastify and Node's HTTP parser make before a
// route runs (a bad URL, a too long path parameter, headers over the limit).

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
let gateway: Gateway;
let router: Router;
/** An operator of the router: the one caller whose requeue request has its body read. */
const operator = createToken();

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(agreementsFile, toYaml({ agreements: [] }));
  router = await startRouter(
    routerConfig(
      {},
      writeConfig(fx.dir, 'router', {
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile,
        dataDir: join(fx.dir, 'router'),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: 0, requestTimeoutMs: 1500 },
        operators: [{ name: 'on-call', tokenSha256: operator.sha256 }],
      }),
    ),
    { log: memoryLogger('router').log },
  );
  gateway = await startGateway(
    gatewayConfig(
      {},
      writeConfig(fx.dir, 'gateway', {
        agency: 'SG-NPARKS',
        signingKey: fx.keyFiles['SG-NPARKS'],
        trustDir: fx.trustDir,
        dataDir: join(fx.dir, 'gateway'),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        http: { port: 0 },
      }),
    ),
    { log: memoryLogger('gateway').log },
  );
});
afterAll(async () => {
  await gateway?.close();
  await router?.close();
  fx.cleanup();
});

/** Sends raw bytes and returns the status and the parsed body of the response. */
function raw(url: string, request: string): Promise<{ status: number; body: unknown }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', reject);
    socket.on('close', () => {
      const [head = '', body = ''] = data.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), body: JSON.parse(body) as unknown });
    });
    socket.write(request);
  });
}

const services = () => [
  { name: 'gateway', url: gateway.url, param: '/v1/alerts/' },
  { name: 'router', url: router.url, param: '/v1/audit/trace/' },
];

describe('HTTP errors - one envelope and one status table for both services', () => {
  it('an unknown route: 404 ERR_NOT_FOUND', async () => {
    for (const s of services()) {
      const res = await fetch(`${s.url}/no/such/thing`);
      expect(res.status, s.name).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'ERR_NOT_FOUND' } });
    }
  });
  it('a URL that does not decode: 400 ERR_BAD_REQUEST', async () => {
    for (const s of services()) {
      const r = await raw(
        s.url,
        `GET ${s.param}%E0%A4%A HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, s.name).toBe(400);
      expect(r.body).toMatchObject({ error: { code: 'ERR_BAD_REQUEST' } });
    }
  });
  it('a path parameter over the limit: 414 ERR_URI_TOO_LONG', async () => {
    for (const s of services()) {
      const res = await fetch(`${s.url}${s.param}${'a'.repeat(500)}`);
      expect(res.status, s.name).toBe(414);
      expect(await res.json()).toMatchObject({ error: { code: 'ERR_URI_TOO_LONG' } });
    }
  });
  it('headers over the limit, refused by the HTTP parser: 431 ERR_HEADERS_TOO_LARGE', async () => {
    for (const s of services()) {
      const r = await raw(
        s.url,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
      );
      expect(r.status, s.name).toBe(431);
      expect(r.body).toMatchObject({ error: { code: 'ERR_HEADERS_TOO_LARGE' } });
    }
  });
  it('not HTTP at all: 400 ERR_BAD_REQUEST', async () => {
    for (const s of services()) {
      const r = await raw(s.url, 'HELLO\r\n\r\n');
      expect(r.status, s.name).toBe(400);
      expect(r.body).toMatchObject({ error: { code: 'ERR_BAD_REQUEST' } });
    }
  });
  it('no bearer token: 401 ERR_UNAUTHENTICATED with WWW-Authenticate', async () => {
    for (const s of services()) {
      const res = await fetch(`${s.url}${s.param}x`);
      expect(res.status, s.name).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      expect(await res.json()).toMatchObject({ error: { code: 'ERR_UNAUTHENTICATED' } });
    }
  });
  it('two Authorization headers: 400 ERR_BAD_REQUEST, before either token is looked at', async () => {
    // Node keeps the first and drops the second; a proxy in front may read the last.
    for (const s of services()) {
      const r = await raw(
        s.url,
        `GET ${s.param}x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ahub_a\r\nauthorization: Bearer ahub_b\r\nConnection: close\r\n\r\n`,
      );
      expect(r.status, s.name).toBe(400);
      expect(r.body).toMatchObject({
        error: {
          code: 'ERR_BAD_REQUEST',
          message: 'the request has more than one Authorization header',
        },
      });
    }
  });
  it("the router's sign-in body is read strictly: a member named twice is 400 ERR_BAD_JSON, not its last value", async () => {
    const res = await fetch(`${router.url}/dashboard/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-alert-hub-console': '1' },
      body: '{"token":"ahub_a","token":"ahub_b"}',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_BAD_JSON' } });
    // A single member is read (and refused as no coordinator's token).
    const one = await fetch(`${router.url}/dashboard/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-alert-hub-console': '1' },
      body: '{"token":"ahub_b"}',
    });
    expect(one.status).toBe(401);
  });
  it("the router's sign-in reads a token and no more: 4 KiB at most (413), and nothing without the console header", async () => {
    const big = `{"token":"${'a'.repeat(SIGN_IN_BODY_LIMIT_BYTES)}"}`;
    const res = await fetch(`${router.url}/dashboard/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-alert-hub-console': '1' },
      body: big,
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: { code: 'ERR_BODY_TOO_LARGE' } });
    // Without the header the answer does not depend on the body: a malformed one is not parsed.
    const headless = await fetch(`${router.url}/dashboard/api/session`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"token":',
    });
    expect(headless.status).toBe(HTTP_STATUS['ERR_CONSOLE_HEADER_REQUIRED']);
    // Every other request body the router would read is bounded as well: an operator's requeue
    // (the one other route that takes a body) is read up to 16 KiB; anyone else's is not read.
    const requeue = (authorization?: string) =>
      fetch(`${router.url}/v1/deadletters/1/requeue`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(authorization ? { authorization } : {}),
        },
        body: `[${'{},'.repeat(ROUTER_BODY_LIMIT_BYTES)}{}]`,
      });
    expect((await requeue(`Bearer ${operator.token}`)).status).toBe(413);
    expect((await requeue()).status).toBe(401);
  });
  it('a body trickled byte by byte to the router is cut off after http.requestTimeoutMs: the connection closed, the router serves others', async () => {
    // (The gateway's: test/gateway-process.test.ts.) No token needed: the body is read before
    // the route's check.
    const { hostname, port } = new URL(router.url);
    const started = Date.now();
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    const closed = new Promise<number>((resolve) => {
      socket.on('close', () => resolve(Date.now() - started));
      socket.on('error', () => undefined);
    });
    socket.write(
      `POST /v1/deadletters/1/requeue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000\r\n\r\n{`,
    );
    const timer = setInterval(() => socket.destroyed || socket.write(' '), 200);
    try {
      // 10,000 bytes (within the router's body limit) at 5 a second would take 33 minutes.
      const took = await Promise.race([
        closed,
        new Promise<number>((r) => setTimeout(() => r(Infinity), 15_000)),
      ]);
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(15_000);
    } finally {
      clearInterval(timer);
      socket.destroy();
    }
    expect((await fetch(`${router.url}/healthz`)).status).toBe(200);
  }, 30_000);
});
