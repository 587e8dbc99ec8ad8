import type { KeyObject } from 'node:crypto';
import {
  type Issue,
  KeyAgencyMismatchError,
  KeyNotValidAtError,
  KeyRevokedError,
  KeyUnknownError,
  TrustStoreInvalidError,
  quoteIfForm,
} from './errors.js';
import { PRINCIPAL_FORM } from './formats.js';
import { importPublicJwk, type PublicJwk, type SigningAlgorithm } from './keys.js';
import type { SchemaRegistry } from './schema-registry.js';
import { timeOf } from './rfc3339.js';

export const JWKS_SCHEMA_ID = 'https://schemas.alert-hub.example/trust/jwks/v1.json';
export const REVOCATIONS_SCHEMA_ID = 'https://schemas.alert-hub.example/trust/revocations/v1.json';

/** Who a key signs for: an agency signs its alerts, the router countersigns forwards. */
export type PrincipalRole = 'agency' | 'router';

/** One principal's published key set (`certs/trust/<principal>.jwks.json`). */
export interface JwksDocument {
  readonly principal: string;
  readonly role: PrincipalRole;
  readonly name?: string;
  readonly keys: readonly PublicJwk[];
}

/** A revoked key (`certs/trust/revoked.json`). */
export interface Revocation {
  readonly kid: string;
  readonly principal: string;
  readonly revokedAt: string;
  readonly reason: 'keyCompromise' | 'superseded' | 'cessationOfOperation' | 'unspecified';
}

/** A key the store trusts, with what it may be used for. */
export interface TrustedKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly principal: string;
  readonly role: PrincipalRole;
  readonly publicKey: KeyObject;
  readonly jwk: PublicJwk;
  readonly notBefore?: number;
  readonly notAfter?: number;
}

/** Every public key alert-hub trusts and every key it no longer trusts. */
export interface TrustStore {
  /** Principals with their role and display name, sorted by id. */
  readonly principals: readonly { id: string; role: PrincipalRole; name?: string }[];
  /** Ids of every agency (role `agency`), sorted. */
  readonly agencies: readonly string[];
  /** The key with this kid, revoked or not, if the store knows it. */
  get(kid: string): TrustedKey | undefined;
  /** The revocation entry for a kid, if revoked. */
  revocation(kid: string): Revocation | undefined;
  /** Every key of `principal` in `role` that is not revoked for compromise, in document order. */
  keysOf(principal: string, role: PrincipalRole): readonly TrustedKey[];
  /**
   * The keys of `principal` in `role` revoked for compromise. Nothing they sign counts; the router
   * only reads a checkpoint one of them signed before the revocation as a bound its log must
   * still meet (docs/protocol.md §8.3).
   */
  compromisedKeysOf(principal: string, role: PrincipalRole): readonly TrustedKey[];
  /**
   * The key `kid` if it may sign for `principal` in `role` at `at`; otherwise throws
   * `ERR_KEY_UNKNOWN`, `ERR_KEY_AGENCY_MISMATCH`, `ERR_KEY_REVOKED` or `ERR_KEY_NOT_VALID_AT`.
   */
  resolve(kid: string, principal: string, role: PrincipalRole, at: Date): TrustedKey;
}

/**
 * Builds a trust store from JWKS documents and a revocation list, validating each against its
 * schema in `registry` and each key's thumbprint. Every problem is reported at once.
 */
export function createTrustStore(input: {
  readonly jwks: readonly { source: string; document: unknown }[];
  readonly revocations?: { source: string; document: unknown };
  readonly registry: SchemaRegistry;
}): TrustStore {
  const { registry } = input;
  const keys = new Map<string, TrustedKey>();
  const principals = new Map<string, { id: string; role: PrincipalRole; name?: string }>();
  // Every fault of every document, each at its place: a JSON pointer into the documents by
  // source (`/SG-NPARKS.jwks.json/keys/0`), so a caller can tell them apart without the wording.
  const problems: Issue[] = [];
  const at = (source: string, pointer: string, message: string) =>
    problems.push({
      pointer: `/${source.replace(/~/g, '~0').replace(/\//g, '~1')}${pointer}`,
      message,
    });

  for (const { source, document } of input.jwks) {
    const issues = registry.validateDocument(JWKS_SCHEMA_ID, document);
    if (issues.length > 0) {
      for (const i of issues) at(source, i.pointer, i.message);
      continue;
    }
    const doc = document as JwksDocument;
    if (principals.has(doc.principal)) {
      at(source, '/principal', `principal ${doc.principal} is defined twice`);
      continue;
    }
    if (doc.role === 'agency') {
      const country = doc.principal.slice(0, 2);
      if (!/^[A-Z]{2}-/.test(doc.principal) || !registry.countries.has(country)) {
        at(source, '/principal', `agency ${doc.principal} must start with an ISO 3166-1 country`);
        continue;
      }
    }
    principals.set(doc.principal, {
      id: doc.principal,
      role: doc.role,
      ...(doc.name === undefined ? {} : { name: doc.name }),
    });
    doc.keys.forEach((jwk, i) => {
      try {
        const publicKey = importPublicJwk(jwk);
        if (keys.has(jwk.kid))
          throw new Error(`kid ${jwk.kid} is used by ${keys.get(jwk.kid)!.principal} too`);
        keys.set(jwk.kid, {
          kid: jwk.kid,
          alg: jwk.alg,
          principal: doc.principal,
          role: doc.role,
          publicKey,
          jwk,
          ...(jwk.notBefore === undefined ? {} : { notBefore: timeOf(jwk.notBefore) }),
          ...(jwk.notAfter === undefined ? {} : { notAfter: timeOf(jwk.notAfter) }),
        });
      } catch (err) {
        at(source, `/keys/${i}`, (err as Error).message);
      }
    });
  }

  const revoked = new Map<string, Revocation>();
  if (input.revocations) {
    const { source, document } = input.revocations;
    const issues = registry.validateDocument(REVOCATIONS_SCHEMA_ID, document);
    if (issues.length > 0) for (const i of issues) at(source, i.pointer, i.message);
    else for (const r of (document as { revoked: Revocation[] }).revoked) revoked.set(r.kid, r);
  }

  if (problems.length > 0) throw new TrustStoreInvalidError('documents', problems);

  const sortedPrincipals = [...principals.values()].sort((a, b) => a.id.localeCompare(b.id));
  return {
    principals: sortedPrincipals,
    agencies: sortedPrincipals.filter((p) => p.role === 'agency').map((p) => p.id),
    get: (kid) => keys.get(kid),
    revocation: (kid) => revoked.get(kid),
    keysOf: (principal, role) =>
      [...keys.values()].filter(
        (k) =>
          k.principal === principal &&
          k.role === role &&
          revoked.get(k.kid)?.reason !== 'keyCompromise',
      ),
    compromisedKeysOf: (principal, role) =>
      [...keys.values()].filter(
        (k) =>
          k.principal === principal &&
          k.role === role &&
          revoked.get(k.kid)?.reason === 'keyCompromise',
      ),
    resolve(kid, principal, role, at) {
      const key = keys.get(kid);
      if (!key) throw new KeyUnknownError(kid);
      if (key.principal !== principal || key.role !== role) {
        throw new KeyAgencyMismatchError(
          kid,
          `${key.principal} (${key.role})`,
          // The claimed principal is the envelope's, not verified: quoted only in its form.
          `${quoteIfForm(principal, PRINCIPAL_FORM, false)} (${role})`,
        );
      }
      const r = revoked.get(kid);
      if (r) throw new KeyRevokedError(kid, r.revokedAt, r.reason);
      const t = at.getTime();
      if (
        Number.isNaN(t) ||
        (key.notBefore !== undefined && t < key.notBefore) ||
        (key.notAfter !== undefined && t > key.notAfter)
      ) {
        throw new KeyNotValidAtError(
          kid,
          Number.isNaN(t) ? 'an invalid time' : at.toISOString(),
          `${key.jwk.notBefore ?? '-∞'} to ${key.jwk.notAfter ?? '+∞'}`,
        );
      }
      return key;
    },
  };
}
