import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDevPki,
  devPkiPaths,
  leafAccountName,
  leafCertName,
  renderLeafListenerBlock,
  renderNatsSecurityConfig,
  type TlsFiles,
} from '@alert-hub/operator';
import {
  eventually,
  findNatsServer,
  freePort,
  startNatsCluster,
  type NatsCluster,
  type NatsServer,
} from '@alert-hub/testkit';

/**
 * Who may join the hub's cluster and who may connect as a leaf node, tried with real
 * nats-server processes: a three-node hub cluster as `hubctl nats-config --cluster` renders it
 * (routes with the route certificate, a leaf listener on the first node), and for each attempt a
 * nats-server of the attacker's own, dialing with the certificate under test. The dev PKI's one
 * CA signs every certificate, so each refusal is by identity, not by an unknown issuer.
 */
const AGENCY = 'SG-NPARKS';
const dir = mkdtempSync(join(tmpdir(), 'ahub-admission-'));
const pki = join(dir, 'pki');
let cluster: NatsCluster;
let hub: NatsServer;
let routePort: number;
let leafPort: number;
const peers: ChildProcess[] = [];

const certOf = (name: string): TlsFiles => {
  const p = devPkiPaths(pki, name);
  return { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile };
};
const routeCert = (): TlsFiles => {
  const p = devPkiPaths(pki);
  return { caFile: p.caFile, certFile: p.routeCertFile, keyFile: p.routeKeyFile };
};

beforeAll(async () => {
  await createDevPki({ dir: pki, principals: ['HUB', AGENCY, leafCertName(AGENCY)] });
  const p = devPkiPaths(pki);
  const serverTls = { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile };
  leafPort = await freePort();
  cluster = await startNatsCluster({
    size: 3,
    dir: join(dir, 'hub'),
    env: process.env,
    routeTls: routeCert(),
    config: renderNatsSecurityConfig({
      agencies: [AGENCY],
      routers: ['HUB'],
      tls: serverTls,
      leaves: [AGENCY],
    }),
    nodeConfig: (i) =>
      i === 0
        ? renderLeafListenerBlock({
            listen: `127.0.0.1:${leafPort}`,
            tls: serverTls,
            leaves: [AGENCY],
          })
        : '',
  });
  hub = cluster.nodes[0]!;
  routePort = (await monitor<{ cluster: { cluster_port: number } }>('varz')).cluster.cluster_port;
}, 120_000);

afterAll(async () => {
  for (const p of peers) p.kill('SIGKILL');
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function monitor<T>(endpoint: string, node = hub): Promise<T> {
  return (await (await fetch(`${node.monitorUrl}/${endpoint}`)).json()) as T;
}
/** The server ids of the nodes the first node has a route with. */
const routesOfHub = async () =>
  ((await monitor<{ routes: { remote_id: string }[] | null }>('routez')).routes ?? [])
    .map((r) => r.remote_id)
    .sort();
/** The server ids of the two other hub nodes. */
const otherNodes = async () =>
  (
    await Promise.all(
      cluster.nodes
        .slice(1)
        .map(async (n) => (await monitor<{ server_id: string }>('varz', n)).server_id),
    )
  ).sort();
const leavesOfHub = async () =>
  ((await monitor<{ leafs: { account: string }[] | null }>('leafz')).leafs ?? []).map(
    (l) => l.account,
  );

const tlsBlock = (t: Partial<TlsFiles>, indent: string) =>
  [
    `${indent}tls {`,
    ...(t.certFile ? [`${indent}  cert_file: ${JSON.stringify(t.certFile)}`] : []),
    ...(t.keyFile ? [`${indent}  key_file: ${JSON.stringify(t.keyFile)}`] : []),
    `${indent}  ca_file: ${JSON.stringify(t.caFile)}`,
    `${indent}}`,
  ].join('\n');

/** The attacker's nats-server (no JetStream) with `config`; its log tells when it was turned away. */
function startPeer(name: string, config: string) {
  const log = join(dir, `${name}.log`);
  const file = join(dir, `${name}.conf`);
  writeFileSync(
    file,
    [
      `server_name: ${JSON.stringify(name)}`,
      'listen: "127.0.0.1:-1"',
      `log_file: ${JSON.stringify(log)}`,
      config,
    ].join('\n'),
  );
  const proc = spawn(findNatsServer(process.env), ['-c', file], { stdio: 'ignore' });
  peers.push(proc);
  return {
    /** Lines of its log that say a route or leaf connection of its own was closed. */
    closed: () => {
      try {
        return readFileSync(log, 'utf8')
          .split('\n')
          .filter((l) => /(Router|Leafnode) connection closed/.test(l));
      } catch {
        return [];
      }
    },
    stop: () => proc.kill('SIGKILL'),
  };
}

describe('hub cluster - an agency cannot join it', () => {
  it('the hub nodes are joined by the route certificate', async () => {
    const others = JSON.stringify(await otherNodes());
    await eventually(
      async () => JSON.stringify(await routesOfHub()) === others,
      20_000,
      'a route with each other node',
    );
  });

  for (const who of [AGENCY, leafCertName(AGENCY)])
    it(`a node dialing the route listener with ${who}'s certificate (same CA) is refused`, async () => {
      const peer = startPeer(
        `route-${who}`,
        [
          'cluster {',
          '  name: "alert-hub"',
          '  listen: "127.0.0.1:-1"',
          tlsBlock(certOf(who), '  '),
          `  routes: ["nats-route://127.0.0.1:${routePort}"]`,
          '}',
        ].join('\n'),
      );
      try {
        // Turned away twice (nats-server retries each second): it was tried, and stays out.
        await eventually(() => peer.closed().length >= 2, 20_000, `${who} turned away twice`);
        expect(await routesOfHub()).toEqual(await otherNodes());
      } finally {
        peer.stop();
      }
    });
});

describe('hub leaf listener - only a leaf certificate, into its own account', () => {
  const leafPeer = (name: string, tls: Partial<TlsFiles>) =>
    startPeer(
      name,
      [
        'leafnodes {',
        '  remotes: [',
        '    {',
        `      urls: ["tls://127.0.0.1:${leafPort}"]`,
        tlsBlock(tls, '      '),
        '    }',
        '  ]',
        '}',
      ].join('\n'),
    );

  const refused: [string, () => Partial<TlsFiles>][] = [
    ['without a certificate', () => ({ caFile: devPkiPaths(pki).caFile })],
    // Signed by the hub's CA, but mapped to no user: never the global account.
    ['with a certificate that maps to no user (the route certificate)', routeCert],
    // Certificates of client users: a leaf is admitted by a leaf certificate alone.
    [`with ${AGENCY}'s gateway certificate`, () => certOf(AGENCY)],
    ["with the router's certificate", () => certOf('HUB')],
  ];
  for (const [name, tls] of refused)
    it(`a leaf ${name} is refused`, async () => {
      const peer = leafPeer(`leaf-${name.replace(/\W+/g, '-')}`, tls());
      try {
        await eventually(() => peer.closed().length >= 2, 20_000, 'turned away twice');
        expect(await leavesOfHub()).toEqual([]);
      } finally {
        peer.stop();
      }
    });

  it(`a leaf with ${AGENCY}'s leaf certificate lands in its own account, not ${AGENCY}'s`, async () => {
    const peer = leafPeer('leaf-own-certificate', certOf(leafCertName(AGENCY)));
    try {
      expect(
        await eventually(
          async () => ((await leavesOfHub()).length > 0 ? leavesOfHub() : undefined),
          20_000,
          'the leaf connected',
        ),
      ).toEqual([leafAccountName(AGENCY)]);
    } finally {
      peer.stop();
    }
  });
});
