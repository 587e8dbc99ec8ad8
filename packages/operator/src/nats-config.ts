import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  agencyGrants,
  agencyPermissions,
  routerPermissions,
  type AgencyGrants,
  type SubjectPermissions,
} from '@alert-hub/core';
import { leafAccountParts } from './leaf.js';
import {
  renderJetStreamBlock,
  renderTlsBlock,
  renderUser,
  type JetStreamStore,
  type TlsFiles,
} from './conf-blocks.js';

/** The identity a client certificate carries (SAN e-mail), which `verify_and_map` maps to a user. */
export function natsIdentity(principal: string): string {
  return `${principal.toLowerCase()}@principals.alert-hub.example`;
}

/** The operators' identity, mapped to the system account. */
export const OPS_IDENTITY = 'ops@principals.alert-hub.example';

/** The NATS account that holds the hub's streams, the router and nothing else. */
export const HUB_ACCOUNT = 'AHUB';
/** The NATS system account (operators only). */
export const SYSTEM_ACCOUNT = 'SYS';

/**
 * What one agency's NATS account may use. nats-server enforces each: a connection over
 * `maxConnections` is refused, a subscription over `maxSubscriptions` (counted per connection on
 * nats-server 2.9) is refused, a message over `maxPayload` (headers included) is refused.
 * The agency's account has no JetStream of its own, so it can create no stream and no consumer:
 * its one feed consumer lives in the hub's account, created by the router.
 */
export interface AgencyLimits {
  readonly maxConnections: number;
  readonly maxSubscriptions: number;
  readonly maxPayload: number;
}

/**
 * Sized for one gateway: it holds one connection (a few more allow a rolling restart and an
 * operator's `hubctl`), about 5 subscriptions (its reply inbox, the feed pull), and publishes
 * envelopes of at most 256 KiB plus headers.
 */
export const DEFAULT_AGENCY_LIMITS: AgencyLimits = {
  maxConnections: 8,
  maxSubscriptions: 64,
  maxPayload: DEFAULT_MAX_ENVELOPE_BYTES + 4096,
};

export interface NatsSecurityOptions {
  readonly agencies: readonly string[];
  /** Router principals (usually just `HUB`). */
  readonly routers: readonly string[];
  readonly tls: TlsFiles;
  /** Identities other than the default convention, e.g. from an agency's own PKI. */
  readonly identities?: Readonly<Record<string, string>>;
  /**
   * The audit logs the hub's routers write (each router's `auditLog`; default `hub`): an agency
   * may publish its cosignatures of these logs only.
   */
  readonly auditLogs?: readonly string[];
  /** Limits of every agency's account (defaults: {@link DEFAULT_AGENCY_LIMITS}). */
  readonly agencyLimits?: Partial<AgencyLimits>;
  /** Limits of one agency's account, over `agencyLimits`. */
  readonly limitsByAgency?: Readonly<Record<string, Partial<AgencyLimits>>>;
  /**
   * Tests only: replaces what one principal may reach (its user's permissions, and for an
   * agency the inbound subjects its account imports), to show the router's second line of
   * defence when the NATS configuration is wrong.
   */
  readonly permissionOverrides?: Readonly<Record<string, SubjectPermissions>>;
  readonly grantOverrides?: Readonly<Record<string, AgencyGrants>>;
  /**
   * Agencies that run a leaf node: each leaf has an account of its own, which exports the leaf's
   * JetStream API to the hub's account and imports nothing; the hub sources the leaf's outbox
   * (see `leafAccountParts`); the leaf's certificate is admitted by the leaf listener alone
   * (`renderLeafListenerBlock`).
   */
  readonly leaves?: readonly string[];
}

const q = (s: string) => JSON.stringify(s);

/** The limits that apply to `agency`, checked: every one a positive integer. */
export function limitsOf(o: NatsSecurityOptions, agency: string): AgencyLimits {
  const l = { ...DEFAULT_AGENCY_LIMITS, ...o.agencyLimits, ...o.limitsByAgency?.[agency] };
  for (const [k, v] of Object.entries(l))
    if (!Number.isSafeInteger(v) || v < 1)
      throw new Error(`limit ${k} of ${agency} must be a positive integer, not ${String(v)}`);
  return l;
}

/**
 * The security part of the nats-server configuration (nats-server 2.9 and later):
 *
 * - mutual TLS with certificates mapped to users (`verify_and_map`), nothing anonymous;
 * - the hub's account (`AHUB`): JetStream, its streams, the router users;
 * - one account per agency, without JetStream, with one least-privilege user and limits. The
 *   hub exports to that account alone, and it imports, as services: its own inbound subjects,
 *   its own feed consumer's INFO and MSG.NEXT (`response_type: stream`: a pull request gets
 *   many replies) and that consumer's acks. Every reply subject an agency names is remapped by
 *   the import, so the agency can make JetStream send nothing to any subject of the hub's
 *   account (the publish-ack injection of a shared account);
 * - a system account for operators.
 */
export function renderNatsSecurityConfig(o: NatsSecurityOptions): string {
  const id = (p: string) => o.identities?.[p] ?? natsIdentity(p);
  for (const a of o.agencies)
    if (a === HUB_ACCOUNT || a === SYSTEM_ACCOUNT)
      throw new Error(`agency id ${a} is reserved for the hub's NATS accounts`);
  const routers = o.routers.map((r) =>
    renderUser(
      id(r),
      `router ${r}: forwards, dead-letters, manages JetStream`,
      o.permissionOverrides?.[r] ?? routerPermissions(r),
    ),
  );
  const exports: string[] = [];
  const agencies: string[] = [];
  const hubImports: string[] = [];
  const leafAccounts: string[] = [];
  for (const a of o.leaves ?? [])
    if (!o.agencies.includes(a)) throw new Error(`leaf node for ${a}, which is not an agency`);
  for (const a of o.agencies) {
    const leaf = o.leaves?.includes(a) ? leafAccountParts(a) : undefined;
    if (leaf) {
      hubImports.push(...leaf.hubImports);
      leafAccounts.push(...leaf.account);
    }
    const g = o.grantOverrides?.[a] ?? agencyGrants(a, undefined, o.auditLogs);
    const l = limitsOf(o, a);
    for (const { hub, stream } of g.grants)
      exports.push(
        `      { service: ${q(hub)}, accounts: [${q(a)}]${stream ? ', response_type: stream' : ''} }`,
      );
    for (const subject of g.streams)
      exports.push(`      { stream: ${q(subject)}, accounts: [${q(a)}] }`);
    agencies.push(
      [
        `  ${q(a)} {`,
        `    # ${a}: publishes its own alerts, reads only its own feed; no JetStream of its own`,
        '    users: [',
        renderUser(id(a), `${a}'s gateway`, o.permissionOverrides?.[a] ?? agencyPermissions(a, g)),
        '    ]',
        '    imports: [',
        ...g.streams.map(
          (subject) => `      { stream: { account: ${q(HUB_ACCOUNT)}, subject: ${q(subject)} } }`,
        ),
        ...g.grants.map(
          ({ hub, local }) =>
            `      { service: { account: ${q(HUB_ACCOUNT)}, subject: ${q(hub)} }${hub === local ? '' : `, to: ${q(local)}`} }`,
        ),
        '    ]',
        `    limits: { max_connections: ${l.maxConnections}, max_subscriptions: ${l.maxSubscriptions}, max_payload: ${l.maxPayload} }`,
        '  }',
      ].join('\n'),
    );
  }
  return [
    '# --- alert-hub security: generated by `hubctl nats-config`; regenerate, do not edit ---',
    ...renderTlsBlock(o.tls, { indent: 0, verifyAndMap: true, timeoutS: 2 }),
    'accounts {',
    `  ${HUB_ACCOUNT} {`,
    '    jetstream: enabled',
    '    users: [',
    routers.join('\n'),
    '    ]',
    '    exports: [',
    exports.join('\n'),
    '    ]',
    ...(hubImports.length ? ['    imports: [', ...hubImports, '    ]'] : []),
    '  }',
    ...agencies,
    ...leafAccounts,
    `  ${SYSTEM_ACCOUNT} {`,
    `    users: [ { user: ${q(OPS_IDENTITY)} } ]`,
    '  }',
    '}',
    `system_account: ${SYSTEM_ACCOUNT}`,
    '',
  ].join('\n');
}

/**
 * A complete nats-server configuration for a hub: listener, JetStream, security, and the
 * monitoring endpoint only when asked for (it answers without authentication and lists every
 * connection and subscription: keep it on loopback).
 */
export function renderNatsServerConfig(
  o: NatsSecurityOptions &
    JetStreamStore & {
      listen: string;
      monitor?: string;
      serverName?: string;
    },
): string {
  return [
    `server_name: ${q(o.serverName ?? 'alert-hub')}`,
    `listen: ${q(o.listen)}`,
    ...(o.monitor ? [`http: ${q(o.monitor)}`] : []),
    'max_payload: 1048576',
    ...renderJetStreamBlock(o),
    renderNatsSecurityConfig(o),
  ].join('\n');
}
