import {
  createHash,
  sign as cryptoSign,
  verify as cryptoVerify,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { KeyInvalidError } from './errors.js';

/** JWS algorithms alert-hub signs and verifies with; every other one is refused. */
export const ALLOWED_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type SigningAlgorithm = (typeof ALLOWED_ALGORITHMS)[number];
/** The algorithm new keys use unless told otherwise. */
export const DEFAULT_ALGORITHM: SigningAlgorithm = 'EdDSA';

/** A public JWK as it appears in the trust store. */
export interface PublicJwk {
  readonly kty: 'OKP' | 'EC';
  readonly crv: 'Ed25519' | 'P-256';
  readonly x: string;
  readonly y?: string;
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly use?: 'sig';
  /** RFC 3339: the key signs nothing issued before this instant. */
  readonly notBefore?: string;
  /** RFC 3339: the key signs nothing issued after this instant. */
  readonly notAfter?: string;
}

/** A private JWK as `hubctl keys generate` writes it (mode 0600, never committed). */
export interface PrivateJwk extends PublicJwk {
  readonly d: string;
}

/** A loaded private key, ready for {@link signAlert}. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** The agency (or the router) this key signs for. */
  readonly principal: string;
  readonly privateKey: KeyObject;
  readonly publicJwk: PublicJwk;
}

/** True for an algorithm on the allow-list. */
export function isAllowedAlgorithm(alg: unknown): alg is SigningAlgorithm {
  return alg === 'EdDSA' || alg === 'ES256';
}

/** The algorithm a key's type and curve imply, or undefined for any other key. */
function algorithmOf(jwk: { kty?: unknown; crv?: unknown }): SigningAlgorithm | undefined {
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  return undefined;
}

/**
 * RFC 7638 JWK thumbprint (SHA-256, base64url): the hash of the key's required members in
 * lexicographic order. alert-hub uses it as the `kid`, so a kid names exactly one key.
 */
export function jwkThumbprint(jwk: { kty: string; crv: string; x: string; y?: string }): string {
  const canonical =
    jwk.kty === 'EC'
      ? `{"crv":${JSON.stringify(jwk.crv)},"kty":"EC","x":${JSON.stringify(jwk.x)},"y":${JSON.stringify(jwk.y)}}`
      : `{"crv":${JSON.stringify(jwk.crv)},"kty":${JSON.stringify(jwk.kty)},"x":${JSON.stringify(jwk.x)}}`;
  return createHash('sha256').update(canonical).digest('base64url');
}

/**
 * Checks a public JWK and turns it into a node:crypto key. The `kid` must be the key's RFC 7638
 * thumbprint and `alg` must match the key type, so neither can be swapped for another key's.
 */
export function importPublicJwk(jwk: PublicJwk): KeyObject {
  const alg = algorithmOf(jwk);
  if (!alg)
    throw new KeyInvalidError(`key ${jwk.kid}: only Ed25519 (OKP) and P-256 (EC) keys are allowed`);
  if (jwk.alg !== alg)
    throw new KeyInvalidError(`key ${jwk.kid}: alg ${jwk.alg} does not fit a ${jwk.crv} key`);
  if ('d' in jwk)
    throw new KeyInvalidError(`key ${jwk.kid}: a public key set must not contain private members`);
  const expected = jwkThumbprint(jwk);
  if (jwk.kid !== expected) {
    throw new KeyInvalidError(`key ${jwk.kid}: kid must be the RFC 7638 thumbprint ${expected}`);
  }
  try {
    const { kty, crv, x, y } = jwk;
    return createPublicKey({
      key: y === undefined ? { kty, crv, x } : { kty, crv, x, y },
      format: 'jwk',
    });
  } catch (cause) {
    throw new KeyInvalidError(`key ${jwk.kid}: not a usable public key`, { cause });
  }
}

/** Loads a private JWK for signing on behalf of `principal`. */
export function importSigningKey(jwk: PrivateJwk, principal: string): SigningKey {
  if (typeof jwk !== 'object' || jwk === null || typeof jwk.d !== 'string') {
    throw new KeyInvalidError('a signing key must be a private JWK (with "d")');
  }
  const alg = algorithmOf(jwk);
  if (!alg) throw new KeyInvalidError('only Ed25519 (OKP) and P-256 (EC) signing keys are allowed');
  const { d, ...pub } = jwk;
  const kid = jwkThumbprint(pub);
  if (jwk.kid !== undefined && jwk.kid !== kid) {
    throw new KeyInvalidError(`signing key kid ${jwk.kid} is not its RFC 7638 thumbprint ${kid}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: { ...pub, d }, format: 'jwk' });
  } catch (cause) {
    throw new KeyInvalidError('not a usable private key', { cause });
  }
  return { kid, alg, principal, privateKey, publicJwk: { ...pub, kid, alg, use: 'sig' } };
}

/**
 * A new key pair whose key objects share nothing with node:crypto's key generation job: the job
 * hands the keys out as DER, and they are imported afresh. On Node.js 20 (20.20.2), exporting a
 * generated key as a JWK deadlocks the thread when the garbage collector finalises the job that
 * made it during the export (the export holds the key's lock while it allocates; the job's
 * destructor takes the same lock): a loop of `generateKeyPairSync` and `export({ format: 'jwk' })`
 * hung within a few thousand keys, and a CI run hung in a test that made 101 agencies' keys.
 * Node.js 24 does not. `packages/core/test/keys.test.ts` runs such a loop.
 */
export function newKeyPair(alg: SigningAlgorithm = DEFAULT_ALGORITHM): {
  privateKey: KeyObject;
  publicKey: KeyObject;
} {
  const privateKeyEncoding = { format: 'der', type: 'pkcs8' } as const;
  const publicKeyEncoding = { format: 'der', type: 'spki' } as const;
  const der =
    alg === 'EdDSA'
      ? generateKeyPairSync('ed25519', { privateKeyEncoding, publicKeyEncoding })
      : generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding, publicKeyEncoding });
  return {
    privateKey: createPrivateKey({ key: der.privateKey, format: 'der', type: 'pkcs8' }),
    publicKey: createPublicKey({ key: der.publicKey, format: 'der', type: 'spki' }),
  };
}

/** A new key pair, as private and public JWKs with `kid`, `alg` and validity set. */
export function generateSigningJwk(
  alg: SigningAlgorithm = DEFAULT_ALGORITHM,
  validity: { notBefore?: string; notAfter?: string } = {},
): { privateJwk: PrivateJwk; publicJwk: PublicJwk } {
  const exported = newKeyPair(alg).privateKey.export({ format: 'jwk' }) as {
    kty: 'OKP' | 'EC';
    crv: 'Ed25519' | 'P-256';
    x: string;
    y?: string;
    d: string;
  };
  const { d, ...pub } = exported;
  const kid = jwkThumbprint(pub);
  const publicJwk: PublicJwk = { ...pub, kid, alg, use: 'sig', ...validity };
  return { privateJwk: { ...publicJwk, d }, publicJwk };
}

/**
 * node:crypto's parameters for a JWS algorithm: Ed25519 takes no digest; ES256 is SHA-256 with
 * the 64-byte IEEE P1363 signature form JWS uses (not DER).
 */
export function nodeCryptoParams(
  alg: SigningAlgorithm,
  key: KeyObject,
): { digest: string | null; key: KeyObject | { key: KeyObject; dsaEncoding: 'ieee-p1363' } } {
  return alg === 'EdDSA'
    ? { digest: null, key }
    : { digest: 'sha256', key: { key, dsaEncoding: 'ieee-p1363' } };
}

/** Signs `data` now, on this thread (for a single signature off the hot path). */
export function signSync(alg: SigningAlgorithm, data: Buffer, privateKey: KeyObject): Buffer {
  const p = nodeCryptoParams(alg, privateKey);
  return cryptoSign(p.digest, data, p.key);
}

/** Verifies `signature` over `data` now, on this thread. */
export function verifySync(
  alg: SigningAlgorithm,
  data: Buffer,
  publicKey: KeyObject,
  signature: Buffer,
): boolean {
  const p = nodeCryptoParams(alg, publicKey);
  return cryptoVerify(p.digest, data, p.key, signature);
}
