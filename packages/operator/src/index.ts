/**
 * @alert-hub/operator: what operators run through hubctl and no service ever loads. The
 * nats-server configuration rendered from the agency registry, key generation, rotation and
 * revocation in a certs directory, and the development PKI (mutual-TLS certificates).
 */
export * from './errors.js';
export * from './nats-config.js';
export * from './nats-cluster.js';
export * from './keys.js';
export * from './dev-pki.js';
export * from './leaf.js';
export * from './security-doc.js';
export * from './conf-blocks.js';
