import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  ORIGIN_TYP,
  ROUTE_TREE_TYP,
  ROUTE_TYP,
  decodeEnvelope,
  type SchemaRegistry,
  type SentItem,
} from '@alert-hub/core';
import { findTokenHolder, registerWebApp, type WebSessions } from '@alert-hub/runtime';
import type { ApiClient, GatewayConfig, Role } from './config.js';
import { GatewayError, errorBody } from './errors.js';
import type { Intake } from './intake.js';
import { alertIdParam, findAlert, parseOriginQuery } from './lookup.js';
import type { GatewayStore } from './store.js';

/** Where `npm run build:web` puts the console (services/gateway/console/ is its source). */
export const CONSOLE_ASSETS_DIR = fileURLToPath(new URL('../dist/console/', import.meta.url));

export interface ConsoleDeps {
  readonly config: GatewayConfig;
  /** The API clients in force (a reload may add or revoke one). */
  readonly clients: () => readonly ApiClient[];
  readonly intake: Intake;
  readonly store: GatewayStore;
  readonly registry: SchemaRegistry;
  /** The API's own role check (bearer token or console session). */
  readonly requireRole: (...roles: Role[]) => (req: FastifyRequest) => Promise<void>;
  readonly assetsDir?: string;
}

/** How many sent alerts the console's "Sent" list shows, newest first. */
const SENT_LIST_MAX = 100;

/**
 * The agency console at `/console`: the page and its assets, sign-in, and what the page needs
 * beyond the `/v1` API (which accepts the console's session cookie too): the alert schemas to
 * build the send form from, validation exactly as intake does it, the signature headers of a
 * received alert for its badges, the list of alerts this agency sent (each one's status is
 * `GET /v1/alerts/:id/status`), and the outcomes this agency reported on a received alert.
 */
export function registerConsole(app: FastifyInstance, d: ConsoleDeps): WebSessions<ApiClient> {
  const { config } = d;
  const sessions = registerWebApp<ApiClient>(app, {
    prefix: '/console',
    assetsDir: d.assetsDir ?? CONSOLE_ASSETS_DIR,
    // One cookie per agency, so consoles of several gateways on one host (the demo) coexist.
    cookieName: `ahub_console_${config.agency.replace(/[^A-Za-z0-9_-]/g, '_')}`,
    authenticate: (token) => findTokenHolder(d.clients(), `Bearer ${token}`),
    // A session lasts as long as its token: revoked by a reload, the session ends.
    // Sessions are counted per token: one token signing in again and again ends only its own.
    holderOf: (c) => c.tokenSha256,
    current: (c) => d.clients().find((x) => x.tokenSha256 === c.tokenSha256),
    describe: (c) => ({ name: c.name, roles: c.roles, agency: config.agency }),
  });
  const schemas = readSchemas(config.schemasDir);

  app.get(
    '/console/api/schemas',
    { onRequest: d.requireRole('submit', 'read-feed') },
    async () => ({ agency: config.agency, alertTypes: d.registry.alertTypes, schemas }),
  );

  app.post('/console/api/validate', { onRequest: d.requireRole('submit') }, async (req) => {
    try {
      d.intake.validate(req.body);
      return { ok: true };
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      return { ok: false, ...errorBody(err.code, err.message, err.details) };
    }
  });

  app.get(
    '/console/api/alerts/:id/signatures',
    { onRequest: d.requireRole('read-feed') },
    async (req) => {
      const id = alertIdParam(req.params);
      const origin = parseOriginQuery(req.query);
      const { received } = findAlert(d.store, config.agency, id, {
        received: true,
        sent: false,
        ...(origin === undefined ? {} : { origin }),
      });
      const envelope = received && d.store.envelopeOf(received.origin, id);
      if (!envelope) throw new GatewayError('ERR_NOT_FOUND', `no received alert ${id}`);
      // Only verified alerts enter the inbox (the feed consumer quarantines the rest), so these
      // headers are those of signatures this gateway verified when the alert arrived.
      const jws = decodeEnvelope(envelope);
      // The router's one signature over its routing decision: its header with this copy's leaf
      // (recipient, agreement, onward, copy id) beside it, as one object.
      const headers = jws.signatures.map((s) => ({
        ...(JSON.parse(Buffer.from(s.protected, 'base64url').toString('utf8')) as Record<
          string,
          unknown
        >),
        ...(s.header
          ? (JSON.parse(Buffer.from(s.header.leaf, 'base64url').toString('utf8')) as Record<
              string,
              unknown
            >)
          : {}),
      }));
      return {
        verified: true,
        origin: headers.find((h) => h['typ'] === ORIGIN_TYP) ?? null,
        hub: headers.find((h) => h['typ'] === ROUTE_TREE_TYP || h['typ'] === ROUTE_TYP) ?? null,
      };
    },
  );
  app.get('/console/api/sent', { onRequest: d.requireRole('submit') }, async () => {
    const now = Date.now();
    return {
      items: d.store.listSent(SENT_LIST_MAX).map((s): SentItem => {
        const st = d.store.statusOf(s.id, now, config.status.pendingAlertMs);
        const count = (state: string) =>
          st?.recipients.filter((r) => r.state === state).length ?? 0;
        return {
          id: s.id,
          type: s.type,
          acceptedAt: s.acceptedAt,
          client: s.client,
          state: st?.state ?? 'accepted',
          ...(s.answers ? { answers: s.answers, result: s.result } : {}),
          recipients: {
            pending: count('pending'),
            delivered: count('delivered'),
            refused: count('refused'),
          },
          outcomes: st?.outcomesTotal ?? 0,
        };
      }),
    };
  });

  // The outcomes this agency reported on an alert it received, each with its own delivery to
  // the alert's origin (an outcome is itself an alert this agency sent).
  app.get(
    '/console/api/alerts/:id/reported',
    { onRequest: d.requireRole('submit') },
    async (req) => {
      const id = alertIdParam(req.params);
      req.alertId = id;
      const now = Date.now();
      return {
        // The origins this agency received an alert with this id from: with several, an outcome
        // must name the one it answers (outcome version 2, docs/protocol.md §9.3).
        origins: d.store.originsOfReceived(id),
        items: d.store.sentAnswering(id).map((s) => ({
          id: s.id,
          acceptedAt: s.acceptedAt,
          result: s.result ?? null,
          status: d.store.statusOf(s.id, now, config.status.pendingAlertMs) ?? null,
        })),
      };
    },
  );
  return sessions;
}

function readSchemas(dir: string): unknown[] {
  return readdirSync(dir)
    .filter((n) => n.endsWith('.schema.json'))
    .sort()
    .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')) as unknown);
}
