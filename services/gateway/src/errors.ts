import type { AnyErrorCode, Issue } from '@alert-hub/core';
import { HttpError, HttpErrorCode } from '@alert-hub/runtime';

// The table from code to HTTP status and the error envelope are runtime's, shared with the
// router (HTTP_STATUS, statusOf, errorBody); the gateway's codes are HttpErrorCode's.
export { HTTP_STATUS, errorBody, statusOf } from '@alert-hub/runtime';

/** A refusal the gateway reports to an HTTP client. */
export class GatewayError extends HttpError {
  /** The alert's id, once the gateway has given it one: every answer about an alert names it. */
  alertId: string | undefined;
  constructor(
    code: AnyErrorCode,
    message: string,
    details?: readonly Issue[],
    options?: { cause?: unknown },
  ) {
    super(code, message, details, options);
  }
}

/**
 * The stream that stores this agency's alerts refused it for want of room (its byte or message
 * limit): JetStream stored nothing. Unlike {@link NatsUnavailableError}, a prompt resend does not
 * help: room returns when the oldest messages age out or the agency's quota is raised.
 */
export class InboundStreamFullError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(HttpErrorCode.InboundStreamFull, message, undefined, options);
  }
}

/**
 * NATS or JetStream cannot take the alert now. Either nothing was sent (NATS was known to be
 * down) or the publish got no answer in time, and the alert may still be stored: the client
 * resends with the same id, which is never a second alert.
 */
export class NatsUnavailableError extends GatewayError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(HttpErrorCode.NatsUnavailable, message, undefined, options);
  }
}
