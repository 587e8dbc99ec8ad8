import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { evaluateAgreements, parseJsonText } from '@alert-hub/core';
import {
  DEFAULT_SCHEMAS_DIR,
  DEFAULT_TRUST_DIR,
  loadAgreementsFile,
  loadSchemaRegistry,
  loadTrustStore,
} from '@alert-hub/runtime/files';
import { print, printTable } from '../output.js';

export function registerRoute(program: Command): void {
  program
    .command('route')
    .description(
      'show who would receive an alert and why the others would not, without sending anything',
    )
    .argument('<file>', 'alert JSON file, or - for standard input')
    .requiredOption('--dry-run', 'required: nothing is sent (the router routes for real)')
    .requiredOption('--from <agency>', 'the sending agency')
    .requiredOption('--agreements <file>', 'agreements file (YAML or JSON)')
    .option('--trust <dir>', 'trust store: the agencies that could receive', DEFAULT_TRUST_DIR)
    .option('--at <time>', 'evaluate at this RFC 3339 time instead of now')
    .option('--json', 'print JSON')
    .action(
      (
        file: string,
        o: { from: string; agreements: string; trust: string; at?: string; json?: boolean },
      ) => {
        const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
        const input = parseJsonText(readFileSync(file === '-' ? 0 : file, 'utf8')) as Record<
          string,
          unknown
        >;
        const alert = { issuedAt: new Date().toISOString(), ...input, origin: o.from };
        const checked = registry.checkAlert(alert);
        if (!checked.ok) {
          print(o.json, { valid: false, errors: checked.error.issues }, [
            `the router would dead-letter it: ${checked.error.message}`,
            ...checked.error.issues.map((i) => `  ${i.pointer || '/'}: ${i.message}`),
          ]);
          process.exitCode = 1;
          return;
        }
        const trust = loadTrustStore(o.trust, registry);
        const { set } = loadAgreementsFile(o.agreements, registry);
        const d = evaluateAgreements(
          set,
          checked.value,
          trust.agencies,
          o.at ? new Date(o.at) : new Date(),
        );
        const rows = [
          ...d.allowed.map((a) => ({
            recipient: a.recipient,
            decision: 'receives',
            why: `${a.agreement.id}@${a.agreement.version}${a.onward ? ' (onward sharing allowed)' : ''}`,
          })),
          ...d.denied.map((x) => ({ recipient: x.recipient, decision: x.reason, why: x.detail })),
        ];
        if (o.json) print(true, d, []);
        else printTable(rows, ['recipient', 'decision', 'why']);
      },
    );
}
