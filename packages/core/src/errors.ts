/**
 * Every failure the protocol can report has a stable string `code`, so callers
 * `switch (err.code)` and tests assert on codes, never on message text.
 * The message is for humans and may change; the code never does.
 */
export const ErrorCode = {
  SchemaInvalid: 'ERR_SCHEMA_INVALID',
  SchemaUnknown: 'ERR_SCHEMA_UNKNOWN',
  EnvelopeMalformed: 'ERR_ENVELOPE_MALFORMED',
  EnvelopeTooLarge: 'ERR_ENVELOPE_TOO_LARGE',
  HeaderMismatch: 'ERR_ENVELOPE_HEADER_MISMATCH',
  PayloadMalformed: 'ERR_PAYLOAD_MALFORMED',
  AlgorithmNotAllowed: 'ERR_JWS_ALG_NOT_ALLOWED',
  CritUnsupported: 'ERR_JWS_CRIT_UNSUPPORTED',
  SignatureInvalid: 'ERR_SIGNATURE_INVALID',
  SignatureMissing: 'ERR_SIGNATURE_MISSING',
  KeyUnknown: 'ERR_KEY_UNKNOWN',
  KeyRevoked: 'ERR_KEY_REVOKED',
  KeyNotValidAt: 'ERR_KEY_NOT_VALID_AT',
  KeyAgencyMismatch: 'ERR_KEY_AGENCY_MISMATCH',
  KeyInvalid: 'ERR_KEY_INVALID',
  IssuedInFuture: 'ERR_ISSUED_AT_FUTURE',
  IssuedTooOld: 'ERR_ISSUED_AT_TOO_OLD',
  MsgIdMismatch: 'ERR_MSG_ID_MISMATCH',
  TrustStoreInvalid: 'ERR_TRUST_STORE_INVALID',
  AgreementsInvalid: 'ERR_AGREEMENTS_INVALID',
  AgreementsChangedInPlace: 'ERR_AGREEMENTS_CHANGED_IN_PLACE',
  SubjectInvalid: 'ERR_SUBJECT_INVALID',
  SubjectMismatch: 'ERR_SUBJECT_MISMATCH',
  RetractionNotOrigin: 'ERR_RETRACTION_NOT_ORIGIN',
  OutcomeNotReceived: 'ERR_OUTCOME_NOT_RECEIVED',
  OutcomeAmbiguous: 'ERR_OUTCOME_AMBIGUOUS',
  OperationUnknown: 'ERR_OPERATION_UNKNOWN',
  ReceiptReplayed: 'ERR_RECEIPT_REPLAYED',
  ReceiptUnknownDelivery: 'ERR_RECEIPT_UNKNOWN_DELIVERY',
  ReceiptDigestMismatch: 'ERR_RECEIPT_DIGEST_MISMATCH',
  ReceiptInvalid: 'ERR_RECEIPT_INVALID',
  ProofRange: 'ERR_PROOF_RANGE',
  ProofLength: 'ERR_PROOF_LENGTH',
  ProofHashSize: 'ERR_PROOF_HASH_SIZE',
  ProofRootMismatch: 'ERR_PROOF_ROOT_MISMATCH',
  RouteLeafMalformed: 'ERR_ROUTE_LEAF_MALFORMED',
  RouteFormRetired: 'ERR_ROUTE_FORM_RETIRED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * The one table of alert-hub error codes, as the keys of an interface. Core's own codes are
 * {@link ErrorCode}; each package that adds codes declares them next to its errors and merges
 * them in, so that every code of the hub is in this one table:
 *
 * ```ts
 * export const RuntimeErrorCode = { ConfigInvalid: 'ERR_CONFIG_INVALID' } as const;
 * declare module '@alert-hub/core' {
 *   interface ErrorCodeTable extends Record<(typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode], true> {}
 * }
 * ```
 *
 * An error can only be made with a code of the table: a code that is not in it does not compile.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- the table is its keys; packages merge theirs in
export interface ErrorCodeTable extends Record<ErrorCode, true> {}

/** Any code in {@link ErrorCodeTable}. */
export type AnyErrorCode = keyof ErrorCodeTable;

/** One thing wrong with a document, located by RFC 6901 JSON pointer. */
export interface Issue {
  /** JSON pointer into the document (`/shipment/containers/0`); `''` is the whole document. */
  readonly pointer: string;
  /** What is wrong, in words a customs officer can act on. */
  readonly message: string;
}

/**
 * Base class of every alert-hub error. The code is one of {@link ErrorCodeTable}: core's own
 * ({@link ErrorCode}) or one a package merged in (`ERR_CONFIG_INVALID`, `ERR_NATS_UNAVAILABLE`, ...).
 */
export class AlertHubError extends Error {
  readonly code: AnyErrorCode;
  constructor(code: AnyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The alert does not satisfy its JSON Schema; `issues` lists every problem at once. */
export class SchemaInvalidError extends AlertHubError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], message = 'the alert does not match its schema') {
    super(ErrorCode.SchemaInvalid, message);
    this.issues = issues;
  }
}

/** No schema is registered for the alert's type and version. */
export class SchemaUnknownError extends AlertHubError {
  readonly issues: readonly Issue[];
  constructor(issues: readonly Issue[], message: string) {
    super(ErrorCode.SchemaUnknown, message);
    this.issues = issues;
  }
}

/** The bytes are not a well-formed alert-hub envelope (msgpack General JWS). */
export class EnvelopeMalformedError extends AlertHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.EnvelopeMalformed, message, options);
  }
}

/** The envelope exceeds the size limit; refused before any parsing. */
export class EnvelopeTooLargeError extends AlertHubError {
  constructor(size: number, limit: number) {
    super(ErrorCode.EnvelopeTooLarge, `envelope is ${size} bytes, the limit is ${limit}`);
  }
}

/** A protected header member disagrees with the signed alert it describes. */
export class HeaderMismatchError extends AlertHubError {
  constructor(member: string, message: string) {
    super(ErrorCode.HeaderMismatch, `protected header "${member}" ${message}`);
  }
}

/** The signed payload is not UTF-8 JSON of the expected shape. */
export class PayloadMalformedError extends AlertHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.PayloadMalformed, message, options);
  }
}

/** The JWS `alg` is not on the allow-list; checked before any cryptography. */
export class AlgorithmNotAllowedError extends AlertHubError {
  constructor(alg: unknown) {
    super(
      ErrorCode.AlgorithmNotAllowed,
      `JWS algorithm ${quoteIfForm(alg, ALG_FORM)} is not allowed (EdDSA or ES256 only)`,
    );
  }
}

/** The JWS carries a `crit` header parameter; alert-hub understands no extensions. */
export class CritUnsupportedError extends AlertHubError {
  constructor() {
    super(ErrorCode.CritUnsupported, 'JWS "crit" extensions are not supported');
  }
}

/** The signature does not verify with the key its `kid` names. */
export class SignatureInvalidError extends AlertHubError {
  constructor(message = 'signature does not verify') {
    super(ErrorCode.SignatureInvalid, message);
  }
}

/** An expected signature (the origin's, or the router's countersignature) is absent. */
export class SignatureMissingError extends AlertHubError {
  constructor(message: string) {
    super(ErrorCode.SignatureMissing, message);
  }
}

/** No key with this `kid` is in the trust store. */
export class KeyUnknownError extends AlertHubError {
  readonly kid: string;
  constructor(kid: string) {
    super(ErrorCode.KeyUnknown, `no trusted key has kid ${quoteIfForm(kid, KID_FORM)}`);
    this.kid = kid;
  }
}

/** The key was revoked; nothing it signed is accepted any more. */
export class KeyRevokedError extends AlertHubError {
  readonly kid: string;
  constructor(kid: string, revokedAt: string, reason: string) {
    super(ErrorCode.KeyRevoked, `key ${kid} was revoked at ${revokedAt} (${reason})`);
    this.kid = kid;
  }
}

/** The key was not yet, or no longer, valid when the alert says it was issued. */
export class KeyNotValidAtError extends AlertHubError {
  readonly kid: string;
  constructor(kid: string, at: string, window: string) {
    super(ErrorCode.KeyNotValidAt, `key ${kid} was not valid at ${at} (valid ${window})`);
    this.kid = kid;
  }
}

/** The key belongs to a different principal than the one the envelope claims. */
export class KeyAgencyMismatchError extends AlertHubError {
  constructor(kid: string, owner: string, claimed: string) {
    super(
      ErrorCode.KeyAgencyMismatch,
      `key ${kid} belongs to ${owner}, not to the claimed signer ${claimed}`,
    );
  }
}

/** A key (JWK) is unusable: wrong type, curve, missing members or unsafe. */
export class KeyInvalidError extends AlertHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.KeyInvalid, message, options);
  }
}

/** The alert claims to be issued further in the future than the allowed clock skew. */
export class IssuedInFutureError extends AlertHubError {
  constructor(issuedAt: string, now: Date, skewMs: number) {
    super(
      ErrorCode.IssuedInFuture,
      `issued-at ${issuedAt} is more than ${Math.round(skewMs / 1000)} s after ${now.toISOString()}`,
    );
  }
}

/** A trust-store document (JWKS or revocation list) is invalid. */
export class TrustStoreInvalidError extends AlertHubError {
  readonly issues: readonly Issue[];
  constructor(source: string, issues: readonly Issue[]) {
    super(
      ErrorCode.TrustStoreInvalid,
      `trust store ${source}: ${issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`,
    );
    this.issues = issues;
  }
}

/** The sharing-agreements document is invalid; the previous agreements stay in force. */
export class AgreementsInvalidError extends AlertHubError {
  readonly issues: readonly Issue[];
  constructor(source: string, issues: readonly Issue[]) {
    super(
      ErrorCode.AgreementsInvalid,
      `agreements ${source}: ${issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`,
    );
    this.issues = issues;
  }
}

/**
 * An agreement or operation comes with other terms under an `id@version` already loaded or
 * recorded in the audit log: the label would name two different sets of terms. A change of terms
 * needs a new `version`.
 */
export class AgreementsChangedInPlaceError extends AlertHubError {
  /** The `id@version` labels whose terms changed (`SG-VN-2019@1`, `operation THUNDERBALL@1`). */
  readonly labels: readonly string[];
  constructor(labels: readonly string[]) {
    super(
      ErrorCode.AgreementsChangedInPlace,
      `${labels.join(', ')} ${labels.length === 1 ? 'was' : 'were'} loaded before with other terms: a change of terms needs a new version`,
    );
    this.labels = labels;
  }
}

/** A message arrived on a subject that is not of the expected form. */
export class SubjectInvalidError extends AlertHubError {
  constructor(subject: string, form: string) {
    // The subject is the publisher's to choose and not of a form: counted, never shown (a
    // refusal reason reaches the audit log, see quoteIfForm; a dead letter keeps the subject).
    super(
      ErrorCode.SubjectInvalid,
      `a subject of ${subject.split('.').length} tokens and ${subject.length} characters is not of the form ${form}`,
    );
  }
}

/** A message's subject does not name the alert it carries (its signer, recipient or type). */
export class SubjectMismatchError extends AlertHubError {
  constructor(message: string) {
    super(ErrorCode.SubjectMismatch, message);
  }
}

/** True when `err` is an alert-hub error; narrows for `switch (err.code)`. */
export function isAlertHubError(err: unknown): err is AlertHubError {
  return err instanceof AlertHubError;
}

/** The form of a kid: an RFC 7638 thumbprint, 43 base64url characters (docs/protocol.md §2.3). */
export const KID_FORM = /^[A-Za-z0-9_-]{43}$/;
/** A JWS `alg` name as JWA spells them (`EdDSA`, `ES256`, `HS256`, `none`, `RSA-OAEP-256`). */
export const ALG_FORM = /^[A-Za-z0-9+-]{1,32}$/;
/** An alert type's name as the schemas spell them (`seizure-report`). */
export const ALERT_TYPE_FORM = /^[a-z][a-z-]{0,39}$/;

/**
 * A value read from a message not (yet) trusted, as an error message may show it: quoted when it
 * has the form `form` of the identifier it stands for, else described by its kind and length
 * only. Refusal reasons reach the audit log, which keeps them for good, the router's log and the
 * dead letter's headers (docs/security.md: nothing else from a refused message is recorded), so
 * a kid, an alg or an agency name must not carry an agency's free text into them. With `quote`
 * false a value of the form is shown as it is.
 */
export function quoteIfForm(value: unknown, form: RegExp, quote = true): string {
  if (typeof value === 'string') {
    if (!form.test(value)) return `(a string of ${value.length} characters)`;
    return quote ? JSON.stringify(value) : value;
  }
  if (value === null) return '(null)';
  if (Array.isArray(value)) return '(an array)';
  return typeof value === 'object' ? '(an object)' : `(a ${typeof value})`;
}
