import type { SubjectPermissions } from '@alert-hub/core';

/** Pieces of nats-server configuration that the hub's, the cluster's and the leaves' files share. */

const q = (s: string) => JSON.stringify(s);
const list = (items: readonly string[]) => `[${items.map(q).join(', ')}]`;

/** Where a nats-server keeps its JetStream data, and how much of it it may reserve. */
export interface JetStreamStore {
  readonly storeDir: string;
  /**
   * `max_file_store` in bytes: what JetStream may reserve on disk. nats-server reserves every
   * stream's byte limit against it (a hub of N agencies reserves N inbound quotas), and without
   * it takes 75% of the disk's free space when it starts.
   */
  readonly maxFileStore?: number;
}

/** The `jetstream {}` block of a hub node or a leaf node (a leaf in its own `domain`). */
export function renderJetStreamBlock(o: JetStreamStore & { readonly domain?: string }): string[] {
  return [
    'jetstream {',
    `  store_dir: ${q(o.storeDir)}`,
    ...(o.maxFileStore === undefined ? [] : [`  max_file_store: ${o.maxFileStore}`]),
    ...(o.domain === undefined ? [] : [`  domain: ${q(o.domain)}`]),
    '}',
  ];
}

/** The certificate, key and CA files of one TLS listener or connection. */
export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * A nats-server `tls {}` block, as lines indented by `indent` spaces: the certificate, key and
 * CA; with `verifyAndMap`, the peer must present a certificate from the CA whose SAN e-mail names
 * its user; `timeoutS`, the handshake timeout in seconds. Every block the hub's and the leaves'
 * configurations hold is rendered here, so they cannot drift apart.
 */
export function renderTlsBlock(
  tls: TlsFiles,
  o: { readonly indent: number; readonly verifyAndMap: boolean; readonly timeoutS: number },
): string[] {
  const pad = ' '.repeat(o.indent);
  return [
    `${pad}tls {`,
    `${pad}  cert_file: ${q(tls.certFile)}`,
    `${pad}  key_file: ${q(tls.keyFile)}`,
    `${pad}  ca_file: ${q(tls.caFile)}`,
    ...(o.verifyAndMap ? [`${pad}  verify_and_map: true`] : []),
    `${pad}  timeout: ${o.timeoutS}`,
    `${pad}}`,
  ];
}

/**
 * One user of an account's `users: []`, mapped from its certificate's identity, with what it may
 * publish and subscribe to (and `allow_responses` when it answers requests): the hub's agencies,
 * its routers and a leaf node's gateway all get their least privilege from here.
 */
export function renderUser(identity: string, comment: string, p: SubjectPermissions): string {
  return [
    `      # ${comment}`,
    `      { user: ${q(identity)}, permissions: {`,
    `          publish: { allow: ${list(p.publish)} }`,
    `          subscribe: { allow: ${list(p.subscribe)} }`,
    ...(p.allowResponses ? ['          allow_responses: true'] : []),
    `      } }`,
  ].join('\n');
}
