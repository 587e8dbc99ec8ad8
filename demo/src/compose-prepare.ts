#!/usr/bin/env node
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  writeFileSync,
} from 'node:fs';
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
 *
 * Idempotent: a second run keeps the keys, certificates, configurations and tokens it made the
 * first time (--force makes everything anew), and never rewrites the committed agreements file.
 * Run as root, it hands the generated files to the containers' user (uid 1000, --uid), whose
 * services must read them; private keys stay 0600, directories 0700.
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
    force: { type: 'boolean', default: false },
    uid: { type: 'string', default: '1000' },
  },
  strict: true,
});
const out = resolve(values.out);
const root = values.root;
const inRoot = (...p: string[]) => [root, ...p].join('/');
mkdirSync(out, { recursive: true });

const certsDir = join(out, 'certs');
const force = values.force;
const kept: string[] = [];
/** The newest private key file of `principal` made here before, relative to `out`. */
function existingKey(principal: string): string | undefined {
  const dir = join(certsDir, 'private', principal);
  if (force || !existsSync(join(certsDir, 'trust', `${principal}.jwks.json`)) || !existsSync(dir))
    return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.jwk'))
    .sort();
  const last = files[files.length - 1];
  return last === undefined ? undefined : join('certs', 'private', principal, last);
}
const keyOf: Record<string, string> = {};
for (const a of COMPOSE_AGENCIES) {
  const existing = existingKey(a.id);
  if (existing) kept.push(existing);
  keyOf[a.id] =
    existing ??
    generateKey({ certsDir, principal: a.id, name: a.name }).privateFile.slice(out.length + 1);
}
const hubKey =
  existingKey('HUB') ??
  generateKey({
    certsDir,
    principal: 'HUB',
    role: 'router',
    name: 'alert-hub router',
  }).privateFile.slice(out.length + 1);
await createDevPki({
  dir: join(certsDir, 'dev'),
  principals: ['HUB', ...COMPOSE_AGENCIES.map((a) => a.id), ...COMPOSE_LEAVES.map(leafCertName)],
  hosts: [...HUB_NODES, ...COMPOSE_LEAVES.map(leafHost)],
  force,
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
const leafListener = renderLeafListenerBlock({
  listen: '0.0.0.0:7422',
  tls: serverTls,
  leaves: COMPOSE_LEAVES,
});
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

// The committed agreements file is the source: copied only when preparing somewhere else.
const committedAgreements = join(ROOT_DIR, 'deploy', 'agreements.yaml');
if (resolve(join(out, 'agreements.yaml')) !== resolve(committedAgreements)) {
  const agreements = parseYaml(readFileSync(committedAgreements, 'utf8')) as unknown;
  writeFileSync(join(out, 'agreements.yaml'), toYaml(agreements));
}

// Tokens are made once: their hashes are in the configurations, the tokens in tokens.txt.
const tokensFile = join(out, 'tokens.txt');
const configFiles = ['router.yaml', ...COMPOSE_AGENCIES.map((a) => `gateway-${a.id}.yaml`)];
const keepTokens =
  !force && [tokensFile, ...configFiles.map((f) => join(out, f))].every(existsSync);
const tokenHash = (file: string, member: 'coordinators' | 'clients'): string | undefined => {
  if (!keepTokens) return undefined;
  const doc = parseYaml(readFileSync(join(out, file), 'utf8')) as Record<
    string,
    { tokenSha256: string }[] | undefined
  >;
  return doc[member]?.[0]?.tokenSha256;
};
const coordinator = createToken();
const coordinatorSha = tokenHash('router.yaml', 'coordinators') ?? coordinator.sha256;
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
    coordinators: [{ name: 'coordinator', tokenSha256: coordinatorSha }],
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
      // Behind a leaf node, a gateway stores what it sends in the leaf's outbox and reaches the
      // hub for everything else by its own connection.
      nats: { servers: hubServers, tls: tls(a.id) },
      ...((COMPOSE_LEAVES as readonly string[]).includes(a.id)
        ? { outbox: { servers: [`tls://${leafHost(a.id)}:4222`] } }
        : {}),
      clients: [
        {
          name: `${a.id} systems`,
          tokenSha256: tokenHash(`gateway-${a.id}.yaml`, 'clients') ?? t.sha256,
          roles: ['submit', 'read-feed'],
        },
      ],
    }),
  );
}
if (!keepTokens) writeFileSync(tokensFile, `${tokens.join('\n')}\n`, { mode: 0o600 });

// The containers run as uid 1000 and mount this directory read-only: they must be able to read
// the trust store, their keys and certificates. Run as root, hand them over; otherwise the
// files are already the caller's.
const uid = Number(values.uid);
if (process.getuid?.() === 0 && uid !== 0) {
  const walk = (path: string) => {
    const st = lstatSync(path);
    if (st.isSymbolicLink()) return;
    chownSync(path, uid, uid);
    if (st.isDirectory()) for (const f of readdirSync(path)) walk(join(path, f));
  };
  walk(certsDir);
  const natsConfs = [...HUB_NODES, ...COMPOSE_LEAVES.map(leafHost)].map((h) => `${h}.conf`);
  for (const f of [...configFiles, ...natsConfs, 'tokens.txt']) chownSync(join(out, f), uid, uid);
}
// Directories 0700 would be fine for their owner; the trust store is public and must be
// readable by the services whoever owns it.
chmodSync(certsDir, 0o755);
chmodSync(join(certsDir, 'trust'), 0o755);

process.stdout.write(
  `prepared ${out}: keys, certificates, nats-1..3.conf, nats-leaf-ng.conf, router.yaml, ${COMPOSE_AGENCIES.length} gateway configurations; ` +
    (keepTokens
      ? `kept the keys and API tokens of an earlier run (--force makes new ones); tokens in ${tokensFile}\n`
      : `API tokens in ${tokensFile}\n`),
);
void kept;
