import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpErrorCode, HTTP_STATUS } from './http-errors.js';

/**
 * The Content-Security-Policy of every page and asset of a web console: scripts, styles and
 * connections only from the service itself, no inline script or style element, no framing,
 * nothing else (no font, no image from elsewhere, no form posting anywhere).
 */
export const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Header an unsafe (non-GET) request authenticated by the session cookie must carry. */
export const WEB_CSRF_HEADER = 'x-alert-hub-console';
/** What a sign-in's body may hold: `{"token": "..."}`. */
export const SIGN_IN_BODY_LIMIT_BYTES = 4096;

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

/** Idle time after which a console session ends (an officer's shift). */
export const DEFAULT_WEB_SESSION_IDLE_MS = 8 * 3600_000;
const MAX_SESSIONS = 10_000;
/** Sessions one token may hold at once (a team may share a token): beyond, its own idlest ends. */
const MAX_SESSIONS_PER_HOLDER = 1_000;

export interface WebAppOptions<P> {
  /** Where the app lives: `/console`, `/dashboard`. */
  readonly prefix: string;
  /** The directory Vite built the app into (index.html and assets/). */
  readonly assetsDir: string;
  /** Name of the session cookie. */
  readonly cookieName: string;
  /** Who holds this token, or undefined. The token is checked like a bearer token. */
  readonly authenticate: (token: string) => P | undefined;
  /** What `GET <prefix>/api/session` tells the page about the signed-in principal. */
  readonly describe: (principal: P) => Record<string, unknown>;
  /**
   * The principal as the service's tokens know it now (a reload may have changed its roles), or
   * undefined once its token is gone from the configuration: its sessions end at their next use.
   */
  readonly current?: (principal: P) => P | undefined;
  /**
   * Who holds the principal's token (its SHA-256, say). A holder keeps at most
   * `maxSessionsPerHolder` sessions: its own longest idle one ends first, so a token signing in
   * over and over (a sending system's, leaked or buggy) never signs anyone else out.
   */
  readonly holderOf?: (principal: P) => string;
  readonly idleMs?: number;
  readonly now?: () => number;
  /** Defaults 10,000 in all and 1,000 per holder; smaller in tests. */
  readonly maxSessions?: number;
  readonly maxSessionsPerHolder?: number;
}

/** The sessions of a web app: the service's API checks them beside bearer tokens. */
export interface WebSessions<P> {
  /**
   * The principal of the request's session cookie, or undefined. A request that changes state
   * (not GET or HEAD) must also carry {@link WEB_CSRF_HEADER}: a page of another origin cannot
   * add it without the service's consent (CORS), on top of the cookie's SameSite=Strict.
   */
  lookup(req: FastifyRequest, options?: { touch?: boolean }): P | undefined;
}

interface Session<P> {
  principal: P;
  lastSeen: number;
  holder: string | undefined;
}

/**
 * Serves a single-page web app built by Vite under `prefix` with a strict CSP, and its sign-in:
 * `POST <prefix>/api/session` with `{token}` sets an HttpOnly, SameSite=Strict session cookie
 * (the token itself is never stored by the page, never in a URL); `DELETE` signs out. Sessions
 * live in the service's memory: a restart signs everyone out.
 */
export function registerWebApp<P>(app: FastifyInstance, o: WebAppOptions<P>): WebSessions<P> {
  const now = o.now ?? Date.now;
  const idleMs = o.idleMs ?? DEFAULT_WEB_SESSION_IDLE_MS;
  const maxSessions = o.maxSessions ?? MAX_SESSIONS;
  const maxPerHolder = o.maxSessionsPerHolder ?? MAX_SESSIONS_PER_HOLDER;
  const sessions = new Map<string, Session<P>>();
  const files = loadAssets(o.assetsDir);

  // The page reads the service's whole API with its session cookie: alerts, outcomes, the audit
  // log, dead letters. No answer may stay in a browser's cache (on the officer's disk, for the
  // next user of a shared workstation) or in a proxy's, nor be read as another type than it says:
  // every answer of the service without a cache policy of its own gets `no-store` and `nosniff`
  // (the assets keep their immutable policy; the live feed, written raw, sets its own).
  app.addHook('onSend', async (_req, reply, payload) => {
    if (!reply.hasHeader('cache-control')) void reply.header('cache-control', 'no-store');
    if (!reply.hasHeader('x-content-type-options'))
      void reply.header('x-content-type-options', 'nosniff');
    return payload;
  });

  const security = (reply: FastifyReply) =>
    reply
      .header('content-security-policy', WEB_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-resource-policy', 'same-origin');

  const sessionOf = (
    req: FastifyRequest,
    touch = true,
  ): { id: string; session: Session<P> } | undefined => {
    const id = readCookie(req.headers.cookie, o.cookieName);
    if (!id) return undefined;
    const session = sessions.get(id);
    if (!session) return undefined;
    if (now() - session.lastSeen > idleMs) {
      sessions.delete(id);
      return undefined;
    }
    if (o.current) {
      // A token revoked by a reload ends the sessions signed in with it.
      const principal = o.current(session.principal);
      if (principal === undefined) {
        sessions.delete(id);
        return undefined;
      }
      session.principal = principal;
    }
    if (touch) session.lastSeen = now();
    return { id, session };
  };
  const cookie = (req: FastifyRequest, value: string, expire = false) =>
    `${o.cookieName}=${value}; Path=/; HttpOnly; SameSite=Strict${req.protocol === 'https' ? '; Secure' : ''}${expire ? '; Max-Age=0' : ''}`;
  const unauthenticated = (reply: FastifyReply, message: string) =>
    security(reply)
      .code(401)
      .send({ error: { code: 'ERR_UNAUTHENTICATED', message } });

  const page = async (_req: FastifyRequest, reply: FastifyReply) => {
    const index = files.get('index.html');
    if (!index)
      return security(reply)
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`${o.prefix} is not built: run npm run build:web`);
    return security(reply)
      .header('cache-control', 'no-store')
      .type(CONTENT_TYPES['.html']!)
      .send(index);
  };
  app.get(o.prefix, async (_req, reply) => reply.redirect(`${o.prefix}/`, 302));
  app.get(`${o.prefix}/`, page);
  app.get(`${o.prefix}/assets/*`, async (req, reply) => {
    const name = (req.params as { '*': string })['*'];
    const body = files.get(`assets/${name}`);
    if (!body)
      return security(reply)
        .code(404)
        .send({ error: { code: 'ERR_NOT_FOUND', message: 'no such resource' } });
    return security(reply)
      .header('cache-control', 'public, max-age=31536000, immutable')
      .type(CONTENT_TYPES[extname(name)] ?? 'application/octet-stream')
      .send(body);
  });

  // A token is all a sign-in holds; its header is checked before the body is read.
  const signIn = {
    bodyLimit: SIGN_IN_BODY_LIMIT_BYTES,
    onRequest: async (req: FastifyRequest, reply: FastifyReply) => {
      if (req.headers[WEB_CSRF_HEADER] !== '1')
        // Said apart from a bad token: a script or curl that signs in must send it too.
        return security(reply)
          .code(HTTP_STATUS[HttpErrorCode.ConsoleHeaderRequired]!)
          .send({
            error: {
              code: HttpErrorCode.ConsoleHeaderRequired,
              message: `the sign-in must carry the header ${WEB_CSRF_HEADER}: 1`,
            },
          });
    },
  };
  app.post(`${o.prefix}/api/session`, signIn, async (req, reply) => {
    const token = (req.body as { token?: unknown } | undefined)?.token;
    const principal = typeof token === 'string' ? o.authenticate(token) : undefined;
    if (!principal) return unauthenticated(reply, 'this token is not valid here');
    // Drop the longest idle session rather than refuse a sign-in: first the holder's own, when
    // it holds its share (without that, one token signing in 10,000 times, 14 s on the demo
    // hub, ended every other officer's session: found by an attacker pass), then anyone's.
    const holder = o.holderOf?.(principal);
    const idlest = (of: (s: Session<P>) => boolean) => {
      let oldest: string | undefined;
      let at = Infinity;
      let n = 0;
      for (const [k, s] of sessions)
        if (of(s)) {
          n++;
          if (s.lastSeen < at) {
            at = s.lastSeen;
            oldest = k;
          }
        }
      return { oldest, n };
    };
    if (holder !== undefined) {
      const own = idlest((s) => s.holder === holder);
      if (own.n >= maxPerHolder && own.oldest) sessions.delete(own.oldest);
    }
    if (sessions.size >= maxSessions) {
      // Full: the idlest session of the holders holding the most, so that tokens signing in
      // over and over, each within its share (ten at 1,000 fill the store), end one another's
      // sessions and never an officer's (without holders, anyone's idlest).
      const held = new Map<string, number>();
      for (const s of sessions.values())
        if (s.holder !== undefined) held.set(s.holder, (held.get(s.holder) ?? 0) + 1);
      const most = Math.max(0, ...held.values());
      const { oldest } = idlest(
        most > 1 ? (s) => s.holder !== undefined && held.get(s.holder) === most : () => true,
      );
      if (oldest) sessions.delete(oldest);
    }
    const id = randomBytes(32).toString('base64url');
    sessions.set(id, { principal, lastSeen: now(), holder });
    return security(reply)
      .header('set-cookie', cookie(req, id))
      .header('cache-control', 'no-store')
      .send(o.describe(principal));
  });
  app.get(`${o.prefix}/api/session`, async (req, reply) => {
    const s = sessionOf(req);
    if (!s) return unauthenticated(reply, 'not signed in');
    return security(reply)
      .header('cache-control', 'no-store')
      .send(o.describe(s.session.principal));
  });
  app.delete(`${o.prefix}/api/session`, async (req, reply) => {
    const s = sessionOf(req);
    if (s) sessions.delete(s.id);
    return security(reply)
      .header('set-cookie', cookie(req, '', true))
      .code(204)
      .send();
  });

  return {
    lookup(req, options) {
      // `touch: false`: a check that is not a use (a live feed asking again whether it may go on)
      // leaves the session's idle time running.
      const s = sessionOf(req, options?.touch ?? true);
      if (!s) return undefined;
      if (req.method !== 'GET' && req.method !== 'HEAD' && req.headers[WEB_CSRF_HEADER] !== '1')
        return undefined;
      return s.session.principal;
    },
  };
}

/** The value of cookie `name` in a Cookie header (the first one), or undefined. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,100}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

/** Every file of a built app, read once at start (a few hundred kilobytes). */
function loadAssets(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p).split(sep).join('/'), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}
