/** @alert-hub/router: sharing agreements, verified forwarding, writer of the audit log (@alert-hub/audit). */
export {
  DEFAULT_PROOF_REQUESTS_PER_SECOND,
  loadConfig,
  auditDbFile,
  type RouterConfig,
} from './config.js';
export { startRouter, type Router, type StartRouterOptions } from './router.js';
export { RouterStore } from './store.js';
export { ROUTER_BODY_LIMIT_BYTES } from './http.js';
export {
  COSIGNATURE_MESSAGES_BURST,
  COSIGNATURE_MESSAGES_PER_CHECKPOINT,
  COSIGNATURE_VERIFICATIONS,
} from './audit-checkpoints.js';
