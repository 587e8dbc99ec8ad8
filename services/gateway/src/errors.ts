import { AlertHubError, type Issue } from '@alert-hub/core';

/**
 * The gateway's one table from error code to HTTP status. Errors are translated to HTTP here
 * and nowhere else; the body is always `{error: {code, message, details?}}`, details being
 * `{pointer, message}` per problem.
 */
export const HTTP_STATUS: Readonly<Record<string, number>> = {
  ERR_BAD_REQUEST: 400,
  ERR_BAD_JSON: 400,
  ERR_PAYLOAD_MALFORMED: 400,
  ERR_UNAUTHENTICATED: 401,
  ERR_FORBIDDEN: 403,
  ERR_NOT_FOUND: 404,
  ERR_ALERT_ID_CONFLICT: 409,
  ERR_BODY_TOO_LARGE: 413,
  ERR_ALERT_TOO_LARGE: 413,
  ERR_UNSUPPORTED_MEDIA_TYPE: 415,
  ERR_SCHEMA_INVALID: 422,
  ERR_SCHEMA_UNKNOWN: 422,
  ERR_ORIGIN_MISMATCH: 422,
  // The router would refuse the alert: said before answering 202.
  ERR_KEY_NOT_VALID_AT: 422,
  ERR_KEY_REVOKED: 422,
  ERR_KEY_UNKNOWN: 422,
  ERR_KEY_AGENCY_MISMATCH: 422,
  ERR_ISSUED_AT_FUTURE: 422,
  ERR_BATCH_TOO_LARGE: 413,
  ERR_NATS_UNAVAILABLE: 503,
  ERR_OVERLOADED: 503,
  ERR_NOT_READY: 503,
  ERR_INTERNAL: 500,
};

/** A refusal the gateway reports to an HTTP client. */
export class GatewayError extends AlertHubError {
  readonly details: readonly Issue[] | undefined;
  constructor(
    code: keyof typeof HTTP_STATUS,
    message: string,
    details?: readonly Issue[],
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.details = details;
  }
}

/** NATS or JetStream cannot take the alert now; nothing was published. Retry with the same id. */
export class NatsUnavailableError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_NATS_UNAVAILABLE', message, undefined, options);
  }
}

/** The HTTP status of an error code (500 for anything unknown). */
export function statusOf(code: string): number {
  return HTTP_STATUS[code] ?? 500;
}

/** The JSON body of an error response. */
export function errorBody(code: string, message: string, details?: readonly Issue[]) {
  return { error: { code, message, ...(details && details.length > 0 ? { details } : {}) } };
}
