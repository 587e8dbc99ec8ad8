import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { PRINCIPAL_FORM, type Issue } from '@alert-hub/core';
import { join } from 'node:path';
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
  loadAgreementsFile,
  loadConfigDocument,
  loadSchemaRegistry,
  loadTrustStore,
  originBudgets,
  MAX_FEED_MESSAGE_BYTES,
  defaultFeedsRetention,
  type EnvBinding,
  type FeedLoad,
  type FeedsRetention,
  type HttpTlsSection,
  type LogSection,
  type NatsSection,
  type SqliteSection,
} from '@alert-hub/runtime';

/** The router's validated, frozen configuration. */
export interface RouterConfig {
  /** This instance's name in the audit log (several routers may share one consumer). */
  readonly instance: string;
  /** The hub's principal in the trust store (role `router`). */
  readonly principal: string;
  /** Private JWK file or directory of the hub's countersigning key. */
  readonly signingKey: string;
  readonly trustDir: string;
  readonly schemasDir: string;
  readonly agreementsFile: string;
  readonly dataDir: string;
  /** Audit database; defaults to `<dataDir>/audit.db`. Routers on one host may share it. */
  readonly auditDb?: string;
  readonly nats: NatsSection;
  /** Create or update the streams and consumers at start. */
  readonly provision: boolean;
  /**
   * The streams' replicas and retention, applied by provisioning (see the README, "Across
   * countries"). A partner offline longer than `maxAgeMs` has lost the alerts that aged out; its
   * gateway detects the gap from the feed's stream sequence and reports it.
   */
  readonly streams: {
    readonly replicas: number;
    readonly maxAgeMs: number;
    /** Each agency's inbound stream (`AHUB_IN_<agency>`), unless it has an override. */
    readonly inboundMaxBytes: number;
    /** The inbound stream size of these agencies, instead of `inboundMaxBytes`. */
    readonly inboundMaxBytesFor: Readonly<Record<string, number>>;
    readonly feedsMaxBytes: number;
    /** The dead-letter stream; each origin keeps an equal share of it (operations guide, "Dead letters"). */
    readonly deadLetterMaxBytes: number;
    /** Agencies that run a leaf node: each one's inbound stream sources its outbox stream. */
    readonly leaves: readonly string[];
    /** `interest`: a copy leaves the feed stream once its recipient's gateway stored it. */
    readonly feedsRetention: FeedsRetention;
    /**
     * Copies one recipient may have waiting in the feed stream; beyond them the router holds its
     * new copies (`pending`, in its database) until the recipient's gateway has taken some.
     */
    readonly recipientMaxCopies: number;
    /**
     * Bytes of copies and notices one recipient may have waiting in the feed stream; beyond them
     * its copies are held and its notices wait. Never more than the stream's even share per
     * agency (the default): see `recipientQuotaBytes` in the runtime.
     */
    readonly recipientMaxBytes?: number;
    /**
     * With limits retention (which keeps read copies for `maxAgeMs`): the bytes these agencies
     * may have the router store in the feed stream within its max age (copies of their alerts,
     * notices to them), instead of an even share. The agencies without an override share what the
     * overrides leave of 0.95 x `feedsMaxBytes` evenly (`originBudgets` in the runtime); beyond
     * its budget an agency's copies are held and its inbound stream is not read.
     */
    readonly originMaxBytesFor: Readonly<Record<string, number>>;
    /** The load the feeds are sized for, checked at start (see the operations guide). */
    readonly load: FeedLoad;
    /** How often held copies are retried when nothing else prompts it. */
    readonly heldRetryMs: number;
    /**
     * Move a feed stream created with another retention to `feedsRetention` at start, once every
     * partner has read it (the stream is deleted and created anew; unread copies never are).
     */
    readonly migrateFeeds: boolean;
  };
  readonly consumer: {
    /** Inbound messages the router holds at most (fetched and not yet ended). */
    readonly maxMessages: number;
    readonly maxAckPending: number;
    readonly ackWaitMs: number;
    /**
     * Memory for countersigned copies in flight, in bytes: the router's bound by copies, whatever
     * the fan-out. No inbound message is fetched while copies wait for it.
     */
    readonly copyBudgetBytes: number;
  };
  /**
   * Freshness of `issuedAt`: at most `maxAgeMs` before JetStream stored the alert (a retired but
   * unrevoked key cannot sign back-dated alerts beyond it), at most `maxFutureSkewMs` after the
   * router's clock.
   */
  readonly freshness: { readonly maxAgeMs: number; readonly maxFutureSkewMs: number };
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly enabled: boolean;
    /** A request not received whole by then (ms after its headers) is cut off. */
    readonly requestTimeoutMs: number;
    /** Serve HTTPS with this certificate and key (absent: plain HTTP). */
    readonly tls?: HttpTlsSection;
  };
  /** Coordinators who may read the audit API: `{name, tokenSha256}`. */
  readonly coordinators: readonly { readonly name: string; readonly tokenSha256: string }[];
  /**
   * The hub's operators: `{name, tokenSha256}`. Besides what coordinators see, they may read a
   * dead letter's content and requeue it (`/v1/deadletters`).
   */
  readonly operators: readonly { readonly name: string; readonly tokenSha256: string }[];
  /**
   * Who may read `/metrics` besides coordinators and operators (a Prometheus server):
   * `{name, tokenSha256}`. The router's series name agencies, so they are not served to anyone.
   */
  readonly metricsReaders: readonly { readonly name: string; readonly tokenSha256: string }[];
  /** Further audit databases (other hosts' routers, copied here) merged into the API's one view. */
  readonly auditPeers: readonly string[];
  readonly sqlite: SqliteSection;
  readonly log: LogSection;
  /** Sign an audit checkpoint at least this often (and at shutdown). */
  readonly checkpointIntervalMs: number;
  /** A forwarded copy without a verified receipt after this long counts as undelivered. */
  readonly undeliveredAfterMs: number;
  /**
   * The notices to an agency written within this long of the first go out as one signed notice
   * (one signature, one verification at its gateway) instead of one per commit.
   */
  readonly noticeCoalesceMs: number;
  /**
   * A `routed` notice lists refusals with the same code and reason as one item naming their
   * recipients (docs/protocol.md §9.2). Gateways before that form quarantine such a notice: set
   * false while any agency's gateway is older (docs/operations.md, upgrading).
   */
  readonly noticeGroupRefusals: boolean;
  /**
   * The audit log's name: checkpoints carry the origin `alert-hub/audit/<auditLog>` and go to
   * `ahub.audit.checkpoint.<auditLog>`. Routers sharing one database share one log; routers with
   * databases of their own each need a name of their own.
   */
  readonly auditLog: string;
  /**
   * Only to measure what the transparency log costs (`npm run bench -- --transparency compare`):
   * false writes the same entries without leaf hashes, checks or checkpoints. The log then
   * proves nothing; never set it in production.
   */
  readonly auditTransparency: boolean;
  /**
   * Inclusion-proof requests (`ahub.audit.proof.<log>.<agency>`) the router answers per agency
   * per second on average, twice that at once; beyond, `ERR_RATE_LIMITED` without reading them.
   */
  readonly auditProofRequestsPerSecond: number;
  /**
   * How long entries may wait for a published audit checkpoint: past it (NATS refusing or losing
   * the checkpoints) the router takes no new inbound message until one is published.
   */
  readonly auditUnpublishedMaxMs: number;
  /**
   * An idle log's latest checkpoint is published again this often, for the witnesses to cosign it
   * anew: `hubctl audit verify` refuses an anchor older than `--max-anchor-age` (15 minutes by
   * default) whatever follows it, and an idle hub's anchor must stay current.
   */
  readonly auditAnchorRefreshMs: number;
}

/** Inclusion-proof requests an agency may send per second by default. */
export const DEFAULT_PROOF_REQUESTS_PER_SECOND = 20;
/** Copies a recipient may have waiting in the feed stream (80 MiB at 4 KiB a copy). */
export const DEFAULT_RECIPIENT_MAX_COPIES = 20_000;
/** Default memory for copies in flight: about 2,500 copies of a 1.5 KB alert. */
export const DEFAULT_COPY_BUDGET_BYTES = 16 * 1024 * 1024;

/** An agency id, as `streams.leaves` and `streams.inboundMaxBytesFor` name one. */
const AGENCY_ID_PATTERN = '^[A-Z][A-Z0-9-]{1,31}$';

/** Coordinators, operators and metrics readers alike: a name and the SHA-256 of its bearer token. */
const NAMED_TOKENS_SCHEMA = {
  type: 'array',
  default: [],
  items: {
    type: 'object',
    properties: TOKEN_HOLDER_PROPERTIES,
    required: ['name', 'tokenSha256'],
    additionalProperties: false,
  },
} as const;

const schema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  type: 'object',
  properties: {
    instance: {
      type: 'string',
      pattern: '^[A-Za-z0-9_.-]{1,64}$',
      default: `${hostname()
        .replace(/[^A-Za-z0-9_.-]/g, '-')
        .slice(0, 40)}-${process.pid}`,
    },
    principal: {
      type: 'string',
      pattern: PRINCIPAL_FORM.source,
      default: 'HUB',
    },
    signingKey: { type: 'string', minLength: 1 },
    trustDir: { type: 'string', default: DEFAULT_TRUST_DIR },
    schemasDir: { type: 'string', default: DEFAULT_SCHEMAS_DIR },
    agreementsFile: { type: 'string', minLength: 1 },
    dataDir: { type: 'string', minLength: 1 },
    auditDb: { type: 'string', minLength: 1 },
    nats: NATS_SECTION_SCHEMA,
    provision: { type: 'boolean', default: true },
    streams: {
      type: 'object',
      default: {},
      properties: {
        replicas: {
          type: 'integer',
          minimum: 1,
          maximum: 5,
          default: DEFAULT_STREAM_LIMITS.replicas,
        },
        maxAgeMs: { type: 'integer', minimum: 60_000, default: DEFAULT_STREAM_LIMITS.maxAgeMs },
        inboundMaxBytes: {
          type: 'integer',
          minimum: 1_048_576,
          default: DEFAULT_STREAM_LIMITS.inboundMaxBytes,
        },
        inboundMaxBytesFor: {
          type: 'object',
          default: {},
          propertyNames: { pattern: AGENCY_ID_PATTERN },
          additionalProperties: { type: 'integer', minimum: 1_048_576 },
        },
        feedsMaxBytes: {
          type: 'integer',
          minimum: 1_048_576,
          default: DEFAULT_STREAM_LIMITS.feedsMaxBytes,
        },
        deadLetterMaxBytes: {
          type: 'integer',
          minimum: 1_048_576,
          default: DEFAULT_STREAM_LIMITS.deadLetterMaxBytes,
        },
        leaves: {
          type: 'array',
          items: { type: 'string', pattern: AGENCY_ID_PATTERN },
          uniqueItems: true,
          default: [],
        },
        // No default here: it follows `replicas` (interest on one, limits on more), see loadConfig.
        feedsRetention: { type: 'string', enum: ['interest', 'limits'] },
        recipientMaxCopies: { type: 'integer', minimum: 1, default: DEFAULT_RECIPIENT_MAX_COPIES },
        recipientMaxBytes: { type: 'integer', minimum: 1 },
        originMaxBytesFor: {
          type: 'object',
          default: {},
          propertyNames: { pattern: AGENCY_ID_PATTERN },
          additionalProperties: { type: 'integer', minimum: MAX_FEED_MESSAGE_BYTES },
        },
        load: {
          type: 'object',
          default: {},
          properties: {
            alertsPerSecond: { type: 'number', exclusiveMinimum: 0, default: 10 },
            fanOut: { type: 'number', minimum: 1, default: 2 },
            copyBytes: { type: 'integer', minimum: 256, default: 4096 },
          },
          additionalProperties: false,
        },
        heldRetryMs: { type: 'integer', minimum: 100, default: 5000 },
        migrateFeeds: { type: 'boolean', default: false },
      },
      additionalProperties: false,
    },
    freshness: {
      type: 'object',
      default: {},
      properties: {
        maxAgeMs: { type: 'integer', minimum: 60000, default: 86400000 },
        maxFutureSkewMs: { type: 'integer', minimum: 0, maximum: 86400000, default: 300000 },
      },
      additionalProperties: false,
    },
    consumer: {
      type: 'object',
      default: {},
      properties: {
        maxMessages: { type: 'integer', minimum: 1, maximum: 4096, default: 256 },
        maxAckPending: { type: 'integer', minimum: 1, maximum: 100000, default: 1024 },
        ackWaitMs: { type: 'integer', minimum: 1000, default: 30000 },
        copyBudgetBytes: {
          type: 'integer',
          minimum: 1_048_576,
          maximum: 1_073_741_824,
          default: DEFAULT_COPY_BUDGET_BYTES,
        },
      },
      additionalProperties: false,
    },
    http: {
      type: 'object',
      default: {},
      properties: {
        enabled: { type: 'boolean', default: true },
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'integer', minimum: 0, maximum: 65535, default: 8090 },
        requestTimeoutMs: { type: 'integer', minimum: 500, maximum: 600000, default: 30000 },
        tls: HTTP_TLS_SCHEMA,
      },
      additionalProperties: false,
    },
    coordinators: NAMED_TOKENS_SCHEMA,
    operators: NAMED_TOKENS_SCHEMA,
    metricsReaders: NAMED_TOKENS_SCHEMA,
    auditPeers: { type: 'array', items: { type: 'string', minLength: 1 }, default: [] },
    sqlite: SQLITE_SECTION_SCHEMA,
    log: LOG_SECTION_SCHEMA,
    // At most 5 minutes: `hubctl audit verify` refuses, by default, an anchor cosigned more than
    // 15 minutes before entries that follow it.
    checkpointIntervalMs: { type: 'integer', minimum: 100, maximum: 300000, default: 5000 },
    undeliveredAfterMs: { type: 'integer', minimum: 1000, default: 900_000 },
    noticeCoalesceMs: { type: 'integer', minimum: 0, maximum: 60_000, default: 100 },
    noticeGroupRefusals: { type: 'boolean', default: true },
    auditLog: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', default: 'hub' },
    auditTransparency: { type: 'boolean', default: true },
    auditUnpublishedMaxMs: { type: 'integer', minimum: 1000, default: 60_000 },
    // At most 5 minutes: a refresh is made at a checkpoint tick (checkpointIntervalMs, at most 5
    // minutes), so an anchor is at most 10 minutes old plus the witnesses' time, under the 15
    // minutes `hubctl audit verify` allows by default.
    auditAnchorRefreshMs: { type: 'integer', minimum: 1000, maximum: 300_000, default: 300_000 },
    auditProofRequestsPerSecond: {
      type: 'integer',
      minimum: 1,
      maximum: 100_000,
      default: DEFAULT_PROOF_REQUESTS_PER_SECOND,
    },
  },
  required: ['signingKey', 'agreementsFile', 'dataDir'],
  additionalProperties: false,
} as const;

const bindings: readonly EnvBinding[] = [
  ...COMMON_ENV_BINDINGS,
  { env: 'AHUB_ROUTER_INSTANCE', path: 'instance', type: 'string' },
  { env: 'AHUB_ROUTER_PRINCIPAL', path: 'principal', type: 'string' },
  { env: 'AHUB_AGREEMENTS_FILE', path: 'agreementsFile', type: 'string' },
  { env: 'AHUB_AUDIT_DB', path: 'auditDb', type: 'string' },
  { env: 'AHUB_AUDIT_LOG', path: 'auditLog', type: 'string' },
  { env: 'AHUB_NOTICE_COALESCE_MS', path: 'noticeCoalesceMs', type: 'integer' },
  { env: 'AHUB_NOTICE_GROUP_REFUSALS', path: 'noticeGroupRefusals', type: 'boolean' },
  { env: 'AHUB_PROVISION', path: 'provision', type: 'boolean' },
  { env: 'AHUB_STREAM_REPLICAS', path: 'streams.replicas', type: 'integer' },
  { env: 'AHUB_STREAM_MAX_AGE_MS', path: 'streams.maxAgeMs', type: 'integer' },
  { env: 'AHUB_FEEDS_RETENTION', path: 'streams.feedsRetention', type: 'string' },
  { env: 'AHUB_HTTP_ENABLED', path: 'http.enabled', type: 'boolean' },
];

const paths = [...COMMON_PATH_MEMBERS, 'agreementsFile', 'auditDb'];

/**
 * Loads the router configuration from `file` (YAML or JSON) and `AHUB_*` variables, which
 * override it; every problem is reported at once with `ERR_CONFIG_INVALID`. `reload`: the file
 * read again on SIGHUP (an empty file refused, the agreements file not checked).
 */
export function loadConfig(
  // eslint-disable-next-line no-restricted-properties -- loadConfig is the one reader of the environment
  env: Readonly<Record<string, string | undefined>> = process.env,
  file: string | undefined = env['AHUB_CONFIG'],
  options: { readonly reload?: boolean } = {},
): RouterConfig {
  const config = loadConfigDocument<RouterConfig & { auditPeers: string[] }>({
    schema,
    env,
    bindings,
    paths,
    // At start the agreements file is part of the configuration: its problems come with the
    // others. On a reload (SIGHUP) it is not: the router reloads it on its own and keeps the
    // agreements in force when it is refused, and an agreements file being edited must not hold
    // back the coordinators' and operators' tokens (a leaked one revoked).
    existing: options.reload
      ? COMMON_EXISTING_MEMBERS
      : [...COMMON_EXISTING_MEMBERS, 'agreementsFile'],
    check: (doc) => [...(options.reload ? [] : checkAgreements(doc)), ...checkStreams(doc)],
    ...(options.reload ? { reload: true } : {}),
    ...(file ? { file } : {}),
  });
  const streams = config.streams as Omit<RouterConfig['streams'], 'feedsRetention'> & {
    feedsRetention?: FeedsRetention;
  };
  return {
    ...config,
    streams: {
      ...streams,
      feedsRetention: streams.feedsRetention ?? defaultFeedsRetention(streams.replicas),
    },
  };
}

/**
 * Retentions under which one agency could remove another's copies: a work queue (nats-server 2.9
 * removes its message on any consumer's ack, whatever the consumer's filter) and interest on
 * several replicas (nats-server 2.9.10 turns an ack of a sequence not stored yet into a delete
 * proposal that every replica fails to apply, and resets the stream).
 */
function checkRetention(s: Record<string, unknown> | undefined): Issue[] {
  if (s?.['feedsRetention'] === 'workqueue')
    return [
      {
        pointer: '/streams/feedsRetention',
        message:
          'workqueue is no longer offered: on nats-server 2.9 any consumer’s ack removes a work-queue message whatever its filter, so an agency could remove other agencies’ copies through its own ack subject; use interest (a copy leaves once its recipient stored it) or limits',
      },
    ];
  if (
    s?.['feedsRetention'] === 'interest' &&
    typeof s['replicas'] === 'number' &&
    s['replicas'] > 1
  )
    return [
      {
        pointer: '/streams/feedsRetention',
        message:
          'interest retention needs replicas 1 on nats-server 2.9: with more, an agency’s ack of a sequence not stored yet makes every replica reset the feed stream; use limits',
      },
    ];
  return [];
}

/**
 * The feed stream's settings that make isolation impossible. Sizing is not one of them: each
 * recipient's byte quota is at most the stream's share, whatever is configured (see
 * `recipientQuotaBytes`), and what the load needs is logged at start.
 */
function checkStreams(doc: Record<string, unknown>): readonly Issue[] {
  const streams = doc['streams'] as Record<string, unknown> | undefined;
  return [...checkRetention(streams), ...checkOriginBudgets(doc, streams)];
}

/**
 * Origin budget overrides that leave an agency of the trust store less than one message of the
 * largest size (`originBudgets`), when the trust store can be read here (the router checks again
 * at start against the one it loads).
 */
function checkOriginBudgets(
  doc: Record<string, unknown>,
  streams: Record<string, unknown> | undefined,
): readonly Issue[] {
  const overrides = streams?.['originMaxBytesFor'] as Record<string, number> | undefined;
  if (!overrides || Object.keys(overrides).length === 0) return [];
  const feedsMaxBytes =
    typeof streams?.['feedsMaxBytes'] === 'number'
      ? streams['feedsMaxBytes']
      : DEFAULT_STREAM_LIMITS.feedsMaxBytes;
  const trustDir = doc['trustDir'];
  const schemasDir = doc['schemasDir'];
  let agencies: readonly string[] = Object.keys(overrides);
  if (
    typeof trustDir === 'string' &&
    typeof schemasDir === 'string' &&
    existsSync(trustDir) &&
    existsSync(schemasDir)
  ) {
    try {
      agencies = loadTrustStore(trustDir, loadSchemaRegistry(schemasDir)).agencies;
    } catch {
      // reported where the trust store is loaded
    }
  }
  return originBudgets(feedsMaxBytes, agencies, overrides).issues;
}

/** The agreements file's problems, reported with the configuration's. */
function checkAgreements(doc: Record<string, unknown>): readonly Issue[] {
  const file = doc['agreementsFile'];
  const schemasDir = doc['schemasDir'];
  if (typeof file !== 'string' || typeof schemasDir !== 'string') return [];
  if (!existsSync(file) || !existsSync(schemasDir)) return [];
  try {
    loadAgreementsFile(file, loadSchemaRegistry(schemasDir));
    return [];
  } catch (err) {
    const issues = (err as { issues?: readonly Issue[] }).issues;
    if (!issues) return [{ pointer: '/agreementsFile', message: (err as Error).message }];
    return issues.map((i) => ({
      pointer: '/agreementsFile',
      message: `${i.pointer ? `${i.pointer}: ` : ''}${i.message}`,
    }));
  }
}

/** The audit database of a configuration. */
export function auditDbFile(config: RouterConfig): string {
  return config.auditDb ?? join(config.dataDir, 'audit.db');
}
