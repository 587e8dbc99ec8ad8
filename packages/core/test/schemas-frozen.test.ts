import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '@alert-hub/core';

/*
 * docs/protocol.md §2.2: a published schema version is frozen. Its file may change in titles,
 * descriptions and examples only (and in the two stated exceptions: a code added to an external
 * code list, and caseReference's control characters). So each file is pinned here by the SHA-256
 * of what validates: the schema without its annotations, as canonical JSON. A change that moves a
 * verdict fails this test; the way through is a new version (a new file, a new row), or, for an
 * exception §2.2 states, a new fingerprint in the same commit as the paragraph that announces it.
 */

const schemasDir = fileURLToPath(new URL('../../../schemas/', import.meta.url));

/** Keywords that never change a verdict. */
const ANNOTATIONS = new Set(['title', 'description', 'examples', '$comment']);
/** Keywords whose value maps names to schemas. */
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', '$defs', 'dependentSchemas']);
/** Keywords whose value is a schema. */
const SCHEMA_VALUED = new Set([
  'items',
  'contains',
  'not',
  'if',
  'then',
  'else',
  'additionalProperties',
  'unevaluatedProperties',
  'unevaluatedItems',
  'propertyNames',
]);
/** Keywords whose value is a list of schemas. */
const SCHEMA_LISTS = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);

/**
 * A schema without its annotations. Only schema positions are walked: a member named
 * `description` in `properties` (a commodity's free text) is kept, and so is anything inside
 * `enum`, `const` or `required`.
 */
function withoutAnnotations(schema: unknown): unknown {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema as Record<string, unknown>)) {
    if (ANNOTATIONS.has(k)) continue;
    if (SCHEMA_MAPS.has(k) && typeof v === 'object' && v !== null)
      out[k] = Object.fromEntries(
        Object.entries(v as Record<string, unknown>).map(([name, s]) => [
          name,
          withoutAnnotations(s),
        ]),
      );
    else if (SCHEMA_VALUED.has(k)) out[k] = withoutAnnotations(v);
    else if (SCHEMA_LISTS.has(k) && Array.isArray(v)) out[k] = v.map(withoutAnnotations);
    else out[k] = v;
  }
  return out;
}

/** SHA-256 (hex) of what in a schema file validates. */
function fingerprint(text: string): string {
  return createHash('sha256')
    .update(canonicalJson(withoutAnnotations(JSON.parse(text))))
    .digest('hex');
}

/**
 * Every schema file, by name. `outcome.v1` is the form published with 33990e3 (2026-11-29),
 * before 7ead1c1 added `answersOrigin` in place (undone: that member is version 2's);
 * `common.v1` and `common.v2` hold the caseReference exception of §2.2 (f986a82, 2026-11-29).
 */
const PUBLISHED: Readonly<Record<string, string>> = {
  'agreements.v1.schema.json': 'fefc3ed296487f5b8d2ce66110454722bdfeebbc51604f0a88553c15480adbf0',
  'common.v1.schema.json': '4ab719c031381aa571de9436a35082958341d5e3abb69e60cf04d7839218b7b2',
  'common.v2.schema.json': 'c5272ebcc081fe287f0ea62e0b71a4321b59e92c91354e6c14f08cfea59dd1f5',
  'consignee-flag.v1.schema.json':
    '517959be76032678422ae7755e5cc561676d60245b343fe3113d54ed8b7e4c07',
  'consignee-flag.v2.schema.json':
    '34415fc9cec0d1d7b17a15ce88c3b102b8ecb74e24183daba69fdba9d4946a7f',
  'delivery-receipt.v1.schema.json':
    '5264a51f363b27648d60bd86d6f02e7d34e4857b798bfd3779ccb0f03f28ede5',
  'notice.v1.schema.json': 'd8b3698da531fa45a99a6c59cddfd7b822424e21bac77df4f6260223427f1e09',
  'outcome.v1.schema.json': '39ff27edd998e5109e965e588a26daaebfef722a72e4af228013abff3ce11d6a',
  'outcome.v2.schema.json': '273c4be88ccb0d8f53a843108ce8e4d8d331e70c71ce829bb829d1309ee398f1',
  'retraction.v1.schema.json': '03472a5c52fc3fe726357a6c7016b7d0b0ce8a6ac20c8d59fcfade3b9326e933',
  'seizure-report.v1.schema.json':
    '394d531fe6b7658a9a3ddaff3ddc402f3f57d28186f33c842a523eb500361c3f',
  'seizure-report.v2.schema.json':
    '69534bd02764f9f8f5f8550a10bc949d6a2301b6460d7641e375c2792ef24ef5',
  'suspicious-shipment.v1.schema.json':
    'e3fec5deab623897b32fa9a5a6e6f62ec2cd4b75c1a3c7968d9c794a4e5a6337',
  'suspicious-shipment.v2.schema.json':
    'cdad291521deb9e7fcfa86cc4a6f6236c726a59645eccbdf8a4fe31559a1a0db',
  'trust-jwks.v1.schema.json': '7bf900b31adf3f6e1e67e6c940d2749694524c40aca0ddc35cc2f0524906f4c1',
  'trust-revocations.v1.schema.json':
    'f764c963fc50d8117e4d43856798e1ccd283b56ab4827e69bc6f9049c95d7013',
};

describe('schemas - a published version is frozen (docs/protocol.md §2.2)', () => {
  const files = readdirSync(schemasDir).filter((f) => f.endsWith('.schema.json'));

  it('every schema file is pinned: a new file is a new version, listed here', () => {
    expect(files.sort()).toEqual(Object.keys(PUBLISHED).sort());
  });

  it.each(files)('%s validates exactly as published', (file) => {
    expect(fingerprint(readFileSync(schemasDir + file, 'utf8'))).toBe(PUBLISHED[file]);
  });

  it('docs/protocol.md §2.2 publishes exactly the pins, file by file, as the files give them', () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url)),
      'utf8',
    );
    const rows = [
      ...doc.matchAll(/^\| `([a-z0-9.-]+\.schema\.json)` +\| `([0-9a-f]{64})` +\|$/gm),
    ].map((m) => [m[1]!, m[2]!] as const);
    expect(rows.length).toBe(files.length);
    expect(Object.fromEntries(rows)).toEqual(PUBLISHED);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(files.map((f) => [f, fingerprint(readFileSync(schemasDir + f, 'utf8'))])),
    );
  });

  it('an annotation does not move a fingerprint; a member, a pattern or a const does', () => {
    const text = readFileSync(schemasDir + 'outcome.v1.schema.json', 'utf8');
    const schema = JSON.parse(text) as {
      description: string;
      properties: Record<string, Record<string, unknown>>;
    };
    const changed = (edit: (s: typeof schema) => void) => {
      const copy = structuredClone(schema);
      edit(copy);
      return fingerprint(JSON.stringify(copy));
    };
    const base = fingerprint(text);
    expect(changed((s) => (s.description = 'another text'))).toBe(base);
    expect(changed((s) => (s.properties['note']!['title'] = 'Note'))).toBe(base);
    expect(changed((s) => (s.properties['answersOrigin'] = { type: 'string' }))).not.toBe(base);
    expect(changed((s) => (s.properties['note']!['maxLength'] = 1001))).not.toBe(base);
    expect(changed((s) => (s.properties['version'] = { const: 2 }))).not.toBe(base);
  });
});
