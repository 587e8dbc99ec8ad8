import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CSP, WEB_CSRF_HEADER, readCookie, registerWebApp } from '@alert-hub/runtime';

const dir = mkdtempSync(join(tmpdir(), 'ahub-web-'));
let clock = 1_000_000;
let app: FastifyInstance;
const csrf = { [WEB_CSRF_HEADER]: '1' };

beforeAll(async () => {
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(dir, 'assets', 'app-1.js'), 'console.log(1)');
  writeFileSync(join(dir, 'secret.txt'), 'not an asset route');
  app = Fastify();
  // A route of the service's API registered before the web app (as the gateway's /v1 routes are).
  app.get('/v1/before', async () => ({ ok: true }));
  const sessions = registerWebApp(app, {
    prefix: '/console',
    assetsDir: dir,
    cookieName: 'ahub_console_T',
    authenticate: (token) => (token === 'right-token' ? { name: 'officers' } : undefined),
    describe: (p) => ({ name: p.name }),
    idleMs: 60_000,
    now: () => clock,
  });
  app.all('/v1/thing', async (req, reply) => {
    // ?check: a look that is not a use (a live feed asking whether it may go on)
    const who = sessions.lookup(req, { touch: !('check' in (req.query as object)) });
    return who
      ? { who: who.name }
      : reply.code(401).send({ error: { code: 'ERR_UNAUTHENTICATED' } });
  });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  rmSync(dir, { recursive: true, force: true });
});

async function signIn(token = 'right-token', headers: Record<string, string> = csrf) {
  return app.inject({
    method: 'POST',
    url: '/console/api/session',
    headers: { 'content-type': 'application/json', ...headers },
    payload: { token },
  });
}
const sessionCookie = (setCookie: unknown) => String(setCookie).split(';')[0]!;

/**
 * An app whose store holds 10 sessions, 4 per token, for the tokens `accepts` takes: signs in as
 * a token (the clock a tick on, so each session is younger than the last) and asks whether a
 * session cookie still holds.
 */
async function limitedApp(cookieName: string, accepts: (token: string) => boolean) {
  const limited = Fastify();
  const sessions = registerWebApp(limited, {
    prefix: '/console',
    assetsDir: dir,
    cookieName,
    authenticate: (token) => (accepts(token) ? { name: token } : undefined),
    holderOf: (p) => p.name,
    describe: (p) => ({ name: p.name }),
    maxSessions: 10,
    maxSessionsPerHolder: 4,
    now: () => clock,
  });
  limited.get('/v1/me', async (req, reply) => {
    const who = sessions.lookup(req);
    return who ? { who: who.name } : reply.code(401).send({});
  });
  await limited.ready();
  const signInAs = async (token: string) => {
    clock += 1;
    const res = await limited.inject({
      method: 'POST',
      url: '/console/api/session',
      headers: { 'content-type': 'application/json', ...csrf },
      payload: { token },
    });
    return sessionCookie(res.headers['set-cookie']);
  };
  const status = async (cookie: string) =>
    (await limited.inject({ url: '/v1/me', headers: { cookie } })).statusCode;
  return { signInAs, status, close: () => limited.close() };
}

describe('web app - pages, assets and sessions', () => {
  it('web app - the page and its assets carry the strict CSP; only built files are served', async () => {
    const page = await app.inject({ url: '/console/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-security-policy']).toBe(WEB_CSP);
    // The promise itself (README, docs/security.md, packages/web/README.md), not the constant.
    const directives = String(page.headers['content-security-policy'])
      .split(';')
      .map((d) => d.trim());
    expect(directives).toEqual(
      expect.arrayContaining([
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
      ]),
    );
    expect(directives.join(';')).not.toMatch(/unsafe-inline|unsafe-eval|\*|https?:/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(page.headers['referrer-policy']).toBe('no-referrer');
    const js = await app.inject({ url: '/console/assets/app-1.js' });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    for (const url of [
      '/console/assets/../secret.txt',
      '/console/assets/%2e%2e/secret.txt',
      '/console/assets/nope.js',
    ])
      expect((await app.inject({ url })).statusCode).toBe(404);
    expect((await app.inject({ url: '/console' })).headers.location).toBe('/console/');
  });

  it('web app - every answer of the service, its API included, is no-store and nosniff unless it says otherwise', async () => {
    const cookie = sessionCookie((await signIn()).headers['set-cookie']);
    const api = await app.inject({ url: '/v1/thing', headers: { cookie } });
    expect(api.statusCode).toBe(200);
    expect(api.headers['cache-control']).toBe('no-store');
    expect(api.headers['x-content-type-options']).toBe('nosniff');
    const before = await app.inject({ url: '/v1/before' });
    expect(before.headers['cache-control']).toBe('no-store');
    expect(before.headers['x-content-type-options']).toBe('nosniff');
    const refused = await app.inject({ url: '/v1/thing' });
    expect(refused.statusCode).toBe(401);
    expect(refused.headers['cache-control']).toBe('no-store');
    const missing = await app.inject({ url: '/v1/none' });
    expect(missing.headers['cache-control']).toBe('no-store');
    // Its own policy stays: the built assets are immutable.
    const asset = await app.inject({ url: '/console/assets/app-1.js' });
    expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });
  it('web app - a sign-in sets an HttpOnly, SameSite=Strict cookie that is not the token', async () => {
    const res = await signIn();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'officers' });
    const set = String(res.headers['set-cookie']);
    expect(set).toMatch(/^ahub_console_T=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict$/);
    expect(set).not.toContain('right-token');
    const me = await app.inject({
      url: '/console/api/session',
      headers: { cookie: sessionCookie(set) },
    });
    expect(me.json()).toEqual({ name: 'officers' });
  });

  it('web app - a wrong token is ERR_UNAUTHENTICATED', async () => {
    const res = await signIn('wrong');
    expect(res.statusCode).toBe(401);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('ERR_UNAUTHENTICATED');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('web app - a sign-in without the console header is 403 ERR_CONSOLE_HEADER_REQUIRED, whatever the token', async () => {
    for (const res of [await signIn('right-token', {}), await signIn('wrong', {})]) {
      expect(res.statusCode).toBe(403);
      const error = res.json<{ error: { code: string; message: string } }>().error;
      expect(error.code).toBe('ERR_CONSOLE_HEADER_REQUIRED');
      // The answer names the header to send.
      expect(error.message).toContain(WEB_CSRF_HEADER);
      expect(res.headers['set-cookie']).toBeUndefined();
    }
  });

  it('web app - the API accepts the cookie; a state change needs the console header too', async () => {
    const cookie = sessionCookie((await signIn()).headers['set-cookie']);
    expect((await app.inject({ url: '/v1/thing', headers: { cookie } })).statusCode).toBe(200);
    const post = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: '/v1/thing', headers: { cookie, ...headers } });
    expect((await post({})).statusCode).toBe(401);
    expect((await post(csrf)).statusCode).toBe(200);
    // A made-up session id is nobody.
    const forged = await app.inject({
      url: '/v1/thing',
      headers: { cookie: 'ahub_console_T=abc' },
    });
    expect(forged.statusCode).toBe(401);
  });

  it('web app - sign-out and idle time end a session', async () => {
    const a = sessionCookie((await signIn()).headers['set-cookie']);
    const out = await app.inject({
      method: 'DELETE',
      url: '/console/api/session',
      headers: { cookie: a },
    });
    expect(out.statusCode).toBe(204);
    expect(String(out.headers['set-cookie'])).toContain('Max-Age=0');
    expect((await app.inject({ url: '/v1/thing', headers: { cookie: a } })).statusCode).toBe(401);

    const b = sessionCookie((await signIn()).headers['set-cookie']);
    clock += 59_000;
    expect((await app.inject({ url: '/v1/thing', headers: { cookie: b } })).statusCode).toBe(200);
    clock += 61_000;
    expect((await app.inject({ url: '/v1/thing', headers: { cookie: b } })).statusCode).toBe(401);

    // Checks that are not uses (a live feed's) leave the idle time running.
    const c = sessionCookie((await signIn()).headers['set-cookie']);
    for (let i = 0; i < 3; i++) {
      clock += 25_000;
      const check = await app.inject({ url: '/v1/thing?check', headers: { cookie: c } });
      expect(check.statusCode).toBe(i < 2 ? 200 : 401);
    }
  });

  it('web app - an app that was not built answers 503 with what to run', async () => {
    const bare = Fastify();
    registerWebApp(bare, {
      prefix: '/dashboard',
      assetsDir: join(dir, 'missing'),
      cookieName: 'x',
      authenticate: () => undefined,
      describe: () => ({}),
    });
    const res = await bare.inject({ url: '/dashboard/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build:web');
    await bare.close();
  });

  it('web app - a session ends once its token is no longer current (revoked by a reload); roles follow the reload', async () => {
    let valid = new Map([['t1', { name: 'a', roles: ['read'] }]]);
    const reloaded = Fastify();
    const sessions = registerWebApp(reloaded, {
      prefix: '/console',
      assetsDir: dir,
      cookieName: 'c',
      authenticate: (token) => valid.get(token),
      describe: (p) => ({ ...p }),
      current: (p) => [...valid.values()].find((x) => x.name === p.name),
    });
    reloaded.get('/v1/me', async (req, reply) => {
      const who = sessions.lookup(req);
      return who ? who : reply.code(401).send({ error: { code: 'ERR_UNAUTHENTICATED' } });
    });
    const res = await reloaded.inject({
      method: 'POST',
      url: '/console/api/session',
      headers: { 'content-type': 'application/json', ...csrf },
      payload: { token: 't1' },
    });
    const cookie = sessionCookie(res.headers['set-cookie']);
    valid = new Map([['t1', { name: 'a', roles: ['read', 'write'] }]]);
    const me = await reloaded.inject({ url: '/v1/me', headers: { cookie } });
    expect(me.json()).toEqual({ name: 'a', roles: ['read', 'write'] });
    valid = new Map();
    expect((await reloaded.inject({ url: '/v1/me', headers: { cookie } })).statusCode).toBe(401);
    // Ended for good: the token coming back does not revive the old session.
    valid = new Map([['t1', { name: 'a', roles: ['read'] }]]);
    expect((await reloaded.inject({ url: '/v1/me', headers: { cookie } })).statusCode).toBe(401);
    await reloaded.close();
  });

  it('web app - a token signing in again and again ends only its own sessions, never another token’s', async () => {
    const { signInAs, status, close } = await limitedApp(
      'ahub_console_L',
      (token) => token === 'officer' || token === 'system',
    );
    const officer = await signInAs('officer');
    const mine: string[] = [];
    for (let i = 0; i < 50; i++) mine.push(await signInAs('system'));
    // The officer's session outlived 50 sign-ins of another token; that token kept its newest 4.
    expect(await status(officer)).toBe(200);
    expect(await Promise.all(mine.map(status))).toEqual([
      ...Array.from({ length: 46 }, () => 401),
      200,
      200,
      200,
      200,
    ]);
    await close();
  });

  it('web app - a full store ends a session of the tokens holding the most: several tokens each within its share never sign an officer out', async () => {
    const { signInAs, status, close } = await limitedApp(
      'ahub_console_F',
      (token) => token === 'officer' || token.startsWith('system'),
    );
    const officer = await signInAs('officer');
    // Three tokens, each within its 4, sign in 40 times in turn: 12 sessions for a store of 10.
    for (let i = 0; i < 40; i++) await signInAs(`system${i % 3}`);
    expect(await status(officer)).toBe(200);
    await close();
  });

  it('web app - readCookie takes the named cookie only, and only a plausible session id', () => {
    expect(readCookie('a=1; ahub=abc_DEF-9; b=2', 'ahub')).toBe('abc_DEF-9');
    expect(readCookie('xahub=abc', 'ahub')).toBeUndefined();
    expect(readCookie('ahub=a;b', 'ahub')).toBe('a');
    expect(readCookie('ahub=<script>', 'ahub')).toBeUndefined();
    expect(readCookie(undefined, 'ahub')).toBeUndefined();
  });
});
