import { AlertHubError } from '@alert-hub/core';

/** Codes of the test kit's own failures. */
export const TestkitErrorCode = {
  NatsServerNotFound: 'ERR_NATS_SERVER_NOT_FOUND',
  NatsServerStart: 'ERR_NATS_SERVER_START',
} as const;
type TestkitErrorCode = (typeof TestkitErrorCode)[keyof typeof TestkitErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<TestkitErrorCode, true> {}
}

/** No nats-server binary was found; the message names the install command. */
export class NatsServerNotFoundError extends AlertHubError {
  constructor(searched: readonly string[]) {
    super(
      TestkitErrorCode.NatsServerNotFound,
      `nats-server was not found (looked in: ${searched.join(', ')}).\n` +
        `Install it with:  sudo apt-get install nats-server   (Debian/Ubuntu; 2.9 or later)\n` +
        `or point NATS_SERVER_BIN at the binary.`,
    );
  }
}

/** nats-server did not start or become ready. */
export class NatsServerStartError extends AlertHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(TestkitErrorCode.NatsServerStart, message, options);
  }
}
