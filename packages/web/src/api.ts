/** The error envelope every alert-hub service answers with. */
export interface ApiError {
  readonly code: string;
  readonly message: string;
  readonly details?: readonly { readonly pointer: string; readonly message: string }[];
}

export type ApiResult<T> =
  | { readonly ok: true; readonly status: number; readonly body: T }
  | { readonly ok: false; readonly status: number; readonly error: ApiError };

/** Header the services require on a state-changing request authenticated by the session cookie. */
export const CSRF_HEADER = 'x-alert-hub-console';

/**
 * Calls the service that served the page (same origin only). The session cookie is HttpOnly:
 * this code never sees the token after sign-in.
 */
export async function callApi<T>(
  path: string,
  init: { method?: string; body?: unknown } = {},
): Promise<ApiResult<T>> {
  let res: Response;
  try {
    res = await fetch(path, {
      method: init.method ?? 'GET',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: {
        accept: 'application/json',
        [CSRF_HEADER]: '1',
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch {
    return { ok: false, status: 0, error: { code: 'ERR_NETWORK', message: 'network error' } };
  }
  const text = await res.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.ok) return { ok: true, status: res.status, body: body as T };
  const error = (body as { error?: ApiError } | undefined)?.error ?? {
    code: 'ERR_HTTP',
    message: `HTTP ${res.status}`,
  };
  return { ok: false, status: res.status, error };
}
