import { Option, type Command } from 'commander';
import { createToken } from '@alert-hub/runtime/files';
import { print } from '../output.js';
import { HubctlError, HubctlErrorCode } from '../errors.js';

export function registerTokens(program: Command): void {
  const tokens = program.command('tokens').description('API tokens for a gateway');
  tokens
    .command('create')
    .description(
      'create an API token; prints it once, and the entry for the gateway configuration (which stores only its SHA-256)',
    )
    .requiredOption('--name <name>', 'who uses it (a system or a team)')
    .addOption(
      new Option('--roles <roles>', 'comma-separated: submit, read-feed').default('submit'),
    )
    .option('--json', 'print JSON')
    .action((o: { name: string; roles: string; json?: boolean }) => {
      const roles = o.roles.split(',').map((r) => r.trim());
      for (const r of roles)
        if (r !== 'submit' && r !== 'read-feed')
          throw new HubctlError(
            HubctlErrorCode.InputInvalid,
            `unknown role ${r} (submit, read-feed)`,
          );
      const { token, sha256 } = createToken();
      print(o.json, { name: o.name, roles, token, tokenSha256: sha256 }, [
        `token (give it to ${o.name}; it is not stored anywhere): ${token}`,
        '',
        'add to the gateway configuration under clients:',
        `  - name: ${o.name}`,
        `    tokenSha256: ${sha256}`,
        `    roles: [${roles.join(', ')}]`,
      ]);
    });
}
