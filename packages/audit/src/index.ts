/**
 * @alert-hub/audit: the router's audit log as a transparency log. Entries are the leaves of an
 * RFC 9162 Merkle tree; the router signs C2SP checkpoints; agency gateways witness them.
 */
export {
  AUDIT_SCHEMA,
  AuditAppender,
  AuditEvent,
  AuditIntegrityError,
  ENTRY_FORMAT,
  HASHED_MEMBERS,
  checkRecord,
  checkSchema,
  entryBytes,
  hashRecord,
  initAuditSchema,
  iterateRecords,
  type AuditEntry,
  type AuditRecord,
  type AuditRow,
  type SqliteDatabase,
} from './audit.js';
export {
  AUDIT_COLUMNS,
  TimeFormatError,
  flowStats,
  mergeRecords,
  parseInstant,
  queryAudit,
  toCsvLine,
  traceAlert,
  type AuditQuery,
  type FlowCount,
} from './query.js';
export {
  CompactRange,
  EMPTY_ROOT,
  MerkleTree,
  ProofError,
  hashChildren,
  hashLeaf,
  rootFromInclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
  type LeafHashReader,
} from './merkle.js';
export {
  MAX_NOTE_SIGNATURES,
  NoteError,
  SignatureType,
  addSignatureLines,
  cosignCheckpoint,
  formatCheckpoint,
  noteKeyId,
  parseCheckpoint,
  parseNote,
  rawEd25519PublicKey,
  signNote,
  verifyCosignature,
  verifyNote,
  type Checkpoint,
  type Note,
  type NoteSignatureLine,
  type NoteSigner,
  type NoteVerifier,
} from './note.js';
export {
  VerifyProblem,
  verifyAuditLog,
  type AuditVerification,
  type VerifyOptions,
} from './verify.js';
export {
  MAX_CHECKPOINT_MESSAGE,
  Witness,
  fileWitnessStore,
  witnessName,
  type CheckpointMessage,
  type WitnessEvidence,
  type WitnessOutcome,
  type WitnessState,
  type WitnessStore,
} from './witness.js';
