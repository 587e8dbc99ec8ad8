import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

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

/**
 * The holder of a bearer token among `holders` (each with the token's hex SHA-256), or undefined.
 * The presented token is hashed and compared with every holder in constant time, without
 * stopping at the first match, so neither a comparison nor a holder's position leaks through timing.
 */
export function findTokenHolder<T extends { readonly tokenSha256: string }>(
  holders: readonly T[],
  authorization: string | undefined,
): T | undefined {
  const m = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(authorization ?? '');
  if (!m) return undefined;
  const presented = createHash('sha256').update(m[1]!, 'utf8').digest();
  let found: T | undefined;
  for (const h of holders) {
    const expected = Buffer.from(h.tokenSha256, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && !found)
      found = h;
  }
  return found;
}
