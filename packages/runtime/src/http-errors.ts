import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyServerOptions } from 'fastify';
import { AlertHubError, ErrorCode, type AnyErrorCode, type Issue } from '@alert-hub/core';

/**
 * The codes the services answer HTTP requests with, beyond core's, merged into core's
 * ErrorCodeTable. Fastify's and Node's own refusals (a bad URL, a too long path or header, a
 * body over the limit, a wrong media type) are translated to these too.
 */
export const HttpErrorCode = {
  BadRequest: 'ERR_BAD_REQUEST',
  BadJson: 'ERR_BAD_JSON',
  Unauthenticated: 'ERR_UNAUTHENTICATED',
  Forbidden: 'ERR_FORBIDDEN',
  /** A console's sign-in without the console's header (`x-alert-hub-console: 1`). */
  ConsoleHeaderRequired: 'ERR_CONSOLE_HEADER_REQUIRED',
  NotFound: 'ERR_NOT_FOUND',
  RequestTimeout: 'ERR_REQUEST_TIMEOUT',
  AlertIdConflict: 'ERR_ALERT_ID_CONFLICT',
  AlertIdAmbiguous: 'ERR_ALERT_ID_AMBIGUOUS',
  BodyTooLarge: 'ERR_BODY_TOO_LARGE',
  AlertTooLarge: 'ERR_ALERT_TOO_LARGE',
  BatchTooLarge: 'ERR_BATCH_TOO_LARGE',
  UriTooLong: 'ERR_URI_TOO_LONG',
  UnsupportedMediaType: 'ERR_UNSUPPORTED_MEDIA_TYPE',
  OriginMismatch: 'ERR_ORIGIN_MISMATCH',
  HeadersTooLarge: 'ERR_HEADERS_TOO_LARGE',
  Internal: 'ERR_INTERNAL',
  NatsUnavailable: 'ERR_NATS_UNAVAILABLE',
  /**
   * The hub answered a request of this service with something that is not an answer of the
   * protocol (a proof-of-delivery reply that is not strict JSON of its shape): nothing in it is
   * used. Not the client's fault, and not one a prompt retry is known to mend.
   */
  HubReplyInvalid: 'ERR_HUB_REPLY_INVALID',
  /** The hub's router answered that it failed (its own fault, logged there): retry later. */
  HubInternal: 'ERR_HUB_INTERNAL',
  /**
   * The stream that stores this agency's alerts (its own inbound stream at the hub, or its leaf's
   * outbox) is full: nothing was stored, and nothing will be until its oldest messages age out or
   * the hub's operator raises the agency's quota. No other agency is affected.
   */
  InboundStreamFull: 'ERR_INBOUND_STREAM_FULL',
  Overloaded: 'ERR_OVERLOADED',
  NotReady: 'ERR_NOT_READY',
  /** More requests than the caller may make per second: retry after `Retry-After`. */
  RateLimited: 'ERR_RATE_LIMITED',
  /** The dead letter was requeued before: a dead letter is requeued once. */
  DeadLetterRequeued: 'ERR_DEADLETTER_REQUEUED',
  /** The dead letter cannot be requeued (truncated, not an inbound message, digest differs). */
  DeadLetterNotRequeueable: 'ERR_DEADLETTER_NOT_REQUEUEABLE',
  /** The alert was routed since: requeueing it would forward it twice. */
  AlertAlreadyRouted: 'ERR_ALERT_ALREADY_ROUTED',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<HttpErrorCode, true> {}
}

/**
 * The one table from error code to HTTP status, for the gateway and the router. A code that is
 * not in it answers 500.
 */
export const HTTP_STATUS: Readonly<Partial<Record<AnyErrorCode, number>>> = {
  [HttpErrorCode.BadRequest]: 400,
  [HttpErrorCode.BadJson]: 400,
  [ErrorCode.PayloadMalformed]: 400,
  [HttpErrorCode.Unauthenticated]: 401,
  [HttpErrorCode.Forbidden]: 403,
  [HttpErrorCode.ConsoleHeaderRequired]: 403,
  [HttpErrorCode.NotFound]: 404,
  [HttpErrorCode.RequestTimeout]: 408,
  [HttpErrorCode.AlertIdConflict]: 409,
  [HttpErrorCode.AlertIdAmbiguous]: 409,
  [HttpErrorCode.DeadLetterRequeued]: 409,
  [HttpErrorCode.DeadLetterNotRequeueable]: 409,
  [HttpErrorCode.AlertAlreadyRouted]: 409,
  [HttpErrorCode.BodyTooLarge]: 413,
  [HttpErrorCode.AlertTooLarge]: 413,
  [HttpErrorCode.BatchTooLarge]: 413,
  [HttpErrorCode.UriTooLong]: 414,
  [HttpErrorCode.UnsupportedMediaType]: 415,
  [ErrorCode.SchemaInvalid]: 422,
  [ErrorCode.SchemaUnknown]: 422,
  [HttpErrorCode.OriginMismatch]: 422,
  // What the router would refuse, said by the gateway before a 202.
  [ErrorCode.KeyNotValidAt]: 422,
  [ErrorCode.KeyRevoked]: 422,
  [ErrorCode.KeyUnknown]: 422,
  [ErrorCode.KeyAgencyMismatch]: 422,
  [ErrorCode.IssuedInFuture]: 422,
  [HttpErrorCode.RateLimited]: 429,
  [HttpErrorCode.HeadersTooLarge]: 431,
  [HttpErrorCode.Internal]: 500,
  [HttpErrorCode.HubReplyInvalid]: 502,
  [HttpErrorCode.HubInternal]: 502,
  [HttpErrorCode.NatsUnavailable]: 503,
  [HttpErrorCode.InboundStreamFull]: 503,
  [HttpErrorCode.Overloaded]: 503,
  [HttpErrorCode.NotReady]: 503,
};

/** The HTTP status of an error code (500 for a code the table does not list). */
export function statusOf(code: string): number {
  return (HTTP_STATUS as Readonly<Record<string, number>>)[code] ?? 500;
}

/**
 * The one error envelope of both services: `{error: {code, message, details?}}`, with the
 * alert's `id` beside it when the refusal concerns one alert the gateway had given an id (a 503
 * included: the client resends under that id, and a copy that did get through is not doubled).
 */
export function errorBody(code: string, message: string, details?: readonly Issue[], id?: string) {
  return {
    ...(id === undefined ? {} : { id }),
    error: { code, message, ...(details && details.length > 0 ? { details } : {}) },
  };
}

/** A refusal a service reports to an HTTP client; `details` lists each problem by JSON pointer. */
export class HttpError extends AlertHubError {
  readonly details: readonly Issue[] | undefined;
  constructor(
    code: AnyErrorCode,
    message: string,
    details?: readonly Issue[],
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.details = details;
  }
}

/** An error translated for the envelope. */
export interface TranslatedError {
  readonly code: AnyErrorCode;
  readonly message: string;
  readonly details?: readonly Issue[];
  /** The alert's id, when the error carries one (`alertId`). */
  readonly id?: string;
}

/** Maps any error to the envelope's code, message and details (Fastify's own errors included). */
export function translateError(
  err: Error & { code?: string; statusCode?: number },
): TranslatedError {
  if (err instanceof AlertHubError) {
    const details =
      (err as { details?: readonly Issue[] }).details ??
      (err as { issues?: readonly Issue[] }).issues;
    const id = (err as { alertId?: unknown }).alertId;
    return {
      code: err.code,
      message: err.message,
      ...(details ? { details } : {}),
      ...(typeof id === 'string' ? { id } : {}),
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        code: HttpErrorCode.BodyTooLarge,
        message: 'the request body is larger than the limit',
      };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return {
        code: HttpErrorCode.UnsupportedMediaType,
        message: 'send application/json (or application/x-ndjson for a batch)',
      };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: HttpErrorCode.BadJson, message: 'the request body is empty' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: HttpErrorCode.BadRequest, message: 'Content-Length does not match the body' };
    case 'FST_ERR_BAD_URL':
      return { code: HttpErrorCode.BadRequest, message: 'the URL is not valid' };
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return { code: HttpErrorCode.UriTooLong, message: 'a path parameter is too long' };
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)
    return { code: HttpErrorCode.BadRequest, message: err.message };
  return { code: HttpErrorCode.Internal, message: 'internal error' };
}

/** What a service adds to an error response: its bearer realm, and Retry-After for 503. */
export interface ErrorResponseOptions {
  readonly realm: string;
  readonly retryAfterSeconds?: number;
}

/** Sends the envelope with the status of the table. */
export function sendError(
  reply: FastifyReply,
  e: TranslatedError,
  options: ErrorResponseOptions,
): FastifyReply {
  const status = statusOf(e.code);
  if (e.code === HttpErrorCode.Unauthenticated)
    void reply.header('www-authenticate', `Bearer realm="${options.realm}"`);
  if (status === 503) void reply.header('retry-after', String(options.retryAfterSeconds ?? 2));
  return reply.code(status).send(errorBody(e.code, e.message, e.details, e.id));
}

/**
 * The Fastify options that route the framework's own refusals into the envelope: a bad URL
 * (400) or a too long path parameter (414) through `frameworkErrors`, and what Node's HTTP parser
 * refuses before Fastify sees a request (431 for headers over the limit, 408, 400) through
 * `clientErrorHandler`.
 */
export function errorEnvelopeOptions(
  options: ErrorResponseOptions,
): Pick<FastifyServerOptions, 'frameworkErrors' | 'clientErrorHandler'> {
  return {
    frameworkErrors: (err: FastifyError, _req, reply) => {
      void sendError(reply, translateError(err), options);
    },
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
      const e: TranslatedError =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? { code: HttpErrorCode.HeadersTooLarge, message: 'the request headers are too large' }
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? { code: HttpErrorCode.RequestTimeout, message: 'the request took too long' }
            : { code: HttpErrorCode.BadRequest, message: 'the request is not valid HTTP' };
      const body = JSON.stringify(errorBody(e.code, e.message));
      socket.end(
        `HTTP/1.1 ${statusOf(e.code)} ${STATUS_CODES[statusOf(e.code)] ?? ''}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    },
  };
}

/**
 * Installs the envelope on a Fastify instance for every error a route throws and for unknown
 * routes; `onServerError` sees each 5xx (to log it). Use with {@link errorEnvelopeOptions}.
 */
export function installErrorEnvelope(
  app: FastifyInstance,
  options: ErrorResponseOptions & {
    readonly onServerError?: (err: Error, e: TranslatedError) => void;
  },
): void {
  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _req, reply) => {
    const e = translateError(err);
    if (statusOf(e.code) >= 500) options.onServerError?.(err, e);
    void sendError(reply, e, options);
  });
  app.setNotFoundHandler(
    (_req, reply) =>
      void sendError(reply, { code: HttpErrorCode.NotFound, message: 'no such resource' }, options),
  );
}

/**
 * The checks every request of a service passes before its route:
 * - a request whose body has not fully arrived `ms` after its headers is cut off: its socket is
 *   destroyed, so a body trickled in byte by byte holds neither a connection nor an in-flight
 *   slot for ever. Fastify's default is no timeout at all, and Node's `requestTimeout` (set it
 *   too, to the same `ms`: it answers 408 to a request whose headers are slow) does not cover a
 *   body trickled in after the headers (measured on Node 20);
 * - a request with more than one `Authorization` header is refused (400): Node keeps the first
 *   and drops the others, where a proxy in front may read the last, so the two would
 *   authenticate different callers.
 */
export function installRequestGuards(app: FastifyInstance, ms: number): void {
  app.addHook('onRequest', (req, _reply, done) => {
    const raw = req.raw;
    if (!raw.complete) {
      const timer = setTimeout(() => {
        if (raw.complete || raw.socket.destroyed) return;
        req.log.warn({ reqId: req.id }, 'request body not received in time; connection closed');
        raw.socket.destroy();
      }, ms);
      timer.unref();
      raw.once('close', () => clearTimeout(timer));
    }
    let credentials = 0;
    // Names at even places, values at odd ones.
    for (let i = 0; i < raw.rawHeaders.length; i += 2)
      if (raw.rawHeaders[i]!.toLowerCase() === 'authorization') credentials++;
    done(
      credentials > 1
        ? new HttpError(
            HttpErrorCode.BadRequest,
            'the request has more than one Authorization header',
          )
        : undefined,
    );
  });
}
