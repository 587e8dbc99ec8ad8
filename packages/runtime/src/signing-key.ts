import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { PrincipalRole, SchemaRegistry, SigningKey, TrustStore } from '@alert-hub/core';
import { KeyNoneValidError } from './errors.js';
import { loadTrustStore, readSigningKey } from './files.js';

/**
 * Loads a signing key from a private JWK file, or from a directory of them (as `hubctl keys`
 * lays out): the key with the latest `notBefore` that is already valid, so that a rotation
 * takes effect at the next start or reload without touching the configuration.
 */
export function loadSigningKey(
  path: string,
  principal: string,
  now: Date = new Date(),
): SigningKey {
  if (!statSync(path).isDirectory()) return readSigningKey(path, principal);
  const candidates = readdirSync(path)
    .filter((f) => f.endsWith('.jwk'))
    .map((f) => readSigningKey(join(path, f), principal))
    .filter(
      (k) =>
        (k.publicJwk.notBefore ?? '') <= now.toISOString() &&
        (k.publicJwk.notAfter === undefined || k.publicJwk.notAfter >= now.toISOString()),
    )
    .sort((a, b) => (a.publicJwk.notBefore ?? '').localeCompare(b.publicJwk.notBefore ?? ''));
  const key = candidates[candidates.length - 1];
  if (!key) throw new KeyNoneValidError(path, now);
  return key;
}

/**
 * Every signing key at `path` (a private JWK file, or each `.jwk` of a directory), valid now or
 * not: what this service holds, as opposed to what a trust store says it may hold.
 */
export function heldSigningKeys(path: string, principal: string): SigningKey[] {
  if (!statSync(path).isDirectory()) return [readSigningKey(path, principal)];
  return readdirSync(path)
    .filter((f) => f.endsWith('.jwk'))
    .map((f) => readSigningKey(join(path, f), principal));
}

/**
 * Loads the trust store and this service's signing key together, and says (in `warning`) when
 * the key is not published in the trust store for `principal` in `role`: everything it signs
 * would then be refused by the partners. Used at start and on every reload.
 */
export function loadTrustAndKey(o: {
  trustDir: string;
  registry: SchemaRegistry;
  signingKey: string;
  principal: string;
  role: PrincipalRole;
}): { trust: TrustStore; key: SigningKey; warning?: string } {
  const trust = loadTrustStore(o.trustDir, o.registry);
  const key = loadSigningKey(o.signingKey, o.principal);
  const published = trust.get(key.kid);
  const ok =
    published !== undefined && published.principal === o.principal && published.role === o.role;
  return ok
    ? { trust, key }
    : {
        trust,
        key,
        warning: `signing key ${key.kid} is not in the trust store as ${o.principal} (${o.role}): partners will refuse what it signs`,
      };
}
