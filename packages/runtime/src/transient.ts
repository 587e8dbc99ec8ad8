import { JetStreamApiError, JetStreamError } from '@nats-io/jetstream';
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
} from '@nats-io/transport-node';
import { SqliteError } from './sqlite.js';

/**
 * True for a failure that passes by itself, so the work is retried later and never
 * dead-lettered: NATS and JetStream failures, recognised by nats.js's own error classes (a
 * timeout, no responders, a closed or draining connection, a full stream, a permission the
 * server has not granted yet), and SQLite being busy.
 */
export function isTransientFailure(err: unknown): boolean {
  return (
    err instanceof TimeoutError ||
    err instanceof NoRespondersError ||
    err instanceof ConnectionError ||
    err instanceof ClosedConnectionError ||
    err instanceof DrainingConnectionError ||
    err instanceof RequestError ||
    err instanceof PermissionViolationError ||
    err instanceof JetStreamError ||
    err instanceof JetStreamApiError ||
    err instanceof SqliteError
  );
}
