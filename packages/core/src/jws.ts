import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import type { Alert } from './alert.js';
import {
  AlgorithmNotAllowedError,
  CritUnsupportedError,
  EnvelopeMalformedError,
  ALERT_TYPE_FORM,
  HeaderMismatchError,
  IssuedInFutureError,
  SignatureInvalidError,
  SignatureMissingError,
  quoteIfForm,
} from './errors.js';
import { PRINCIPAL_FORM } from './formats.js';
import { parseJsonBytes } from './json.js';
import { parseRfc3339 } from './rfc3339.js';
import {
  isAllowedAlgorithm,
  nodeCryptoParams,
  type SigningAlgorithm,
  type SigningKey,
} from './keys.js';
import type { SchemaRegistry } from './schema-registry.js';
import type { TrustStore, TrustedKey } from './trust-store.js';

/**
 * The envelope: an RFC 7515 §7.2.1 General JWS JSON Serialization. Signature 0 is the origin
 * agency's; signature 1, once routed, is the router's countersignature over the same payload
 * (with, in the unprotected header, this copy's leaf and inclusion path: route-tree.ts).
 * On NATS the object is msgpack-encoded as is (see codec.ts), so any JOSE library can verify
 * the decoded value directly.
 */
export interface GeneralJws {
  /** base64url of the alert's UTF-8 JSON bytes, exactly as signed. */
  readonly payload: string;
  readonly signatures: readonly JwsSignature[];
}

export interface JwsSignature {
  /** base64url of the protected header's UTF-8 JSON. */
  readonly protected: string;
  /**
   * The JWS Unprotected Header (RFC 7515 §7.2.1 `header`). Only the router's one signature over a
   * routing decision carries one: this copy's leaf and inclusion path (see route-tree.ts).
   */
  readonly header?: RouteCopyHeader;
  /** base64url of the signature over `protected + "." + payload` (ASCII). */
  readonly signature: string;
}

/**
 * The unprotected header of a copy countersigned under a routing decision's tree: base64url of
 * this copy's leaf (canonical JSON) and of its inclusion path (the 32-byte hashes concatenated).
 * Neither is signed directly: they lead to the signed root.
 */
// A type, not an interface: JOSE libraries take it as their header-parameters record.
export type RouteCopyHeader = {
  readonly leaf: string;
  readonly path: string;
};

/** `typ` of the origin agency's signature. */
export const ORIGIN_TYP = 'ahub-alert+jws';
/**
 * `typ` of the retired per-copy countersignature (one router signature per copy). The router
 * now signs once per routing decision (`ahub-route-tree+jws`, route-tree.ts); verifiers accept
 * this form during the transition of protocol.md §3.4.
 */
export const ROUTE_TYP = 'ahub-route+jws';

/** The origin agency's protected header. */
export interface OriginHeader {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly typ: typeof ORIGIN_TYP;
  /** Origin agency id; equals the alert's `origin`. */
  readonly agency: string;
  readonly alert_id: string;
  readonly alert_type: string;
  /** `$id` of the schema the alert follows. */
  readonly schema: string;
  /** Equals the alert's `issuedAt`. */
  readonly issued_at: string;
}

/** The retired per-copy countersignature header: who the copy is for, and under which agreement. */
export interface RouteHeader {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly typ: typeof ROUTE_TYP;
  /** The router principal in the trust store (role `router`). */
  readonly router: string;
  readonly recipient: string;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly routed_at: string;
  /** Whether the agreement lets the recipient share the alert onward. */
  readonly onward: boolean;
  /** Alert id, binding the countersignature to this alert even if headers were moved. */
  readonly alert_id: string;
}

/** Default allowance for clocks that run ahead of the verifier's. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5 * 60_000;

const B64URL = /^[A-Za-z0-9_-]*$/;

/** @internal base64url of UTF-8 text (shared with statements.ts). */
export function b64url(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url');
}

/**
 * Decodes base64url, refusing every spelling but the canonical one (RFC 7515 §2: no padding,
 * only `A-Z a-z 0-9 - _`, the unused low bits of the last character zero). Node's decoder
 * accepts `=`, `+`, `/` and ignores the unused bits; a partner's decoder may not. The header and
 * payload are signed as spelled, so a respelling does not verify either, but an origin could
 * sign a non-canonical spelling itself: refusing it at the hub means every partner decodes the
 * bytes the hub decoded.
 */
/** @internal */
export function fromB64url(value: unknown, what: string): Buffer {
  if (typeof value !== 'string' || value.length % 4 === 1 || !B64URL.test(value))
    throw new EnvelopeMalformedError(`${what} is not base64url`);
  const bytes = Buffer.from(value, 'base64url');
  if (bytes.toString('base64url') !== value)
    throw new EnvelopeMalformedError(`${what} is not canonical base64url`);
  return bytes;
}

/** @internal */
export function signingInput(protectedB64: string, payloadB64: string): Buffer {
  return Buffer.from(`${protectedB64}.${payloadB64}`, 'latin1');
}

/**
 * Signs with node:crypto's callback API: the signature is computed on libuv's thread pool
 * (`UV_THREADPOOL_SIZE`, default 4), not on the calling thread, so many run at once. Same bytes
 * as `signSync` (Ed25519 is deterministic).
 */
export function signBytes(alg: SigningAlgorithm, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = nodeCryptoParams(alg, key);
    cryptoSign(p.digest, data, p.key, (err, sig) => (err ? reject(err) : resolve(sig)));
  });
}

/**
 * Verifies with node:crypto's callback API, on libuv's thread pool; the same verdict as
 * `verifySync`, and rejects where it throws. Every verification of core's envelopes and
 * statements goes through it.
 */
export function verifyBytes(
  alg: SigningAlgorithm,
  data: Buffer,
  key: KeyObject,
  sig: Buffer,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const p = nodeCryptoParams(alg, key);
    cryptoVerify(p.digest, data, p.key, sig, (err, ok) => (err ? reject(err) : resolve(ok)));
  });
}

/** Signs a validated alert as its origin agency; the envelope carries one signature. */
export async function signAlert(
  alert: Alert,
  key: SigningKey,
  schemaId: string,
): Promise<GeneralJws> {
  if (alert.origin !== key.principal) {
    throw new HeaderMismatchError(
      'agency',
      `would be ${key.principal} but the alert's origin is ${alert.origin}`,
    );
  }
  const header: OriginHeader = {
    alg: key.alg,
    kid: key.kid,
    typ: ORIGIN_TYP,
    agency: alert.origin,
    alert_id: alert.id,
    alert_type: alert.type,
    schema: schemaId,
    issued_at: alert.issuedAt,
  };
  const protectedB64 = b64url(JSON.stringify(header));
  const payload = b64url(JSON.stringify(alert));
  const signature = await signBytes(key.alg, signingInput(protectedB64, payload), key.privateKey);
  return {
    payload,
    signatures: [{ protected: protectedB64, signature: signature.toString('base64url') }],
  };
}

/**
 * Adds a per-copy countersignature for one recipient: the retired form, kept so that the
 * transition (protocol.md §3.4) can be tested and its vectors regenerated. The router signs with
 * `countersignRoutes` (route-tree.ts), once per routing decision.
 */
export async function countersign(
  jws: GeneralJws,
  key: SigningKey,
  route: Omit<RouteHeader, 'alg' | 'kid' | 'typ' | 'router'>,
): Promise<GeneralJws> {
  const origin = jws.signatures[0];
  if (!origin) throw new SignatureMissingError('there is no origin signature to countersign');
  const header: RouteHeader = {
    alg: key.alg,
    kid: key.kid,
    typ: ROUTE_TYP,
    router: key.principal,
    ...route,
  };
  const protectedB64 = b64url(JSON.stringify(header));
  const signature = await signBytes(
    key.alg,
    signingInput(protectedB64, jws.payload),
    key.privateKey,
  );
  return {
    payload: jws.payload,
    signatures: [origin, { protected: protectedB64, signature: signature.toString('base64url') }],
  };
}

/** A verified alert with the header and key that vouch for it. */
export interface VerifiedAlert {
  readonly alert: Alert;
  readonly header: OriginHeader;
  readonly key: TrustedKey;
}

export interface VerifyOptions {
  readonly trust: TrustStore;
  /** When given, the header's `schema` must be the `$id` registered for the alert's type and version. */
  readonly registry?: SchemaRegistry;
  /** The verifier's clock; defaults to now. */
  readonly now?: Date;
  readonly maxClockSkewMs?: number;
}

/** @internal */
export function parseHeader(sig: JwsSignature | undefined, index: number): Record<string, unknown> {
  if (!sig) throw new SignatureMissingError(`signature ${index} is missing`);
  const bytes = fromB64url(sig.protected, `signature ${index} protected header`);
  const header = parseJsonBytes(bytes, 4);
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new EnvelopeMalformedError(`signature ${index} protected header is not a JSON object`);
  }
  const h = header as Record<string, unknown>;
  // The allow-list is checked before anything else: "none", HS256 and friends never reach crypto.
  if (!isAllowedAlgorithm(h['alg'])) throw new AlgorithmNotAllowedError(h['alg']);
  if ('crit' in h) throw new CritUnsupportedError();
  if ('b64' in h) throw new EnvelopeMalformedError('the "b64" header parameter is not supported');
  if (typeof h['kid'] !== 'string')
    throw new EnvelopeMalformedError(`signature ${index} has no kid`);
  return h;
}

/** @internal */
export function requireString(h: Record<string, unknown>, member: string): string {
  const v = h[member];
  if (typeof v !== 'string')
    throw new EnvelopeMalformedError(`protected header "${member}" must be a string`);
  return v;
}

/** @internal */
export async function checkSignature(
  key: TrustedKey,
  alg: unknown,
  sig: JwsSignature,
  payload: string,
): Promise<void> {
  if (alg !== key.alg) throw new AlgorithmNotAllowedError(alg);
  const signature = fromB64url(sig.signature, 'signature');
  const expectedLength = 64; // Ed25519 and ES256 (IEEE P1363) signatures are both 64 bytes
  if (signature.length !== expectedLength)
    throw new SignatureInvalidError('signature has the wrong length');
  let ok: boolean;
  try {
    ok = await verifyBytes(key.alg, signingInput(sig.protected, payload), key.publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new SignatureInvalidError();
}

/**
 * Verifies the origin agency's signature (signature 0) and returns the alert. Checks, in
 * order: algorithm allow-list, no `crit`, the kid's key belongs to the claimed agency and was
 * valid (and not revoked) at the claimed issued-at, the signature, then that the header agrees
 * with the payload and issued-at is not in the future. Throws a typed error at the first failure.
 */
export async function verifyOrigin(
  jws: GeneralJws,
  options: VerifyOptions,
): Promise<VerifiedAlert> {
  const sig = jws.signatures[0];
  const h = parseHeader(sig, 0);
  if (h['typ'] !== ORIGIN_TYP)
    throw new EnvelopeMalformedError(`signature 0 typ must be ${ORIGIN_TYP}`);
  const agency = requireString(h, 'agency');
  const issuedAtText = requireString(h, 'issued_at');
  const issuedAtMs = parseRfc3339(issuedAtText);
  if (issuedAtMs === undefined)
    throw new EnvelopeMalformedError('protected header "issued_at" is not an RFC 3339 date-time');
  const issuedAt = new Date(issuedAtMs);
  const key = options.trust.resolve(h['kid'] as string, agency, 'agency', issuedAt);
  await checkSignature(key, h['alg'], sig!, jws.payload);

  const value = parseJsonBytes(fromB64url(jws.payload, 'payload'));
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EnvelopeMalformedError('payload is not a JSON object');
  }
  const alert = value as Alert;
  const header = h as unknown as OriginHeader;
  // Step 19 of docs/protocol.md §5.1: each pair is two strings, equal. A value that is not a
  // string, on either side, is a mismatch (two objects or two numbers are never "equal" here,
  // whatever a language's own equality says of them).
  const same = (a: unknown, b: unknown) => typeof a === 'string' && a === b;
  if (!same(alert.origin, agency))
    throw new HeaderMismatchError(
      'agency',
      `is ${agency} but the alert's origin is ${quoteIfForm(alert.origin, PRINCIPAL_FORM, false)}`,
    );
  if (!same(alert.id, header.alert_id))
    throw new HeaderMismatchError('alert_id', 'differs from the alert id');
  if (!same(alert.type, header.alert_type))
    throw new HeaderMismatchError('alert_type', 'differs from the alert type');
  if (!same(alert.issuedAt, issuedAtText))
    throw new HeaderMismatchError('issued_at', 'differs from the alert issuedAt');
  if (options.registry) {
    // Step 20: a version that is not a JSON number (true, "1", [1]) names no schema, so only a
    // header without `schema` passes; a number is compared by value (1.0 is version 1).
    const version = alert.version as unknown;
    const expected =
      typeof version === 'number' ? options.registry.schemaIdFor(alert.type, version) : undefined;
    if (expected !== header.schema)
      throw new HeaderMismatchError(
        'schema',
        `is not the schema of ${quoteIfForm(alert.type, ALERT_TYPE_FORM, false)} v${typeof version === 'number' ? version : quoteIfForm(version, /(?!)/)}`,
      );
  }
  const now = options.now ?? new Date();
  const skew = options.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  if (issuedAt.getTime() - now.getTime() > skew)
    throw new IssuedInFutureError(issuedAtText, now, skew);
  return { alert, header, key };
}

/**
 * Verifies the retired per-copy countersignature (signature 1, `typ` `ahub-route+jws`) and that
 * it was made for `recipient` and this alert. Callers use `verifyCountersignature`
 * (route-tree.ts), which also applies the transition policy for this form.
 */
export async function verifyPerCopyCountersignature(
  jws: GeneralJws,
  options: VerifyOptions & { readonly recipient: string; readonly alertId: string },
): Promise<{ readonly header: RouteHeader; readonly key: TrustedKey }> {
  if (jws.signatures.length < 2)
    throw new SignatureMissingError('the router countersignature is missing');
  if (jws.signatures.length > 2)
    throw new EnvelopeMalformedError('an envelope carries at most two signatures');
  const sig = jws.signatures[1]!;
  const h = parseHeader(sig, 1);
  if (h['typ'] !== ROUTE_TYP)
    throw new EnvelopeMalformedError(`signature 1 typ must be ${ROUTE_TYP}`);
  if (sig.header)
    throw new EnvelopeMalformedError(`a ${ROUTE_TYP} countersignature has no unprotected header`);
  const router = requireString(h, 'router');
  const routedAtMs = parseRfc3339(requireString(h, 'routed_at'));
  if (routedAtMs === undefined)
    throw new EnvelopeMalformedError('protected header "routed_at" is not an RFC 3339 date-time');
  const routedAt = new Date(routedAtMs);
  const key = options.trust.resolve(h['kid'] as string, router, 'router', routedAt);
  await checkSignature(key, h['alg'], sig, jws.payload);
  const header = h as unknown as RouteHeader;
  if (header.recipient !== options.recipient) {
    throw new HeaderMismatchError(
      'recipient',
      `is ${String(header.recipient)}, not ${options.recipient}`,
    );
  }
  if (header.alert_id !== options.alertId)
    throw new HeaderMismatchError('alert_id', 'differs from the alert id');
  const agreement = header.agreement as unknown;
  if (
    typeof agreement !== 'object' ||
    agreement === null ||
    typeof (agreement as { id?: unknown }).id !== 'string' ||
    !Number.isInteger((agreement as { version?: unknown }).version)
  ) {
    throw new EnvelopeMalformedError('countersignature "agreement" must be {id, version}');
  }
  return { header, key };
}
