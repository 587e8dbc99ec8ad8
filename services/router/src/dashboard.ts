import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AgreementSet, TrustStore } from '@alert-hub/core';
import {
  findTokenHolder,
  registerWebApp,
  type SqliteDatabase,
  type WebSessions,
} from '@alert-hub/runtime';
import { AuditHealthCheck, hasTable, trustStoreWitnesses } from '@alert-hub/audit';
import type { RouterConfig } from './config.js';

/** Where `npm run build:web` puts the dashboard (services/router/dashboard/ is its source). */
export const DASHBOARD_ASSETS_DIR = fileURLToPath(new URL('../dist/dashboard/', import.meta.url));

type Coordinator = RouterConfig['coordinators'][number];

export interface DashboardDeps {
  readonly config: RouterConfig;
  /** The coordinators' tokens in force (a reload may add or revoke one). */
  readonly tokens: () => { readonly coordinators: readonly Coordinator[] };
  readonly databases: readonly SqliteDatabase[];
  /** The router's trust store, to check checkpoint signatures; without it they are counted only. */
  readonly trust?: () => TrustStore;
  readonly requireCoordinator: (req: FastifyRequest) => Promise<void>;
  /** The latest checkpoint with the cosignatures gathered: the anchor the check uses. */
  readonly latestCheckpoint: () => string | undefined;
  /** The agreements in force, for the operations the report panel offers. */
  readonly agreements?: () => AgreementSet;
  readonly assetsDir?: string;
}

/**
 * The coordinators' dashboard at `/dashboard`: the page, sign-in with a coordinator token, the
 * audit health check and the list of operations. Everything else the page shows comes from the
 * coordinator API (`/v1/stats/flows`, `/v1/audit`, `/v1/audit/trace/:id`,
 * `/v1/operations/:id/report`), which accepts its session cookie.
 */
export function registerDashboard(
  app: FastifyInstance,
  d: DashboardDeps,
): WebSessions<Coordinator> {
  const sessions = registerWebApp<Coordinator>(app, {
    prefix: '/dashboard',
    assetsDir: d.assetsDir ?? DASHBOARD_ASSETS_DIR,
    cookieName: `ahub_dashboard_${d.config.instance.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    authenticate: (token) => findTokenHolder(d.tokens().coordinators, `Bearer ${token}`),
    // A session lasts as long as its token: revoked by a reload, the session ends.
    // Sessions are counted per token: one token signing in again and again ends only its own.
    holderOf: (c) => c.tokenSha256,
    current: (c) => d.tokens().coordinators.find((x) => x.tokenSha256 === c.tokenSha256),
    describe: (c) => ({ name: c.name, instance: d.config.instance }),
  });

  // The log against its latest checkpoint and the cosignatures the witnesses sent: the page asks
  // on load and when the coordinator presses "verify". A page load must not cost the routing
  // loop the whole log: after a sound run, the next reads only what was appended since
  // (AuditHealthCheck); a full walk (the first, after another connection wrote, or while
  // something is wrong) runs in a worker thread, at most once a minute per database, the last
  // answer standing in between (`check.mode: cached`). A peer's database is held to the latest
  // checkpoint its own router stored in it (signed by a router key; its cosignatures are not
  // gathered here, so a rollback of a peer to an earlier checkpoint of its own is not seen:
  // verify it with hubctl audit verify and an anchor its witnesses cosigned); peers are walked
  // in full, as rarely.
  const checks = d.databases.map((db) => new AuditHealthCheck(db));
  const storedAnchor = (db: SqliteDatabase): string => {
    if (!hasTable(db, 'checkpoints')) return ''; // a log from before checkpoints
    const row = db.prepare('SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1').get() as
      { note: string } | undefined;
    return row?.note ?? '';
  };
  app.get('/dashboard/api/health', { onRequest: d.requireCoordinator }, async () => ({
    checkedAt: new Date().toISOString(),
    logs: await Promise.all(
      checks.map(async (check, i) => {
        // This router's latest checkpoint with the cosignatures gathered; before it published
        // one since its start, the last one it stored.
        const anchor =
          (i === 0 ? d.latestCheckpoint() : undefined) ?? storedAnchor(d.databases[i]!);
        const trust = d.trust?.();
        const hubKeys = trust
          ? trust.keysOf(d.config.principal, 'router').filter((k) => k.alg === 'EdDSA')
          : [];
        const witnesses = trust ? trustStoreWitnesses(trust) : [];
        const r = await check.verifyWithKeys(
          { anchor, witnesses, minWitnesses: 0 },
          hubKeys.map((k) => Buffer.from(k.jwk.x, 'base64url')),
        );
        const v = r?.verification;
        const kid = r ? (hubKeys[r.key]?.kid ?? '') : '';
        const a = v?.anchor;
        return {
          ok: v?.ok ?? false,
          records: v?.entries ?? 0,
          head: { seq: a?.size ?? 0, hash: a?.root ?? '' },
          checkpoints: { verified: a ? 1 : 0, lastSignedSeq: a?.size ?? 0 },
          signaturesChecked: d.trust !== undefined,
          unsignedTail: v?.unwitnessed ?? 0,
          lastCheckpoint: a
            ? { instance: d.config.instance, seq: a.size, at: new Date().toISOString(), kid }
            : null,
          problems: (v?.problems ?? [{ code: 'ERR_ANCHOR_INVALID', message: 'no trust store' }])
            .slice(0, 20)
            .map((p) => `[${p.code}] ${p.message}`),
          witnesses: a?.witnesses ?? [],
          // What this answer read: `full` (the whole log), `incremental` (entries from..to only),
          // `cached` (nothing: the last result, of checkedAt).
          check: r
            ? {
                mode: r.run.mode,
                from: r.run.from,
                to: r.run.to,
                checkedAt: r.run.checkedAt.toISOString(),
              }
            : null,
        };
      }),
    ),
  }));
  // The operations of the agreements file, newest period first: what the report panel offers.
  app.get('/dashboard/api/operations', { onRequest: d.requireCoordinator }, async () => ({
    operations: [...(d.agreements?.().operations ?? [])]
      .sort((a, b) => b.period.from.localeCompare(a.period.from) || a.id.localeCompare(b.id))
      .map((o) => ({
        id: o.id,
        version: o.version,
        name: o.name,
        period: o.period,
        members: o.members,
      })),
  }));
  return sessions;
}
