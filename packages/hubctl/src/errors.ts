import { AlertHubError } from '@alert-hub/core';

/** hubctl's own failures, merged into core's ErrorCodeTable. */
export const HubctlErrorCode = {
  /** A command's input (an option, a file) is not what it needs, or cannot be read. */
  InputInvalid: 'ERR_INPUT_INVALID',
  /** A file or directory a command writes cannot be written (no such directory, no permission). */
  OutputFailed: 'ERR_OUTPUT_FAILED',
  /** Something a command needs first is missing (a token, a database, a router key). */
  Prerequisite: 'ERR_PREREQUISITE_MISSING',
  /** A gateway or router answered with an error. */
  RequestRefused: 'ERR_REQUEST_REFUSED',
  /** A gateway or router could not be reached at all (the message names the URL and cause). */
  Network: 'ERR_NETWORK',
} as const;
export type HubctlErrorCode = (typeof HubctlErrorCode)[keyof typeof HubctlErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<HubctlErrorCode, true> {}
}

/** A hubctl failure: printed as `hubctl: <message> [<code>]`, exit code 1. */
export class HubctlError extends AlertHubError {
  readonly status: number | undefined;
  constructor(code: HubctlErrorCode, message: string, options?: { status?: number }) {
    super(code, message);
    this.status = options?.status;
  }
}

/**
 * Wrong usage of a command (a missing or unreadable input it was given): `main` prints what it
 * wraps as it prints any failure, and exits 2 instead of 1.
 */
export class UsageError extends Error {
  constructor(readonly reason: unknown) {
    super((reason as Error).message);
    this.name = 'UsageError';
  }
}
