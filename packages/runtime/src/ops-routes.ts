import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';

/** What a readiness probe reports: overall, and each check in words. */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, string>>;
}

/**
 * Who may read what a service's operations routes know beyond "up" and "ready". Without it
 * (a gateway: what it reports is its own agency's), `/metrics` and every check's finding answer
 * anyone.
 */
export interface OperationsAccess {
  /** Throws to refuse `/metrics`; runs as an `onRequest` hook, so nothing is rendered first. */
  readonly metrics: (req: FastifyRequest) => void;
  /**
   * The `/readyz` checks whose finding anyone may read (states, counts, settings); every other
   * check's finding may name agencies or hold internal detail, and a new check is withheld
   * unless it is added here.
   */
  readonly publicChecks: readonly string[];
  /** Whether `/readyz` may say what the other checks found; otherwise each says only `ok` or not. */
  readonly readinessDetail: (req: FastifyRequest) => boolean;
}

/** What `/readyz` says of a check that is not `ok` to a caller not allowed its finding. */
export const READINESS_WITHHELD = 'not ok (what it found: with a token that may read /metrics)';

/**
 * `/healthz` (alive), `/readyz` (200 or 503 with each check) and `/metrics` (Prometheus). The
 * probes answer anyone; with `access`, `/metrics` and the checks' findings only whom it allows.
 */
export function registerOperationsRoutes(
  app: FastifyInstance,
  readiness: () => Promise<Readiness>,
  metrics: Registry,
  access?: OperationsAccess,
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (req, reply) => {
    const r = await readiness();
    const checks =
      !access || access.readinessDetail(req)
        ? r.checks
        : Object.fromEntries(
            Object.entries(r.checks).map(([k, v]) => [
              k,
              v === 'ok' || access.publicChecks.includes(k) ? v : READINESS_WITHHELD,
            ]),
          );
    return reply
      .code(r.ready ? 200 : 503)
      .send({ status: r.ready ? 'ready' : 'not ready', checks });
  });
  app.get(
    '/metrics',
    access ? { onRequest: async (req) => access.metrics(req) } : {},
    async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()),
  );
}

/** Fastify's `https` option from an `http.tls` section (undefined: plain HTTP). */
export function httpsOptions(
  tls: { readonly certFile: string; readonly keyFile: string } | undefined,
): { https: { cert: Buffer; key: Buffer } } | Record<string, never> {
  return tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {};
}
