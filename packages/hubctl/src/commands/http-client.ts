import { Option } from 'commander';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { AlertHubError } from '@alert-hub/core';

/** hubctl could not reach a service: the message names the URL and the cause. */
export class NetworkError extends AlertHubError {
  readonly url: string;
  constructor(url: string, cause: unknown) {
    super(HubctlErrorCode.Network, `cannot reach ${url}: ${describeNetworkCause(cause)}`, {
      cause,
    });
    this.url = url;
  }
}

/** `fetch failed` says nothing; its cause (ECONNREFUSED 127.0.0.1:8080, a TLS error) does. */
function describeNetworkCause(err: unknown): string {
  const parts: string[] = [];
  for (let e = err as { message?: string; code?: string; cause?: unknown } | undefined; e;) {
    const text = [e.code, e.message].filter(Boolean).join(' ');
    if (text && text !== 'fetch failed' && !parts.some((p) => p.includes(text))) parts.push(text);
    e = e.cause as typeof e;
  }
  return parts.join(': ') || 'fetch failed';
}

/** `fetch`, with network failures turned into a `NetworkError` that names the URL and cause. */
export async function request(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    throw new NetworkError(url, err);
  }
}

/**
 * The JSON body of an answer. One that is not JSON (a proxy's error page, a server that is not
 * the gateway) is `ERR_REQUEST_REFUSED`, naming the URL and the HTTP status.
 */
export async function jsonBody(res: Response, url: string): Promise<unknown> {
  try {
    return await res.json();
  } catch {
    throw new HubctlError(
      HubctlErrorCode.RequestRefused,
      `${url} answered HTTP ${res.status} with a body that is not JSON`,
      { status: res.status },
    );
  }
}

/**
 * {@link request}, then the answer's JSON body: a refusal is thrown as `ERR_REQUEST_REFUSED` with
 * the service's code and issues (and its status), a body that is not JSON reads as undefined.
 */
export async function requestJson(url: string, init?: RequestInit): Promise<unknown> {
  const res = await request(url, init);
  const body: unknown = await res.json().catch(() => undefined);
  if (!res.ok)
    throw new HubctlError(
      HubctlErrorCode.RequestRefused,
      describeError(body, res.status).join('\n'),
      { status: res.status },
    );
  return body;
}

/** Options every command that talks to a gateway takes (flags, or AHUB_GATEWAY_URL / AHUB_TOKEN). */
export function gatewayOptions(): Option[] {
  return [
    new Option('--gateway <url>', 'gateway base URL')
      .env('AHUB_GATEWAY_URL')
      .default('http://127.0.0.1:8080'),
    new Option(
      '--token <token>',
      'API token (prefer the AHUB_TOKEN variable: flags show in process lists)',
    ).env('AHUB_TOKEN'),
  ];
}

export interface GatewayTarget {
  gateway: string;
  token?: string;
}

export function authHeaders(t: GatewayTarget): Record<string, string> {
  if (!t.token)
    throw new HubctlError(
      HubctlErrorCode.Prerequisite,
      'no API token: set AHUB_TOKEN or pass --token',
    );
  return { authorization: `Bearer ${t.token}` };
}

/** An error body of the gateway, as lines for a terminal. */
export function describeError(body: unknown, status: number): string[] {
  const e = (
    body as
      | {
          error?: {
            code?: string;
            message?: string;
            details?: { pointer: string; message: string }[];
          };
        }
      | undefined
  )?.error;
  if (!e) return [`HTTP ${status}`];
  return [
    `${e.message ?? 'refused'} [${e.code ?? status}]`,
    ...(e.details ?? []).map((d) => `  ${d.pointer || '/'}: ${d.message}`),
  ];
}
