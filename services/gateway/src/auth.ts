import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiClient } from './config.js';

export type Role = ApiClient['roles'][number];

/**
 * Finds the client a bearer token belongs to. The presented token is hashed and compared with
 * every client's hash in constant time, without stopping at the first match, so neither the
 * comparison nor the position of a client in the list leaks through timing.
 */
export function authenticate(
  clients: readonly ApiClient[],
  authorization: string | undefined,
): ApiClient | undefined {
  if (!authorization) return undefined;
  const m = /^Bearer ([A-Za-z0-9_\-.~+/]+=*)$/.exec(authorization);
  if (!m) return undefined;
  const presented = createHash('sha256').update(m[1]!, 'utf8').digest();
  let found: ApiClient | undefined;
  for (const c of clients) {
    const expected = Buffer.from(c.tokenSha256, 'hex');
    if (expected.length === presented.length && timingSafeEqual(expected, presented) && !found)
      found = c;
  }
  return found;
}
