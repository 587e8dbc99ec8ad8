import { pino, type Logger, type DestinationStream } from 'pino';

/**
 * Paths pino removes from every log line. Logs carry alert ids, agencies, outcomes and
 * timings; never a key, a token, a password or a person named in an alert.
 */
export const REDACT_PATHS = [
  'token',
  '*.token',
  'authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'pass',
  '*.pass',
  'password',
  '*.password',
  'privateKey',
  '*.privateKey',
  'd',
  '*.d',
  'jwk.d',
  'secret',
  '*.secret',
  'alert.consignee',
  'alert.shipment.consignor',
  'alert.shipment.consignee',
  'alert.summary',
  'consignee',
  'consignor',
];

/** The hub's JSON logger: pino, one line per event, secrets and personal fields redacted. */
export function createLogger(options: {
  name: string;
  level?: string;
  destination?: DestinationStream;
}): Logger {
  return pino(
    {
      name: options.name,
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { service: options.name },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Asynchronous writes: under load, lines written while a write is in flight go out together
    // instead of one system call each; when idle, every line goes out at once.
    options.destination ?? pino.destination({ dest: 1, sync: false }),
  );
}

export type { Logger };
