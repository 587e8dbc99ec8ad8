// The demo's imports from the workspace, in one place.
export {
  imoCheckDigit,
  iso6346CheckDigit,
  newAlertId,
  encodeEnvelope,
  signAlert,
  generateSigningJwk,
  importSigningKey,
  inboundSubject,
  type Alert,
} from '@alert-hub/core';
export {
  startLocalHub,
  type LocalAgency,
  type LocalHub,
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  loadTrustStore,
  openDatabase,
} from '@alert-hub/runtime';
export { verifyAuditLog, witnessName, type AuditVerification } from '@alert-hub/audit';
