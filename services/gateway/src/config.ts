import { join } from 'node:path';
import {
  PRINCIPAL_FORM,
  DEFAULT_PER_COPY_COUNTERSIGNATURE,
  type PerCopyCountersignaturePolicy,
} from '@alert-hub/core';
import {
  COMMON_ENV_BINDINGS,
  COMMON_EXISTING_MEMBERS,
  COMMON_PATH_MEMBERS,
  HTTP_TLS_SCHEMA,
  DEFAULT_SCHEMAS_DIR,
  DEFAULT_STREAM_LIMITS,
  DEFAULT_TRUST_DIR,
  LOG_SECTION_SCHEMA,
  NATS_SECTION_SCHEMA,
  SQLITE_SECTION_SCHEMA,
  TOKEN_HOLDER_PROPERTIES,
  loadConfigDocument,
  type EnvBinding,
  type HttpTlsSection,
  type LogSection,
  type NatsSection,
  type SqliteSection,
} from '@alert-hub/runtime';

/** An API client of the gateway: a customs system that submits, or users that read the feed. */
export interface ApiClient {
  readonly name: string;
  /** Hex SHA-256 of the bearer token; the token itself is never stored (`hubctl tokens create`). */
  readonly tokenSha256: string;
  readonly roles: readonly ('submit' | 'read-feed')[];
}

/** What an API client may do. */
export type Role = ApiClient['roles'][number];

/** The gateway's validated, frozen configuration. */
export interface GatewayConfig {
  readonly agency: string;
  /** Private JWK file, or a directory of them (the newest valid key signs). */
  readonly signingKey: string;
  readonly trustDir: string;
  readonly schemasDir: string;
  readonly dataDir: string;
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly bodyLimitBytes: number;
    readonly batchBodyLimitBytes: number;
    readonly batchMaxItems: number;
    /** Alerts being validated, signed and published at once; beyond, 503 ERR_OVERLOADED. */
    readonly maxInFlight: number;
    /** Live feeds (`GET /v1/feed/stream`) open at once, per API client; beyond, 429. */
    readonly maxFeedStreamsPerClient: number;
    /** Live feeds open at once, all clients together; beyond, 429. */
    readonly maxFeedStreams: number;
    /** Serve HTTPS with this certificate and key (absent: plain HTTP, e.g. behind a proxy). */
    readonly tls?: HttpTlsSection;
    /** Longest a client may take to send a whole request, body included; then 408 and closed. */
    readonly requestTimeoutMs: number;
  };
  readonly nats: NatsSection;
  readonly feed: {
    readonly enabled: boolean;
    readonly maxMessages: number;
    /**
     * How long the hub keeps a forwarded alert (its router's `streams.maxAgeMs`). A gateway that
     * does not reach its feed for longer reports the gap (`ERR_FEED_RETENTION_EXCEEDED`).
     */
    readonly hubRetentionMs: number;
    /**
     * The retired per-copy countersignature (`ahub-route+jws`): `accept` during the transition
     * (copies an earlier router left on the feed, a router not yet upgraded), `refuse` after it
     * (quarantined, `ERR_ROUTE_FORM_RETIRED`). protocol.md §3.4.
     */
    readonly perCopyCountersignature: PerCopyCountersignaturePolicy;
  };
  /**
   * Signed delivery receipts (off only to measure their cost): the inbox commits made within
   * `coalesceMs` of the first share one receipt.
   */
  readonly receipts: { readonly enabled: boolean; readonly coalesceMs: number };
  /**
   * The agency's leaf node: with `servers` (the leaf's client URLs), the gateway stores the alerts
   * and receipts it sends in the leaf's outbox, whose stream acknowledges them, and reaches the
   * hub for everything else by its own connection (`nats.servers`, the hub's); it then checks
   * every `checkIntervalMs` (and on /readyz) for accepted alerts that expired in the outbox
   * before the hub had them. `leaf: true`, the form before the leaf had an account of its own
   * (everything through the leaf), is refused with the way to the new one.
   */
  readonly outbox: {
    readonly servers?: readonly string[];
    readonly leaf?: boolean;
    readonly checkIntervalMs: number;
  };
  /** A recipient still pending after this long is flagged `overdue` in the alert's status. */
  readonly status: { readonly pendingAlertMs: number };
  readonly clients: readonly ApiClient[];
  readonly sqlite: SqliteSection;
  readonly log: LogSection;
  /** Seconds a client should wait before retrying when NATS is unavailable (Retry-After). */
  readonly retryAfterSeconds: number;
  /** This gateway witnesses the hub's audit log (verifies, cosigns, keeps evidence). */
  readonly witness: {
    readonly enabled: boolean;
    /** The principal (role router) whose keys sign the audit checkpoints. */
    readonly hubPrincipal: string;
    /** The audit log whose inclusion proofs `/v1/audit/inclusion` asks for. */
    readonly auditLog: string;
  };
}

export const DEFAULT_HTTP_PORT = 8080;
/**
 * How long the receipt for a commit waits for later commits to share it: one signature (and one
 * verification at the router and at the sender) per window instead of per commit. The sender's
 * status shows a delivery about this much later (plus the router's `noticeCoalesceMs`).
 */
export const DEFAULT_RECEIPT_COALESCE_MS = 200;
/** A single alert is a few kilobytes; 128 KiB leaves room while keeping its envelope under the stream limit. */
export const DEFAULT_BODY_LIMIT_BYTES = 128 * 1024;
export const DEFAULT_BATCH_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

const schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    agency: { type: 'string', pattern: '^[A-Z]{2}-[A-Z0-9]{2,16}$' },
    signingKey: { type: 'string', minLength: 1 },
    trustDir: { type: 'string', default: DEFAULT_TRUST_DIR },
    schemasDir: { type: 'string', default: DEFAULT_SCHEMAS_DIR },
    dataDir: { type: 'string', minLength: 1 },
    http: {
      type: 'object',
      default: {},
      properties: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULT_HTTP_PORT },
        bodyLimitBytes: { type: 'integer', minimum: 1024, default: DEFAULT_BODY_LIMIT_BYTES },
        batchBodyLimitBytes: {
          type: 'integer',
          minimum: 1024,
          default: DEFAULT_BATCH_BODY_LIMIT_BYTES,
        },
        batchMaxItems: { type: 'integer', minimum: 1, maximum: 10000, default: 1000 },
        maxInFlight: { type: 'integer', minimum: 1, maximum: 100000, default: 512 },
        maxFeedStreamsPerClient: { type: 'integer', minimum: 1, maximum: 100000, default: 64 },
        maxFeedStreams: { type: 'integer', minimum: 1, maximum: 100000, default: 1000 },
        tls: HTTP_TLS_SCHEMA,
        requestTimeoutMs: { type: 'integer', minimum: 500, maximum: 600000, default: 30000 },
      },
      additionalProperties: false,
    },
    nats: NATS_SECTION_SCHEMA,
    feed: {
      type: 'object',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        maxMessages: { type: 'integer', minimum: 1, maximum: 4096, default: 256 },
        hubRetentionMs: {
          type: 'integer',
          minimum: 60_000,
          default: DEFAULT_STREAM_LIMITS.maxAgeMs,
        },
        perCopyCountersignature: {
          type: 'string',
          enum: ['accept', 'refuse'],
          default: DEFAULT_PER_COPY_COUNTERSIGNATURE,
        },
      },
      additionalProperties: false,
    },
    receipts: {
      type: 'object',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        coalesceMs: {
          type: 'integer',
          minimum: 0,
          maximum: 60_000,
          default: DEFAULT_RECEIPT_COALESCE_MS,
        },
      },
      additionalProperties: false,
    },
    outbox: {
      type: 'object',
      default: {},
      properties: {
        servers: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
        leaf: { type: 'boolean' },
        checkIntervalMs: { type: 'integer', minimum: 1000, default: 60_000 },
      },
      additionalProperties: false,
    },
    status: {
      type: 'object',
      default: {},
      properties: { pendingAlertMs: { type: 'integer', minimum: 1000, default: 900_000 } },
      additionalProperties: false,
    },
    clients: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        properties: {
          ...TOKEN_HOLDER_PROPERTIES,
          roles: {
            type: 'array',
            minItems: 1,
            uniqueItems: true,
            items: { type: 'string', enum: ['submit', 'read-feed'] },
          },
        },
        required: ['name', 'tokenSha256', 'roles'],
        additionalProperties: false,
      },
    },
    sqlite: SQLITE_SECTION_SCHEMA,
    log: LOG_SECTION_SCHEMA,
    retryAfterSeconds: { type: 'integer', minimum: 1, default: 2 },
    witness: {
      type: 'object',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        hubPrincipal: {
          type: 'string',
          pattern: PRINCIPAL_FORM.source,
          default: 'HUB',
        },
        auditLog: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'hub' },
      },
      additionalProperties: false,
    },
  },
  required: ['agency', 'signingKey', 'dataDir'],
  additionalProperties: false,
} as const;

const bindings: readonly EnvBinding[] = [
  ...COMMON_ENV_BINDINGS,
  { env: 'AHUB_AGENCY', path: 'agency', type: 'string' },
  { env: 'AHUB_FEED_ENABLED', path: 'feed.enabled', type: 'boolean' },
  {
    env: 'AHUB_FEED_PER_COPY_COUNTERSIGNATURE',
    path: 'feed.perCopyCountersignature',
    type: 'string',
  },
  { env: 'AHUB_RECEIPTS_ENABLED', path: 'receipts.enabled', type: 'boolean' },
  { env: 'AHUB_RECEIPTS_COALESCE_MS', path: 'receipts.coalesceMs', type: 'integer' },
  { env: 'AHUB_OUTBOX_SERVERS', path: 'outbox.servers', type: 'list' },
  { env: 'AHUB_OUTBOX_LEAF', path: 'outbox.leaf', type: 'boolean' },
];

/** Member paths that are files or directories, resolved against the config file's directory. */
const paths = [...COMMON_PATH_MEMBERS];

/**
 * Loads the gateway configuration from `file` (YAML or JSON, optional) and the `AHUB_*`
 * environment variables, which override it. Every problem is reported at once with
 * `ERR_CONFIG_INVALID`, before anything connects.
 */
export function loadConfig(
  // eslint-disable-next-line no-restricted-properties -- loadConfig is the one reader of the environment
  env: Readonly<Record<string, string | undefined>> = process.env,
  file: string | undefined = env['AHUB_CONFIG'],
  options: { readonly reload?: boolean } = {},
): GatewayConfig {
  return loadConfigDocument<GatewayConfig>({
    schema,
    env,
    bindings,
    paths,
    existing: COMMON_EXISTING_MEMBERS,
    check: (doc) => {
      const outbox = doc['outbox'] as Record<string, unknown> | undefined;
      return outbox?.['leaf'] === true
        ? [
            {
              pointer: '/outbox/leaf',
              message:
                "outbox.leaf (AHUB_OUTBOX_LEAF) is retired: a leaf node no longer relays the gateway's traffic to the hub. Set outbox.servers (AHUB_OUTBOX_SERVERS) to the leaf's client URLs and nats.servers (AHUB_NATS_SERVERS) to the hub's (docs/operations.md, Upgrading)",
            },
          ]
        : [];
    },
    // Read again on SIGHUP: an empty file is refused, not taken for "no clients".
    ...(options.reload ? { reload: true } : {}),
    ...(file ? { file } : {}),
  });
}

/** Where the gateway keeps its SQLite database. */
export function databaseFile(config: GatewayConfig): string {
  return join(config.dataDir, `gateway-${config.agency}.db`);
}
