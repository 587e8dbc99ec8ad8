import { findTokenHolder } from '@alert-hub/runtime';
import type { ApiClient } from './config.js';

export type Role = ApiClient['roles'][number];

/** The API client a bearer token belongs to (hashed, compared in constant time over every client). */
export function authenticate(
  clients: readonly ApiClient[],
  authorization: string | undefined,
): ApiClient | undefined {
  return findTokenHolder(clients, authorization);
}
