/**
 * @alert-hub/runtime: what the services run on the Node.js side. Loading schemas, the trust
 * store, key files and the agreements file; NATS connections and JetStream setup; SQLite;
 * logging and configuration. The protocol itself is in @alert-hub/core, which does no I/O.
 *
 * Tools that never connect anywhere (hubctl) import `@alert-hub/runtime/files`, the part of
 * this package that loads neither NATS nor an HTTP server.
 */
export * from './files-entry.js';
export * from './nats.js';
export * from './jetstream-setup.js';
export * from './feed-sizing.js';
export * from './drainer.js';
export * from './logger.js';
export * from './batch-writer.js';
export * from './service-config.js';
export * from './ops-routes.js';
export * from './http-errors.js';
export * from './transient.js';
export * from './service-main.js';
export * from './service-shell.js';
export * from './web-app.js';
