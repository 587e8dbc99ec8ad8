import { HUB_ACCOUNT, OPS_IDENTITY, natsIdentity } from './nats-config.js';
import { renderJetStreamBlock, renderTlsBlock, renderUser, type TlsFiles } from './conf-blocks.js';
import {
  inboxPrefix,
  inboundSubjects,
  leafDomain,
  leafJsApiPrefix,
  leafOutboxAcks,
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
 * The hub's account that `agency`'s leaf node lands in: an account of its own, not the agency's.
 * Its name holds two hyphens, which no agency id does.
 */
export function leafAccountName(agency: string): string {
  return `${agency}-LEAF`;
}

/**
 * What the hub's configuration adds for an agency that runs a leaf node: an account of the leaf's
 * own ({@link leafAccountName}), and imports of the hub's account. The hub's routers read the
 * leaf's outbox by a durable pull consumer there, through the leaf's JetStream API (exported by the
 * leaf's account to the hub's alone, `response_type: stream`: a pull gets many replies), and
 * acknowledge what they stored (the consumer's ack subjects, exported as a service).
 *
 * The leaf's account imports nothing, and exports no stream. A leaf is the agency's own software,
 * and nats-server 2.9 checks no permission on what a leaf sends and takes the subject of a message
 * from a leaf from after an `@` in a `$JS.ACK.` reply, at every hop: a leaf in the agency's
 * account could send through any service the account imports under another subject (through the
 * feed consumer's INFO, any request of the hub's JetStream API, a stream deleted). Here what it
 * sends reaches the hub only as replies to the routers' requests of the leaf's API, which the
 * routers check before they act on them (`services/router/src/leaf-outbox.ts`). It no longer
 * reaches a stream of the hub: when the hub's stream sourced the outbox, a leaf could forge flow
 * control on the source's deliver subject and make that stream's server-side client send to any
 * subject of the hub's account (a stream deleted).
 *
 * The leaf's own user is not in any account of client users: it is a user of the leaf listener
 * alone ({@link renderLeafListenerBlock}), so its certificate opens no client connection.
 */
export function leafAccountParts(agency: string): {
  /** The leaf's account, with its exports to the hub's account. */
  account: string[];
  /** Imports of the hub's account. */
  hubImports: string[];
} {
  const account = leafAccountName(agency);
  const api = `${leafJsApiPrefix(agency)}.>`;
  const acks = leafOutboxAcks(agency);
  return {
    account: [
      `  ${q(account)} {`,
      `    # ${agency}'s leaf node: its outbox, read by the hub's routers; it imports nothing of the hub`,
      '    exports: [',
      `      { service: ${q(api)}, accounts: [${q(HUB_ACCOUNT)}], response_type: stream }`,
      `      { service: ${q(acks)}, accounts: [${q(HUB_ACCOUNT)}] }`,
      '    ]',
      '  }',
    ],
    hubImports: [
      `      { service: { account: ${q(account)}, subject: ${q(api)} } }`,
      `      { service: { account: ${q(account)}, subject: ${q(acks)} } }`,
    ],
  };
}

/**
 * The hub's leaf-node listener: mutual TLS, and users of its own, one per agency that runs a
 * leaf, each the leaf certificate's identity bound to that leaf's account ({@link leafAccountName},
 * `verify_and_map`). A leaf lands in its own account and nowhere else. Any other certificate is refused, one
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
      (a) =>
        `      { user: ${q(leafIdentity(a))}, account: ${q(leafAccountName(a))} }  # ${a}'s leaf node`,
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
 * gateway's user and the agency's operators, and a remote to every hub node. The gateway's user
 * may only store its agency's alerts and receipts in the outbox and read the outbox's state
 * (stream info, to tell when an alert expired there before the hub had it): everything else it
 * reaches at the hub by its own connection. `deny_exports` keeps the gateway's inbound publishes
 * on the leaf: they reach the hub only through the outbox stream, which the hub's routers read, so that
 * a 202 means "stored at the agency".
 */
export function renderLeafNodeParts(o: LeafNodeOptions): string {
  return [
    ...renderTlsBlock(o.tls, { indent: 0, verifyAndMap: true, timeoutS: 2 }),
    'accounts {',
    `  ${q(o.agency)} {`,
    '    jetstream: enabled',
    '    users: [',
    renderUser(o.gatewayIdentity ?? natsIdentity(o.agency), `${o.agency}'s gateway`, {
      publish: [inboundSubjects(o.agency), `$JS.API.STREAM.INFO.${outboxStreamName(o.agency)}`],
      subscribe: [`${inboxPrefix(o.agency)}.>`],
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
