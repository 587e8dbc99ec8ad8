/**
 * @alert-hub/testkit: private, for tests, the benchmark and the demo only; never a dependency of
 * a service or of hubctl. A real nats-server on a random loopback port, a whole local hub, the
 * services as processes, fixtures, and one canonical sample of each alert type. The vitest hooks
 * (`useNatsServer`) are in `@alert-hub/testkit/harness`, so that the demo and the benchmark can
 * use the rest without loading vitest; the samples alone are `@alert-hub/testkit/samples`.
 */
export * from './errors.js';
export * from './nats-server.js';
export * from './nats-cluster.js';
export * from './tcp-proxy.js';
export * from './service-process.js';
export * from './local-hub.js';
export * from './chaos.js';
export * from './feed.js';
export * from './audit-counts.js';
export * from './processes.js';
export * from './fixtures.js';
export * from './hubctl.js';
export * from './samples.js';
export * from './samples-v2.js';
export * from './demo-world.js';
