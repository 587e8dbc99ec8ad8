import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import {
  DEFAULT_AGENCY_LIMITS,
  createDevPki,
  devPkiPaths,
  DEFAULT_LEAF_PORT,
  leafCertName,
  planCluster,
  renderLeafListenerBlock,
  renderLeafNodeConfig,
  renderNatsClusterConfigs,
  renderNatsSecurityConfig,
  renderNatsServerConfig,
  type AgencyLimits,
} from '@alert-hub/operator';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime/files';
import { parse as parseYaml } from 'yaml';
import { readFileSync } from 'node:fs';
import { print } from '../output.js';
import { agencyId } from './agency-id.js';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { reading, readingThenWriting, writing } from '../files.js';

function registry(certs: string) {
  const dir = join(certs, 'trust');
  const trust = reading(() => loadTrustStore(dir, loadSchemaRegistry(DEFAULT_SCHEMAS_DIR)), dir);
  return {
    agencies: trust.agencies,
    routers: trust.principals.filter((p) => p.role === 'router').map((p) => p.id),
  };
}

function positive(v: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('a positive integer');
  return n;
}

function isLoopback(hostPort: string): boolean {
  const host = hostPort.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  // An address, not a name that merely starts like one (`127.0.0.1.example.org` resolves anywhere).
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

export function registerNats(program: Command): void {
  program
    .command('nats-config')
    .description(
      'generate the nats-server configuration from the agency registry (certs/trust): mutual TLS, one NATS account per agency with a least-privilege user and limits, the hub account (JetStream, router), a system account, nothing anonymous',
    )
    .option(
      '--certs <dir>',
      'certs directory (trust/ is the registry, dev/ the TLS files by default)',
      'certs',
    )
    .option(
      '--tls-dir <dir>',
      'directory with ca.pem, server.pem, server-key.pem (default <certs>/dev)',
    )
    .option('--listen <host:port>', 'client listener', '0.0.0.0:4222')
    .option(
      '--monitor <host:port>',
      'monitoring listener; it answers without authentication, so loopback only unless --monitor-any',
      '127.0.0.1:8222',
    )
    .option('--no-monitor', 'no monitoring listener at all')
    .option('--monitor-any', 'allow a monitoring listener on a non-loopback address')
    .option(
      '--max-connections <n>',
      `connections per agency account (default ${DEFAULT_AGENCY_LIMITS.maxConnections})`,
      positive,
    )
    .option(
      '--max-subscriptions <n>',
      `subscriptions per connection of an agency (default ${DEFAULT_AGENCY_LIMITS.maxSubscriptions})`,
      positive,
    )
    .option(
      '--max-payload <bytes>',
      `largest message an agency may publish, headers included (default ${DEFAULT_AGENCY_LIMITS.maxPayload})`,
      positive,
    )
    .option(
      '--limits <file>',
      'YAML map agency -> {maxConnections, maxSubscriptions, maxPayload}, over the defaults',
    )
    .option('--store-dir <dir>', 'JetStream store', '/var/lib/nats/jetstream')
    .option(
      '--max-file-store <bytes>',
      "JetStream's max_file_store: the disk it may reserve; every agency's inbound stream reserves its quota (router streams.inboundMaxBytes) against it (default: nats-server takes 75% of the free disk)",
      positive,
    )
    .option(
      '--identities <file>',
      'YAML map principal -> certificate identity, for agencies that bring their own PKI',
    )
    .option('--fragment', 'print only the security part, to include in an existing configuration')
    .option('--out <file>', 'write to this file instead of standard output')
    .option(
      '--cluster <n>',
      'render one configuration per node of an n-node cluster (3 or 5) into --out-dir: routes with mutual TLS (route.pem), the same accounts on every node',
      (v) => Number.parseInt(v, 10),
    )
    .option(
      '--node-host <host>',
      'host name the other nodes dial, one per node in order (default nats-1, nats-2, ...)',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option('--route-port <port>', 'route listener of every node', (v) => Number.parseInt(v, 10))
    .option('--out-dir <dir>', 'with --cluster: where to write <node>.conf')
    .option(
      '--leaf-agencies <ids>',
      'comma-separated agencies that run a leaf node: their account admits the leaf certificate (<id>.leaf.pem) and the hub sources their outbox; adds a leaf-node listener',
      (v: string) => v.split(',').filter(Boolean),
    )
    .option(
      '--audit-logs <names>',
      "comma-separated audit logs the hub's routers write (each router's auditLog): an agency may publish its cosignatures of these only",
      (v: string) => v.split(',').filter(Boolean),
    )
    .option(
      '--leaf-listen <host:port>',
      'leaf-node listener of the hub',
      `0.0.0.0:${DEFAULT_LEAF_PORT}`,
    )
    .option(
      '--leaf <id>',
      "render instead the configuration of agency <id>'s own leaf node (its own JetStream domain, linked to every --hub-url)",
    )
    .option(
      '--hub-url <url>',
      "with --leaf: a hub node's leaf listener, tls://host:7422 (repeatable)",
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .action(
      (o: {
        leafAgencies?: string[];
        auditLogs?: string[];
        leafListen: string;
        leaf?: string;
        hubUrl?: string[];
        cluster?: number;
        nodeHost?: string[];
        routePort?: number;
        outDir?: string;
        certs: string;
        tlsDir?: string;
        listen: string;
        monitor: string | false;
        monitorAny?: boolean;
        maxConnections?: number;
        maxSubscriptions?: number;
        maxPayload?: number;
        limits?: string;
        storeDir: string;
        maxFileStore?: number;
        identities?: string;
        fragment?: boolean;
        out?: string;
      }) => {
        const { agencies, routers } = registry(o.certs);
        if (routers.length === 0)
          throw new HubctlError(
            HubctlErrorCode.Prerequisite,
            `no router key in ${o.certs}/trust: run "hubctl keys generate --agency HUB --role router" first`,
          );
        const tlsDir = resolve(o.tlsDir ?? join(o.certs, 'dev'));
        const p = devPkiPaths(tlsDir);
        const identities = o.identities
          ? reading(
              () => parseYaml(readFileSync(o.identities!, 'utf8')) as Record<string, string>,
              o.identities,
            )
          : undefined;
        if (o.monitor !== false && !o.monitorAny && !isLoopback(o.monitor))
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `--monitor ${o.monitor} is not a loopback address: the monitoring endpoint answers without authentication (use --monitor-any to insist)`,
          );
        const agencyLimits = {
          ...(o.maxConnections === undefined ? {} : { maxConnections: o.maxConnections }),
          ...(o.maxSubscriptions === undefined ? {} : { maxSubscriptions: o.maxSubscriptions }),
          ...(o.maxPayload === undefined ? {} : { maxPayload: o.maxPayload }),
        };
        const limitsByAgency = o.limits
          ? reading(
              () =>
                parseYaml(readFileSync(o.limits!, 'utf8')) as Record<string, Partial<AgencyLimits>>,
              o.limits,
            )
          : undefined;
        if (o.leaf !== undefined) {
          if (!agencies.includes(o.leaf))
            throw new HubctlError(HubctlErrorCode.InputInvalid, `${o.leaf} is not in the registry`);
          if (!o.hubUrl?.length)
            throw new HubctlError(
              HubctlErrorCode.InputInvalid,
              '--leaf needs at least one --hub-url',
            );
          const leafCert = devPkiPaths(tlsDir, leafCertName(o.leaf));
          const text = renderLeafNodeConfig({
            agency: o.leaf,
            listen: o.listen,
            storeDir: o.storeDir,
            ...(o.maxFileStore === undefined ? {} : { maxFileStore: o.maxFileStore }),
            ...(o.monitor === false ? {} : { monitor: o.monitor }),
            hubUrls: o.hubUrl,
            tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
            leafTls: { caFile: p.caFile, certFile: leafCert.certFile, keyFile: leafCert.keyFile },
          });
          if (o.out) writePrivate(o.out, text);
          else process.stdout.write(text);
          return;
        }
        const leaves = o.leafAgencies ?? [];
        const leafBlock = leaves.length
          ? `${renderLeafListenerBlock({
              listen: o.leafListen,
              tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
              leaves,
            })}\n`
          : '';
        const common = {
          leaves,
          agencies,
          routers,
          tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
          ...(identities ? { identities } : {}),
          agencyLimits,
          ...(limitsByAgency ? { limitsByAgency } : {}),
          ...(o.auditLogs?.length ? { auditLogs: o.auditLogs } : {}),
        };
        if (o.cluster !== undefined) {
          if (!o.outDir)
            throw new HubctlError(
              HubctlErrorCode.InputInvalid,
              '--cluster writes one file per node: give --out-dir',
            );
          let nodes: ReturnType<typeof planCluster>;
          try {
            nodes = planCluster(o.cluster, {
              ...(o.nodeHost ? { hosts: o.nodeHost } : {}),
              ...(o.routePort ? { routePort: o.routePort } : {}),
            });
          } catch (err) {
            // A cluster of 2 (or hosts that do not match the size): refused, nothing written.
            throw new HubctlError(HubctlErrorCode.InputInvalid, (err as Error).message);
          }
          const configs = renderNatsClusterConfigs({
            ...common,
            nodes,
            routeTls: { caFile: p.caFile, certFile: p.routeCertFile, keyFile: p.routeKeyFile },
            clientPort: Number(o.listen.replace(/^.*:/, '')) || 4222,
            ...(o.monitor === false ? {} : { monitor: o.monitor }),
            storeDir: o.storeDir,
            ...(o.maxFileStore === undefined ? {} : { maxFileStore: o.maxFileStore }),
          });
          const outDir = o.outDir;
          writing(() => mkdirSync(outDir, { recursive: true, mode: 0o700 }), outDir);
          for (const c of configs)
            writePrivate(join(o.outDir, `${c.node.host}.conf`), c.text + leafBlock);
          process.stderr.write(
            `wrote ${configs.map((c) => join(o.outDir!, `${c.node.host}.conf`)).join(', ')}: ${agencies.length} agencies, ${routers.length} router(s); provision the streams with replicas: ${Math.min(3, o.cluster)} (router config streams.replicas)\n`,
          );
          return;
        }
        const text = o.fragment
          ? renderNatsSecurityConfig(common)
          : renderNatsServerConfig({
              ...common,
              listen: o.listen,
              ...(o.monitor === false ? {} : { monitor: o.monitor }),
              storeDir: o.storeDir,
              ...(o.maxFileStore === undefined ? {} : { maxFileStore: o.maxFileStore }),
            }) + leafBlock;
        if (o.out) {
          // Private like the cluster's files: it names every agency's account and user.
          writePrivate(o.out, text);
          process.stderr.write(
            `wrote ${o.out}: ${agencies.length} agencies, ${routers.length} router(s)\n`,
          );
        } else process.stdout.write(text);
      },
    );

  const certs = program.command('certs').description('TLS certificates for NATS');
  certs
    .command('dev')
    .description(
      'create a development CA, a server certificate and a client certificate per agency, router and operators under <certs>/dev (never for production)',
    )
    .option('--certs <dir>', 'certs directory', 'certs')
    .option(
      '--host <name>',
      'extra server host name or IP (repeatable)',
      (v: string, prev: string[] = []) => [...prev, v],
      [],
    )
    .option('--days <n>', 'validity of the certificates', (v) => Number.parseInt(v, 10), 365)
    .option(
      '--leaf <id>',
      "also a certificate for agency <id>'s leaf node, <id>.leaf.pem (repeatable)",
      // The id names the files written: only an agency id, never a path (`../x`).
      (v: string, prev: string[] = []) => [...prev, agencyId(v)],
      [],
    )
    .option('--force', 'replace existing files')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        certs: string;
        host: string[];
        days: number;
        leaf: string[];
        force?: boolean;
        json?: boolean;
      }) => {
        const { agencies, routers } = registry(o.certs);
        const r = await readingThenWriting(
          () =>
            createDevPki({
              dir: join(o.certs, 'dev'),
              principals: [...routers, ...agencies, ...o.leaf.map(leafCertName)],
              hosts: o.host,
              days: o.days,
              force: o.force ?? false,
            }),
          join(o.certs, 'dev'),
        );
        print(o.json, r, [
          `development PKI in ${r.dir}: ${r.created.length} new file(s)`,
          ...r.created.map((f) => `  ${f}`),
          'each agency connects with <agency>.pem and <agency>-key.pem; nats-server uses server.pem, server-key.pem and ca.pem',
        ]);
      },
    );
}

/**
 * Writes a configuration readable by its owner only (it names every agency's account and user):
 * `mode` applies only to a file `writeFileSync` creates, so one already there (left readable to
 * all by an older hubctl, or made by hand) is made private first, before the new text is in it.
 */
function writePrivate(file: string, text: string): void {
  writing(() => {
    if (existsSync(file)) chmodSync(file, 0o600);
    writeFileSync(file, text, { mode: 0o600 });
  }, file);
}
