/**
 * @alert-hub/runtime: the Node.js side the services and hubctl share. Loading schemas, the
 * trust store and key files; the nats-server launcher; NATS connections and JetStream setup;
 * logging and configuration. The protocol itself is in @alert-hub/core, which does no I/O.
 */
export * from './errors.js';
export * from './paths.js';
export * from './files.js';
export * from './nats-server.js';
export * from './nats.js';
export * from './jetstream-setup.js';
export * from './logger.js';
export * from './config.js';
export * from './keystore.js';
export * from './batch-writer.js';
export * from './sqlite.js';
export * from './tokens.js';
export * from './nats-config.js';
export * from './dev-pki.js';
export * from './service-process.js';
export * from './local-hub.js';
export * from './service-config.js';
export * from './ops-routes.js';
export * from './service-main.js';
export * from './web-app.js';
