import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { HttpError, HttpErrorCode } from './http-errors.js';

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
  /** Whether the caller may read `/metrics` and what every `/readyz` check found. */
  readonly mayRead: (req: FastifyRequest) => boolean;
  /** The 401's message to a caller who may not read `/metrics`: whose token it takes. */
  readonly refusal: string;
  /**
   * The `/readyz` checks whose finding anyone may read (states, counts, settings); every other
   * check's finding may name agencies or hold internal detail, and a new check is withheld
   * unless it is added here.
   */
  readonly publicChecks: readonly string[];
}

/** What `/readyz` says of a check that is not `ok` to a caller not allowed its finding. */
export const READINESS_WITHHELD = 'not ok (what it found: with a token that may read /metrics)';

/**
 * `/healthz` (alive), `/readyz` (200 or 503 with each check; 503 with the check `readiness` when
 * working them out failed) and `/metrics` (Prometheus). The probes answer anyone; with `access`,
 * `/metrics` and the checks' findings only whom it allows.
 */
export function registerOperationsRoutes(
  app: FastifyInstance,
  readiness: () => Promise<Readiness>,
  metrics: Registry,
  access?: OperationsAccess,
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (req, reply) => {
    // A check that throws (a database gone bad under a count) makes the service not ready, with
    // what failed, rather than a 500 a probe reads as the probe's own failure.
    const r = await readiness().catch((err: unknown): Readiness => ({
      ready: false,
      checks: { readiness: `failed: ${err instanceof Error ? err.message : String(err)}` },
    }));
    const checks =
      !access || access.mayRead(req)
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
    // Refused before anything is rendered.
    access
      ? {
          onRequest: async (req) => {
            if (!access.mayRead(req))
              throw new HttpError(HttpErrorCode.Unauthenticated, access.refusal);
          },
        }
      : {},
    async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()),
  );
}

/** Fastify's `https` option from an `http.tls` section (undefined: plain HTTP). */
export function httpsOptions(
  tls: { readonly certFile: string; readonly keyFile: string } | undefined,
): { https: { cert: Buffer; key: Buffer } } | Record<string, never> {
  return tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {};
}
