/**
 * `@alert-hub/runtime/files`: the part of the runtime that reads and writes local files and
 * nothing else (no NATS client, no HTTP server), so that a command-line tool can load it
 * without loading a service's dependencies.
 */
export * from './errors.js';
export * from './paths.js';
export * from './files.js';
export * from './config.js';
export * from './signing-key.js';
export * from './agreements-file.js';
export * from './sqlite.js';
export * from './tokens.js';
