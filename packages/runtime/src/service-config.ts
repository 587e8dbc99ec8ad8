import type { EnvBinding } from './config.js';
import type { SqliteSync } from './sqlite.js';

/** The `nats` section both services share. */
export interface NatsSection {
  readonly servers: readonly string[];
  readonly user?: string;
  readonly pass?: string;
  readonly tls?: { readonly caFile: string; readonly certFile?: string; readonly keyFile?: string };
  /** Reply subjects; defaults to `_INBOX.<principal>`. */
  readonly inboxPrefix?: string;
  /**
   * JetStream API prefix. A gateway defaults to `$JS.AHUB.API`, under which its agency's NATS
   * account imports its feed consumer from the hub's account; `$JS.API` for a server where the
   * agency shares the hub's account (tests without accounts). The router uses `$JS.API`.
   */
  readonly jsApiPrefix?: string;
  readonly publishTimeoutMs: number;
  /** Connection attempts at start-up before the service gives up and exits 1 (0: forever). */
  readonly connectAttempts: number;
  /** Pause between two start-up connection attempts. */
  readonly connectRetryMs: number;
}

/** JSON Schema of the `nats` section. */
export const NATS_SECTION_SCHEMA = {
  type: 'object',
  default: {},
  properties: {
    servers: {
      type: 'array',
      items: { type: 'string', pattern: '^(nats|tls)://' },
      minItems: 1,
      default: ['nats://127.0.0.1:4222'],
    },
    user: { type: 'string', minLength: 1 },
    pass: { type: 'string', minLength: 1 },
    tls: {
      type: 'object',
      properties: {
        caFile: { type: 'string' },
        certFile: { type: 'string' },
        keyFile: { type: 'string' },
      },
      required: ['caFile'],
      // A client certificate without its key (or the reverse) is a mistake, not a choice.
      dependentRequired: { certFile: ['keyFile'], keyFile: ['certFile'] },
      additionalProperties: false,
    },
    inboxPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.-]+$' },
    jsApiPrefix: { type: 'string', pattern: '^[A-Za-z0-9_.$-]+$' },
    publishTimeoutMs: { type: 'integer', minimum: 100, default: 5000 },
    connectAttempts: { type: 'integer', minimum: 0, default: 30 },
    connectRetryMs: { type: 'integer', minimum: 100, default: 2000 },
  },
  additionalProperties: false,
} as const;

/** JSON Schema of the `sqlite` section. */
export const SQLITE_SECTION_SCHEMA = {
  type: 'object',
  default: {},
  properties: { synchronous: { type: 'string', enum: ['FULL', 'NORMAL'], default: 'FULL' } },
  additionalProperties: false,
} as const;
export type SqliteSection = { readonly synchronous: SqliteSync };

/** JSON Schema of the `log` section. */
export const LOG_SECTION_SCHEMA = {
  type: 'object',
  default: {},
  properties: {
    level: {
      type: 'string',
      enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
    },
  },
  additionalProperties: false,
} as const;
export type LogSection = { readonly level: string };

/** Environment variables both services read, with the member each overrides. */
export const COMMON_ENV_BINDINGS: readonly EnvBinding[] = [
  { env: 'AHUB_SIGNING_KEY', path: 'signingKey', type: 'string' },
  { env: 'AHUB_TRUST_DIR', path: 'trustDir', type: 'string' },
  { env: 'AHUB_SCHEMAS_DIR', path: 'schemasDir', type: 'string' },
  { env: 'AHUB_DATA_DIR', path: 'dataDir', type: 'string' },
  { env: 'AHUB_HTTP_HOST', path: 'http.host', type: 'string' },
  { env: 'AHUB_HTTP_PORT', path: 'http.port', type: 'integer' },
  { env: 'AHUB_HTTP_TLS_CERT', path: 'http.tls.certFile', type: 'string' },
  { env: 'AHUB_HTTP_TLS_KEY', path: 'http.tls.keyFile', type: 'string' },
  { env: 'AHUB_NATS_SERVERS', path: 'nats.servers', type: 'list' },
  { env: 'AHUB_NATS_USER', path: 'nats.user', type: 'string' },
  { env: 'AHUB_NATS_PASS', path: 'nats.pass', type: 'string' },
  { env: 'AHUB_NATS_CA', path: 'nats.tls.caFile', type: 'string' },
  { env: 'AHUB_NATS_CERT', path: 'nats.tls.certFile', type: 'string' },
  { env: 'AHUB_NATS_KEY', path: 'nats.tls.keyFile', type: 'string' },
  { env: 'AHUB_NATS_CONNECT_ATTEMPTS', path: 'nats.connectAttempts', type: 'integer' },
  { env: 'AHUB_SQLITE_SYNCHRONOUS', path: 'sqlite.synchronous', type: 'string' },
  { env: 'AHUB_LOG_LEVEL', path: 'log.level', type: 'string' },
];

/** Members both services need to exist before they start (checked with the configuration). */
export const COMMON_EXISTING_MEMBERS: readonly string[] = [
  'http.tls.certFile',
  'http.tls.keyFile',
  'signingKey',
  'trustDir',
  'schemasDir',
  'nats.tls.caFile',
  'nats.tls.certFile',
  'nats.tls.keyFile',
];

/** Members both services resolve against the configuration file's directory. */
export const COMMON_PATH_MEMBERS: readonly string[] = [
  'http.tls.certFile',
  'http.tls.keyFile',
  'signingKey',
  'trustDir',
  'schemasDir',
  'dataDir',
  'nats.tls.caFile',
  'nats.tls.certFile',
  'nats.tls.keyFile',
];

/** `http.tls`: serve HTTPS directly with this certificate (chain) and key, both PEM files. */
export interface HttpTlsSection {
  readonly certFile: string;
  readonly keyFile: string;
}

/** JSON Schema of `http.tls` (both members, or no section: plain HTTP). */
export const HTTP_TLS_SCHEMA = {
  type: 'object',
  properties: {
    certFile: { type: 'string', minLength: 1 },
    keyFile: { type: 'string', minLength: 1 },
  },
  required: ['certFile', 'keyFile'],
  additionalProperties: false,
} as const;

/**
 * JSON Schema properties of an API token's holder, as every service's configuration lists it: a
 * name (for logs and audit) and the SHA-256 of the bearer token, never the token itself.
 */
export const TOKEN_HOLDER_PROPERTIES = {
  name: { type: 'string', minLength: 1, maxLength: 100 },
  tokenSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' },
} as const;

/** The HTTPS members resolved against the configuration file and checked to exist. */
export const HTTP_TLS_PATH_MEMBERS: readonly string[] = ['http.tls.certFile', 'http.tls.keyFile'];
