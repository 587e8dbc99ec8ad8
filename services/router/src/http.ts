import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import {
  AlertHubError,
  isRfc3339,
  parseRfc3339,
  type Issue,
  type TrustStore,
} from '@alert-hub/core';
import {
  findTokenHolder,
  registerOperationsRoutes,
  type Logger,
  type Readiness,
  type SqliteDatabase,
} from '@alert-hub/runtime';
import {
  AuditEvent,
  flowStats,
  mergeRecords,
  queryAudit,
  traceAlert,
  type AuditQuery,
  type FlowCount,
} from '@alert-hub/audit';
import type { RouterConfig } from './config.js';
import { registerDashboard } from './dashboard.js';
import type { RouterMetrics } from './metrics.js';

/** The router's HTTP error table: code to status. */
const STATUS: Readonly<Record<string, number>> = {
  ERR_BAD_REQUEST: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_NOT_FOUND: 404,
  ERR_INTERNAL: 500,
};

class HttpError extends AlertHubError {
  constructor(
    code: string,
    message: string,
    readonly details?: readonly Issue[],
  ) {
    super(code, message);
  }
}

export interface CoordinatorApiDeps {
  readonly config: RouterConfig;
  /** This router's audit database, then any peers' (read-only). */
  readonly databases: readonly SqliteDatabase[];
  readonly metrics: RouterMetrics;
  readonly log: Logger;
  readonly readiness: () => Promise<Readiness>;
  /** The trust store, for the dashboard's checkpoint signature check. */
  readonly trust?: () => TrustStore;
}

const OUTCOMES: readonly string[] = Object.values(AuditEvent);
/**
 * An RFC 3339 full-date, or a date-time read by the hub's one parser and normalised to the UTC
 * form the audit log stores, so the string comparison in SQL compares instants.
 */
function queryTime(v: string): string | undefined {
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) return isRfc3339(`${v}T00:00:00Z`) ? v : undefined;
  const t = parseRfc3339(v);
  return t === undefined ? undefined : new Date(t).toISOString();
}

function parseQuery(q: Record<string, unknown>): AuditQuery {
  const issues: Issue[] = [];
  const out: Record<string, string | number> = {};
  for (const k of [
    'agency',
    'partner',
    'type',
    'outcome',
    'since',
    'until',
    'after',
    'limit',
  ] as const) {
    const v = q[k];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v === '') {
      issues.push({ pointer: `/query/${k}`, message: 'must be given once, not empty' });
      continue;
    }
    if (k === 'since' || k === 'until') {
      const t = queryTime(v);
      if (t === undefined)
        issues.push({ pointer: `/query/${k}`, message: 'must be an RFC 3339 date or date-time' });
      else out[k] = t;
    } else if ((k === 'after' || k === 'limit') && !/^\d{1,9}$/.test(v))
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
 * The coordinators' read-only API over the audit log: `/v1/audit`, `/v1/audit/trace/:id`,
 * `/v1/stats/flows`, behind a coordinator bearer token. With `auditPeers` configured, every answer
 * merges this router's records with the other hosts' into one view.
 */
export function buildCoordinatorApi(deps: CoordinatorApiDeps): FastifyInstance {
  const { config, databases, metrics } = deps;
  const app = Fastify({
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- pino's Logger and Fastify's logger type differ by a member
    loggerInstance: deps.log as FastifyBaseLogger,
    // We log one line per request ourselves (onResponse), with the alert id and client.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const requireCoordinator = async (req: FastifyRequest) => {
    const who =
      findTokenHolder(config.coordinators, req.headers.authorization) ??
      dashboardSessions.lookup(req);
    if (!who) throw new HttpError('ERR_UNAUTHENTICATED', 'a coordinator bearer token is required');
    req.log.info({ coordinator: who.name, url: req.url }, 'audit read');
  };

  app.setErrorHandler((err: Error & { details?: readonly Issue[]; code?: string }, _req, reply) => {
    const code = err instanceof HttpError ? err.code : 'ERR_INTERNAL';
    if (code === 'ERR_UNAUTHENTICATED')
      void reply.header('www-authenticate', 'Bearer realm="alert-hub coordinators"');
    void reply.code(STATUS[code] ?? 500).send({
      error: {
        code,
        message: err instanceof HttpError ? err.message : 'internal error',
        ...(err.details ? { details: err.details } : {}),
      },
    });
  });
  app.setNotFoundHandler(
    (_req, reply) =>
      void reply.code(404).send({ error: { code: 'ERR_NOT_FOUND', message: 'no such resource' } }),
  );

  app.get('/v1/audit', { preHandler: requireCoordinator }, async (req) => {
    const q = parseQuery(req.query as Record<string, unknown>);
    const records = mergeRecords(
      databases.map((db) => queryAudit(db, q)),
      q.limit ?? 500,
    );
    return { records, count: records.length };
  });
  app.get('/v1/audit/trace/:id', { preHandler: requireCoordinator }, async (req) => {
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
        forwardedTo: records
          .filter((r) => r.event === 'forwarded')
          .map((r) => ({
            recipient: r.recipient,
            agreement: `${r.agreementId}@${r.agreementVersion}`,
            at: r.at,
          })),
        deniedTo: records
          .filter((r) => r.event === 'denied')
          .map((r) => ({ recipient: r.recipient, reason: r.reasonCode, detail: r.reason })),
        rejected: records
          .filter((r) => r.event === 'rejected')
          .map((r) => ({ reason: r.reasonCode, detail: r.reason })),
      },
    };
  });
  app.get('/v1/stats/flows', { preHandler: requireCoordinator }, async (req) => {
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
  registerOperationsRoutes(app, deps.readiness, metrics.registry);
  const dashboardSessions = registerDashboard(app, { ...deps, requireCoordinator });
  return app;
}
