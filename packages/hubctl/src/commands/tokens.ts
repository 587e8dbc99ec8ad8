import { Option, type Command } from 'commander';
import { createToken } from '@alert-hub/runtime/files';
import { print } from '../output.js';
import { HubctlError, HubctlErrorCode } from '../errors.js';

const GATEWAY_ROLES = ['submit', 'read-feed'] as const;
/**
 * Router tokens: coordinators read the audit API; operators also read and requeue dead letters;
 * metrics readers (a Prometheus server) read `/metrics` and nothing else.
 */
const ROUTER_ROLES = ['coordinator', 'operator', 'metrics'] as const;
/** Where each router role's entry goes in the router configuration. */
const ROUTER_SECTIONS = {
  coordinator: 'coordinators',
  operator: 'operators',
  metrics: 'metricsReaders',
} as const;

export function registerTokens(program: Command): void {
  const tokens = program
    .command('tokens')
    .description(
      'API tokens for a gateway, or for the router (coordinators, operators, metrics readers)',
    );
  tokens
    .command('create')
    .description(
      'create an API token; prints it once, and the entry for the gateway (submit, read-feed) or router (coordinator, operator, metrics) configuration, which stores only its SHA-256',
    )
    .requiredOption('--name <name>', 'who uses it (a system or a team)')
    .addOption(
      new Option(
        '--roles <roles>',
        'comma-separated: submit, read-feed (a gateway), or coordinator (the router audit API), or operator (the router dead letters), or metrics (the router /metrics)',
      ).default('submit'),
    )
    .option('--json', 'print JSON')
    .action((o: { name: string; roles: string; json?: boolean }) => {
      const roles = o.roles.split(',').map((r) => r.trim());
      const routerRole = ROUTER_ROLES.find((r) => roles.includes(r));
      for (const r of roles)
        if (
          !(ROUTER_ROLES as readonly string[]).includes(r) &&
          !(GATEWAY_ROLES as readonly string[]).includes(r)
        )
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `unknown role ${r} (submit, read-feed, coordinator, operator, metrics)`,
          );
      if (routerRole && roles.length > 1)
        throw new HubctlError(
          HubctlErrorCode.InputInvalid,
          `${routerRole} is a router token: create it on its own, not with other roles`,
        );
      const section = routerRole && ROUTER_SECTIONS[routerRole];
      const { token, sha256 } = createToken();
      print(
        o.json,
        {
          name: o.name,
          roles,
          token,
          tokenSha256: sha256,
          configuration: routerRole ? `router: ${section}` : 'gateway: clients',
        },
        [
          `token (give it to ${o.name}; it is not stored anywhere): ${token}`,
          '',
          ...(routerRole
            ? [
                `add to the router configuration under ${section}:`,
                `  - name: ${o.name}`,
                `    tokenSha256: ${sha256}`,
              ]
            : [
                'add to the gateway configuration under clients:',
                `  - name: ${o.name}`,
                `    tokenSha256: ${sha256}`,
                `    roles: [${roles.join(', ')}]`,
              ]),
        ],
      );
    });
}
