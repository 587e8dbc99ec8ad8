import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderClusterBlock, type ClusterNode, type RouteTls } from '@alert-hub/operator';
import { startNatsServer, type NatsServer } from './nats-server.js';
import { addressInUse, freePort } from './ports.js';

export { freePort } from './ports.js';

/** A hub cluster of nats-server processes on loopback. */
export interface NatsCluster {
  readonly nodes: readonly NatsServer[];
  /** Every node's client URL, for a service's `nats.servers`. */
  readonly urls: readonly string[];
  readonly dir: string;
  /** Kills every node at once (SIGKILL, as a power cut) and starts them all again, on the same ports and stores. */
  restartAll(): Promise<void>;
  /** Stops every node and removes a temporary directory. */
  stop(): Promise<void>;
}

/**
 * Starts `size` nats-server nodes as one JetStream cluster on loopback: routes with mutual TLS
 * rendered by `@alert-hub/operator` (the same block `hubctl nats-config --cluster` writes), each
 * node with its own store and `config` (the accounts and users) appended. Resolves when every
 * node's health endpoint says ready, which on a cluster means JetStream has a meta leader.
 */
export async function startNatsCluster(o: {
  readonly size: number;
  readonly routeTls: RouteTls;
  /** The accounts, users and client TLS, the same on every node. */
  readonly config: string;
  /** Configuration for one node only (its leaf-node listener), appended after `config`. */
  readonly nodeConfig?: (index: number) => string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly dir?: string;
  readonly startTimeoutMs?: number;
}): Promise<NatsCluster> {
  const ownsDir = o.dir === undefined;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'ahub-cluster-'));
  mkdirSync(dir, { recursive: true });
  // Route ports are chosen before any node starts (every node names them all). They lie below the
  // kernel's ephemeral range, where nothing it picks can take one meanwhile; another process
  // picking the same one at random can, and such a start is tried again on fresh ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startNodes(o, dir, ownsDir);
    } catch (err) {
      if (attempt >= 3 || !addressInUse((err as Error).message)) {
        if (ownsDir) rmSync(dir, { recursive: true, force: true });
        throw err;
      }
      for (let i = 0; i < o.size; i++)
        rmSync(join(dir, `ahub-${i + 1}`), { recursive: true, force: true });
    }
  }
}

async function startNodes(
  o: Parameters<typeof startNatsCluster>[0],
  dir: string,
  ownsDir: boolean,
): Promise<NatsCluster> {
  const nodes: ClusterNode[] = [];
  const clientPorts: number[] = [];
  for (let i = 0; i < o.size; i++) {
    nodes.push({ name: `ahub-${i + 1}`, host: '127.0.0.1', routePort: await freePort() });
    clientPorts.push(await freePort());
  }
  const servers: NatsServer[] = [];
  const started = await Promise.allSettled(
    nodes.map((node, i) =>
      startNatsServer({
        dir: join(dir, node.name),
        serverName: node.name,
        port: clientPorts[i]!,
        removeDir: false,
        startTimeoutMs: o.startTimeoutMs ?? 30_000,
        ...(o.env ? { env: o.env } : {}),
        config: [
          renderClusterBlock({ self: node, nodes, tls: o.routeTls, listenHost: '127.0.0.1' }),
          o.config,
          o.nodeConfig?.(i) ?? '',
        ].join('\n'),
      }),
    ),
  );
  for (const r of started) if (r.status === 'fulfilled') servers.push(r.value);
  const failed = started.find((r) => r.status === 'rejected');
  const stopAll = async () => {
    await Promise.allSettled(servers.map((s) => s.stop()));
    if (ownsDir) rmSync(dir, { recursive: true, force: true });
  };
  if (failed) {
    // The directory stays for another attempt; the caller removes it when it gives up.
    await Promise.allSettled(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return {
    nodes: servers,
    get urls() {
      return servers.map((s) => s.url);
    },
    dir,
    async restartAll() {
      await Promise.all(servers.map((s) => s.kill()));
      await Promise.all(servers.map((s) => s.restart()));
    },
    stop: stopAll,
  };
}
