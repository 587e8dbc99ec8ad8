/** @alert-hub/router: sharing agreements, verified forwarding, writer of the audit log (@alert-hub/audit). */
export { loadConfig, auditDbFile, type RouterConfig } from './config.js';
export { startRouter, type Router } from './router.js';
export { RouterStore } from './store.js';
export { COSIGNATURE_VERIFICATIONS } from './audit-checkpoints.js';
