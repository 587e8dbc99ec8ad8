import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TrustStore } from '@alert-hub/core';
import {
  findTokenHolder,
  registerWebApp,
  type SqliteDatabase,
  type WebSessions,
} from '@alert-hub/runtime';
import { verifyAuditChain } from '@alert-hub/audit';
import type { RouterConfig } from './config.js';

/** Where `npm run build:web` puts the dashboard (services/router/dashboard/ is its source). */
export const DASHBOARD_ASSETS_DIR = fileURLToPath(new URL('../dist/dashboard/', import.meta.url));

type Coordinator = RouterConfig['coordinators'][number];

export interface DashboardDeps {
  readonly config: RouterConfig;
  readonly databases: readonly SqliteDatabase[];
  /** The router's trust store, to check checkpoint signatures; without it they are counted only. */
  readonly trust?: () => TrustStore;
  readonly requireCoordinator: (req: FastifyRequest) => Promise<void>;
  readonly assetsDir?: string;
}

/**
 * The coordinators' dashboard at `/dashboard`: the page, sign-in with a coordinator token, and
 * the audit health check. Everything else the page shows comes from the coordinator API
 * (`/v1/stats/flows`, `/v1/audit`, `/v1/audit/trace/:id`), which accepts its session cookie.
 */
export function registerDashboard(
  app: FastifyInstance,
  d: DashboardDeps,
): WebSessions<Coordinator> {
  const sessions = registerWebApp<Coordinator>(app, {
    prefix: '/dashboard',
    assetsDir: d.assetsDir ?? DASHBOARD_ASSETS_DIR,
    cookieName: `ahub_dashboard_${d.config.instance.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    authenticate: (token) => findTokenHolder(d.config.coordinators, `Bearer ${token}`),
    describe: (c) => ({ name: c.name, instance: d.config.instance }),
  });

  // A full walk of each chain: the page asks on load and when the coordinator presses "verify".
  app.get('/dashboard/api/health', { preHandler: d.requireCoordinator }, async () => ({
    checkedAt: new Date().toISOString(),
    logs: d.databases.map((db) => {
      const v = verifyAuditChain(db, d.trust?.());
      const last = db
        .prepare('SELECT instance, seq, at, kid FROM checkpoints ORDER BY id DESC LIMIT 1')
        .get() as { instance: string; seq: number; at: string; kid: string } | undefined;
      return {
        ok: v.ok,
        records: v.records,
        head: v.head,
        checkpoints: v.checkpoints,
        signaturesChecked: d.trust !== undefined,
        unsignedTail: v.unsignedTail,
        lastCheckpoint: last ?? null,
        problems: v.problems.slice(0, 20),
        // Witness cosignatures arrive with the transparency log (issue #12).
        witnesses: null,
      };
    }),
  }));
  return sessions;
}
