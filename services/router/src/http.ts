import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import { parseJsonBytes, type AgreementSet, type Issue, type TrustStore } from '@alert-hub/core';
import {
  HttpError,
  HttpErrorCode,
  errorEnvelopeOptions,
  findTokenHolder,
  httpsOptions,
  installRequestGuards,
  installErrorEnvelope,
  registerOperationsRoutes,
  type OperationsAccess,
  type Logger,
  type Readiness,
  type SqliteDatabase,
} from '@alert-hub/runtime';
import {
  AuditEvent,
  TimeFormatError,
  deniedRecipients,
  flowStats,
  forwardedCopies,
  mergeRecords,
  parseInstant,
  queryAudit,
  traceAlert,
  type AuditQuery,
  type FlowCount,
} from '@alert-hub/audit';
import type { RouterConfig } from './config.js';
import { registerDashboard } from './dashboard.js';
import type { RouterMetrics } from './metrics.js';
import { operationReport } from './reports.js';
import type { RouterStore } from './store.js';
import { registerDeadLetterRoutes } from './dead-letter-api.js';
import type { DeadLetters } from './dead-letters.js';

/** The bearer tokens a router accepts, as a reload (SIGHUP) may replace them. */
export interface RouterTokens {
  readonly coordinators: RouterConfig['coordinators'];
  readonly operators: RouterConfig['operators'];
  readonly metricsReaders: RouterConfig['metricsReaders'];
}

export interface CoordinatorApiDeps {
  readonly config: RouterConfig;
  /** The coordinators', operators' and metrics readers' tokens in force: the configuration's until a reload. */
  readonly tokens: () => RouterTokens;
  /** This router's audit database, then any peers' (read-only). */
  readonly databases: readonly SqliteDatabase[];
  readonly metrics: RouterMetrics;
  readonly log: Logger;
  readonly readiness: () => Promise<Readiness>;
  readonly store: RouterStore;
  readonly agreements: () => AgreementSet;
  /** The latest signed checkpoint note with the witnesses' cosignatures gathered so far. */
  readonly latestCheckpoint: () => string | undefined;
  /** The trust store, for the dashboard's checkpoint signature check. */
  readonly trust?: () => TrustStore;
  /** Dead letters for operators (`/v1/deadletters`); absent, the routes are not served. */
  readonly deadLetters?: DeadLetters;
}

const OUTCOMES: readonly string[] = Object.values(AuditEvent);
function isInstant(v: string): boolean {
  try {
    parseInstant(v);
    return true;
  } catch (err) {
    if (err instanceof TimeFormatError) return false;
    throw err;
  }
}

const QUERY_PARAMETERS = [
  'agency',
  'partner',
  'type',
  'outcome',
  'since',
  'until',
  'after',
  'limit',
] as const;

function parseQuery(q: Record<string, unknown>): AuditQuery {
  const issues: Issue[] = [];
  const out: Record<string, string | number> = {};
  // A parameter the API does not know is refused, never ignored: `?event=routed` answering every
  // record would read as a filter that matched them all.
  for (const k of Object.keys(q))
    if (!(QUERY_PARAMETERS as readonly string[]).includes(k))
      issues.push({
        pointer: `/query/${k}`,
        message: `is not a parameter of /v1/audit (${QUERY_PARAMETERS.join(', ')})`,
      });
  for (const k of QUERY_PARAMETERS) {
    const v = q[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') {
      issues.push({ pointer: `/query/${k}`, message: 'must be given once, not empty' });
      continue;
    }
    if ((k === 'since' || k === 'until') && !isInstant(v))
      issues.push({
        pointer: `/query/${k}`,
        message: 'must be an RFC 3339 date-time with a time zone (2026-11-28T09:00:00Z)',
      });
    else if ((k === 'after' || k === 'limit') && !/^\d{1,9}$/.test(v))
      issues.push({ pointer: `/query/${k}`, message: 'must be a non-negative integer' });
    else if (k === 'outcome' && !OUTCOMES.includes(v)) {
      issues.push({ pointer: '/query/outcome', message: `must be one of: ${OUTCOMES.join(', ')}` });
    } else out[k] = k === 'after' || k === 'limit' ? Number(v) : v;
  }
  if (issues.length) throw new HttpError('ERR_BAD_REQUEST', 'invalid query', issues);
  const query: AuditQuery = { ...out, limit: Math.min(Number(out['limit'] ?? 500), 5000) };
  return query;
}

/**
 * The router's `/readyz` checks whose finding anyone may read: connection and consumer states, a
 * count of stuck messages, the feed stream's retention. The others (whose feed is full, whose
 * budget is spent, whose stream or leaf is missing, what tampering was found, a database error)
 * are said only to a caller that may read `/metrics`; to others, `ok` or not.
 */
export const ROUTER_PUBLIC_CHECKS = ['nats', 'consumer', 'routing', 'feedsRetention'] as const;

/**
 * Who may read the router's `/metrics` and what its `/readyz` checks found: a metrics reader,
 * an operator or a coordinator (their tokens in force now).
 */
export function routerOperationsAccess(tokens: () => RouterTokens): OperationsAccess {
  // The router's series and findings name agencies (who sends how much, whose feed is full,
  // whose budget is spent): the hub's own readers get them, not whoever reaches the port.
  return {
    mayRead: (req) => {
      const t = tokens();
      const readers = [...t.metricsReaders, ...t.operators, ...t.coordinators];
      return findTokenHolder(readers, req.headers.authorization) !== undefined;
    },
    refusal: 'a metrics reader, operator or coordinator bearer token is required',
    publicChecks: ROUTER_PUBLIC_CHECKS,
  };
}

/** What a request body to the router may hold (only the dashboard's sign-in has one). */
export const ROUTER_BODY_LIMIT_BYTES = 16 * 1024;

/**
 * The coordinators' read-only API over the audit log: `/v1/audit`, `/v1/audit/trace/:id`,
 * `/v1/stats/flows`, behind a coordinator bearer token. With `auditPeers` configured, every answer
 * merges this router's records with the other hosts' into one view.
 */
export function buildCoordinatorApi(deps: CoordinatorApiDeps): FastifyInstance {
  const { config, databases, metrics } = deps;
  const errorResponses = { realm: 'alert-hub coordinators' };
  const app = Fastify({
    ...httpsOptions(config.http.tls),
    // Fastify's and Node's own refusals (bad URL, 414, 431, ...) in the same envelope.
    ...errorEnvelopeOptions(errorResponses),
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- pino's Logger and Fastify's logger type differ by a member
    loggerInstance: deps.log as FastifyBaseLogger,
    // We log one line per request ourselves (onResponse), with the alert id and client.
    logController: new LogController({ disableRequestLogging: true }),
    // Fastify's default is no timeout at all; a trickled body: installRequestGuards below.
    requestTimeout: config.http.requestTimeoutMs,
    // The one body it reads is the dashboard's sign-in, a token: not Fastify's 1 MiB, which
    // anyone could make the router parse (250 ms of its event loop each; an attacker pass).
    bodyLimit: ROUTER_BODY_LIMIT_BYTES,
  }) as unknown as FastifyInstance;
  installRequestGuards(app, config.http.requestTimeoutMs);
  // The one JSON body (the dashboard's sign-in) is read by core's strict parser, not Fastify's,
  // which lets a member named twice take its last value where another parser takes the first.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => {
    try {
      done(null, parseJsonBytes(body as Buffer));
    } catch (err) {
      done(
        new HttpError(
          HttpErrorCode.BadJson,
          `the request body is not strict JSON: ${(err as Error).message}`,
        ),
        undefined,
      );
    }
  });
  const requireCoordinator = async (req: FastifyRequest) => {
    const who =
      findTokenHolder(deps.tokens().coordinators, req.headers.authorization) ??
      dashboardSessions.lookup(req);
    if (!who) throw new HttpError('ERR_UNAUTHENTICATED', 'a coordinator bearer token is required');
    req.log.info({ coordinator: who.name, url: req.url }, 'audit read');
  };

  installErrorEnvelope(app, {
    ...errorResponses,
    onServerError: (err) => deps.log.error({ err }, 'request failed'),
  });

  app.get('/v1/audit', { onRequest: requireCoordinator }, async (req) => {
    const q = parseQuery(req.query as Record<string, unknown>);
    const records = mergeRecords(
      databases.map((db) => queryAudit(db, q)),
      q.limit ?? 500,
    );
    return { records, count: records.length };
  });
  app.get('/v1/audit/trace/:id', { onRequest: requireCoordinator }, async (req) => {
    const { id } = req.params as { id: string };
    const records = mergeRecords(
      databases.map((db) => traceAlert(db, id)),
      100_000,
    );
    if (records.length === 0)
      throw new HttpError('ERR_NOT_FOUND', `no audit record mentions alert ${id}`);
    return {
      alertId: id,
      records,
      summary: {
        forwardedTo: forwardedCopies(records).map((f) => ({
          recipient: f.recipient,
          agreement: `${f.agreementId}@${f.agreementVersion}`,
          at: f.at,
        })),
        // Held copies not forwarded yet: the recipient's feed had no room (status `pending`).
        pendingFor: records
          .filter(
            (r) =>
              r.event === 'held' &&
              !records.some(
                (f) =>
                  f.event === 'forwarded' && f.recipient === r.recipient && f.origin === r.origin,
              ),
          )
          .map((r) => ({ recipient: r.recipient, since: r.at, reason: r.reason })),
        // A summary of refusals (one per reason) is listed recipient by recipient.
        deniedTo: records
          .filter((r) => r.event === 'denied')
          .flatMap(deniedRecipients)
          .map((d) => ({ recipient: d.recipient, reason: d.reasonCode, detail: d.reason })),
        rejected: records
          .filter((r) => r.event === 'rejected')
          .map((r) => ({ reason: r.reasonCode, detail: r.reason })),
      },
    };
  });
  app.get('/v1/audit/checkpoint', { onRequest: requireCoordinator }, async (_req, reply) => {
    const note = deps.latestCheckpoint();
    if (!note) throw new HttpError('ERR_NOT_FOUND', 'no audit checkpoint signed yet');
    return reply.type('text/plain; charset=utf-8').send(note);
  });
  app.get('/v1/stats/flows', { onRequest: requireCoordinator }, async (req) => {
    const q = parseQuery(req.query as Record<string, unknown>);
    const merged = new Map<string, FlowCount>();
    for (const db of databases) {
      for (const f of flowStats(db, {
        ...(q.since ? { since: q.since } : {}),
        ...(q.until ? { until: q.until } : {}),
      })) {
        const k = `${f.day}|${f.origin}|${f.recipient}|${f.type}`;
        merged.set(k, { ...f, count: (merged.get(k)?.count ?? 0) + f.count });
      }
    }
    return { flows: [...merged.values()] };
  });
  app.get('/v1/stats/undelivered', { onRequest: requireCoordinator }, async (req) => {
    const q = req.query as Record<string, unknown>;
    let afterMs = config.undeliveredAfterMs;
    if (q['olderThanSeconds'] !== undefined) {
      const v = q['olderThanSeconds'];
      if (typeof v !== 'string' || !/^\d{1,7}$/.test(v))
        throw new HttpError('ERR_BAD_REQUEST', 'invalid query', [
          { pointer: '/query/olderThanSeconds', message: 'must be a non-negative integer' },
        ]);
      afterMs = Number(v) * 1000;
    }
    const before = new Date(Date.now() - afterMs).toISOString();
    const items = deps.store.undelivered(before).map((d) => ({
      alertId: d.alertId,
      origin: d.origin,
      type: d.type,
      recipient: d.recipient,
      forwardedAt: d.forwardedAt,
      pendingMs: Date.now() - Date.parse(d.forwardedAt ?? before),
    }));
    return { olderThanMs: afterMs, count: deps.store.countUndelivered(before), items };
  });
  app.get('/v1/operations/:id/report', { onRequest: requireCoordinator }, async (req) => {
    const { id } = req.params as { id: string };
    const op = deps.agreements().operations?.find((o) => o.id === id);
    if (!op) throw new HttpError('ERR_NOT_FOUND', `no operation ${id} in the agreements file`);
    return operationReport(deps.store.db, op);
  });
  if (deps.deadLetters)
    registerDeadLetterRoutes(app, {
      deadLetters: deps.deadLetters,
      caller: (req) => {
        const op = findTokenHolder(deps.tokens().operators, req.headers.authorization);
        if (op) return { name: op.name, operator: true };
        const c =
          findTokenHolder(deps.tokens().coordinators, req.headers.authorization) ??
          dashboardSessions.lookup(req);
        return c && { name: c.name, operator: false };
      },
    });
  registerOperationsRoutes(
    app,
    deps.readiness,
    metrics.registry,
    routerOperationsAccess(deps.tokens),
  );
  const dashboardSessions = registerDashboard(app, { ...deps, requireCoordinator });
  return app;
}
