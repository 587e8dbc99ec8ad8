import type { AnyErrorCode, Issue } from '@alert-hub/core';
import { HttpError, HttpErrorCode } from '@alert-hub/runtime';

// The table from code to HTTP status and the error envelope are runtime's, shared with the
// router (HTTP_STATUS, statusOf, errorBody); the gateway's codes are HttpErrorCode's.
export { HTTP_STATUS, errorBody, statusOf } from '@alert-hub/runtime';

/** A refusal the gateway reports to an HTTP client. */
export class GatewayError extends HttpError {
  constructor(
    code: AnyErrorCode,
    message: string,
    details?: readonly Issue[],
    options?: { cause?: unknown },
  ) {
    super(code, message, details, options);
  }
}

/** NATS or JetStream cannot take the alert now; nothing was published. Retry with the same id. */
export class NatsUnavailableError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(HttpErrorCode.NatsUnavailable, message, undefined, options);
  }
}
