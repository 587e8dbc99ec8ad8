import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, feedConsumerName, newAlertId } from '@alert-hub/core';
import { openDatabase, unhandled } from '@alert-hub/runtime';
import {
  routerBacklog,
  spawnService,
  startLocalHub,
  type LocalHub,
  type ServiceProcess,
} from '@alert-hub/testkit';
import { benchAlert } from './core.js';
import { pace } from './load.js';
import { cpuMsOf, memoryOf } from './proc.js';
import { nowMs } from './raw-common.js';

export const SENDER = 'SG-NPARKS';
export const PARTNERS = ['VN-CUSTOMS', 'CN-GACC'] as const;

export interface HubPhase {
  readonly label: string;
  readonly offered: number;
  readonly accepted: number;
  readonly refused: number;
  readonly seconds: number;
  /** ms from the intake request to the commit in the second partner's inbox, per alert. */
  readonly latencies: number[];
  /** Alerts that reached both partners' inboxes per second during the phase. */
  readonly completedPerSecond: number;
  /** Messages waiting in JetStream (router + partner consumers) at the start and end of the phase. */
  readonly backlog: { readonly first: number; readonly last: number; readonly max: number };
  /** Seconds after the phase until everything accepted was delivered. */
  readonly drainSeconds: number;
  /** CPU time per accepted alert in each process (ms), phase and drain included. */
  readonly cpuMsPerAlert: Readonly<Record<string, number>>;
}

async function backlogOf(
  jsm: JetStreamManager,
  partners: readonly string[],
): Promise<{ router: number; partners: Record<string, number> }> {
  const router = await routerBacklog(jsm);
  const out: Record<string, number> = {};
  for (const p of partners) {
    const c = await jsm.consumers.info(Streams.Feeds, feedConsumerName(p));
    out[p] = unhandled(c);
  }
  return { router, partners: out };
}

/**
 * POSTs a JSON body over a kept-alive connection and parses the JSON reply. node:http rather than
 * `fetch`: the load generator shares the machine with the hub, and fetch (undici) cost it about
 * twice the CPU per alert at 100 alerts/s (2.1 against 0.9 ms, bench/README.md), CPU the hub's
 * processes lost.
 */
function postJson(
  agent: Agent,
  url: URL,
  headers: Readonly<Record<string, string>>,
  body: string,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        agent,
        method: 'POST',
        headers: { ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: not JSON: ${text.slice(0, 200)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** The end-to-end benchmark of the hub: everything on, as in production. */
export class HubBench {
  readonly hub: LocalHub;
  readonly #nc: NatsConnection;
  readonly #jsm: JetStreamManager;
  readonly #sentAt = new Map<string, number>();
  readonly #delivered = new Map<string, { at: number; copies: number }>();
  readonly #lastSeq: Record<string, number> = {};
  readonly #batchSize: number;
  #cnGateway: ServiceProcess | undefined;
  /**
   * The load generator's connections to the sender's intake, kept alive across requests, and as
   * many as requests in flight (as with fetch): under overload every request reaches the gateway,
   * whose `http.maxInFlight` answers 503 rather than a queue in this process.
   */
  readonly #agent = new Agent({ keepAlive: true, maxSockets: Infinity });

  private constructor(hub: LocalHub, nc: NatsConnection, jsm: JetStreamManager, batchSize: number) {
    this.hub = hub;
    this.#nc = nc;
    this.#jsm = jsm;
    this.#batchSize = batchSize;
  }

  static async start(options: {
    dir: string;
    env: Readonly<Record<string, string | undefined>>;
    batchSize: number;
    overrides?: Record<string, unknown>;
    /** Router-only configuration (e.g. `auditTransparency`). */
    routerOverrides?: Record<string, unknown>;
    /** Gateway-only settings (e.g. `receipts: { enabled: false }`). */
    gatewayOverrides?: Record<string, unknown>;
    nodeArgs?: readonly string[];
    onProgress?: (m: string) => void;
    /** A NATS cluster of this many nodes (streams at R3) instead of one server. */
    clusterSize?: number;
  }): Promise<HubBench> {
    const hub = await startLocalHub({
      ...(options.clusterSize ? { clusterSize: options.clusterSize } : {}),
      dir: options.dir,
      env: options.env,
      agencies: [
        { id: SENDER, name: 'sender' },
        { id: PARTNERS[0], name: 'partner 1' },
        { id: PARTNERS[1], name: 'partner 2' },
      ],
      agreements: {
        agreements: [
          {
            id: 'BENCH',
            version: 1,
            title: 'benchmark',
            parties: ['SG', 'VN', 'CN'],
            alertTypes: ['seizure-report'],
            maxHandling: 'TLP:AMBER',
            validFrom: '2019-01-01T00:00:00Z',
          },
        ],
      },
      ...(options.nodeArgs ? { nodeArgs: options.nodeArgs } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      routerConfig: {
        http: { port: 0 },
        checkpointIntervalMs: 5000,
        ...options.overrides,
        ...options.routerOverrides,
      },
      gatewayConfig: { ...options.overrides, ...options.gatewayOverrides },
    });
    const nc = await hub.connectAs('HUB');
    return new HubBench(
      hub,
      nc,
      await jetstreamManager(nc, { checkAPI: false }),
      options.batchSize,
    );
  }

  /** Reads newly committed inbox rows of the partners that are running. */
  #collect(partners: readonly string[]): void {
    for (const p of partners) {
      const db = openDatabase(join(this.hub.dir, 'gateways', p, `gateway-${p}.db`), {
        readonly: true,
      });
      try {
        const rows = db
          .prepare('SELECT seq, alert_id, stored_at FROM inbox WHERE seq > ? ORDER BY seq')
          .all(this.#lastSeq[p] ?? 0) as { seq: number; alert_id: string; stored_at: string }[];
        for (const r of rows) {
          const d = this.#delivered.get(r.alert_id);
          const at = Date.parse(r.stored_at);
          this.#delivered.set(r.alert_id, {
            at: Math.max(d?.at ?? 0, at),
            copies: (d?.copies ?? 0) + 1,
          });
          this.#lastSeq[p] = r.seq;
        }
      } finally {
        db.close();
      }
    }
  }

  /** Offers `rate` alerts/s for `seconds` through the sender's intake, then waits for delivery. */
  async phase(
    label: string,
    rate: number,
    seconds: number,
    partners: readonly string[] = PARTNERS,
  ): Promise<HubPhase> {
    const url = new URL(`${this.hub.gateways[SENDER]!.url}/v1/alerts:batch`);
    const headers = {
      'content-type': 'application/json',
      authorization: `Bearer ${this.hub.token}`,
    };
    const ids: string[] = [];
    let accepted = 0;
    let refused = 0;
    let inflight = 0;
    const requests = new Set<Promise<void>>();
    const send = (count: number) => {
      for (let left = count; left > 0; left -= this.#batchSize) {
        const n = Math.min(this.#batchSize, left);
        const now = nowMs();
        const batch = Array.from({ length: n }, () => {
          const a = { ...benchAlert(SENDER, new Date(now)), id: newAlertId(now) };
          this.#sentAt.set(a.id, now);
          ids.push(a.id);
          return a;
        });
        inflight += n;
        const p = postJson(this.#agent, url, headers, JSON.stringify(batch))
          .then((reply) => {
            const body = reply as { accepted?: number; rejected?: number };
            accepted += body.accepted ?? 0;
            refused += body.rejected ?? n;
          })
          .catch(() => {
            refused += n;
          })
          .finally(() => {
            inflight -= n;
            requests.delete(p);
          });
        requests.add(p);
      }
    };
    const samples: number[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const b = await backlogOf(this.#jsm, partners).catch(() => undefined);
        if (b) samples.push(b.router + Object.values(b.partners).reduce((s, x) => s + x, 0));
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    const cpuBefore = this.#cpu();
    const from = nowMs();
    const offered = await pace(rate, seconds, send);
    const to = nowMs();
    sampling = false;
    await sampler;
    await Promise.allSettled([...requests]);
    // Wait until every accepted alert reached every running partner (or give up after 3 minutes).
    const drainStart = nowMs();
    for (let i = 0; i < 1800; i++) {
      this.#collect(partners);
      const pending = ids.filter(
        (id) => (this.#delivered.get(id)?.copies ?? 0) < partners.length,
      ).length;
      if (pending <= refused && inflight === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const drainSeconds = (nowMs() - drainStart) / 1000;
    const cpuAfter = this.#cpu();
    const cpuMsPerAlert: Record<string, number> = {};
    for (const [k, v] of Object.entries(cpuAfter))
      if (cpuBefore[k] !== undefined && accepted > 0)
        cpuMsPerAlert[k] = Math.round(((v - cpuBefore[k]) / accepted) * 1000) / 1000;
    const latencies: number[] = [];
    let completed = 0;
    for (const id of ids) {
      const d = this.#delivered.get(id);
      if (!d || d.copies < partners.length) continue;
      latencies.push(d.at - this.#sentAt.get(id)!);
      if (d.at >= from && d.at < to) completed++;
    }
    latencies.sort((a, b) => a - b);
    return {
      label,
      offered,
      accepted,
      refused,
      seconds,
      latencies,
      completedPerSecond: completed / seconds,
      backlog: {
        first: samples[0] ?? 0,
        last: samples[samples.length - 1] ?? 0,
        max: Math.max(0, ...samples),
      },
      drainSeconds,
      cpuMsPerAlert,
    };
  }

  /** CPU used so far by every process of the hub, and by this one (the load generator). */
  #cpu(): Record<string, number> {
    const out: Record<string, number> = {};
    const add = (k: string, v: number | undefined) => {
      if (v !== undefined) out[k] = v;
    };
    const nodes = this.hub.cluster?.nodes ?? [this.hub.nats];
    nodes.forEach((n, i) =>
      add(nodes.length > 1 ? `nats-server ${i + 1}` : 'nats-server', cpuMsOf(n.pid)),
    );
    add('router', cpuMsOf(this.hub.router.proc.pid));
    for (const [id, g] of Object.entries(this.hub.gateways))
      add(`gateway ${id}`, cpuMsOf(g.proc.pid));
    add('load generator', cpuMsOf(process.pid));
    return out;
  }

  /**
   * With one partner's gateway stopped, its backlog must wait in JetStream: the consumer's
   * pending count grows while no process's memory does. Then the partner comes back and catches up.
   */
  async partnerOffline(rate: number, seconds: number) {
    const offline = PARTNERS[1];
    const memoryNow = () => ({
      router: memoryOf(this.hub.router.proc.pid)?.rssMiB,
      nats: memoryOf(this.hub.nats.pid)?.rssMiB,
      sender: memoryOf(this.hub.gateways[SENDER]!.proc.pid)?.rssMiB,
      otherPartner: memoryOf(this.hub.gateways[PARTNERS[0]]!.proc.pid)?.rssMiB,
    });
    await this.hub.gateways[offline]!.stop();
    const before = {
      memory: memoryNow(),
      backlog: (await backlogOf(this.#jsm, [offline])).partners[offline]!,
    };
    const phase = await this.phase('partner offline', rate, seconds, [PARTNERS[0]]);
    const after = {
      memory: memoryNow(),
      backlog: (await backlogOf(this.#jsm, [offline])).partners[offline]!,
    };
    const restartAt = nowMs();
    this.#cnGateway = await spawnService('gateway', join(this.hub.dir, `gateway-${offline}.yaml`), {
      env: { PATH: process.env['PATH'] },
    });
    let caughtUp = false;
    for (let i = 0; i < 1800 && !caughtUp; i++) {
      caughtUp = (await backlogOf(this.#jsm, [offline])).partners[offline] === 0;
      if (!caughtUp) await new Promise((r) => setTimeout(r, 100));
    }
    return {
      offlinePartner: offline,
      before,
      after,
      phase: {
        offered: phase.offered,
        accepted: phase.accepted,
        completedPerSecond: phase.completedPerSecond,
      },
      catchUpSeconds: (nowMs() - restartAt) / 1000,
      caughtUp,
    };
  }

  /** Peak resident memory of every process of the hub. */
  memory(): Record<string, { peakMiB: number; rssMiB: number } | undefined> {
    const m: Record<string, { peakMiB: number; rssMiB: number } | undefined> = {
      'nats-server': memoryOf(this.hub.nats.pid),
      router: memoryOf(this.hub.router.proc.pid),
      [`gateway ${SENDER}`]: memoryOf(this.hub.gateways[SENDER]!.proc.pid),
      [`gateway ${PARTNERS[0]}`]: memoryOf(this.hub.gateways[PARTNERS[0]]!.proc.pid),
      [`gateway ${PARTNERS[1]}`]: memoryOf(
        (this.#cnGateway ?? this.hub.gateways[PARTNERS[1]]!).proc.pid,
      ),
    };
    return m;
  }

  async stop(): Promise<void> {
    this.#agent.destroy();
    await this.#nc.close();
    await this.#cnGateway?.stop();
    await this.hub.stop({ keepDir: true });
  }
}
