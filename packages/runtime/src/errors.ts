import { AlertHubError, type Issue } from '@alert-hub/core';
import type { ProvisionReport } from './jetstream-setup.js';

/** Codes of the runtime's own failures, merged into core's ErrorCodeTable. */
export const RuntimeErrorCode = {
  ConfigInvalid: 'ERR_CONFIG_INVALID',
  KeyFilePermissions: 'ERR_KEY_FILE_PERMISSIONS',
  KeyFileUnreadable: 'ERR_KEY_FILE_UNREADABLE',
  NatsUnreachable: 'ERR_NATS_UNREACHABLE',
  ShutdownTimeout: 'ERR_SHUTDOWN_TIMEOUT',
  DataPermissions: 'ERR_DATA_PERMISSIONS',
  KeyNoneValid: 'ERR_KEY_NONE_VALID',
  FeedsWorkQueue: 'ERR_FEEDS_WORK_QUEUE',
  FeedsInterestReplicas: 'ERR_FEEDS_INTEREST_REPLICAS',
  InboundStreamsNotProvisioned: 'ERR_INBOUND_STREAMS_NOT_PROVISIONED',
} as const;
type RuntimeErrorCode = (typeof RuntimeErrorCode)[keyof typeof RuntimeErrorCode];

declare module '@alert-hub/core' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface ErrorCodeTable extends Record<RuntimeErrorCode, true> {}
}

/** A configuration is invalid; every problem is listed, before any connection opens. */
export class ConfigInvalidError extends AlertHubError {
  readonly issues: readonly Issue[];
  constructor(source: string, issues: readonly Issue[]) {
    super(
      RuntimeErrorCode.ConfigInvalid,
      `invalid configuration (${source}):\n${issues.map((i) => `  ${i.pointer || '/'}: ${i.message}`).join('\n')}`,
    );
    this.issues = issues;
  }
}

/** A private key file is readable by group or others; refused like ssh refuses such keys. */
export class KeyFilePermissionsError extends AlertHubError {
  constructor(file: string, mode: number) {
    super(
      RuntimeErrorCode.KeyFilePermissions,
      `private key ${file} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}; ` +
        `it must not be accessible by group or others (chmod 600 ${file})`,
    );
  }
}

/** A private key file cannot be read or parsed. */
export class KeyFileUnreadableError extends AlertHubError {
  constructor(file: string, options?: { cause?: unknown }) {
    super(RuntimeErrorCode.KeyFileUnreadable, `cannot read private key ${file}`, options);
  }
}

/** A service could not reach NATS within its configured number of attempts. */
export class NatsUnreachableError extends AlertHubError {
  constructor(
    servers: readonly string[],
    attempts: number,
    cause: string,
    options?: { cause?: unknown },
  ) {
    super(
      RuntimeErrorCode.NatsUnreachable,
      `NATS at ${servers.join(', ')} unreachable after ${attempts} attempt(s): ${cause}`,
      options,
    );
  }
}

/**
 * A database (gateway inbox, audit log) or its directory is accessible by group or others. It
 * holds intelligence: refused like a private key, before anything is read or written.
 */
export class DataPermissionsError extends AlertHubError {
  constructor(path: string, mode: number, kind: 'file' | 'directory') {
    const want = kind === 'file' ? '600' : '700';
    super(
      RuntimeErrorCode.DataPermissions,
      `${kind} ${path} has mode ${(mode & 0o777).toString(8).padStart(4, '0')}; ` +
        `it must not be accessible by group or others (chmod ${want} ${path})`,
    );
  }
}

/** No private key in a key directory is valid now. */
export class KeyNoneValidError extends AlertHubError {
  constructor(dir: string, now: Date) {
    super(
      RuntimeErrorCode.KeyNoneValid,
      `no private key in ${dir} is valid at ${now.toISOString()}`,
    );
  }
}

/**
 * The feed stream is a work queue (created by an earlier version): on nats-server 2.9 any
 * consumer's ack removes a work queue's message whatever the consumer's filter, so every agency
 * could remove the others' unread copies through its own ack subject. Refused at start until it
 * is migrated (`streams.migrateFeeds`, once every partner has read its copies).
 */
export class FeedsWorkQueueError extends AlertHubError {
  constructor(notMigrated?: string) {
    super(
      RuntimeErrorCode.FeedsWorkQueue,
      "the feed stream AHUB_FEEDS is a work queue, in which any agency can remove the others' copies " +
        "(nats-server 2.9 removes a work-queue message on any consumer's ack); set " +
        'streams.feedsRetention to interest or limits and streams.migrateFeeds to true: the stream ' +
        'is then created anew once every partner has read it' +
        (notMigrated ? ` (not yet: ${notMigrated})` : ''),
    );
  }
}

/**
 * The feed stream has interest retention and more than one replica is configured: nats-server
 * 2.9.10 turns an agency's ack of a sequence not stored yet into a delete proposal that every
 * replica fails to apply, and resets the stream (docs/security.md). Provisioning does not scale
 * such a stream up; the operator moves it to limits retention first (`streams.feedsRetention:
 * limits` with `streams.migrateFeeds`, once every partner has read it).
 */
export class FeedsInterestReplicasError extends AlertHubError {
  constructor(replicas: number, notMigrated?: string) {
    super(
      RuntimeErrorCode.FeedsInterestReplicas,
      `the feed stream AHUB_FEEDS has interest retention, which nats-server 2.9.10 cannot run safely on ${replicas} replicas ` +
        '(an ack of a sequence not stored yet resets every replica); set streams.feedsRetention to limits and ' +
        'streams.migrateFeeds to true: the stream is then created anew, on the replicas configured, once every partner has read it' +
        (notMigrated ? ` (not yet: ${notMigrated})` : ''),
    );
  }
}

/**
 * Some agencies' inbound streams (or their router consumers) could not be made or brought up to
 * date; every other agency's were. The usual cause is the server's JetStream storage: it reserves
 * every stream's `max_bytes`, and refuses a stream beyond its `max_file_store` (JetStream error
 * 10047). `failures` names each agency and why. `sharedStreamKept`: an older hub's shared
 * `AHUB_INBOUND` was left untouched (still taking every agency's alerts), because not every
 * agency's stream could be reserved; `report`: what provisioning found otherwise (on a hub without
 * a shared stream to keep).
 */
export class InboundStreamsNotProvisionedError extends AlertHubError {
  readonly failures: readonly { readonly agency: string; readonly reason: string }[];
  readonly sharedStreamKept: boolean;
  /**
   * With `sharedStreamKept`: `streams.inboundMaxBytes` is at least the shared stream's limit, the
   * older release's size for the whole hub, now reserved once per agency.
   */
  readonly wholeHubSize: boolean;
  readonly report?: ProvisionReport;
  constructor(
    failures: readonly { agency: string; reason: string }[],
    options: { sharedStreamKept?: boolean; wholeHubSize?: boolean; report?: ProvisionReport } = {},
  ) {
    const which = failures.map((f) => `${f.agency}: ${f.reason}`).join('; ');
    const n = failures.length === 1 ? '1 agency' : `${failures.length} agencies`;
    super(
      RuntimeErrorCode.InboundStreamsNotProvisioned,
      options.sharedStreamKept
        ? `the inbound streams of ${n} could not be reserved, so the upgrade to one inbound stream per agency was not done: the hub still runs on the shared stream AHUB_INBOUND, unchanged (${which})` +
            (options.wholeHubSize
              ? "; streams.inboundMaxBytes is now the limit of EACH agency's stream, no longer of the whole hub: lower it (or give the server more max_file_store)"
              : '')
        : `the inbound streams of ${n} could not be provisioned (their alerts are refused until they are): ${which}`,
    );
    this.failures = failures;
    this.sharedStreamKept = options.sharedStreamKept ?? false;
    this.wholeHubSize = options.wholeHubSize ?? false;
    if (options.report) this.report = options.report;
  }
}
