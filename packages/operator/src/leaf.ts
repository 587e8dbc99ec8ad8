import { HUB_ACCOUNT, OPS_IDENTITY, natsIdentity } from './nats-config.js';
import { renderJetStreamBlock, renderTlsBlock, renderUser, type TlsFiles } from './conf-blocks.js';
import {
  agencyPermissions,
  inboundSubjects,
  leafDomain,
  leafJsApiPrefix,
  leafSourceDeliverPrefix,
  leafSourceFlowControl,
  outboxStreamName,
} from '@alert-hub/core';

const q = (s: string) => JSON.stringify(s);

/** The identity (SAN e-mail) of the certificate `agency`'s leaf node connects to the hub with. */
export function leafIdentity(agency: string): string {
  return natsIdentity(`${agency}.leaf`);
}

/** The certificate name of `agency`'s leaf node in the development PKI (`<name>.pem`). */
export function leafCertName(agency: string): string {
  return `${agency}.leaf`;
}

export const DEFAULT_LEAF_PORT = 7422;

/**
 * What the hub's configuration adds for an agency that runs a leaf node, in its account and in
 * the hub's account. The agency's inbound stream at the hub sources the leaf's outbox: it creates
 * a consumer there through the leaf's JetStream API (exported by the agency's account to the hub's alone),
 * receives on a deliver prefix (exported as a stream) and answers flow control (exported as a
 * service; without it the source stalls on nats-server 2.9 without any error). The leaf's own
 * user is not in the account: it is a user of the leaf listener alone
 * ({@link renderLeafListenerBlock}), so its certificate opens no client connection.
 */
export function leafAccountParts(agency: string): {
  /** Exports of the agency's account. */
  exports: string[];
  /** Imports of the hub's account. */
  hubImports: string[];
} {
  const api = `${leafJsApiPrefix(agency)}.>`;
  const deliver = `${leafSourceDeliverPrefix(agency)}.>`;
  const fc = leafSourceFlowControl(agency);
  return {
    exports: [
      `      { service: ${q(api)}, accounts: [${q(HUB_ACCOUNT)}] }`,
      `      { stream: ${q(deliver)}, accounts: [${q(HUB_ACCOUNT)}] }`,
      `      { service: ${q(fc)}, accounts: [${q(HUB_ACCOUNT)}] }`,
    ],
    hubImports: [
      `      { service: { account: ${q(agency)}, subject: ${q(api)} } }`,
      `      { stream: { account: ${q(agency)}, subject: ${q(deliver)} } }`,
      `      { service: { account: ${q(agency)}, subject: ${q(fc)} } }`,
    ],
  };
}

/**
 * The hub's leaf-node listener: mutual TLS, and users of its own, one per agency that runs a
 * leaf, each the leaf certificate's identity bound to that agency's account (`verify_and_map`).
 * A leaf lands in its agency's account and nowhere else. Any other certificate is refused, one
 * that maps to a client user too (an agency's gateway, the router): without these users
 * nats-server 2.9 would map a leaf by the client users and admit it into that user's account.
 * Without a certificate a leaf is refused (never accepted into the global account).
 */
export function renderLeafListenerBlock(o: {
  readonly listen: string;
  /**
   * The address this node gives leaf nodes in its INFO. nats-server 2.9 always sends one (its
   * `no_advertise` only stops telling the other nodes), and a leaf adds it to the URLs it dials.
   */
  readonly advertise?: string;
  readonly tls: TlsFiles;
  /** The agencies whose leaf nodes it admits (at least one). */
  readonly leaves: readonly string[];
}): string {
  if (o.leaves.length === 0)
    throw new Error('a leaf listener admits the leaf nodes of at least one agency');
  return [
    'leafnodes {',
    `  listen: ${q(o.listen)}`,
    // The other nodes' leaf addresses are not passed on: an agency's leaf dials the node list it
    // is configured with.
    '  no_advertise: true',
    ...(o.advertise ? [`  advertise: ${q(o.advertise)}`] : []),
    ...renderTlsBlock(o.tls, { indent: 2, verifyAndMap: true, timeoutS: 5 }),
    '  authorization {',
    '    users: [',
    ...o.leaves.map(
      (a) => `      { user: ${q(leafIdentity(a))}, account: ${q(a)} }  # ${a}'s leaf node`,
    ),
    '    ]',
    '  }',
    '}',
  ].join('\n');
}

export interface LeafNodeOptions {
  readonly agency: string;
  /** Every hub node's leaf listener, `tls://host:7422`. */
  readonly hubUrls: readonly string[];
  /** The leaf's client listener: its server certificate and the CA of the gateway's certificate. */
  readonly tls: TlsFiles;
  /** The leaf's certificate towards the hub (identity {@link leafIdentity}). */
  readonly leafTls: TlsFiles;
  /** Identities of the gateway and of the agency's operators. */
  readonly gatewayIdentity?: string;
  readonly operatorIdentity?: string;
}

/**
 * The leaf node's security and link: client TLS mapped to users, one account holding the
 * gateway's user (the same least privilege as on the hub) and the agency's operators, and a
 * remote to every hub node bound to the agency's account. `deny_exports` keeps the gateway's
 * inbound publishes on the leaf: they reach the hub only through the outbox stream, which the
 * hub sources, so that a 202 means "stored at the agency".
 */
export function renderLeafNodeParts(o: LeafNodeOptions): string {
  const p = agencyPermissions(o.agency);
  return [
    ...renderTlsBlock(o.tls, { indent: 0, verifyAndMap: true, timeoutS: 2 }),
    'accounts {',
    `  ${q(o.agency)} {`,
    '    jetstream: enabled',
    '    users: [',
    // The gateway also reads its outbox's state (stream info, nothing else) to tell when an
    // alert expired there before the hub had it.
    renderUser(o.gatewayIdentity ?? natsIdentity(o.agency), `${o.agency}'s gateway`, {
      ...p,
      publish: [...p.publish, `$JS.API.STREAM.INFO.${outboxStreamName(o.agency)}`],
    }),
    `      { user: ${q(o.operatorIdentity ?? OPS_IDENTITY)} }`,
    '    ]',
    '  }',
    '}',
    'leafnodes {',
    '  remotes: [',
    '    {',
    `      urls: ${JSON.stringify(o.hubUrls)}`,
    `      account: ${q(o.agency)}`,
    `      deny_exports: [${q(inboundSubjects(o.agency))}]`,
    ...renderTlsBlock(o.leafTls, { indent: 6, verifyAndMap: false, timeoutS: 5 }),
    '    }',
    '  ]',
    '}',
  ].join('\n');
}

/**
 * The agency's own nats-server, a leaf node of the hub: JetStream in its own domain (the
 * agency's id) and {@link renderLeafNodeParts}.
 */
export function renderLeafNodeConfig(
  o: LeafNodeOptions & {
    readonly serverName?: string;
    readonly listen: string;
    readonly storeDir: string;
    readonly maxFileStore?: number;
    readonly monitor?: string;
  },
): string {
  return [
    `# ${o.agency}'s leaf node of alert-hub: generated by \`hubctl nats-config --leaf ${o.agency}\``,
    `server_name: ${q(o.serverName ?? `leaf-${o.agency}`)}`,
    `listen: ${q(o.listen)}`,
    ...(o.monitor ? [`http: ${q(o.monitor)}`] : []),
    'max_payload: 1048576',
    ...renderJetStreamBlock({ ...o, domain: leafDomain(o.agency) }),
    renderLeafNodeParts(o),
    '',
  ].join('\n');
}
