import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTrustStore,
  generateSigningJwk,
  type JwksDocument,
  type PrincipalRole,
  type PublicJwk,
  type Revocation,
  type SchemaRegistry,
  type SigningAlgorithm,
} from '@alert-hub/core';
import {
  DEFAULT_SCHEMAS_DIR,
  REVOCATIONS_FILE,
  loadSchemaRegistry,
  writeJsonAtomic,
  writePrivateJwk,
} from '@alert-hub/runtime/files';
import { KeyAdminError, OperatorErrorCode } from './errors.js';

/**
 * The on-disk key layout under a certs directory:
 *
 *   trust/<principal>.jwks.json      public keys, committed and shared with every partner
 *   trust/revoked.json               revoked kids
 *   private/<principal>/<kid>.jwk    private keys, mode 0600, never committed (.gitignore)
 */
export function keyPaths(certsDir: string, principal?: string) {
  return {
    trustDir: join(certsDir, 'trust'),
    privateDir: join(certsDir, 'private'),
    jwksFile: principal ? join(certsDir, 'trust', `${principal}.jwks.json`) : undefined,
    principalPrivateDir: principal ? join(certsDir, 'private', principal) : undefined,
  };
}

const DAY_MS = 24 * 3600_000;

function readJwks(file: string): JwksDocument | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as JwksDocument) : undefined;
}

/** A new key for `principal`: private JWK written 0600, public key added to its JWKS. */
export function generateKey(options: {
  certsDir: string;
  principal: string;
  role?: PrincipalRole;
  name?: string;
  alg?: SigningAlgorithm;
  validDays?: number;
  now?: Date;
  /** The schemas the trust store is checked with (default: the repository's `schemas/`). */
  registry?: SchemaRegistry;
}): { kid: string; privateFile: string; jwksFile: string; publicJwk: PublicJwk } {
  const now = options.now ?? new Date();
  const paths = keyPaths(options.certsDir, options.principal);
  const existing = readJwks(paths.jwksFile!);
  const role = options.role ?? existing?.role ?? 'agency';
  if (existing && existing.role !== role) {
    throw new KeyAdminError(
      OperatorErrorCode.KeyRoleConflict,
      `${options.principal} is already a ${existing.role} in the trust store, not a ${role}`,
    );
  }
  const { privateJwk, publicJwk } = generateSigningJwk(options.alg, {
    notBefore: now.toISOString(),
    notAfter: new Date(now.getTime() + (options.validDays ?? 730) * DAY_MS).toISOString(),
  });
  const name = options.name ?? existing?.name;
  const doc: JwksDocument = {
    principal: options.principal,
    role,
    ...(name === undefined ? {} : { name }),
    keys: [...(existing?.keys ?? []), publicJwk],
  };
  // The file as every service will load it (an agency id starts with an ISO 3166-1 country, a
  // principal has the trust store's form): a file that would stop the hub is never written.
  // Throws ERR_TRUST_STORE_INVALID with the reason; nothing is written.
  createTrustStore({
    jwks: [{ source: `${options.principal}.jwks.json`, document: doc }],
    registry: options.registry ?? loadSchemaRegistry(DEFAULT_SCHEMAS_DIR),
  });
  const privateFile = join(paths.principalPrivateDir!, `${publicJwk.kid}.jwk`);
  writePrivateJwk(privateFile, privateJwk);
  writeJsonAtomic(paths.jwksFile!, doc);
  return { kid: publicJwk.kid, privateFile, jwksFile: paths.jwksFile!, publicJwk };
}

/**
 * Rotates `principal`'s key: a new key valid from now, and every older key's validity cut to
 * end `overlapDays` from now, so alerts signed just before the switch still verify.
 */
export function rotateKey(options: {
  certsDir: string;
  principal: string;
  overlapDays?: number;
  alg?: SigningAlgorithm;
  validDays?: number;
  now?: Date;
}): { kid: string; privateFile: string; retired: { kid: string; notAfter: string }[] } {
  const now = options.now ?? new Date();
  const paths = keyPaths(options.certsDir, options.principal);
  const existing = readJwks(paths.jwksFile!);
  if (!existing)
    throw new KeyAdminError(
      OperatorErrorCode.KeyNoneToRotate,
      `${options.principal} has no keys to rotate; use "hubctl keys generate" first`,
    );
  const cutoff = new Date(now.getTime() + (options.overlapDays ?? 7) * DAY_MS).toISOString();
  const retired: { kid: string; notAfter: string }[] = [];
  const keys = existing.keys.map((k) => {
    if (k.notAfter !== undefined && k.notAfter <= cutoff) return k;
    retired.push({ kid: k.kid, notAfter: cutoff });
    return { ...k, notAfter: cutoff };
  });
  writeJsonAtomic(paths.jwksFile!, { ...existing, keys });
  const generated = generateKey({
    certsDir: options.certsDir,
    principal: options.principal,
    role: existing.role,
    now,
    ...(options.alg === undefined ? {} : { alg: options.alg }),
    ...(options.validDays === undefined ? {} : { validDays: options.validDays }),
  });
  return { kid: generated.kid, privateFile: generated.privateFile, retired };
}

/** Adds a kid to `trust/revoked.json`. A revoked key verifies nothing from then on. */
export function revokeKey(options: {
  certsDir: string;
  kid: string;
  reason: Revocation['reason'];
  now?: Date;
}): Revocation {
  const { trustDir } = keyPaths(options.certsDir);
  const owner = readdirSync(trustDir)
    .filter((f) => f.endsWith('.jwks.json'))
    .map((f) => JSON.parse(readFileSync(join(trustDir, f), 'utf8')) as JwksDocument)
    .find((d) => d.keys.some((k) => k.kid === options.kid));
  if (!owner)
    throw new KeyAdminError(
      OperatorErrorCode.KeyKidUnknown,
      `no key in ${trustDir} has kid ${options.kid}`,
    );
  const file = join(trustDir, REVOCATIONS_FILE);
  const list = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { revoked: Revocation[] })
    : { revoked: [] };
  const existing = list.revoked.find((r) => r.kid === options.kid);
  if (existing) return existing;
  const entry: Revocation = {
    kid: options.kid,
    principal: owner.principal,
    revokedAt: (options.now ?? new Date()).toISOString(),
    reason: options.reason,
  };
  writeJsonAtomic(file, { revoked: [...list.revoked, entry] });
  return entry;
}
