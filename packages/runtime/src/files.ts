import {
  chmodSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
  existsSync,
  renameSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import {
  createSchemaRegistry,
  createTrustStore,
  importSigningKey,
  type PrivateJwk,
  type SchemaDocument,
  type SchemaRegistry,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import { KeyFilePermissionsError, KeyFileUnreadableError } from './errors.js';

/** Reads every `*.schema.json` in `dir`. */
export function loadSchemas(dir: string): SchemaDocument[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.schema.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as SchemaDocument);
}

/** Compiles the schemas of `dir` into a registry. */
export function loadSchemaRegistry(dir: string): SchemaRegistry {
  return createSchemaRegistry(loadSchemas(dir));
}

/** File name of the revocation list inside a trust directory. */
export const REVOCATIONS_FILE = 'revoked.json';

/**
 * Loads a trust directory: one `<principal>.jwks.json` per agency or router, and an optional
 * `revoked.json`. Throws `ERR_TRUST_STORE_INVALID` listing every problem.
 */
export function loadTrustStore(dir: string, registry: SchemaRegistry): TrustStore {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jwks.json'))
    .sort();
  const jwks = files.map((f) => ({
    source: f,
    document: JSON.parse(readFileSync(join(dir, f), 'utf8')) as unknown,
  }));
  const revPath = join(dir, REVOCATIONS_FILE);
  const revocations = existsSync(revPath)
    ? { source: REVOCATIONS_FILE, document: JSON.parse(readFileSync(revPath, 'utf8')) as unknown }
    : undefined;
  return createTrustStore({ jwks, registry, ...(revocations ? { revocations } : {}) });
}

/**
 * Reads a private JWK for `principal`. Refuses a file that group or others can access (mode
 * must be 0600 or stricter) with `ERR_KEY_FILE_PERMISSIONS`; the key itself is never logged.
 */
export function readSigningKey(file: string, principal: string): SigningKey {
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch (cause) {
    throw new KeyFileUnreadableError(file, { cause });
  }
  if ((mode & 0o077) !== 0) throw new KeyFilePermissionsError(file, mode);
  let jwk: PrivateJwk;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8')) as PrivateJwk;
  } catch (cause) {
    throw new KeyFileUnreadableError(file, { cause });
  }
  return importSigningKey(jwk, principal);
}

/** Writes a private JWK with mode 0600 in a directory of mode 0700, atomically. */
export function writePrivateJwk(file: string, jwk: PrivateJwk): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(jwk, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** Writes a JSON document atomically (write to a temporary file, then rename). */
export function writeJsonAtomic(file: string, value: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(value, null, 2)}\n`);
  renameSync(tmp, file);
}
