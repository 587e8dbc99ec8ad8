import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { NatsConnection } from '@nats-io/transport-node';
import { countryOf, inboxPrefix, leafDomain, type SigningAlgorithm } from '@alert-hub/core';
import {
  createDevPki,
  devPkiPaths,
  generateKey,
  leafCertName,
  renderLeafListenerBlock,
  renderLeafNodeParts,
  renderNatsSecurityConfig,
} from '@alert-hub/operator';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, createToken, provisionLeaf } from '@alert-hub/runtime';
import { findNatsServer, startNatsServer, type NatsServer } from './nats-server.js';
import { freePort, startNatsCluster, type NatsCluster } from './nats-cluster.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
import { spawnService, type ServiceProcess } from './service-process.js';

/** An agency of a local hub. */
export interface LocalAgency {
  readonly id: string;
  readonly name: string;
  /** The algorithm of the agency's key (default: Ed25519). */
  readonly alg?: SigningAlgorithm;
}

export interface LocalHubOptions {
  readonly agencies: readonly LocalAgency[];
  /** The agreements document (written to `agreements.yaml`). */
  readonly agreements: unknown;
  /** Working directory; a new temporary one when absent (removed by `stop()`). */
  readonly dir?: string;
  /** Environment for finding nats-server (`NATS_SERVER_BIN`, `PATH`). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Progress messages. */
  readonly onProgress?: (message: string) => void;
  /** Extra configuration merged into every gateway's / the router's file. */
  readonly gatewayConfig?: Record<string, unknown>;
  readonly routerConfig?: Record<string, unknown>;
  /** Extra node flags for the services (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** Agencies whose gateway is started (default: every agency's). */
  readonly gateways?: readonly string[];
  /**
   * Run the hub's NATS as a cluster of this many nodes (routes with mutual TLS, streams at
   * min(3, nodes) replicas) instead of one server. Every service is given every node's URL.
   */
  readonly clusterSize?: number;
  /**
   * Agencies that run a leaf node: their own nats-server (JetStream domain = the agency's id)
   * linked to every hub node through a {@link TcpProxy} the caller can cut; their gateway
   * connects to it, their alerts are stored in its outbox and sourced by the hub.
   */
  readonly leaves?: readonly string[];
}

/** An agency's leaf node in a local hub, and the link to the hub that a test can cut. */
export interface LocalLeaf {
  readonly agency: string;
  readonly nats: NatsServer;
  /** One proxy per hub node: the leaf's link. */
  readonly links: readonly TcpProxy[];
  /** One proxy per hub node: the agency's gateway's connection to the hub, the same line. */
  readonly gatewayLinks: readonly TcpProxy[];
  /** Cuts the line to every hub node: the leaf's link and the gateway's connection. */
  cut(): void;
  restore(): void;
  /** A connection to the leaf as the agency's operators (full JetStream in its own domain). */
  connectAsOperator(): Promise<NatsConnection>;
}

/** A running local hub: nats-server, router and one gateway per agency, each its own process. */
export interface LocalHub {
  readonly dir: string;
  /** The NATS server, or the first node of the cluster. */
  readonly nats: NatsServer;
  /** The cluster, when started with `clusterSize`. */
  readonly cluster: NatsCluster | undefined;
  /** Every NATS node's client URL. */
  readonly natsUrls: readonly string[];
  /** Leaf nodes by agency. */
  readonly leaves: Readonly<Record<string, LocalLeaf>>;
  readonly router: ServiceProcess;
  readonly gateways: Readonly<Record<string, ServiceProcess>>;
  /** Bearer token with `submit` and `read-feed` on every gateway (each agency's own systems). */
  readonly token: string;
  /** Coordinator token for the router's audit API. */
  readonly coordinatorToken: string;
  readonly certsDir: string;
  readonly agreementsFile: string;
  readonly auditDb: string;
  /** A NATS connection with `principal`'s certificate and permissions. */
  connectAs(principal: string): Promise<NatsConnection>;
  /** Stops every process (gateways, router, nats-server) and removes a temporary directory. */
  stop(options?: { keepDir?: boolean }): Promise<void>;
}

/** The hub's router principal in a local hub. */
export const LOCAL_ROUTER = 'HUB';

/**
 * Node flags every service runs with. V8 otherwise lets the heap grow well past what is live
 * before collecting (measured: the router at 298 MiB peak RSS draining 20,000 alerts, 195 MiB
 * with this cap and the same throughput). The Docker images set the same in NODE_OPTIONS.
 */
export const SERVICE_NODE_ARGS = ['--max-old-space-size=128'] as const;

/**
 * One sharing agreement among the countries of `agencies`, for seizure reports up to TLP:AMBER,
 * valid since 2019: the agreement most end-to-end tests route under.
 */
export function seizureAgreement(id: string, title: string, agencies: readonly string[]) {
  return {
    id,
    version: 1,
    title,
    parties: [...new Set(agencies.map(countryOf))],
    alertTypes: ['seizure-report'],
    maxHandling: 'TLP:AMBER',
    validFrom: '2019-01-01T00:00:00Z',
  };
}

/**
 * {@link startLocalHub} for the usual end-to-end test: `agencies` (each named by its id) under
 * one {@link seizureAgreement} among them, nats-server found through this process's environment.
 */
export function startSeizureHub(
  o: Omit<LocalHubOptions, 'agencies' | 'agreements' | 'env'> & {
    readonly agencies: readonly string[];
    readonly agreement: { readonly id: string; readonly title: string };
  },
): Promise<LocalHub> {
  const { agencies, agreement, ...rest } = o;
  return startLocalHub({
    ...rest,
    env: process.env,
    agencies: agencies.map((id) => ({ id, name: id })),
    agreements: { agreements: [seizureAgreement(agreement.id, agreement.title, agencies)] },
  });
}

/**
 * Starts a complete hub on this machine the way it runs in production, with nothing prepared:
 * keys for every agency and the router, a development CA and certificates, nats-server with
 * JetStream, mutual TLS and least-privilege users (never an open server), the router, and a
 * gateway per agency. Used by `npm run demo`, `npm run bench` and the tests.
 */
export async function startLocalHub(o: LocalHubOptions): Promise<LocalHub> {
  const progress = o.onProgress ?? (() => undefined);
  // Fail before anything is generated when nats-server is missing (the error names the install command).
  findNatsServer(o.env);
  const ownsDir = o.dir === undefined;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'ahub-local-'));
  const certsDir = join(dir, 'certs');
  const logsDir = join(dir, 'logs');
  // Private, like every service's own data: the logs name agencies and alert ids.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(logsDir, { recursive: true, mode: 0o700 });
  const started: { stop(): Promise<unknown> }[] = [];
  const cleanup = async (keepDir = false) => {
    for (const s of [...started].reverse()) await s.stop().catch(() => undefined);
    if (ownsDir && !keepDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const keyFiles: Record<string, string> = {};
    const validity = { now: new Date(Date.now() - 3600_000), validDays: 365 };
    for (const a of o.agencies)
      keyFiles[a.id] = generateKey({
        certsDir,
        principal: a.id,
        name: a.name,
        ...(a.alg ? { alg: a.alg } : {}),
        ...validity,
      }).privateFile;
    const hubKey = generateKey({
      certsDir,
      principal: LOCAL_ROUTER,
      role: 'router',
      name: 'alert-hub router',
      ...validity,
    }).privateFile;
    const pkiDir = join(certsDir, 'dev');
    const leafIds = o.leaves ?? [];
    await createDevPki({
      dir: pkiDir,
      principals: [LOCAL_ROUTER, ...o.agencies.map((a) => a.id), ...leafIds.map(leafCertName)],
    });
    progress(
      `keys for ${o.agencies.length} agencies and the hub; a development CA and a certificate for each`,
    );

    const p = devPkiPaths(pkiDir);
    const security = renderNatsSecurityConfig({
      agencies: o.agencies.map((a) => a.id),
      routers: [LOCAL_ROUTER],
      tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
      leaves: leafIds,
    });
    const serverTls = { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile };
    const nodeCount = o.clusterSize && o.clusterSize > 1 ? o.clusterSize : 1;
    const leafPorts: number[] = [];
    if (leafIds.length) for (let i = 0; i < nodeCount; i++) leafPorts.push(await freePort());
    // Every hub node tells its leaves an address where nothing listens: a leaf then reaches the
    // hub only through the links (proxies) of this hub, which a test cuts and restores.
    const nowhere = leafIds.length ? await freePort() : 0;
    const leafListener = (i: number) =>
      leafIds.length
        ? renderLeafListenerBlock({
            listen: `127.0.0.1:${leafPorts[i]}`,
            advertise: `127.0.0.1:${nowhere}`,
            tls: serverTls,
            leaves: leafIds,
          })
        : '';
    let nats: NatsServer;
    let cluster: NatsCluster | undefined;
    if (o.clusterSize && o.clusterSize > 1) {
      cluster = await startNatsCluster({
        size: o.clusterSize,
        dir: join(dir, 'nats'),
        env: o.env,
        routeTls: { caFile: p.caFile, certFile: p.routeCertFile, keyFile: p.routeKeyFile },
        config: security,
        nodeConfig: leafListener,
      });
      started.push(cluster);
      nats = cluster.nodes[0]!;
      progress(
        `a ${o.clusterSize}-node NATS cluster (routes with mutual TLS, JetStream R${Math.min(3, o.clusterSize)}) at ${cluster.urls.join(', ')}`,
      );
    } else {
      nats = await startNatsServer({
        dir: join(dir, 'nats'),
        env: o.env,
        config: [security, leafListener(0)].join('\n'),
      });
      started.push(nats);
      progress(
        `nats-server with JetStream, mutual TLS and one least-privilege user per agency at ${nats.url}`,
      );
    }
    const natsUrls = cluster ? [...cluster.urls] : [nats.url];
    const replicas = cluster ? Math.min(3, o.clusterSize ?? 1) : 1;

    const leaves: Record<string, LocalLeaf> = {};
    for (const agency of leafIds) {
      const links: TcpProxy[] = [];
      for (const port of leafPorts) {
        const link = await startTcpProxy(port);
        started.push({ stop: () => link.close() });
        links.push(link);
      }
      // The agency's gateway reaches the hub by its own connection, over the same line.
      const gatewayLinks: TcpProxy[] = [];
      for (const url of natsUrls) {
        const link = await startTcpProxy(Number(new URL(url).port));
        started.push({ stop: () => link.close() });
        gatewayLinks.push(link);
      }
      const leafCert = devPkiPaths(pkiDir, leafCertName(agency));
      const leafNats = await startNatsServer({
        dir: join(dir, `leaf-${agency}`),
        env: o.env,
        serverName: `leaf-${agency}`,
        jetstreamDomain: leafDomain(agency),
        config: renderLeafNodeParts({
          agency,
          hubUrls: links.map((l) => `tls://127.0.0.1:${l.port}`),
          tls: serverTls,
          leafTls: { caFile: p.caFile, certFile: leafCert.certFile, keyFile: leafCert.keyFile },
        }),
      });
      started.push(leafNats);
      const ops = devPkiPaths(pkiDir, 'ops');
      const connectAsOperator = () =>
        connectNats({
          servers: leafNats.url,
          name: `${agency} leaf operator`,
          tls: { caFile: p.caFile, certFile: ops.certFile, keyFile: ops.keyFile },
        });
      const nc = await connectAsOperator();
      try {
        await provisionLeaf(await jetstreamManager(nc), agency);
      } finally {
        await nc.close();
      }
      leaves[agency] = {
        agency,
        nats: leafNats,
        links,
        gatewayLinks,
        cut: () => [...links, ...gatewayLinks].forEach((l) => l.cut()),
        restore: () => [...links, ...gatewayLinks].forEach((l) => l.restore()),
        connectAsOperator,
      };
    }
    if (leafIds.length)
      progress(
        `leaf nodes (own JetStream domain, outbox sourced by the hub): ${leafIds.map((a) => `${a} ${leaves[a]!.nats.url}`).join(', ')}`,
      );

    const tlsOf = (who: string) => {
      const f = devPkiPaths(pkiDir, who);
      return { caFile: f.caFile, certFile: f.certFile, keyFile: f.keyFile };
    };
    const agreementsFile = join(dir, 'agreements.yaml');
    writeFileSync(agreementsFile, toYaml(o.agreements));
    const token = createToken();
    const coordinator = createToken();
    const auditDb = join(dir, 'router', 'audit.db');
    const routerFile = join(dir, 'router.yaml');
    writeFileSync(
      routerFile,
      toYaml({
        instance: 'router-1',
        signingKey: hubKey,
        trustDir: join(certsDir, 'trust'),
        agreementsFile,
        dataDir: join(dir, 'router'),
        nats: { servers: natsUrls, tls: tlsOf(LOCAL_ROUTER) },
        http: { port: 0 },
        coordinators: [{ name: 'coordinator', tokenSha256: coordinator.sha256 }],
        checkpointIntervalMs: 1000,
        ...o.routerConfig,
        // A test's `streams` adds to the hub's own (replicas, leaves) rather than replacing them.
        streams: {
          replicas,
          leaves: leafIds,
          ...(o.routerConfig?.['streams'] as Record<string, unknown> | undefined),
        },
      }),
    );
    const router = await spawnService('router', routerFile, {
      env: o.env,
      logFile: join(logsDir, 'router.log'),
      captureLogs: false,
      nodeArgs: [...SERVICE_NODE_ARGS, ...(o.nodeArgs ?? [])],
    });
    started.push(router);
    progress(`router at ${router.url}`);

    const gateways: Record<string, ServiceProcess> = {};
    const withGateway = o.agencies.filter((a) => !o.gateways || o.gateways.includes(a.id));
    await Promise.all(
      withGateway.map(async (a) => {
        const file = join(dir, `gateway-${a.id}.yaml`);
        writeFileSync(
          file,
          toYaml({
            agency: a.id,
            signingKey: keyFiles[a.id],
            trustDir: join(certsDir, 'trust'),
            dataDir: join(dir, 'gateways', a.id),
            http: { port: 0 },
            nats: {
              servers: leaves[a.id]
                ? leaves[a.id]!.gatewayLinks.map((l) => `tls://127.0.0.1:${l.port}`)
                : natsUrls,
              tls: tlsOf(a.id),
            },
            clients: [
              {
                name: `${a.id} systems`,
                tokenSha256: token.sha256,
                roles: ['submit', 'read-feed'],
              },
            ],
            ...o.gatewayConfig,
            // Behind a leaf, the gateway stores what it sends in the leaf's outbox and watches it
            // for alerts expired there before the hub had them.
            ...(leaves[a.id]
              ? {
                  outbox: {
                    servers: [leaves[a.id]!.nats.url],
                    ...(o.gatewayConfig?.['outbox'] as Record<string, unknown> | undefined),
                  },
                }
              : {}),
          }),
        );
        const g = await spawnService('gateway', file, {
          env: o.env,
          logFile: join(logsDir, `gateway-${a.id}.log`),
          captureLogs: false,
          nodeArgs: [...SERVICE_NODE_ARGS, ...(o.nodeArgs ?? [])],
          // Every gateway boots at once (schemas compiled, keys loaded): on a loaded 2-core
          // machine seven of them take longer than a single service's default 30 s.
          timeoutMs: 90_000,
        });
        started.push(g);
        gateways[a.id] = g;
      }),
    );
    progress(`gateways: ${withGateway.map((a) => `${a.id} ${gateways[a.id]!.url}`).join(', ')}`);

    return {
      dir,
      nats,
      cluster,
      natsUrls,
      leaves,
      router,
      gateways,
      token: token.token,
      coordinatorToken: coordinator.token,
      certsDir,
      agreementsFile,
      auditDb,
      connectAs: (principal) =>
        connectNats({
          servers: natsUrls,
          name: `local ${principal}`,
          inboxPrefix: inboxPrefix(principal),
          tls: tlsOf(principal),
        }),
      stop: (options) => cleanup(options?.keepDir ?? false),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
