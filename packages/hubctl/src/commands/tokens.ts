import { Option, type Command } from 'commander';
import { createToken } from '@alert-hub/runtime/files';
import { print } from '../output.js';
import { HubctlError, HubctlErrorCode } from '../errors.js';

const GATEWAY_ROLES = ['submit', 'read-feed'] as const;

export function registerTokens(program: Command): void {
  const tokens = program
    .command('tokens')
    .description('API tokens for a gateway, or for the router coordinator API');
  tokens
    .command('create')
    .description(
      'create an API token; prints it once, and the entry for the gateway (submit, read-feed) or router (coordinator) configuration, which stores only its SHA-256',
    )
    .requiredOption('--name <name>', 'who uses it (a system or a team)')
    .addOption(
      new Option(
        '--roles <roles>',
        'comma-separated: submit, read-feed (a gateway), or coordinator (the router audit API)',
      ).default('submit'),
    )
    .option('--json', 'print JSON')
    .action((o: { name: string; roles: string; json?: boolean }) => {
      const roles = o.roles.split(',').map((r) => r.trim());
      const coordinator = roles.includes('coordinator');
      for (const r of roles)
        if (r !== 'coordinator' && !(GATEWAY_ROLES as readonly string[]).includes(r))
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `unknown role ${r} (submit, read-feed, coordinator)`,
          );
      if (coordinator && roles.length > 1)
        throw new HubctlError(
          HubctlErrorCode.InputInvalid,
          'coordinator is a router token: create it on its own, not with gateway roles',
        );
      const { token, sha256 } = createToken();
      print(
        o.json,
        {
          name: o.name,
          roles,
          token,
          tokenSha256: sha256,
          configuration: coordinator ? 'router: coordinators' : 'gateway: clients',
        },
        [
          `token (give it to ${o.name}; it is not stored anywhere): ${token}`,
          '',
          ...(coordinator
            ? [
                'add to the router configuration under coordinators:',
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
