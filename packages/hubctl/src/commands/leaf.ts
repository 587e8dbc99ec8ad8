import { accessSync, constants } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { AlertHubError } from '@alert-hub/core';
import { devPkiPaths } from '@alert-hub/operator';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { reading } from '../files.js';
import { print } from '../output.js';
import { agencyId } from './agency-id.js';

export function registerLeaf(program: Command): void {
  const leaf = program.command('leaf').description("an agency's own leaf node of the hub");
  leaf
    .command('provision')
    .description(
      "create or update the agency's outbox stream on its leaf node (where its gateway's alerts wait until the hub sources them), connecting as the agency's operators",
    )
    .requiredOption('--agency <id>', 'the agency whose leaf node this is', agencyId)
    .requiredOption('--server <url>', "the leaf node's client URL, tls://host:4222")
    .option('--certs <dir>', 'certs directory (dev/ holds ca.pem, ops.pem, ops-key.pem)', 'certs')
    .option('--tls-dir <dir>', 'directory with ca.pem, ops.pem, ops-key.pem (default <certs>/dev)')
    .option(
      '--max-age-ms <ms>',
      'how long alerts stay in the outbox, sent or not (keep it longer than any outage)',
      (v) => Number.parseInt(v, 10),
    )
    .option('--json', 'print JSON')
    .action(
      async (o: {
        agency: string;
        server: string;
        certs: string;
        tlsDir?: string;
        maxAgeMs?: number;
        json?: boolean;
      }) => {
        // Loaded here only: the rest of hubctl never loads the NATS client.
        const { connectNats, provisionLeafNode } = await import('@alert-hub/runtime');
        const dir = resolve(o.tlsDir ?? join(o.certs, 'dev'));
        const ops = devPkiPaths(dir, 'ops');
        // The client reads them only once connected: a file missing is the input, not the network.
        reading(() => {
          for (const f of [ops.caFile, ops.certFile, ops.keyFile]) accessSync(f, constants.R_OK);
        });
        let nc: Awaited<ReturnType<typeof connectNats>>;
        try {
          nc = await connectNats({
            servers: o.server,
            name: `hubctl leaf provision ${o.agency}`,
            tls: { caFile: ops.caFile, certFile: ops.certFile, keyFile: ops.keyFile },
          });
        } catch (err) {
          throw new HubctlError(
            HubctlErrorCode.Network,
            `the leaf node at ${o.server} cannot be reached: ${(err as Error).message}`,
          );
        }
        try {
          let cfg: Awaited<ReturnType<typeof provisionLeafNode>>;
          try {
            cfg = await provisionLeafNode(nc, o.agency, {
              ...(o.maxAgeMs ? { limits: { maxAgeMs: o.maxAgeMs } } : {}),
            });
          } catch (err) {
            if (err instanceof AlertHubError) throw err;
            throw new HubctlError(
              HubctlErrorCode.RequestRefused,
              `the leaf node at ${o.server} refused the outbox stream: ${(err as Error).message}`,
            );
          }
          const result = {
            stream: cfg.name,
            subjects: cfg.subjects,
            maxAgeMs: Math.round(cfg.max_age / 1e6),
          };
          print(o.json, result, [
            `${cfg.name} on ${o.server}: subjects ${cfg.subjects.join(', ')}, alerts kept ${result.maxAgeMs} ms`,
          ]);
        } finally {
          await nc.close();
        }
      },
    );
}
