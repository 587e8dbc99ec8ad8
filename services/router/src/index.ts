/** @alert-hub/router: sharing agreements, verified forwarding, tamper-evident audit log. */
export { loadConfig, auditDbFile, type RouterConfig } from './config.js';
export { startRouter, type Router } from './router.js';
export {
  AuditEvent,
  AUDIT_COLUMNS,
  GENESIS_HASH,
  flowStats,
  hashRecord,
  initAuditSchema,
  mergeRecords,
  queryAudit,
  toCsvLine,
  traceAlert,
  verifyAuditChain,
  type AuditQuery,
  type AuditRecord,
  type ChainVerification,
  type FlowCount,
} from './audit.js';
export { RouterStore } from './store.js';
