// The demo's imports from the workspace, in one place.
export {
  DenyReason,
  encodeEnvelope,
  signAlert,
  generateSigningJwk,
  importSigningKey,
  inboundStreamName,
  inboundSubject,
  inboundSubjects,
  newAlertId,
  outboxStreamName,
  type Alert,
} from '@alert-hub/core';
export {
  AGENCIES,
  AGREEMENTS,
  DEMO_ALERTS,
  asSubmission,
  sampleOutcome,
  sampleSeizureReport,
  sampleSuspiciousShipment,
  startLocalHub,
  type LocalAgency,
  type LocalHub,
} from '@alert-hub/testkit';
export {
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  loadTrustStore,
  openDatabase,
} from '@alert-hub/runtime/files';
export { trustStoreWitnesses, verifyAuditLog, type AuditVerification } from '@alert-hub/audit';
