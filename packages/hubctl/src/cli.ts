import { Command, CommanderError } from 'commander';
import { AlertHubError } from '@alert-hub/core';
import { UsageError } from './errors.js';
import { registerKeys } from './commands/keys.js';
import { registerValidate } from './commands/validate.js';
import { registerSend } from './commands/send.js';
import { registerFeed } from './commands/feed.js';
import { registerTokens } from './commands/tokens.js';
import { registerAudit } from './commands/audit.js';
import { registerRoute } from './commands/route.js';
import { registerNats } from './commands/nats.js';
import { registerBackup } from './commands/backup.js';
import { registerLeaf } from './commands/leaf.js';
import { registerStatus } from './commands/status.js';
import { registerDeadLetters } from './commands/deadletters.js';
import { registerAgency } from './commands/agency.js';

/**
 * hubctl: one command-line tool for every alert-hub user. Customs officers send and validate
 * alerts, partner agencies read their feed, coordinators audit, operators manage keys and NATS.
 * Exit codes: 0 success, 1 the operation failed or was refused, 2 wrong usage.
 */
export function buildProgram(): Command {
  const program = new Command('hubctl')
    .description('alert-hub command-line tool: keys, alerts, feeds, audit and NATS configuration')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) })
    .exitOverride();
  registerKeys(program);
  registerValidate(program);
  registerSend(program);
  registerFeed(program);
  registerTokens(program);
  registerAudit(program);
  registerRoute(program);
  registerNats(program);
  registerBackup(program);
  registerLeaf(program);
  registerStatus(program);
  registerDeadLetters(program);
  registerAgency(program);
  return program;
}

export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return 0;
      return 2;
    }
    const reason = err instanceof UsageError ? err.reason : err;
    const code = reason instanceof AlertHubError ? ` [${reason.code}]` : '';
    process.stderr.write(`hubctl: ${(reason as Error).message}${code}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`hubctl: ${String(err)}\n`);
    process.exitCode = 1;
  },
);
