import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify as toYaml } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
} from '@nats-io/jetstream';
import {
  ROUTER_CONSUMER,
  Streams,
  countersignRoutes,
  encodeEnvelope,
  feedSubject,
  forwardMsgId,
  inboundStreamAgency,
  signAlert,
  type Alert,
  type GeneralJws,
  type SchemaRegistry,
  type SigningKey,
} from '@alert-hub/core';
import { generateKey } from '@alert-hub/operator';
import {
  DEFAULT_SCHEMAS_DIR,
  createLogger,
  loadSchemaRegistry,
  loadTrustStore,
  provisionHub,
  readSigningKey,
  unhandled,
  type Logger,
} from '@alert-hub/runtime';
import { sampleSeizureReport } from './samples.js';

/** A hub's worth of keys in a temporary certs directory. */
/**
 * The JetStream API prefix for a gateway on a test server without accounts, where the agency
 * shares JetStream's own account (production gateways import the hub's API under another prefix).
 */
export const OPEN_JS_API = '$JS.API';

export interface HubFixture {
  readonly dir: string;
  readonly certsDir: string;
  readonly trustDir: string;
  readonly registry: SchemaRegistry;
  readonly keys: Readonly<Record<string, SigningKey>>;
  readonly keyFiles: Readonly<Record<string, string>>;
  readonly hubKey: SigningKey;
  readonly hubKeyFile: string;
  cleanup(): void;
}

export const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);

export function makeHubFixture(agencies: readonly string[], router = 'HUB'): HubFixture {
  const dir = mkdtempSync(join(tmpdir(), 'ahub-fixture-'));
  const certsDir = join(dir, 'certs');
  const keys: Record<string, SigningKey> = {};
  const keyFiles: Record<string, string> = {};
  for (const a of agencies) {
    const g = generateKey({
      certsDir,
      principal: a,
      now: new Date('2019-01-01T00:00:00Z'),
      validDays: 3650,
    });
    keys[a] = readSigningKey(g.privateFile, a);
    keyFiles[a] = g.privateFile;
  }
  const h = generateKey({
    certsDir,
    principal: router,
    role: 'router',
    now: new Date('2019-01-01T00:00:00Z'),
    validDays: 3650,
  });
  return {
    dir,
    certsDir,
    trustDir: join(certsDir, 'trust'),
    registry,
    keys,
    keyFiles,
    hubKey: readSigningKey(h.privateFile, router),
    hubKeyFile: h.privateFile,
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Stream settings for a test that counts the copies on the feed stream after the partners took
 * them: limits retention keeps them for `maxAgeMs`. The default on one replica, interest
 * retention, removes each copy once its recipient's gateway stored it (`test/feeds-full.test.ts`,
 * `test/feeds-cannot-fill.test.ts`), and the audit log is then the evidence of what was forwarded.
 */
export const KEEP_READ_COPIES = { feedsRetention: 'limits' } as const;

/**
 * A router's configuration for a test on one nats-server without accounts: the fixture's hub key
 * and trust store, a data directory in the fixture, the open JetStream API, an HTTP port of the
 * kernel's choosing; `extra` adds or replaces members (the agreements file, stream limits).
 * Written with {@link writeConfig}, it is what the router's `loadConfig` reads.
 */
export function routerSettings(
  fx: HubFixture,
  natsUrl: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [natsUrl], jsApiPrefix: OPEN_JS_API },
    http: { port: 0 },
    ...extra,
  };
}

/**
 * A gateway's configuration for `agency` in the same setting as {@link routerSettings}, with one
 * client (`clientTokenSha256`) allowed to submit; `extra` adds or replaces members.
 */
export function gatewaySettings(
  fx: HubFixture,
  natsUrl: string,
  agency: string,
  clientTokenSha256: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    agency,
    signingKey: fx.keyFiles[agency],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, `gw-${agency}`),
    nats: { servers: [natsUrl], jsApiPrefix: OPEN_JS_API },
    http: { port: 0 },
    clients: [{ name: 'c', tokenSha256: clientTokenSha256, roles: ['submit'] }],
    ...extra,
  };
}

/** Creates the streams and consumers, as the router does at start. */
export async function provision(
  nc: NatsConnection,
  agencies: readonly string[],
  options: Parameters<typeof provisionHub>[2] = {},
) {
  await provisionHub(await jetstreamManager(nc), agencies, options);
}

/** Writes a YAML config file and returns its path. */
export function writeConfig(dir: string, name: string, config: unknown): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, toYaml(config));
  return file;
}

/** A logger whose lines are kept in memory, to assert on what reaches the logs. */
export function memoryLogger(name: string): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ name, level: 'debug', destination: dest }), lines };
}

/** The canonical seizure report from `origin`, issued now (see samples.ts). */
export function seizureReport(origin: string, overrides: Record<string, unknown> = {}): Alert {
  return sampleSeizureReport(origin, overrides) as unknown as Alert;
}

/**
 * Signs `alert` as its origin and countersigns it for `recipient`, as the router would: one
 * countersignature over a routing decision's tree, here of this one recipient.
 */
export async function routedEnvelope(
  alert: Alert,
  originKey: SigningKey,
  hubKey: SigningKey,
  recipient: string,
  agreement = { id: 'TEST', version: 1 },
): Promise<GeneralJws> {
  const jws = await signAlert(alert, originKey, registry.schemaIdFor(alert.type, alert.version)!);
  const [copy] = await countersignRoutes(jws, hubKey, {
    origin: alert.origin,
    alertId: alert.id,
    routedAt: new Date().toISOString(),
    grants: [{ recipient, agreement, onward: false }],
  });
  return copy!;
}

/** Publishes a routed copy straight onto `recipient`'s feed, playing the router's part. */
export async function publishToFeed(
  nc: NatsConnection,
  alert: Alert,
  originKey: SigningKey,
  hubKey: SigningKey,
  recipient: string,
  mutate?: (bytes: Uint8Array) => Uint8Array,
) {
  const bytes = encodeEnvelope(await routedEnvelope(alert, originKey, hubKey, recipient));
  return jetstream(nc).publish(
    feedSubject(recipient, alert.origin, alert.type),
    mutate ? mutate(bytes) : bytes,
    { msgID: forwardMsgId(alert.origin, alert.id, recipient) },
  );
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually<T>(
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The files this process holds open whose path starts with `prefix` (Linux: `/proc/self/fd`). */
export function openFilesUnder(prefix: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const path = readlinkSync(`/proc/self/fd/${fd}`);
      return path.startsWith(prefix) ? [path] : [];
    } catch {
      return []; // closed meanwhile (the directory's own descriptor)
    }
  });
}

export { loadTrustStore };

/** Signs `alert` as `key` and publishes it on an inbound subject, as a gateway would. */
export async function publishInbound(
  nc: NatsConnection,
  alert: Alert,
  key: SigningKey,
  options: { subjectOrigin?: string; msgID?: string; mutate?: (b: Uint8Array) => Uint8Array } = {},
) {
  const { inboundMsgId, inboundSubject } = await import('@alert-hub/core');
  const signed = encodeEnvelope(
    await signAlert(alert, key, registry.schemaIdFor(alert.type, alert.version)!),
  );
  const bytes = options.mutate ? options.mutate(signed) : signed;
  return jetstream(nc).publish(
    inboundSubject(options.subjectOrigin ?? alert.origin, alert.type),
    bytes,
    { msgID: options.msgID ?? inboundMsgId(alert.origin, alert.id, bytes) },
  );
}

/**
 * Every forwarded copy on the feeds stream, as `{subject, msgId}`; the hub's notices
 * (`ahub.feed.<agency>.<hub>.notice`), which forward no alert, only with `{ notices: true }`.
 */
export async function feedMessages(
  nc: NatsConnection,
  options: { notices?: boolean } = {},
): Promise<{ subject: string; msgId: string; seq: number; data: Uint8Array }[]> {
  const jsm = await jetstreamManager(nc);
  const { NOTICE_TOKEN, Streams, parseFeedSubject } = await import('@alert-hub/core');
  const info = await jsm.streams.info(Streams.Feeds);
  const out: { subject: string; msgId: string; seq: number; data: Uint8Array }[] = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq++
  ) {
    const m = await jsm.streams.getMessage(Streams.Feeds, { seq }).catch(() => null);
    if (m && (options.notices || parseFeedSubject(m.subject)?.type !== NOTICE_TOKEN))
      out.push({
        subject: m.subject,
        msgId: m.header.get('Nats-Msg-Id'),
        seq: m.seq,
        data: m.data,
      });
  }
  return out;
}

/**
 * The inbound streams the router reads: every agency's `AHUB_IN_<agency>`, and an older hub's
 * shared `AHUB_INBOUND` while it exists.
 */
export async function inboundStreams(jsm: JetStreamManager): Promise<string[]> {
  const out: string[] = [];
  for await (const name of jsm.streams.names())
    if (name === Streams.Inbound || inboundStreamAgency(name) !== undefined) out.push(name);
  return out.sort();
}

/**
 * Messages the router's consumers have not handled yet (pending plus unacknowledged), over every
 * inbound stream ({@link inboundStreams}); a stream without a router consumer counts nothing.
 */
export async function routerBacklog(jsm: JetStreamManager): Promise<number> {
  let n = 0;
  for (const stream of await inboundStreams(jsm)) {
    const c = await jsm.consumers.info(stream, ROUTER_CONSUMER).catch((err: unknown) => {
      if (err instanceof JetStreamApiError && err.status === 404) return undefined;
      throw err;
    });
    if (c) n += unhandled(c);
  }
  return n;
}

/** Waits until the router's consumers have nothing pending and nothing unacknowledged. */
export async function routerDrained(nc: NatsConnection, timeoutMs = 30_000): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await eventually(
    async () => (await routerBacklog(jsm)) === 0,
    timeoutMs,
    'the router to drain the inbound streams',
  );
}
