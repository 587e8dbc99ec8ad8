import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  FEEDS_ALL,
  NOTICE_TOKEN,
  ROUTER_CONSUMER,
  Streams,
  countersignRoutes,
  encodeEnvelope,
  generateSigningJwk,
  importSigningKey,
  inboundMsgId,
  inboundStreamName,
  inboundSubject,
  parseFeedSubject,
  signAlert,
  type RouteGrant,
  type SchemaRegistry,
} from '@alert-hub/core';
import {
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  readSigningKey,
  unhandled,
} from '@alert-hub/runtime';
import {
  SERVICE_NODE_ARGS,
  spawnService,
  startLocalHub,
  type ServiceProcess,
} from '@alert-hub/testkit';
import { benchAlert, rate, rawEd25519 } from './core.js';
import { cpuMsOf, memoryOf } from './proc.js';

/**
 * e. The router alone: the router's own process draining alerts queued in the inbound stream
 * while it was stopped, against a nats-server provisioned as the local hub does (mutual TLS, one
 * account per agency, 109 agencies), audit and its Merkle log on, no gateway running. Each phase
 * is one k (recipients per alert) and one number of agreements of the sender: 1 (the one that
 * sends the alert to k partners), or 1,000 (that one and 999 bilateral agreements of the sender
 * for other alert types: near misses the router must evaluate and refuse). The router's crypto
 * floor for the same k is measured in the same run: per alert it verifies the origin once and
 * signs once (one countersignature over the decision's tree, whatever k).
 */

export const SENDER = 'SG-NPARKS';
/** Recipients per alert the full run measures. */
export const ROUTER_ALONE_KS = [1, 2, 10, 108] as const;

export interface RouterAlonePhase {
  readonly k: number;
  readonly agreements: number;
  /** Alerts queued before the router started. */
  readonly queued: number;
  /** Alerts still queued when the router logged that it was ready: what the rate is of. */
  readonly measured: number;
  readonly seconds: number;
  readonly alertsPerSecond: number;
  /** Router CPU (user + system, all threads) per alert, after start-up, in µs. */
  readonly routerUsPerAlert: number;
  readonly routerUsPerCopy: number;
  /** nats-server CPU per alert from the router's spawn on: its start-up's requests included. */
  readonly natsUsPerAlert: number;
  /**
   * nats-server CPU per alert after the router was ready, as the router's own: the start-up's
   * requests (provisioning every agency's stream and consumer) are a fixed cost, not routing.
   */
  readonly natsUsPerAlertAfterStartUp: number;
  /** nats-server CPU while the router started (spawn to ready), in ms. */
  readonly natsStartUpMs: number;
  /** Highest VmHWM of the router process (of any of its runs, if it restarted). */
  readonly routerPeakRssMiB: number;
  /** Copies the feed stream gained; every alert routed to its k partners is `queued × k`. */
  readonly forwarded: number;
  readonly expectedForwards: number;
  /** Times the router process died during the drain (and was started again, as a supervisor would). */
  readonly restarts: number;
  readonly drained: boolean;
  /** The router's crypto floor for this k, and this phase's rate as a fraction of it. */
  readonly cryptoFloorPerSecond: number;
  readonly ofCryptoFloor: number;
}

export interface RouterCryptoFloor {
  readonly k: number;
  /** Origin verifications per second (node:crypto Ed25519, callback API, all cores). */
  readonly verifyPerSecond: number;
  /** `countersignRoutes` for k grants per second: leaves, copy ids, tree, one signature. */
  readonly countersignPerSecond: number;
  /** 1 / (1/verify + 1/countersign): alerts per second if the router did only its crypto. */
  readonly alertsPerSecond: number;
  /** The same with the retired per-copy form (k signatures per alert), for comparison. */
  readonly perCopyAlertsPerSecond: number;
}

/** 108 partner agencies, one per country (the first ISO 3166-1 codes other than the sender's). */
export function benchPartners(count = 108): string[] {
  const common = JSON.parse(
    readFileSync(join(DEFAULT_SCHEMAS_DIR, 'common.v1.schema.json'), 'utf8'),
  ) as {
    $defs: { country: { enum: string[] } };
  };
  return common.$defs.country.enum
    .filter((c) => c !== SENDER.slice(0, 2))
    .slice(0, count)
    .map((c) => `${c}-CUSTOMS`);
}

/** The agreements: one to the first k partners, plus `agreements - 1` near misses. */
export function routerAloneAgreements(partners: readonly string[], k: number, agreements: number) {
  const base = {
    version: 1,
    maxHandling: 'TLP:AMBER',
    validFrom: '2019-01-01T00:00:00Z',
  };
  const nearMisses = Array.from({ length: agreements - 1 }, (_, i) => ({
    ...base,
    id: `NEAR-MISS-${String(i + 1).padStart(4, '0')}`,
    title: 'bilateral, other alert types',
    parties: [SENDER, partners[i % partners.length]!],
    alertTypes: [i % 2 ? 'consignee-flag' : 'suspicious-shipment'],
  }));
  return {
    agreements: [
      {
        ...base,
        id: `BENCH-K${k}`,
        title: `seizure reports to ${k} partners`,
        parties: [SENDER, ...partners.slice(0, k)],
        alertTypes: ['seizure-report'],
      },
      ...nearMisses,
    ],
  };
}

/** The router's crypto floor for each k, measured here and now. */
export async function routerCryptoFloors(options: {
  registry: SchemaRegistry;
  ks: readonly number[];
  durationMs: number;
  inFlight: number;
}): Promise<RouterCryptoFloor[]> {
  const sender = importSigningKey(generateSigningJwk().privateJwk, SENDER);
  const hubKey = importSigningKey(generateSigningJwk().privateJwk, 'HUB');
  const alert = benchAlert(SENDER);
  const jws = await signAlert(
    alert,
    sender,
    options.registry.schemaIdFor(alert.type, alert.version)!,
  );
  const raw = rawEd25519(Buffer.from(`${jws.signatures[0]!.protected}.${jws.payload}`));
  const verifyPerSecond = await rate(options.durationMs, options.inFlight, raw.verifyAsync);
  const signPerSecond = await rate(options.durationMs, options.inFlight, raw.signAsync);
  const partners = benchPartners();
  const out: RouterCryptoFloor[] = [];
  for (const k of options.ks) {
    const grants: RouteGrant[] = partners
      .slice(0, k)
      .map((recipient) => ({ recipient, agreement: { id: 'BENCH', version: 1 }, onward: false }));
    const countersignPerSecond = await rate(options.durationMs, options.inFlight, () =>
      countersignRoutes(jws, hubKey, {
        origin: alert.origin,
        alertId: alert.id,
        routedAt: alert.issuedAt,
        grants,
      }),
    );
    out.push({
      k,
      verifyPerSecond,
      countersignPerSecond,
      alertsPerSecond: 1 / (1 / verifyPerSecond + 1 / countersignPerSecond),
      perCopyAlertsPerSecond: 1 / (1 / verifyPerSecond + k / signPerSecond),
    });
  }
  return out;
}

/**
 * What the router has not handled yet of the one sender's stream (the only one written to). The
 * run asks this every 50 ms: asking every agency's stream (110 consumer infos each time) cost
 * nats-server more than the routing it measures, and took CPU from the router (measured at k=2:
 * nats-server 270-310 us per alert against 107-110 with one stream asked).
 */
async function pendingOf(jsm: JetStreamManager): Promise<number> {
  return unhandled(await jsm.consumers.info(inboundStreamName(SENDER), ROUTER_CONSUMER));
}

/** Copies of alerts on the feeds stream (the router's notices to the sender not counted). */
async function feedMessages(jsm: JetStreamManager): Promise<number> {
  const info = await jsm.streams.info(Streams.Feeds, { subjects_filter: FEEDS_ALL });
  let n = 0;
  for (const [subject, count] of Object.entries(info.state.subjects ?? {}))
    if (parseFeedSubject(subject)?.type !== NOTICE_TOKEN) n += count;
  return n;
}

/**
 * The feed stream of the router-alone hub. Nobody reads the partners' feeds here, so every copy of
 * every phase stays waiting (about 12,000 per partner with the default alert counts), more than a
 * recipient's byte quota in the default 2 GiB stream (its share among 110 agencies, 17.6 MiB):
 * the router would hold the rest, and the phases would measure held copies instead of forwards.
 */
const ROUTER_ALONE_FEEDS_MAX_BYTES = 8 * 1024 ** 3;

/** Runs every phase on one hub; returns them in order. */
export async function runRouterAlone(options: {
  dir: string;
  env: Readonly<Record<string, string | undefined>>;
  phases: readonly { k: number; agreements: number; alerts: number }[];
  floors: readonly RouterCryptoFloor[];
  timeoutMs: number;
  /** Extra node flags for the router (e.g. `--cpu-prof`). */
  nodeArgs?: readonly string[];
  /** Router settings over the local hub's (e.g. `{ auditTransparency: false }`). */
  routerConfig?: Record<string, unknown>;
  onPhase?: (p: RouterAlonePhase) => void;
}): Promise<RouterAlonePhase[]> {
  const partners = benchPartners();
  const hub = await startLocalHub({
    dir: options.dir,
    env: options.env,
    agencies: [SENDER, ...partners].map((id) => ({ id, name: id })),
    agreements: routerAloneAgreements(partners, 1, 1),
    gateways: [],
    routerConfig: {
      ...options.routerConfig,
      streams: {
        feedsMaxBytes: ROUTER_ALONE_FEEDS_MAX_BYTES,
        ...(options.routerConfig?.['streams'] as Record<string, unknown> | undefined),
      },
    },
  });
  const routerFile = join(hub.dir, 'router.yaml');
  const results: RouterAlonePhase[] = [];
  const sg = await hub.connectAs(SENDER);
  const admin = await hub.connectAs('HUB');
  let router: ServiceProcess | undefined;
  try {
    // The router created the streams and every feed consumer; from now on it runs per phase.
    await hub.router.stop();
    const keyDir = join(hub.certsDir, 'private', SENDER);
    const key = readSigningKey(join(keyDir, readdirSync(keyDir)[0]!), SENDER);
    const js = jetstream(sg);
    const jsm = await jetstreamManager(admin, { checkAPI: false });
    const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
    const schemaId = registry.schemaIdFor('seizure-report', 1)!;
    for (const [n, phase] of options.phases.entries()) {
      // JSON is YAML: the router reads the file when it starts.
      writeFileSync(
        hub.agreementsFile,
        JSON.stringify(routerAloneAgreements(partners, phase.k, phase.agreements)),
      );
      for (let i = 0; i < phase.alerts; i += 500) {
        await Promise.all(
          Array.from({ length: Math.min(500, phase.alerts - i) }, async () => {
            const a = benchAlert(SENDER);
            const bytes = encodeEnvelope(await signAlert(a, key, schemaId));
            await js.publish(inboundSubject(SENDER, a.type), bytes, {
              msgID: inboundMsgId(SENDER, a.id, bytes),
            });
          }),
        );
      }
      const feedsBefore = await feedMessages(jsm);
      const natsBefore = cpuMsOf(hub.nats.pid) ?? 0;
      const spawn = () =>
        spawnService('router', routerFile, {
          env: options.env,
          captureLogs: false,
          logFile: join(hub.dir, 'logs', `router-alone-${n}.log`),
          nodeArgs: [...SERVICE_NODE_ARGS, ...(options.nodeArgs ?? [])],
        });
      router = await spawn();
      const natsReady = cpuMsOf(hub.nats.pid) ?? natsBefore;
      const measured = await pendingOf(jsm);
      const t0 = performance.now();
      let cpuBefore = cpuMsOf(router.proc.pid) ?? 0;
      let cpu = 0;
      let peak = 0;
      let restarts = 0;
      let drained = false;
      const deadline = t0 + options.timeoutMs;
      while (performance.now() < deadline) {
        if (router.proc.exitCode !== null || router.proc.signalCode !== null) {
          // Died (out of memory, say): count it and start it again, as a supervisor would.
          restarts++;
          router = await spawn();
          cpuBefore = cpuMsOf(router.proc.pid) ?? 0;
          continue;
        }
        if ((await pendingOf(jsm)) === 0) {
          drained = true;
          break;
        }
        peak = Math.max(peak, memoryOf(router.proc.pid)?.peakMiB ?? 0);
        cpu = (cpuMsOf(router.proc.pid) ?? cpuBefore) - cpuBefore;
        await new Promise((r) => setTimeout(r, 50));
      }
      const seconds = (performance.now() - t0) / 1000;
      cpu = Math.max(cpu, (cpuMsOf(router.proc.pid) ?? cpuBefore) - cpuBefore);
      peak = Math.max(peak, memoryOf(router.proc.pid)?.peakMiB ?? 0);
      const natsCpu = (cpuMsOf(hub.nats.pid) ?? natsBefore) - natsBefore;
      await router.stop();
      router = undefined;
      const forwarded = (await feedMessages(jsm)) - feedsBefore;
      const floor = options.floors.find((f) => f.k === phase.k)?.alertsPerSecond ?? NaN;
      const alertsPerSecond = measured / seconds;
      const result: RouterAlonePhase = {
        k: phase.k,
        agreements: phase.agreements,
        queued: phase.alerts,
        measured,
        seconds,
        alertsPerSecond,
        routerUsPerAlert: (cpu * 1000) / Math.max(1, measured),
        routerUsPerCopy: (cpu * 1000) / Math.max(1, measured * phase.k),
        natsUsPerAlert: (natsCpu * 1000) / Math.max(1, measured),
        natsUsPerAlertAfterStartUp:
          ((natsCpu - (natsReady - natsBefore)) * 1000) / Math.max(1, measured),
        natsStartUpMs: natsReady - natsBefore,
        routerPeakRssMiB: peak,
        forwarded,
        expectedForwards: phase.alerts * phase.k,
        restarts,
        drained,
        cryptoFloorPerSecond: floor,
        ofCryptoFloor: alertsPerSecond / floor,
      };
      results.push(result);
      options.onPhase?.(result);
    }
  } finally {
    await router?.stop();
    await sg.close();
    await admin.close();
    await hub.stop();
  }
  return results;
}
