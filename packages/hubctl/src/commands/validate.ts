import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { decodeUtf8Strict, parseJsonText } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime/files';
import { print } from '../output.js';

/**
 * Reads a file, or standard input for "-", exactly as the gateway reads a request body: strict
 * UTF-8 (an invalid byte is an error, never U+FFFD) and no byte-order mark.
 */
export function readInput(file: string): string {
  return decodeUtf8Strict(readFileSync(file === '-' ? 0 : file));
}

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check an alert (JSON) against its schema, offline; exit 1 when invalid')
    .argument('<file>', 'alert JSON file, or - for standard input')
    .option('--schemas <dir>', 'schema directory', DEFAULT_SCHEMAS_DIR)
    .option('--json', 'print JSON')
    .action((file: string, o: { schemas: string; json?: boolean }) => {
      const registry = loadSchemaRegistry(o.schemas);
      const r = registry.checkAlert(parseJsonText(readInput(file)));
      if (r.ok) {
        print(o.json, { valid: true, id: r.value.id, type: r.value.type, schema: r.schemaId }, [
          `valid ${r.value.type} v${r.value.version} ${r.value.id}`,
        ]);
        return;
      }
      print(o.json, { valid: false, code: r.error.code, errors: r.error.issues }, [
        `invalid: ${r.error.message} [${r.error.code}]`,
        ...r.error.issues.map((i) => `  ${i.pointer || '/'}: ${i.message}`),
      ]);
      process.exitCode = 1;
    });
}
