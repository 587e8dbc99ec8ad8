import type { EventEmitter } from 'node:events';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  AlertHubError,
  decodeUtf8Strict,
  isAlertId,
  parseJsonBytes,
  parseJsonText,
  type Issue,
  type SchemaRegistry,
} from '@alert-hub/core';
import {
  errorEnvelopeOptions,
  findTokenHolder,
  HttpErrorCode,
  httpsOptions,
  installRequestGuards,
  installErrorEnvelope,
  registerOperationsRoutes,
  translateError,
  type Logger,
  type Readiness,
} from '@alert-hub/runtime';
import type { ApiClient, GatewayConfig, Role } from './config.js';
import { registerConsole } from './console.js';
import { GatewayError, errorBody, statusOf } from './errors.js';
import type { Intake, Receipt } from './intake.js';
import { alertIdParam, findAlert, parseOriginQuery } from './lookup.js';
import type { GatewayMetrics } from './metrics.js';
import type { GatewayStore } from './store.js';
import { copyMatchesDecision, type GatewayWitness } from './witness.js';

/** The gateway's code for each error a proof of delivery may end in (docs/protocol.md §8.5). */
const PROOF_ERRORS: Readonly<Record<string, HttpErrorCode>> = {
  ERR_NOT_FOUND: HttpErrorCode.NotFound,
  ERR_BAD_REQUEST: HttpErrorCode.BadRequest,
  ERR_INTERNAL: HttpErrorCode.HubInternal,
  ERR_HUB_REPLY_INVALID: HttpErrorCode.HubReplyInvalid,
  ERR_NOTE_SIGNATURE: HttpErrorCode.HubReplyInvalid,
};

export interface HttpDeps {
  readonly config: GatewayConfig;
  /** The API clients in force: `config.clients` until a reload (SIGHUP) replaces them. */
  readonly clients: () => readonly ApiClient[];
  readonly intake: Intake;
  readonly store: GatewayStore;
  readonly registry: SchemaRegistry;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /** Emits `committed` after each inbox transaction, so live streams wake up. */
  readonly feedEvents: EventEmitter;
  readonly readiness: () => Promise<Readiness>;
  readonly witness?: GatewayWitness | undefined;
}

declare module 'fastify' {
  interface FastifyRequest {
    client?: ApiClient;
    alertId?: string;
  }
}

const FEED_PAGE_MAX = 1000;
// "::" is Fastify's escape for a literal colon in a path; the route's url keeps it.
const BATCH_ROUTE = '/v1/alerts::batch';

/**
 * How much a batch can hold, in values: its objects, arrays and the members and elements they
 * separate by commas (and an NDJSON body's lines), at any depth, `VALUES_PER_ITEM` per alert
 * allowed on average. A real alert is tens of values; 16 MiB of `{}` is millions, more than the
 * gateway's 128 MiB heap holds once parsed, wherever they are nested.
 */
export const VALUES_PER_ITEM = 256;

/**
 * The shape of a batch body, read without parsing it (strings skipped, nesting followed) and no
 * further than one past either limit: `items`, the elements of a top-level JSON array (anything
 * else is 1: the parser and the route refuse it as they would) or the lines of NDJSON that hold
 * more than white space; `values`, every object, array, comma and (NDJSON) line at any depth.
 */
export function batchShape(
  body: Buffer,
  limits: { readonly items: number; readonly values: number },
  ndjson: boolean,
): { items: number; values: number } {
  let i = 0;
  const ws = (b: number | undefined) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
  if (!ndjson) while (i < body.length && ws(body[i])) i++;
  const array = !ndjson && body[i] === 0x5b;
  let depth = 0;
  let items = ndjson ? 0 : 1;
  let values = 1;
  let blank = true;
  let inString = false;
  for (; i < body.length && items <= limits.items && values <= limits.values; i++) {
    const b = body[i];
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
      continue;
    }
    if (ndjson && b === 0x0a) {
      if (!blank) items++;
      blank = true;
      values++;
      continue;
    }
    if (!ws(b)) blank = false;
    if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      depth++;
      values++;
    } else if (b === 0x5d || b === 0x7d) depth--;
    else if (b === 0x2c) {
      values++;
      if (array && depth === 1) items++;
    }
  }
  return { items: ndjson && !blank ? items + 1 : items, values };
}
const SSE_HEARTBEAT_MS = 15_000;

/**
 * The gateway's HTTP API, built without listening; main.ts
 * calls `listen()`.
 */
export function buildHttp(deps: HttpDeps): FastifyInstance {
  const { config, intake, store, metrics, log } = deps;
  const alertTypes = [...new Set(deps.registry.alertTypes.map((t) => t.type))];
  const errorResponses = { realm: 'alert-hub', retryAfterSeconds: config.retryAfterSeconds };
  // With a certificate Fastify serves HTTPS; its type then differs only in the server class.
  const app = Fastify({
    ...httpsOptions(config.http.tls),
    // Fastify's and Node's own refusals (bad URL, 414, 431, ...) in the same envelope.
    ...errorEnvelopeOptions(errorResponses),
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- pino's Logger and Fastify's logger type differ by a member
    loggerInstance: log as FastifyBaseLogger,
    // We log one line per request ourselves (onResponse), with the alert id and client.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    // Fastify's default is no timeout at all; a trickled body: installRequestGuards below.
    requestTimeout: config.http.requestTimeoutMs,
    // Behind no proxy by default; the client address in logs is the socket's.
    trustProxy: false,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  installRequestGuards(app, config.http.requestTimeoutMs);

  // Our JSON parser, not Fastify's: strict UTF-8 (invalid bytes are an error, not U+FFFD),
  // bounded depth, and no __proto__/constructor/prototype keys anywhere.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  // A batch's items are counted before it is parsed: 16 MiB of `[{},{},...]` is millions of
  // objects, more than the gateway's heap holds (found by an attacker pass).
  const batchTooLarge = (req: FastifyRequest, body: Buffer, ndjson: boolean) => {
    if (req.routeOptions.url !== BATCH_ROUTE) return;
    const max = config.http.batchMaxItems;
    const shape = batchShape(body, { items: max, values: max * VALUES_PER_ITEM }, ndjson);
    if (shape.items > max)
      throw new GatewayError('ERR_BATCH_TOO_LARGE', `a batch holds at most ${max} alerts`, [
        { pointer: '', message: `has more than ${max} items` },
      ]);
    if (shape.values > max * VALUES_PER_ITEM)
      throw new GatewayError(
        'ERR_BATCH_TOO_LARGE',
        `a batch holds at most ${max * VALUES_PER_ITEM} JSON values in all (objects, arrays, members, elements, lines: ${VALUES_PER_ITEM} per alert allowed)`,
        [{ pointer: '', message: `has more than ${max * VALUES_PER_ITEM} values` }],
      );
  };
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      if ((body as Buffer).length === 0)
        throw new GatewayError('ERR_BAD_JSON', 'the request body is empty');
      batchTooLarge(req, body as Buffer, false);
      done(null, parseJsonBytes(body as Buffer));
    } catch (err) {
      done(asBadJson(err), undefined);
    }
  });
  // The batch route's body limit is its own; every other route keeps the default one.
  app.addContentTypeParser('application/x-ndjson', { parseAs: 'buffer' }, (req, body, done) => {
    try {
      batchTooLarge(req, body as Buffer, true);
      const lines = decodeUtf8Strict(body as Buffer).split('\n');
      const items: unknown[] = [];
      lines.forEach((line, i) => {
        if (line.trim() === '') return;
        try {
          items.push(parseJsonText(line));
        } catch (err) {
          items.push(new LineError(i + 1, (err as Error).message));
        }
      });
      done(null, items);
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  installErrorEnvelope(app, {
    ...errorResponses,
    onServerError: (err, e) => {
      // NATS down and a full stream are the hub's state, not a fault of this request: they show
      // in the metrics (ahub_gateway_alerts_rejected_total by reason) and the router's fill gauge.
      if (e.code !== 'ERR_NATS_UNAVAILABLE' && e.code !== 'ERR_INBOUND_STREAM_FULL')
        log.error({ err }, 'request failed');
    },
  });

  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpSeconds.observe(
      { route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    if (route !== '/metrics' && route !== '/healthz' && route !== '/readyz') {
      req.log.info(
        {
          method: req.method,
          route,
          status: reply.statusCode,
          ms: Math.round(reply.elapsedTime * 10) / 10,
          client: req.client?.name,
          alertId: req.alertId,
        },
        'request',
      );
    }
    done();
  });

  /**
   * The API client of a request: its bearer token, else its console session (`touch: false`
   * for a check that is not a use, which leaves the session's idle time running).
   */
  const callerOf = (req: FastifyRequest, touch = true) =>
    findTokenHolder(deps.clients(), req.headers.authorization) ??
    consoleSessions.lookup(req, { touch });

  // Run on request, before the body is read: nobody without a token makes the gateway read,
  // let alone parse, a body.
  const requireRole =
    (...roles: Role[]) =>
    async (req: FastifyRequest) => {
      const client = callerOf(req);
      if (!client)
        throw new GatewayError(
          'ERR_UNAUTHENTICATED',
          'a valid bearer token is required (Authorization: Bearer <token>)',
        );
      if (!roles.some((r) => client.roles.includes(r))) {
        throw new GatewayError(
          'ERR_FORBIDDEN',
          `client ${client.name} lacks the role ${roles.join(' or ')}`,
        );
      }
      req.client = client;
    };

  app.post('/v1/alerts', { onRequest: requireRole('submit') }, async (req, reply) => {
    // Logged only when it is an alert id: until the schema accepts it, it is the client's text.
    const bodyId = (req.body as { id?: unknown } | null | undefined)?.id;
    if (isAlertId(bodyId)) req.alertId = bodyId;
    const receipt = await intake.submit(req.body, req.client!.name);
    req.alertId = receipt.id;
    return reply.code(202).send(receipt);
  });

  app.post(
    BATCH_ROUTE,
    { onRequest: requireRole('submit'), bodyLimit: config.http.batchBodyLimitBytes },
    async (req) => {
      const items = req.body;
      if (!Array.isArray(items))
        throw new GatewayError(
          'ERR_BAD_REQUEST',
          'a batch is a JSON array of alerts, or NDJSON (application/x-ndjson)',
          [{ pointer: '', message: 'must be an array' }],
        );
      if (items.length > config.http.batchMaxItems) {
        throw new GatewayError(
          'ERR_BATCH_TOO_LARGE',
          `a batch holds at most ${config.http.batchMaxItems} alerts`,
          [{ pointer: '', message: `has ${items.length} items` }],
        );
      }
      const results = await Promise.all(
        items.map(async (item: unknown, index) => {
          try {
            if (item instanceof LineError)
              throw new GatewayError('ERR_BAD_JSON', item.message, [
                { pointer: '', message: `line ${item.line}: ${item.message}` },
              ]);
            const r: Receipt = await intake.submit(item, req.client!.name);
            return { index, status: 202, ...r };
          } catch (err) {
            const t = translateError(err as Error);
            return {
              index,
              status: statusOf(t.code),
              ...errorBody(t.code, t.message, t.details, t.id),
            };
          }
        }),
      );
      const accepted = results.filter((r) => r.status < 300).length;
      return { accepted, rejected: results.length - accepted, results };
    },
  );

  // The audit log as this agency witnessed it: the latest checkpoint it cosigned with every
  // cosignature gathered (an anchor for `hubctl audit verify`), and inclusion proofs of the
  // entries recording deliveries to this agency.
  app.get(
    '/v1/audit/checkpoint',
    { onRequest: requireRole('read-feed', 'submit') },
    async (_req, reply) => {
      const note = deps.witness?.latest(config.witness.auditLog);
      if (!note)
        throw new GatewayError(
          'ERR_NOT_FOUND',
          'this gateway has cosigned no audit checkpoint yet',
        );
      return reply.type('text/plain; charset=utf-8').send(note);
    },
  );
  app.get(
    '/v1/audit/inclusion/:id',
    { onRequest: requireRole('read-feed') },
    async (req, reply) => {
      // What the router would refuse (docs/protocol.md §8.5) is a 400 here, never a retry.
      const id = alertIdParam(req.params);
      if (!deps.witness) throw new GatewayError('ERR_NOT_FOUND', 'the witness is disabled');
      // No router answering is ERR_NATS_UNAVAILABLE (thrown by inclusionProof).
      const answer = await deps.witness.inclusionProof(config.witness.auditLog, id);
      if ('error' in answer) {
        const { code, message, retryAfterMs } = answer.error;
        // The router answers each agency's proof requests at a bounded rate (docs/protocol.md §8.5).
        if (code === 'ERR_RATE_LIMITED') {
          void reply.header(
            'retry-after',
            String(Math.max(1, Math.ceil((retryAfterMs ?? 1000) / 1000))),
          );
          throw new GatewayError('ERR_RATE_LIMITED', message);
        }
        // The router's refusals of the request pass through; its own failure, a reply that is not
        // one of the protocol's, or a checkpoint the hub did not sign is the hub's fault, never
        // the client's. A code the protocol does not give is named in the message.
        const mapped = PROOF_ERRORS[code];
        throw new GatewayError(
          mapped ?? HttpErrorCode.HubReplyInvalid,
          mapped ? message : `${message} [${code}]`,
        );
      }
      // A routing decision's entry: is it the decision this agency's own copy carries? (null when
      // the copy is no longer held here, or the entry is a `forwarded` one.) The record is the
      // router's, typed only where it verified: an origin that is not a string finds no copy.
      const entries = answer.entries.map((e) => {
        const origin: unknown = e.record.origin;
        const envelope =
          e.route && typeof origin === 'string' && origin && store.envelopeOf(origin, id);
        return {
          ...e,
          copyMatches: envelope ? copyMatchesDecision(envelope, e.record, e.route!) : null,
        };
      });
      return {
        ...answer,
        ok: answer.ok && entries.every((e) => e.copyMatches !== false),
        entries,
      };
    },
  );
  app.get('/v1/feed', { onRequest: requireRole('read-feed') }, async (req) => {
    const q = parseFeedQuery(req.query as Record<string, unknown>, alertTypes);
    const limit = q.limit ?? 100;
    const items = store.listFeed({
      after: q.after,
      limit: limit + 1,
      ...(q.type ? { type: q.type } : {}),
    });
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    if (last) return { items: page, next: last.cursor, hasMore: items.length > limit };
    // An empty page after a cursor beyond the end is a mistake worth saying (hubctl does); its
    // `next` is the last real cursor, never the one asked for: items that arrive later get the
    // cursors in between, and continuing from one past the end would skip them.
    const end = store.lastCursor();
    return {
      items: page,
      next: q.after > Number(end) ? end : String(q.after),
      hasMore: false,
      last: end,
    };
  });

  app.get('/v1/feed/stream', { onRequest: requireRole('read-feed') }, async (req, reply) => {
    const q = parseFeedQuery(req.query as Record<string, unknown>, alertTypes);
    const lastEventId = req.headers['last-event-id'];
    let after = q.after;
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      if (!/^\d{1,15}$/.test(lastEventId))
        throw new GatewayError('ERR_BAD_REQUEST', 'Last-Event-ID must be a feed cursor', [
          { pointer: '/headers/last-event-id', message: 'must be a feed cursor' },
        ]);
      after = Number(lastEventId);
    }
    // A cursor past the end streams from the last real cursor: items that arrive later get the
    // cursors in between, and waiting for ones past it would skip them (as `GET /v1/feed` says).
    after = Math.min(after, Number(store.lastCursor()));
    // Each stream holds a connection, a timer and a listener: a leaked or looping client (about
    // 12,000 streams ended a gateway on its 128 MiB heap; an attacker pass) gets 429 instead.
    const holder = req.client!.name;
    const held = streamsOf.get(holder) ?? 0;
    if (
      held >= config.http.maxFeedStreamsPerClient ||
      openStreams.size >= config.http.maxFeedStreams
    )
      throw new GatewayError(
        'ERR_RATE_LIMITED',
        held >= config.http.maxFeedStreamsPerClient
          ? `client ${holder} has ${held} live feeds open, the most http.maxFeedStreamsPerClient allows: close one`
          : `the gateway has ${openStreams.size} live feeds open, the most http.maxFeedStreams allows`,
      );
    streamsOf.set(holder, held + 1);
    try {
      await streamFeed(req, reply, { after, ...(q.type ? { type: q.type } : {}) });
    } finally {
      const left = (streamsOf.get(holder) ?? 1) - 1;
      if (left > 0) streamsOf.set(holder, left);
      else streamsOf.delete(holder);
    }
  });

  // An alert is identified by (origin, id): `?origin=` names the sender when several agencies
  // used the same id (without it such an id is ERR_ALERT_ID_AMBIGUOUS, never one of them).
  app.get('/v1/alerts/:id', { onRequest: requireRole('read-feed', 'submit') }, async (req) => {
    const id = alertIdParam(req.params);
    req.alertId = id;
    const origin = parseOriginQuery(req.query);
    const roles = req.client!.roles;
    const { received, sent } = findAlert(store, config.agency, id, {
      received: roles.includes('read-feed'),
      sent: roles.includes('submit'),
      ...(origin === undefined ? {} : { origin }),
    });
    if (received) return { direction: 'received', ...received };
    if (sent)
      return {
        direction: 'sent',
        id: sent.id,
        type: sent.type,
        sequence: sent.sequence,
        acceptedAt: sent.acceptedAt,
        client: sent.client,
        // Outcomes partners reported, beside the alert they answer.
        outcomes: store.statusOf(id, Date.now(), config.status.pendingAlertMs)?.outcomes ?? [],
      };
    throw new GatewayError('ERR_NOT_FOUND', `no alert ${id} in this gateway`);
  });

  app.get('/v1/alerts/:id/status', { onRequest: requireRole('submit') }, async (req) => {
    const id = alertIdParam(req.params);
    req.alertId = id;
    const status = store.statusOf(id, Date.now(), config.status.pendingAlertMs);
    if (!status) throw new GatewayError('ERR_NOT_FOUND', `this agency sent no alert ${id}`);
    return status;
  });

  app.get('/v1/refusals', { onRequest: requireRole('submit', 'read-feed') }, async () => ({
    items: store.refusals(),
  }));

  registerOperationsRoutes(app, deps.readiness, metrics.registry);
  const consoleSessions = registerConsole(app, { ...deps, requireRole });

  // Live streams never finish by themselves, and `close()` waits for every open request: at
  // shutdown each one is ended (its client resumes elsewhere with Last-Event-ID), so that
  // SIGTERM stops the process promptly.
  const openStreams = new Set<() => void>();
  /** Live feeds open per API client (by name). */
  const streamsOf = new Map<string, number>();
  app.addHook('preClose', (done) => {
    for (const end of openStreams) end();
    done();
  });

  async function streamFeed(
    req: FastifyRequest,
    reply: FastifyReply,
    from: { after: number; type?: string },
  ): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      // The alerts themselves: kept by no cache (no-cache would let one store them), and never
      // read as another type (the onSend hook of the console's answers does not run here).
      'cache-control': 'no-store, no-transform',
      'x-content-type-options': 'nosniff',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    let closed = false;
    let wake: (() => void) | undefined;
    // The caller's token (or console session) is looked up again before every page and at every
    // heartbeat: a token revoked by a reload ends the streams opened with it (the reload wakes
    // them all), rather than feeding them for as long as they stay open.
    const allowed = () => callerOf(req, false)?.roles.includes('read-feed') === true;
    const onCommit = () => wake?.();
    deps.feedEvents.on('committed', onCommit);
    const heartbeat = setInterval(() => {
      if (!allowed()) {
        closed = true;
        wake?.();
        return;
      }
      res.write(': keep-alive\n\n');
    }, SSE_HEARTBEAT_MS);
    req.raw.on('close', () => {
      closed = true;
      wake?.();
    });
    let shuttingDown = false;
    const endStream = () => {
      shuttingDown = true;
      closed = true;
      wake?.();
    };
    openStreams.add(endStream);
    metrics.feedStreams.inc();
    let after = from.after;
    try {
      while (!closed && allowed()) {
        // Ask for the next page *after* arming the wake-up, so a commit between the query and the
        // wait is never missed; a spurious wake-up costs one empty query.
        const woken = new Promise<void>((resolve) => (wake = resolve));
        const items = store.listFeed({
          after,
          limit: 500,
          ...(from.type ? { type: from.type } : {}),
        });
        for (const item of items) {
          if (closed) break;
          if (!res.write(`id: ${item.cursor}\nevent: alert\ndata: ${JSON.stringify(item)}\n\n`)) {
            // A client that stops reading must not hold the loop (nor shutdown) forever.
            await new Promise<void>((resolve) => {
              wake = resolve;
              res.once('drain', resolve);
            });
          }
          after = Number(item.cursor);
        }
        if (items.length < 500) await woken;
      }
    } finally {
      openStreams.delete(endStream);
      metrics.feedStreams.dec();
      clearInterval(heartbeat);
      deps.feedEvents.off('committed', onCommit);
      // At shutdown the connection goes too: a kept-alive socket would hold close() open.
      if (shuttingDown) res.end(() => res.destroy());
      else res.end();
    }
  }

  return app;
}

/** A JSON syntax error is ERR_BAD_JSON; the other strict-parsing refusals keep their own code. */
function asBadJson(err: unknown): Error {
  if (err instanceof AlertHubError && (err as { cause?: unknown }).cause instanceof SyntaxError) {
    return new GatewayError('ERR_BAD_JSON', err.message, [{ pointer: '', message: err.message }]);
  }
  return err as Error;
}

class LineError {
  constructor(
    readonly line: number,
    readonly message: string,
  ) {}
}

function parseFeedQuery(
  q: Record<string, unknown>,
  types: readonly string[],
): { after: number; type?: string; limit?: number } {
  const issues: Issue[] = [];
  const out: { after: number; type?: string; limit?: number } = { after: 0 };
  if (q['after'] !== undefined) {
    if (typeof q['after'] === 'string' && /^\d{1,15}$/.test(q['after']))
      out.after = Number(q['after']);
    else issues.push({ pointer: '/query/after', message: 'must be a cursor returned by the feed' });
  }
  if (q['type'] !== undefined) {
    if (typeof q['type'] === 'string' && types.includes(q['type'])) out.type = q['type'];
    else issues.push({ pointer: '/query/type', message: `must be one of: ${types.join(', ')}` });
  }
  if (q['limit'] !== undefined) {
    const n =
      typeof q['limit'] === 'string' && /^\d{1,4}$/.test(q['limit']) ? Number(q['limit']) : NaN;
    if (n >= 1 && n <= FEED_PAGE_MAX) out.limit = n;
    else
      issues.push({
        pointer: '/query/limit',
        message: `must be an integer from 1 to ${FEED_PAGE_MAX}`,
      });
  }
  if (issues.length > 0)
    throw new GatewayError(
      'ERR_BAD_REQUEST',
      'invalid query',
      issues.sort((a, b) => a.pointer.localeCompare(b.pointer)),
    );
  return out;
}
