import { createHash, randomBytes } from 'node:crypto';

/** Token prefix: lets secret scanners recognise a leaked alert-hub token. */
export const TOKEN_PREFIX = 'ahub_';

/** A new random bearer token (256 bits) and the SHA-256 to put in a service's configuration. */
export function createToken(): { token: string; sha256: string } {
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, sha256: hashToken(token) };
}

/** Hex SHA-256 of a token: what configurations store instead of the token. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}
