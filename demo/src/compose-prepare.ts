#!/usr/bin/env node
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify as toYaml, parse as parseYaml } from 'yaml';
import {
  createDevPki,
  devPkiPaths,
  generateKey,
  leafCertName,
  planCluster,
  renderLeafListenerBlock,
  renderLeafNodeConfig,
  renderNatsClusterConfigs,
} from '@alert-hub/operator';
import { ROOT_DIR, createToken } from '@alert-hub/runtime/files';

/**
 * npm run compose:prepare: everything docker-compose.yml mounts at /etc/alert-hub, generated into
 * deploy/ (keys, development certificates, the hub nodes' and the leaf node's nats-server configurations, the services' configuration, API tokens).
 * --root rewrites the in-container paths (tests point them at the generated files to check them).
 */
export const COMPOSE_AGENCIES = [
  { id: 'SG-NPARKS', name: 'National Parks Board, Singapore', service: 'gateway-sg', port: 8081 },
  {
    id: 'VN-CUSTOMS',
    name: 'General Department of Viet Nam Customs',
    service: 'gateway-vn',
    port: 8082,
  },
  { id: 'NG-NCS', name: 'Nigeria Customs Service', service: 'gateway-ng', port: 8083 },
] as const;

/** The hub's three nodes (their compose service names, also their route host names). */
export const HUB_NODES = ['nats-1', 'nats-2', 'nats-3'] as const;
/** Agencies that run a leaf node in the compose file. */
export const COMPOSE_LEAVES = ['NG-NCS'] as const;
const leafHost = (agency: string) => `nats-leaf-${agency.slice(0, 2).toLowerCase()}`;

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: join(ROOT_DIR, 'deploy') },
    root: { type: 'string', default: '/etc/alert-hub' },
  },
  strict: true,
});
const out = resolve(values.out);
const root = values.root;
const inRoot = (...p: string[]) => [root, ...p].join('/');
mkdirSync(out, { recursive: true });

const certsDir = join(out, 'certs');
const keyOf: Record<string, string> = {};
for (const a of COMPOSE_AGENCIES)
  keyOf[a.id] = generateKey({ certsDir, principal: a.id, name: a.name }).privateFile.slice(
    out.length + 1,
  );
const hubKey = generateKey({
  certsDir,
  principal: 'HUB',
  role: 'router',
  name: 'alert-hub router',
}).privateFile.slice(out.length + 1);
await createDevPki({
  dir: join(certsDir, 'dev'),
  principals: ['HUB', ...COMPOSE_AGENCIES.map((a) => a.id), ...COMPOSE_LEAVES.map(leafCertName)],
  hosts: [...HUB_NODES, ...COMPOSE_LEAVES.map(leafHost)],
});
const tls = (who: string) => ({
  caFile: inRoot('certs/dev/ca.pem'),
  certFile: inRoot(`certs/dev/${who}.pem`),
  keyFile: inRoot(`certs/dev/${who}-key.pem`),
});
const p = devPkiPaths(inRoot('certs/dev'));

// The hub: three nodes, routes with mutual TLS, a leaf-node listener on each.
const storeDir = (name: string) =>
  root === '/etc/alert-hub' ? '/data' : join(out, `${name}-data`);
const serverTls = { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile };
const leafListener = renderLeafListenerBlock({ listen: '0.0.0.0:7422', tls: serverTls });
for (const node of renderNatsClusterConfigs({
  agencies: COMPOSE_AGENCIES.map((a) => a.id),
  routers: ['HUB'],
  leaves: COMPOSE_LEAVES,
  tls: serverTls,
  nodes: planCluster(HUB_NODES.length, { hosts: HUB_NODES }),
  routeTls: { caFile: p.caFile, certFile: p.routeCertFile, keyFile: p.routeKeyFile },
  // The monitoring endpoint answers without authentication: loopback of the nats container only.
  monitor: '127.0.0.1:8222',
  storeDir: storeDir('nats'),
}))
  writeFileSync(join(out, `${node.node.host}.conf`), `${node.text}\n${leafListener}\n`);
// Nigeria's own nats-server, a leaf node of the hub in its own JetStream domain.
for (const agency of COMPOSE_LEAVES) {
  const leafCert = devPkiPaths(inRoot('certs/dev'), leafCertName(agency));
  writeFileSync(
    join(out, `${leafHost(agency)}.conf`),
    renderLeafNodeConfig({
      agency,
      listen: '0.0.0.0:4222',
      monitor: '127.0.0.1:8222',
      storeDir: storeDir(leafHost(agency)),
      hubUrls: HUB_NODES.map((h) => `tls://${h}:7422`),
      tls: serverTls,
      leafTls: { caFile: p.caFile, certFile: leafCert.certFile, keyFile: leafCert.keyFile },
    }),
  );
}
const hubServers = HUB_NODES.map((h) => `tls://${h}:4222`);

const coordinator = createToken();
const agreements = parseYaml(
  readFileSync(join(ROOT_DIR, 'deploy', 'agreements.yaml'), 'utf8'),
) as unknown;
writeFileSync(join(out, 'agreements.yaml'), toYaml(agreements));
writeFileSync(
  join(out, 'router.yaml'),
  toYaml({
    instance: 'router-1',
    signingKey: inRoot(hubKey),
    trustDir: inRoot('certs/trust'),
    agreementsFile: inRoot('agreements.yaml'),
    dataDir: '/var/lib/alert-hub',
    nats: { servers: hubServers, tls: tls('HUB') },
    streams: { replicas: 3, leaves: COMPOSE_LEAVES },
    http: { host: '0.0.0.0', port: 8090 },
    coordinators: [{ name: 'coordinator', tokenSha256: coordinator.sha256 }],
  }),
);
const tokens = [`coordinator (router API, port 8090): ${coordinator.token}`];
for (const a of COMPOSE_AGENCIES) {
  const t = createToken();
  tokens.push(`${a.id} (${a.service}, port ${a.port}): ${t.token}`);
  writeFileSync(
    join(out, `gateway-${a.id}.yaml`),
    toYaml({
      agency: a.id,
      signingKey: inRoot(keyOf[a.id]!),
      trustDir: inRoot('certs/trust'),
      dataDir: '/var/lib/alert-hub',
      http: { host: '0.0.0.0', port: 8080 },
      nats: {
        servers: (COMPOSE_LEAVES as readonly string[]).includes(a.id)
          ? [`tls://${leafHost(a.id)}:4222`]
          : hubServers,
        tls: tls(a.id),
      },
      clients: [{ name: `${a.id} systems`, tokenSha256: t.sha256, roles: ['submit', 'read-feed'] }],
    }),
  );
}
writeFileSync(join(out, 'tokens.txt'), `${tokens.join('\n')}\n`, { mode: 0o600 });
process.stdout.write(
  `prepared ${out}: keys, certificates, nats-1..3.conf, nats-leaf-ng.conf, router.yaml, ${COMPOSE_AGENCIES.length} gateway configurations; API tokens in ${join(out, 'tokens.txt')}\n`,
);
