import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createFormatChecks } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { buildFormatVectors } from './vectors/generate-formats.mjs';

/*
 * The format vectors that partners get (test/vectors/formats.json), checked twice: against the
 * hub's own format checks, and against a second implementation written here from the text of
 * docs/protocol.md §2.3 alone, as a partner would write it. If the two disagree, the document
 * is not precise enough.
 */

interface FormatVector {
  value: string;
  valid: boolean;
  why?: string;
}
const dir = fileURLToPath(new URL('./vectors/', import.meta.url));
const shipped = JSON.parse(readFileSync(`${dir}formats.json`, 'utf8')) as {
  formats: Record<string, FormatVector[]>;
};
const { formats } = shipped;
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const countries = registry.countries;

// ---- from docs/protocol.md §2.3, independently of packages/core ----
const letterValue = (c: string): number => {
  // A=10, then +1 per letter skipping multiples of 11 (11, 22, 33)
  let v = 10;
  for (let code = 65; code < c.charCodeAt(0); code++) {
    v++;
    if (v % 11 === 0) v++;
  }
  return v;
};
const DOC: Record<string, (v: string) => boolean> = {
  iso6346: (v) => {
    if (!/^[A-Z]{3}[UJZ][0-9]{7}$/.test(v)) return false;
    let sum = 0;
    for (let i = 0; i < 10; i++) {
      const c = v[i]!;
      sum += (/[A-Z]/.test(c) ? letterValue(c) : Number(c)) * 2 ** i;
    }
    return (sum % 11) % 10 === Number(v[10]);
  },
  'imo-number': (v) => {
    if (!/^[0-9]{7}$/.test(v)) return false;
    let sum = 0;
    for (let i = 0; i < 6; i++) sum += Number(v[i]) * (7 - i);
    return sum % 10 === Number(v[6]);
  },
  'iata-awb': (v) => /^[0-9]{3}-[0-9]{8}$/.test(v) && Number(v.slice(4, 11)) % 7 === Number(v[11]),
  'upu-s10': (v) => {
    if (!/^[A-Z]{2}[0-9]{9}[A-Z]{2}$/.test(v)) return false;
    const weights = [8, 6, 4, 2, 3, 5, 9, 7];
    const sum = weights.reduce((s, w, i) => s + w * Number(v[2 + i]), 0);
    let check = 11 - (sum % 11);
    if (check === 10) check = 0;
    if (check === 11) check = 5;
    return check === Number(v[10]) && countries.has(v.slice(11));
  },
  mmsi: (v) => /^[0-9]{9}$/.test(v) && Number(v.slice(0, 3)) >= 201 && Number(v.slice(0, 3)) <= 775,
  'hs-code': (v) =>
    /^[0-9]{4}(?:\.?[0-9]{2}){0,3}$/.test(v) && !['00', '77'].includes(v.slice(0, 2)),
  'un-locode': (v) => /^[A-Z]{2}[A-Z2-9]{3}$/.test(v) && countries.has(v.slice(0, 2)),
  'agency-id': (v) => /^[A-Z]{2}-[A-Z0-9]{2,16}$/.test(v) && countries.has(v.slice(0, 2)),
  'alert-id': (v) =>
    /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(v) ||
    /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/.test(v),
};

describe('format vectors - test/vectors/formats.json', () => {
  const checks = createFormatChecks(countries);
  it('is what the generator makes (node test/vectors/generate-formats.mjs)', () => {
    expect(shipped).toEqual(buildFormatVectors());
  });
  it('covers every custom format the schemas use, with valid and invalid values', () => {
    const used = new Set<string>();
    for (const { schemaId } of registry.alertTypes) {
      const text = JSON.stringify(registry.schemaDocument(schemaId));
      for (const m of text.matchAll(/"format":"([a-z0-9-]+)"/g)) used.add(m[1]!);
    }
    for (const id of [
      'https://schemas.alert-hub.example/common/v1.json',
      'https://schemas.alert-hub.example/common/v2.json',
    ]) {
      const text = JSON.stringify(registry.schemaDocument(id));
      for (const m of text.matchAll(/"format":"([a-z0-9-]+)"/g)) used.add(m[1]!);
    }
    const custom = [...used].filter((f) => !['date-time', 'date', 'email', 'uri'].includes(f));
    expect(Object.keys(formats).sort()).toEqual(custom.sort());
    for (const [name, list] of Object.entries(formats)) {
      expect(
        list.some((v) => v.valid),
        name,
      ).toBe(true);
      expect(
        list.some((v) => !v.valid),
        name,
      ).toBe(true);
    }
  });
  for (const [name, list] of Object.entries(formats)) {
    it(`${name}: the hub and an implementation of the document agree with every vector`, () => {
      for (const v of list) {
        expect(checks[name]!(v.value) === undefined, `${name} ${v.value}`).toBe(v.valid);
        expect(DOC[name]!(v.value), `${name} ${v.value} (from the document)`).toBe(v.valid);
      }
    });
  }
});
