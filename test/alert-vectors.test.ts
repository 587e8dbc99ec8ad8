import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { buildAlertVectors } from './vectors/generate-alerts.mjs';

/*
 * test/vectors/alerts-v2.json, for partners' validators: every version-2 point with an alert that
 * passes and one refused at known JSON pointers. The file must say what the hub does.
 */
const file = fileURLToPath(new URL('./vectors/alerts-v2.json', import.meta.url));
const shipped = JSON.parse(readFileSync(file, 'utf8')) as ReturnType<typeof buildAlertVectors>;
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);

describe('alert vectors - test/vectors/alerts-v2.json', () => {
  it('is what the generator makes from the cases (node test/vectors/generate-alerts.mjs)', () => {
    expect(shipped).toEqual(JSON.parse(JSON.stringify(buildAlertVectors())));
  });
  it('each vector gets the verdict it states from the hub', () => {
    expect(shipped.vectors.length).toBeGreaterThan(80);
    for (const v of shipped.vectors) {
      const r = registry.checkAlert(v.alert);
      if (v.valid) expect(r.ok ? [] : r.error.issues, v.name).toEqual([]);
      else {
        expect(r.ok, v.name).toBe(false);
        if (!r.ok) {
          expect(r.error.code).toBe(ErrorCode.SchemaInvalid);
          expect(r.error.issues.map((i) => i.pointer).sort(), v.name).toEqual(v.pointers);
        }
      }
    }
  });
});
