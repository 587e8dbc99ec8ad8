import { createHash } from 'node:crypto';
import { decodeEnvelope } from './codec.js';
import {
  AlertHubError,
  EnvelopeMalformedError,
  ErrorCode,
  HeaderMismatchError,
  IssuedInFutureError,
  SubjectInvalidError,
  SubjectMismatchError,
} from './errors.js';
import { parseJsonBytes } from './json.js';
import {
  DEFAULT_MAX_CLOCK_SKEW_MS,
  b64url,
  checkSignature,
  fromB64url,
  parseHeader,
  requireString,
  signBytes,
  signingInput,
  type GeneralJws,
} from './jws.js';
import type { SigningAlgorithm, SigningKey } from './keys.js';
import type { SchemaRegistry } from './schema-registry.js';
import { noticeSubject, parseInboundSubject, receiptSubject, RECEIPT_TOKEN } from './subjects.js';
import type { PrincipalRole, TrustStore, TrustedKey } from './trust-store.js';
import { parseRfc3339 } from './rfc3339.js';

/**
 * Signed statements about alerts, in the same envelope as alerts (a General JWS with ONE
 * signature, msgpack-encoded, see codec.ts) but with their own `typ` and JSON Schema:
 *
 * - a **delivery receipt** (`ahub-receipt+jws`), signed by a partner gateway with its agency
 *   key after one inbox commit, listing every delivery that commit stored;
 * - a **notice** (`ahub-notice+jws`), signed by the hub (role `router`), telling an agency what
 *   became of what it published: routed, refused, delivered.
 *
 * The digest of a delivery is the lowercase hex SHA-256 of the exact envelope bytes the
 * recipient received on its feed (the msgpack bytes, countersignature included).
 */
export const RECEIPT_TYP = 'ahub-receipt+jws';
/** Most deliveries one receipt lists (`maxItems` of delivery-receipt.v1.schema.json). */
export const MAX_RECEIPT_DELIVERIES = 1000;
export const NOTICE_TYP = 'ahub-notice+jws';
export const RECEIPT_SCHEMA_ID =
  'https://schemas.alert-hub.example/receipts/delivery-receipt/v1.json';
export const NOTICE_SCHEMA_ID = 'https://schemas.alert-hub.example/notices/notice/v1.json';

/** Error codes of receipts (checked by the router against what it forwarded). */
export const ReceiptErrorCode = {
  Replayed: ErrorCode.ReceiptReplayed,
  UnknownDelivery: ErrorCode.ReceiptUnknownDelivery,
  DigestMismatch: ErrorCode.ReceiptDigestMismatch,
  Invalid: ErrorCode.ReceiptInvalid,
} as const;
export type ReceiptErrorCode = (typeof ReceiptErrorCode)[keyof typeof ReceiptErrorCode];

/** A receipt or notice refused; `code` is one of {@link ReceiptErrorCode}. */
export class ReceiptError extends AlertHubError {
  constructor(code: ReceiptErrorCode, message: string) {
    super(code, message);
  }
}

/** One delivery a receipt acknowledges. */
export interface ReceiptDelivery {
  readonly alertId: string;
  readonly origin: string;
  /** Lowercase hex SHA-256 of the envelope bytes as received on the feed. */
  readonly envelopeSha256: string;
}

/** The signed content of a delivery receipt. */
export interface DeliveryReceipt {
  readonly receipt: string;
  readonly agency: string;
  readonly committedAt: string;
  readonly deliveries: readonly ReceiptDelivery[];
}

/** The protected header of a receipt. */
export interface ReceiptHeader {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly typ: typeof RECEIPT_TYP;
  readonly agency: string;
  readonly receipt_id: string;
  readonly issued_at: string;
}

/**
 * A recipient a `routed` event says was refused, or several refused with the same code and
 * reason (`recipients`, two or more): docs/protocol.md §9.2.
 */
export type RoutedDenied =
  | { readonly recipient: string; readonly code: string; readonly reason: string }
  | { readonly recipients: readonly string[]; readonly code: string; readonly reason: string };

/** Each recipient a `routed` event's denied item names, with its code and reason. */
export function routedRefusals(
  denied: readonly RoutedDenied[],
): { recipient: string; code: string; reason: string }[] {
  return denied.flatMap((d) =>
    'recipients' in d
      ? d.recipients.map((recipient) => ({ recipient, code: d.code, reason: d.reason }))
      : [d],
  );
}

/** An event of a notice. */
export type NoticeEvent =
  | {
      readonly event: 'routed';
      readonly alertId: string;
      readonly at: string;
      readonly operation?: string;
      readonly recipients: readonly string[];
      readonly denied: readonly RoutedDenied[];
    }
  | {
      readonly event: 'refused';
      readonly alertId?: string;
      readonly receipt?: string;
      readonly subject: string;
      readonly streamSeq: number;
      readonly at: string;
      readonly code: string;
      readonly reason: string;
    }
  | {
      readonly event: 'delivered';
      readonly alertId: string;
      readonly recipient: string;
      readonly committedAt: string;
      readonly verifiedAt: string;
      readonly envelopeSha256: string;
      readonly receipt: string;
      readonly receiptSha256: string;
      readonly kid: string;
    };

/** The signed content of a notice. */
export interface Notice {
  readonly notice: string;
  readonly hub: string;
  readonly to: string;
  readonly issuedAt: string;
  readonly events: readonly NoticeEvent[];
}

/** The protected header of a notice. */
export interface NoticeHeader {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly typ: typeof NOTICE_TYP;
  readonly hub: string;
  readonly to: string;
  readonly notice_id: string;
  readonly issued_at: string;
}

/** Lowercase hex SHA-256 of bytes: the digest receipts name deliveries by. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function signStatement(
  header: Record<string, unknown>,
  payload: unknown,
  key: SigningKey,
): Promise<GeneralJws> {
  const protectedB64 = b64url(JSON.stringify(header));
  const payloadB64 = b64url(JSON.stringify(payload));
  const signature = await signBytes(
    key.alg,
    signingInput(protectedB64, payloadB64),
    key.privateKey,
  );
  return {
    payload: payloadB64,
    signatures: [{ protected: protectedB64, signature: signature.toString('base64url') }],
  };
}

/** Signs a delivery receipt as its agency (`key.principal` must be `receipt.agency`). */
export function signReceipt(receipt: DeliveryReceipt, key: SigningKey): Promise<GeneralJws> {
  if (receipt.agency !== key.principal)
    throw new HeaderMismatchError('agency', `would be ${key.principal}, not ${receipt.agency}`);
  const header: ReceiptHeader = {
    alg: key.alg,
    kid: key.kid,
    typ: RECEIPT_TYP,
    agency: receipt.agency,
    receipt_id: receipt.receipt,
    issued_at: receipt.committedAt,
  };
  return signStatement({ ...header }, receipt, key);
}

/** Signs a notice as the hub (`key.principal` must be `notice.hub`). */
export function signNotice(notice: Notice, key: SigningKey): Promise<GeneralJws> {
  if (notice.hub !== key.principal)
    throw new HeaderMismatchError('hub', `would be ${key.principal}, not ${notice.hub}`);
  const header: NoticeHeader = {
    alg: key.alg,
    kid: key.kid,
    typ: NOTICE_TYP,
    hub: notice.hub,
    to: notice.to,
    notice_id: notice.notice,
    issued_at: notice.issuedAt,
  };
  return signStatement({ ...header }, notice, key);
}

interface StatementOptions {
  readonly trust: TrustStore;
  readonly registry: SchemaRegistry;
  readonly now?: Date;
  readonly maxClockSkewMs?: number;
}

/** The members of a receipt's protected header, and of a notice's: exactly these, no other. */
const RECEIPT_HEADER_MEMBERS = ['alg', 'kid', 'typ', 'agency', 'receipt_id', 'issued_at'];
const NOTICE_HEADER_MEMBERS = ['alg', 'kid', 'typ', 'hub', 'to', 'notice_id', 'issued_at'];

async function verifyStatement(
  jws: GeneralJws,
  typ: string,
  members: readonly string[],
  signerMember: string,
  role: PrincipalRole,
  schemaId: string,
  options: StatementOptions,
): Promise<{ header: Record<string, unknown>; payload: Record<string, unknown>; key: TrustedKey }> {
  if (jws.signatures.length !== 1)
    throw new EnvelopeMalformedError(`a ${typ} carries exactly one signature`);
  const h = parseHeader(jws.signatures[0], 0);
  if (h['typ'] !== typ) throw new EnvelopeMalformedError(`signature 0 typ must be ${typ}`);
  const names = Object.keys(h);
  if (names.length !== members.length || !members.every((m) => Object.hasOwn(h, m)))
    throw new EnvelopeMalformedError(
      `a ${typ} protected header has exactly the members ${members.join(', ')}`,
    );
  const signer = requireString(h, signerMember);
  const issuedAtText = requireString(h, 'issued_at');
  const issuedAtMs = parseRfc3339(issuedAtText);
  if (issuedAtMs === undefined)
    throw new EnvelopeMalformedError('protected header "issued_at" is not an RFC 3339 date-time');
  const issuedAt = new Date(issuedAtMs);
  const key = options.trust.resolve(h['kid'] as string, signer, role, issuedAt);
  await checkSignature(key, h['alg'], jws.signatures[0]!, jws.payload);
  const value = parseJsonBytes(fromB64url(jws.payload, 'payload'));
  const issues = options.registry.validateDocument(schemaId, value);
  if (issues.length > 0)
    throw new ReceiptError(
      ReceiptErrorCode.Invalid,
      `not a valid ${typ}: ${issues.map((i) => `${i.pointer || '/'} ${i.message}`).join('; ')}`,
    );
  const now = options.now ?? new Date();
  const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (issuedAt.getTime() - now.getTime() > skew)
    throw new IssuedInFutureError(issuedAtText, now, skew);
  return { header: h, payload: value as Record<string, unknown>, key };
}

/** A verified receipt, with the key that signed it. */
export interface VerifiedReceipt {
  readonly receipt: DeliveryReceipt;
  readonly header: ReceiptHeader;
  readonly key: TrustedKey;
}

/**
 * Verifies a delivery receipt: one signature, `typ`, exactly the header members of
 * {@link ReceiptHeader}, the key belongs to the claimed agency
 * (role agency) and was valid at `issued_at`, the signature, the payload's schema, and that the
 * header agrees with the payload. Whether the deliveries it names are real is the router's check.
 */
export async function verifyReceipt(
  jws: GeneralJws,
  options: StatementOptions,
): Promise<VerifiedReceipt> {
  const { header, payload, key } = await verifyStatement(
    jws,
    RECEIPT_TYP,
    RECEIPT_HEADER_MEMBERS,
    'agency',
    'agency',
    RECEIPT_SCHEMA_ID,
    options,
  );
  const receipt = payload as unknown as DeliveryReceipt;
  if (receipt.agency !== header['agency'])
    throw new HeaderMismatchError('agency', 'differs from the receipt agency');
  if (receipt.receipt !== header['receipt_id'])
    throw new HeaderMismatchError('receipt_id', 'differs from the receipt id');
  if (receipt.committedAt !== header['issued_at'])
    throw new HeaderMismatchError('issued_at', 'differs from committedAt');
  return { receipt, header: header as unknown as ReceiptHeader, key };
}

/** A verified notice. */
export interface VerifiedNotice {
  readonly notice: Notice;
  readonly header: NoticeHeader;
  readonly key: TrustedKey;
}

/**
 * Verifies a hub notice addressed to `to`: one signature by a key of role `router` belonging to
 * the header's `hub`, the schema, and that header and payload agree.
 */
export async function verifyNotice(
  jws: GeneralJws,
  options: StatementOptions & { readonly to: string },
): Promise<VerifiedNotice> {
  const { header, payload, key } = await verifyStatement(
    jws,
    NOTICE_TYP,
    NOTICE_HEADER_MEMBERS,
    'hub',
    'router',
    NOTICE_SCHEMA_ID,
    options,
  );
  const notice = payload as unknown as Notice;
  if (notice.hub !== header['hub']) throw new HeaderMismatchError('hub', 'differs from the notice');
  if (notice.to !== header['to'] || notice.to !== options.to)
    throw new HeaderMismatchError('to', `is not ${options.to}`);
  if (notice.notice !== header['notice_id'])
    throw new HeaderMismatchError('notice_id', 'differs from the notice id');
  if (notice.issuedAt !== header['issued_at'])
    throw new HeaderMismatchError('issued_at', 'differs from issuedAt');
  return { notice, header: header as unknown as NoticeHeader, key };
}

/** A receipt or notice opened: its verified content, or the first check it failed (a value). */
export type OpenedStatement<T> =
  ({ readonly ok: true } & T) | { readonly ok: false; readonly error: AlertHubError };

function refusedStatement(err: unknown): { ok: false; error: AlertHubError } {
  if (!(err instanceof AlertHubError)) throw err;
  return { ok: false, error: err };
}

/**
 * Opens a delivery receipt published on `ahub.in.<agency>.receipt`, as the router does. The
 * checks, in this fixed order: the subject; decode the envelope; verify the receipt
 * ({@link verifyReceipt}); its signer is the subject's agency. Whether the deliveries it names
 * are real is the router's check, against what it forwarded.
 */
export async function openReceipt(
  bytes: Uint8Array,
  subject: string,
  options: StatementOptions,
): Promise<OpenedStatement<VerifiedReceipt>> {
  try {
    const claim = parseInboundSubject(subject);
    if (!claim || claim.type !== RECEIPT_TOKEN)
      throw new SubjectInvalidError(subject, 'ahub.in.<agency>.receipt');
    const verified = await verifyReceipt(decodeEnvelope(bytes), options);
    if (subject !== receiptSubject(verified.receipt.agency))
      throw new SubjectMismatchError(
        `receipt signed by ${verified.receipt.agency} but published on the subject of ${claim.origin}`,
      );
    return { ok: true, ...verified };
  } catch (err) {
    return refusedStatement(err);
  }
}

/**
 * Opens a hub notice delivered on `recipient`'s feed, as its gateway does: decode the envelope;
 * verify the notice for `recipient` ({@link verifyNotice}); the subject is
 * `ahub.feed.<recipient>.<hub>.notice`.
 */
export async function openNotice(
  bytes: Uint8Array,
  subject: string,
  options: StatementOptions & { readonly recipient: string },
): Promise<OpenedStatement<VerifiedNotice>> {
  try {
    const verified = await verifyNotice(decodeEnvelope(bytes), {
      ...options,
      to: options.recipient,
    });
    const expected = noticeSubject(options.recipient, verified.notice.hub);
    if (subject !== expected)
      throw new SubjectMismatchError(`notice on ${subject} should be on ${expected}`);
    return { ok: true, ...verified };
  } catch (err) {
    return refusedStatement(err);
  }
}
