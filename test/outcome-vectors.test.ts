import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openDelivery } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { VECTOR_TIME } from './vectors/generate.mjs';
import { buildOutcomeVectors } from './vectors/generate-outcomes.mjs';

/*
 * test/vectors/outcomes.json, for partners' validators (docs/protocol.md §9.3): outcomes of
 * version 1 as published and of version 2, each valid or refused with a code at known JSON
 * pointers. The file must say what the hub does.
 */
const file = fileURLToPath(new URL('./vectors/outcomes.json', import.meta.url));
const shipped = JSON.parse(readFileSync(file, 'utf8')) as Awaited<
  ReturnType<typeof buildOutcomeVectors>
>;
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);

describe('outcome vectors - test/vectors/outcomes.json', () => {
  it('is what the generator makes, byte for byte (node test/vectors/generate-outcomes.mjs)', async () => {
    expect(shipped).toEqual(JSON.parse(JSON.stringify(await buildOutcomeVectors())));
  });

  it('each vector gets the verdict it states from the hub', () => {
    for (const v of shipped.vectors) {
      const r = registry.checkAlert(v.alert);
      if (v.valid) expect(r.ok ? [] : r.error.issues, v.name).toEqual([]);
      else {
        expect(r.ok, v.name).toBe(false);
        if (!r.ok) {
          expect(r.error.code, v.name).toBe(v.code);
          expect(r.error.issues.map((i) => i.pointer).sort(), v.name).toEqual(v.pointers);
        }
      }
    }
  });

  it("each copy on the origin's feed opens, or is refused, as it states (the gateway's openDelivery)", async () => {
    const trust = loadTrustStore(
      fileURLToPath(new URL('./vectors/trust/', import.meta.url)),
      registry,
    );
    expect(shipped.copies.map((c) => c.expected.ok)).toEqual([true, true, true, false]);
    for (const c of shipped.copies) {
      const opened = await openDelivery(Buffer.from(c.envelope, 'hex'), c.subject, {
        trust,
        registry,
        recipient: c.recipient,
        now: new Date(VECTOR_TIME),
      });
      if (c.expected.ok) {
        expect(opened.ok ? opened.alert : opened.error.code, c.name).toEqual(c.expected.alert);
      } else expect(opened.ok ? 'opened' : opened.error.code, c.name).toBe(c.expected.code);
    }
    // The recipient does not check answersOrigin against itself (docs/protocol.md §9.3).
    const other = shipped.copies.find(
      (c) =>
        c.expected.ok &&
        c.expected.alert['answersOrigin'] !== c.recipient &&
        c.expected.alert['version'] === 2,
    );
    expect(other?.expected.ok).toBe(true);
  });

  it('covers both versions: v1 without answersOrigin valid and with it refused; v2 with and without it valid, a malformed one refused', () => {
    const at = (version: number, member: 'with' | 'without', valid: boolean) =>
      shipped.vectors.filter(
        (v) =>
          v.alert['version'] === version &&
          'answersOrigin' in v.alert === (member === 'with') &&
          v.valid === valid &&
          (valid || v.pointers?.includes('/answersOrigin')),
      ).length;
    expect(at(1, 'without', true)).toBeGreaterThan(0);
    expect(at(1, 'with', false)).toBeGreaterThan(0);
    expect(at(2, 'with', true)).toBeGreaterThan(0);
    expect(at(2, 'without', true)).toBeGreaterThan(0);
    expect(at(2, 'with', false)).toBeGreaterThanOrEqual(2);
    const bad = shipped.vectors
      .filter((v) => !v.valid && v.alert['version'] === 2)
      .map((v) => v.alert['answersOrigin']);
    expect(bad).toEqual(expect.arrayContaining(['XX-NPARKS', 'sg-nparks']));
  });
});
