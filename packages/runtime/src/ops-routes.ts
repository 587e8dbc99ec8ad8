import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';

/** What a readiness probe reports: overall, and each check in words. */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, string>>;
}

/**
 * `/healthz` (alive), `/readyz` (200 or 503 with each check) and `/metrics` (Prometheus). The
 * probes answer anyone; `/metrics` too unless `metricsAccess` is given, which runs first (as an
 * `onRequest` hook: nothing is rendered for a caller it refuses) and throws to refuse.
 */
export function registerOperationsRoutes(
  app: FastifyInstance,
  readiness: () => Promise<Readiness>,
  metrics: Registry,
  metricsAccess?: (req: FastifyRequest) => void,
): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await readiness();
    return reply
      .code(r.ready ? 200 : 503)
      .send({ status: r.ready ? 'ready' : 'not ready', checks: r.checks });
  });
  app.get(
    '/metrics',
    metricsAccess ? { onRequest: async (req) => metricsAccess(req) } : {},
    async (_req, reply) => reply.type(metrics.contentType).send(await metrics.metrics()),
  );
}

/** Fastify's `https` option from an `http.tls` section (undefined: plain HTTP). */
export function httpsOptions(
  tls: { readonly certFile: string; readonly keyFile: string } | undefined,
): { https: { cert: Buffer; key: Buffer } } | Record<string, never> {
  return tls ? { https: { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) } } : {};
}
