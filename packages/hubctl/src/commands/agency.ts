import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import {
  createTrustStore,
  partyMatches,
  type JwksDocument,
  type SchemaRegistry,
  type TrustStore,
} from '@alert-hub/core';
import { createDevPki, natsIdentity } from '@alert-hub/operator';
import {
  DEFAULT_SCHEMAS_DIR,
  REVOCATIONS_FILE,
  loadSchemaRegistry,
} from '@alert-hub/runtime/files';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { reading, readingAgreements, readingThenWriting, writing } from '../files.js';
import { print } from '../output.js';
import { agencyId } from './agency-id.js';
import { registerNats } from './nats.js';

function pid(v: string, prev: number[] = []): number[] {
  if (!/^[1-9]\d{0,9}$/.test(v)) throw new InvalidArgumentError('a process id');
  return [...prev, Number(v)];
}

/**
 * The trust store of `trustDir` with `id`'s file replaced by `doc` (or left out when undefined):
 * what the directory will hold, checked (schemas, thumbprints, ids) before anything is written.
 */
function trustWith(
  trustDir: string,
  registry: SchemaRegistry,
  id: string,
  doc: JwksDocument | undefined,
): TrustStore {
  const mine = `${id}.jwks.json`;
  const jwks = reading(() => readdirSync(trustDir), trustDir)
    .filter((f) => f.endsWith('.jwks.json') && f !== mine)
    .sort()
    .map((f) => ({
      source: f,
      document: reading(
        () => JSON.parse(readFileSync(join(trustDir, f), 'utf8')) as unknown,
        join(trustDir, f),
      ),
    }));
  if (doc) jwks.push({ source: mine, document: doc });
  const rev = join(trustDir, REVOCATIONS_FILE);
  const revocations = reading(
    () => (existsSync(rev) ? (JSON.parse(readFileSync(rev, 'utf8')) as unknown) : undefined),
    rev,
  );
  return createTrustStore({
    jwks,
    registry,
    ...(revocations === undefined
      ? {}
      : { revocations: { source: REVOCATIONS_FILE, document: revocations } }),
  });
}

/** Renders the nats-server configuration again with `args`, as `hubctl nats-config` would. */
async function renderNatsConfig(certs: string, args: readonly string[]): Promise<void> {
  if (!args.some((a) => a === '--out' || a.startsWith('--out=') || a === '--out-dir'))
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      'the nats-config options after -- must write a file (--out, or --out-dir with --cluster)',
    );
  const sub = new Command('hubctl').exitOverride();
  registerNats(sub);
  await sub.parseAsync(['nats-config', '--certs', certs, ...args], { from: 'user' });
}

/** Removes `file` and renders the NATS configuration without it; the file comes back on failure. */
async function renderNatsConfigWithout(
  certs: string,
  file: string,
  args: readonly string[],
): Promise<void> {
  const text = reading(() => readFileSync(file, 'utf8'), file);
  writing(() => rmSync(file), file);
  try {
    await renderNatsConfig(certs, args);
  } catch (err) {
    writing(() => writeFileSync(file, text, { mode: 0o644 }), file);
    throw err;
  }
}

/**
 * Reloads nats-server's configuration: SIGHUP twice, a second apart. Measured on nats-server
 * 2.9.10: after one reload a new account's user can connect, but its service imports from the
 * hub's account do not reach JetStream ("jetstream is not enabled") until a second reload (or a
 * restart); waiting longer does not help.
 */
async function reloadNats(pid: number | undefined): Promise<string[]> {
  if (pid === undefined) return [];
  signal([pid]);
  await new Promise((r) => setTimeout(r, 1000));
  signal([pid]);
  // Let the second reload settle before the router provisions the new agency's feed consumer.
  await new Promise((r) => setTimeout(r, 1000));
  return [`  nats-server ${pid}: configuration reloaded (SIGHUP twice)`];
}

/** SIGHUP each process in order: the router, gateways. */
function signal(pids: readonly number[]): string[] {
  return pids.map((p) => {
    try {
      process.kill(p, 'SIGHUP');
      return `  SIGHUP sent to ${p}`;
    } catch (err) {
      throw new HubctlError(
        HubctlErrorCode.Prerequisite,
        `cannot signal process ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  });
}

/** What `agency add` and `agency remove` both take: where the hub's files are, what to reload. */
interface HubStepOptions {
  certs: string;
  natsPid?: number;
  reload: number[];
  json?: boolean;
}

/**
 * The agency id, the nats-config options after `--`, and the options both subcommands take:
 * declared once, so `add` and `remove` cannot drift apart.
 */
function hubStep(cmd: Command, idHelp: string): Command {
  return cmd
    .argument('<id>', idHelp, agencyId)
    .argument('[nats-config-options...]', 'after --: the options `hubctl nats-config` was run with')
    .option('--certs <dir>', 'certs directory (trust/, dev/)', 'certs')
    .option('--nats-pid <pid>', 'nats-server to reload afterwards', (v: string) => pid(v)[0]!)
    .option(
      '--reload <pid>',
      'a process to SIGHUP after nats-server (repeatable, in order: the router, then gateways)',
      pid,
      [],
    )
    .option('--json', 'print JSON');
}

/** nats-server reloaded, then each process given with --reload signalled, in order. */
async function reloadAll(o: HubStepOptions): Promise<{ lines: string[]; reloaded: number[] }> {
  return {
    lines: [...(await reloadNats(o.natsPid)), ...signal(o.reload)],
    reloaded: [...(o.natsPid ? [o.natsPid] : []), ...o.reload],
  };
}

const NOT_RENDERED =
  'nats-server configuration not rendered: give the nats-config options after --, or run hubctl nats-config yourself';

/**
 * `hubctl agency add|remove`: the hub operator's part of adding or removing an agency in one
 * step (docs/operations.md): the trust store, the NATS configuration rendered again from it, a
 * development certificate if asked, the agreements checked, and the processes reloaded.
 */
export function registerAgency(program: Command): void {
  const agency = program
    .command('agency')
    .description("operators: add or remove an agency, the hub's part in one step");

  hubStep(
    agency
      .command('add')
      .description(
        'add an agency: its public keys into the trust store, its NATS account and user in the configuration rendered again (the nats-config options after --), optionally a development certificate; then reload nats-server (--nats-pid) and SIGHUP the router and gateways given with --reload, in that order',
      ),
    'the agency id, e.g. KE-KWS',
  )
    .requiredOption('--jwks <file>', "the agency's public keys (<id>.jwks.json, from the agency)")
    .option('--dev-cert', 'issue its NATS client certificate from the development CA (<certs>/dev)')
    .option('--agreements <file>', 'check the agreements file and say whether one names it')
    .action(
      async (
        id: string,
        natsArgs: string[],
        o: HubStepOptions & { jwks: string; devCert?: boolean; agreements?: string },
      ) => {
        const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
        const trustDir = join(o.certs, 'trust');
        let doc: JwksDocument;
        try {
          doc = JSON.parse(readFileSync(o.jwks, 'utf8')) as JwksDocument;
        } catch (err) {
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `${o.jwks}: not a JWKS file (${(err as Error).message})`,
          );
        }
        if (doc.principal !== id || doc.role !== 'agency')
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `${o.jwks} holds the keys of ${String(doc.principal)} (${String(doc.role)}), not of agency ${id}`,
          );
        const target = join(trustDir, `${id}.jwks.json`);
        const text = `${JSON.stringify(doc, null, 2)}\n`;
        const existing = reading(
          () =>
            existsSync(target)
              ? JSON.stringify(JSON.parse(readFileSync(target, 'utf8')))
              : undefined,
          target,
        );
        if (existing !== undefined && existing !== JSON.stringify(doc))
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `${id} is already in ${trustDir} with other keys: a new key is a rotation (docs/operations.md), not an addition`,
          );
        // The trust store with the new file must load (schema, thumbprints) before it is written.
        const trust = trustWith(trustDir, registry, id, doc);
        if (!trust.agencies.includes(id))
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `${id} is not an agency in ${o.jwks}`,
          );
        if (existing === undefined)
          writing(() => writeFileSync(target, text, { mode: 0o644 }), target);
        const lines = [
          existing === undefined
            ? `${target}: ${doc.keys.length} key(s) of ${id} added to the trust store`
            : `${target}: ${id} was already there with these keys`,
        ];
        let certificate: string | undefined;
        if (o.devCert) {
          const dev = join(o.certs, 'dev');
          const r = await readingThenWriting(
            () => createDevPki({ dir: dev, principals: [id] }),
            dev,
          );
          certificate = join(r.dir, `${id}.pem`);
          lines.push(`development certificate: ${certificate} (and ${id}-key.pem)`);
        } else
          lines.push(
            `its NATS client certificate, from the hub's CA, must carry the SAN e-mail ${natsIdentity(id)}`,
          );
        if (natsArgs.length > 0) {
          try {
            await renderNatsConfig(o.certs, natsArgs);
          } catch (err) {
            if (existing === undefined) writing(() => rmSync(target), target);
            throw err;
          }
          lines.push(`nats-server configuration rendered again: account and user for ${id}`);
        } else lines.push(NOT_RENDERED);
        let agreementNamesIt: boolean | undefined;
        if (o.agreements) {
          const { set } = readingAgreements(o.agreements, registry, trust.agencies);
          agreementNamesIt =
            set.agreements.some((a) => a.parties.some((p) => partyMatches(p, id))) ||
            (set.operations ?? []).some((op) => op.members.some((p) => partyMatches(p, id)));
          lines.push(
            agreementNamesIt
              ? `${o.agreements}: an agreement names ${id}`
              : `${o.agreements}: no agreement names ${id} yet: nothing is routed to or from it until one does (add it to an agreement's parties; the router reloads the file when it changes)`,
          );
        }
        const { lines: reloadLines, reloaded } = await reloadAll(o);
        lines.push(...reloadLines);
        print(
          o.json,
          {
            agency: id,
            trustFile: target,
            added: existing === undefined,
            ...(certificate ? { certificate } : {}),
            natsIdentity: natsIdentity(id),
            natsConfigRendered: natsArgs.length > 0,
            ...(agreementNamesIt === undefined ? {} : { agreementNamesIt }),
            reloaded,
          },
          lines,
        );
      },
    );

  hubStep(
    agency
      .command('remove')
      .description(
        'remove an agency: refused while an agreement still names it; its file leaves the trust store (revocations stay), the NATS configuration is rendered again without its account (the nats-config options after --), then reload nats-server (--nats-pid) and SIGHUP the processes given with --reload, in order',
      ),
    'the agency id',
  )
    .requiredOption('--agreements <file>', 'the agreements file: none may name the agency any more')
    .action(async (id: string, natsArgs: string[], o: HubStepOptions & { agreements: string }) => {
      const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
      const trustDir = join(o.certs, 'trust');
      const target = join(trustDir, `${id}.jwks.json`);
      if (!existsSync(target))
        throw new HubctlError(HubctlErrorCode.InputInvalid, `${id} is not in ${trustDir}`);
      // Only an agency's file: never the router's keys, whatever the file is called.
      const doc = reading(
        () => JSON.parse(readFileSync(target, 'utf8')) as Partial<JwksDocument>,
        target,
      );
      if (doc.principal !== id || doc.role !== 'agency')
        throw new HubctlError(
          HubctlErrorCode.InputInvalid,
          `${target} holds the keys of ${String(doc.principal)} (${String(doc.role)}), not of agency ${id}: nothing removed`,
        );
      const trust = trustWith(trustDir, registry, id, undefined);
      // Refused (ERR_AGREEMENTS_INVALID, every place listed) while an agreement names it.
      readingAgreements(o.agreements, registry, trust.agencies);
      if (natsArgs.length > 0) await renderNatsConfigWithout(o.certs, target, natsArgs);
      else writing(() => rmSync(target), target);
      const { lines: reloadLines, reloaded } = await reloadAll(o);
      const lines = [
        `${target} removed: ${id} is no longer a candidate recipient nor a trusted signer once reloaded`,
        natsArgs.length > 0
          ? `nats-server configuration rendered again without ${id}'s account`
          : NOT_RENDERED,
        ...reloadLines,
      ];
      print(
        o.json,
        { agency: id, removed: target, natsConfigRendered: natsArgs.length > 0, reloaded },
        lines,
      );
    });
}
