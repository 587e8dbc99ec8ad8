import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { decodeUtf8Strict, newAlertId, normaliseAlert, type Normalisation } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime/files';
import { reading } from '../files.js';
import { print } from '../output.js';
import { parseAlerts } from './send.js';

/**
 * Reads a file, or standard input for "-", exactly as the gateway reads a request body: strict
 * UTF-8 (an invalid byte is an error, never U+FFFD) and no byte-order mark.
 */
export function readInput(file: string): string {
  // A file that is not there or cannot be read: the input, with its code like every failure.
  return decodeUtf8Strict(reading(() => readFileSync(file === '-' ? 0 : file)));
}

/**
 * What the gateway fills in when a sender leaves it out. `origin` is the gateway's own agency;
 * offline we take `--origin`, or a stand-in that passes the schema, and say so.
 */
const STAND_IN_ORIGIN = 'AQ-GATEWAY';

function completeAsGateway(
  item: unknown,
  origin: string | undefined,
): { alert: unknown; filled: string[] } {
  if (typeof item !== 'object' || item === null || Array.isArray(item))
    return { alert: item, filled: [] };
  const a = { ...(item as Record<string, unknown>) };
  const filled: string[] = [];
  const now = new Date();
  if (a['id'] === undefined) {
    a['id'] = newAlertId(now.getTime());
    filled.push('id');
  }
  if (a['origin'] === undefined) {
    a['origin'] = origin ?? STAND_IN_ORIGIN;
    filled.push('origin');
  }
  if (a['issuedAt'] === undefined) {
    a['issuedAt'] = now.toISOString();
    filled.push('issuedAt');
  }
  return { alert: a, filled };
}

/**
 * An alert as the gateway's intake makes it before its schema check: identifiers as officers type
 * them in machine form (`changes`), then id, origin and issuedAt filled in where left out
 * (`filled`). `validate` and `route --dry-run` both check what this returns.
 */
export function prepareAsGateway(
  item: unknown,
  origin: string | undefined,
): { alert: unknown; filled: string[]; changes: readonly Normalisation[] } {
  const { value: typed, changes } = normaliseAlert(item);
  return { ...completeAsGateway(typed, origin), changes };
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description(
      'check alerts (one JSON object, a JSON array or NDJSON) against their schema, offline, as your gateway will: ' +
        'id, origin and issuedAt may be left out; exit 1 when any is invalid',
    )
    .argument('<file>', 'alert file, or - for standard input')
    .option('--schemas <dir>', 'schema directory', DEFAULT_SCHEMAS_DIR)
    .option('--origin <agency>', 'your agency, used where origin is left out')
    .option('--json', 'print JSON')
    .action((file: string, o: { schemas: string; origin?: string; json?: boolean }) => {
      const registry = reading(() => loadSchemaRegistry(o.schemas), o.schemas);
      const { items, single } = parseAlerts(readInput(file));
      const results = items.map((item, index) => {
        // Identifiers as officers type them become machine form first, as the gateway's intake does.
        const { alert, filled, changes } = prepareAsGateway(item, o.origin);
        const r = registry.checkAlert(alert);
        const normalised = changes.length > 0 ? { normalised: changes } : {};
        const notes = changes.map((c) => `  normalised ${c.pointer}: ${c.from} -> ${c.to}`);
        return r.ok
          ? {
              item: index + 1,
              valid: true as const,
              id: r.value.id,
              type: r.value.type,
              schema: r.schemaId,
              filled,
              ...normalised,
              line: `valid ${r.value.type} v${r.value.version}${filled.length > 0 ? ` (checked with ${filled.join(', ')} filled in, as the gateway fills them)` : ` ${r.value.id}`}`,
              issues: notes,
            }
          : {
              item: index + 1,
              valid: false as const,
              code: r.error.code,
              errors: r.error.issues,
              filled,
              ...normalised,
              line: `invalid: ${r.error.message} [${r.error.code}]`,
              issues: [
                ...notes,
                ...r.error.issues.map((i) => `  ${i.pointer || '/'}: ${i.message}`),
              ],
            };
      });
      const invalid = results.filter((r) => !r.valid).length;
      const json = results.map(({ line: _l, issues: _i, ...rest }) => rest);
      print(o.json, single ? json[0] : json, [
        ...results.flatMap((r) => [single ? r.line : `#${r.item} ${r.line}`, ...r.issues]),
        ...(single ? [] : [`${results.length - invalid} valid, ${invalid} invalid`]),
      ]);
      if (invalid > 0) process.exitCode = 1;
    });
}
