/**
 * @alert-hub/core: the alert-hub protocol. Schemas, the signed envelope, the trust store,
 * sharing agreements and subjects. No I/O: keys, schemas and agreements come in as arguments.
 */
export * from './errors.js';
export * from './alert.js';
export * from './formats.js';
export * from './ids.js';
export * from './json.js';
export * from './rfc3339.js';
export * from './schema-registry.js';
export * from './semantics.js';
export * from './normalise.js';
export * from './keys.js';
export * from './trust-store.js';
export * from './jws.js';
export * from './merkle.js';
export * from './route-tree.js';
export * from './codec.js';
export * from './subjects.js';
export * from './agreements.js';
export * from './policy.js';
export * from './statements.js';
export * from './open.js';
export type * from './api-types.js';
