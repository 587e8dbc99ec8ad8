import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { decideRoute, parseJsonText, parseRfc3339, type PriorRouting } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime/files';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { reading, readingAgreements } from '../files.js';
import { print, printTable } from '../output.js';
import { openTrustStore, trustOption } from './trust-option.js';
import { prepareAsGateway, readInput } from './validate.js';

/** `--at`: the hub's one strict RFC 3339 parser, as for every other time (never `new Date(text)`). */
function rfc3339(text: string): Date {
  const t = parseRfc3339(text);
  if (t === undefined)
    throw new InvalidArgumentError(
      'an RFC 3339 date-time with a time zone, e.g. 2019-04-08T03:15:00Z',
    );
  return new Date(t);
}

export function registerRoute(program: Command): void {
  program
    .command('route')
    .description(
      'show who would receive an alert and why the others would not, without sending anything; the alert is first made as your gateway makes it (identifiers normalised, id and issuedAt filled in), as validate does',
    )
    .argument('<file>', 'alert JSON file, or - for standard input')
    .requiredOption('--dry-run', 'required: nothing is sent (the router routes for real)')
    .requiredOption('--from <agency>', 'the sending agency')
    .requiredOption('--agreements <file>', 'agreements file (YAML or JSON)')
    .addOption(trustOption('trust store: the agencies that could receive'))
    .option('--at <time>', 'evaluate at this RFC 3339 time instead of now', rfc3339)
    .option(
      '--prior <file>',
      'for a retraction: the routing of the alert it retracts, as printed by its own `route --dry-run --json` ({origin, allowed})',
    )
    .option('--json', 'print JSON')
    .action(
      (
        file: string,
        o: {
          from: string;
          agreements: string;
          trust: string;
          at?: Date;
          prior?: string;
          json?: boolean;
        },
      ) => {
        const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
        const input = parseJsonText(readInput(file));
        // Made as the sender's gateway makes it (the same code as `validate`): identifiers as
        // typed put in machine form, what the sender may leave out filled in.
        const prepared = prepareAsGateway(input, o.from);
        const alert =
          typeof prepared.alert === 'object' && prepared.alert !== null
            ? { ...(prepared.alert as Record<string, unknown>), origin: o.from }
            : prepared.alert;
        const normalised = prepared.changes.length > 0 ? { normalised: prepared.changes } : {};
        const notes = prepared.changes.map((c) => `normalised ${c.pointer}: ${c.from} -> ${c.to}`);
        const checked = registry.checkAlert(alert);
        if (!checked.ok) {
          // The sender's gateway refuses it before anything reaches the router.
          print(o.json, { valid: false, code: checked.error.code, errors: checked.error.issues }, [
            ...notes,
            `the gateway would refuse it: ${checked.error.message} [${checked.error.code}]`,
            ...checked.error.issues.map((i) => `  ${i.pointer || '/'}: ${i.message}`),
          ]);
          process.exitCode = 1;
          return;
        }
        const trust = openTrustStore(o.trust, registry);
        const { set } = readingAgreements(o.agreements, registry, trust.agencies);
        const d = decideRoute({
          agreements: set,
          alert: checked.value,
          candidates: trust.agencies,
          now: o.at ?? new Date(),
          original: o.prior === undefined ? undefined : readPrior(o.prior),
        });
        if (d.kind === 'refuse') {
          print(o.json, { ...d, origin: checked.value.origin }, [
            `the router would dead-letter it: ${d.reason} [${d.code}]`,
          ]);
          process.exitCode = 1;
          return;
        }
        const rows = [
          ...d.allowed.map((a) => ({
            recipient: a.recipient,
            decision: 'receives',
            why: `${a.agreement.id}@${a.agreement.version}${a.onward ? ' (onward sharing allowed)' : ''}${a.viaOriginal ? ' (received the original)' : ''}`,
          })),
          ...d.denied.map((x) => ({ recipient: x.recipient, decision: x.reason, why: x.detail })),
        ];
        if (o.json) print(true, { ...d, origin: checked.value.origin, ...normalised }, []);
        else {
          print(false, undefined, notes);
          printTable(rows, ['recipient', 'decision', 'why']);
        }
      },
    );
}

/** Reads `--prior`: the origin of the retracted alert and who received it under which agreement. */
function readPrior(file: string): PriorRouting {
  const doc = parseJsonText(reading(() => readFileSync(file, 'utf8'), file)) as {
    origin?: unknown;
    allowed?: {
      recipient?: unknown;
      agreement?: { id?: unknown; version?: unknown };
      onward?: unknown;
    }[];
  };
  if (typeof doc.origin !== 'string' || !Array.isArray(doc.allowed))
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `${file}: expected {origin, allowed}, as route --dry-run --json prints`,
    );
  return {
    origin: doc.origin,
    deliveries: doc.allowed.map((a) => {
      if (
        typeof a.recipient !== 'string' ||
        typeof a.agreement?.id !== 'string' ||
        typeof a.agreement.version !== 'number'
      )
        throw new HubctlError(
          HubctlErrorCode.InputInvalid,
          `${file}: each of allowed needs recipient and agreement {id, version}`,
        );
      return {
        recipient: a.recipient,
        agreement: { id: a.agreement.id, version: a.agreement.version },
        onward: a.onward === true,
      };
    }),
  };
}
