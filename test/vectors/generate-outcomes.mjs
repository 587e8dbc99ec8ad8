#!/usr/bin/env node
// Writes test/vectors/outcomes.json: outcomes of version 1 and 2 (docs/protocol.md §9.3), each
// with the verdict stated here by hand (the contract: valid, or refused with this code at exactly
// these JSON pointers). Refuses to write when the hub disagrees with a stated verdict. Run from the
// repository root after `npm run build`:  node test/vectors/generate-outcomes.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { sampleOutcome } from '@alert-hub/testkit/samples';

const OPTS = { now: new Date('2019-04-08T03:15:00Z'), id: '0169fb6c-1a80-7000-8000-000000000a01' };
/** The alert answered: SG-NPARKS's seizure report of test/vectors/alerts-v2.json (its id). */
const ANSWERS = '0169fb6c-1a80-7000-8000-000000000016';
/** VN-CUSTOMS reports a seizure on it (version 1 as published), with `overrides`. */
const outcome = (overrides = {}) => {
  const o = sampleOutcome('VN-CUSTOMS', ANSWERS, overrides, OPTS);
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
};
const v2 = (overrides = {}) => outcome({ version: 2, ...overrides });
const INVALID = 'ERR_SCHEMA_INVALID';

/** Each vector: [name, alert, verdict]; a verdict is `true` or [code, pointers]. */
const CASES = [
  ['version 1 as published: no answersOrigin', outcome(), true],
  [
    'version 1, a result other than a seizure: no seizure',
    outcome({ result: 'arrest', seizure: undefined }),
    true,
  ],
  [
    'version 1 carrying answersOrigin: not a member of version 1',
    outcome({ answersOrigin: 'SG-NPARKS' }),
    [INVALID, ['/answersOrigin']],
  ],
  [
    'version 1, result seizure without the seizure',
    outcome({ seizure: undefined }),
    [INVALID, ['/seizure']],
  ],
  ['version 2 naming the origin of the alert it answers', v2({ answersOrigin: 'SG-NPARKS' }), true],
  ['version 2 without answersOrigin (it is optional)', v2(), true],
  [
    'version 2, answersOrigin whose country is not ISO 3166-1 (XX)',
    v2({ answersOrigin: 'XX-NPARKS' }),
    [INVALID, ['/answersOrigin']],
  ],
  [
    'version 2, answersOrigin in lower case',
    v2({ answersOrigin: 'sg-nparks' }),
    [INVALID, ['/answersOrigin']],
  ],
  [
    'version 2, answersOrigin a country, not an agency',
    v2({ answersOrigin: 'SG' }),
    [INVALID, ['/answersOrigin']],
  ],
  [
    'version 2, answersOrigin not a string',
    v2({ answersOrigin: ['SG-NPARKS'] }),
    [INVALID, ['/answersOrigin']],
  ],
  [
    'version 2, result seizure without the seizure',
    v2({ answersOrigin: 'SG-NPARKS', seizure: undefined }),
    [INVALID, ['/seizure']],
  ],
  [
    'version 2 takes the common version-1 definitions: no pointOfContact',
    v2({
      answersOrigin: 'SG-NPARKS',
      pointOfContact: { unit: 'Anti-smuggling', email: 'duty@example.org' },
    }),
    [INVALID, ['/pointOfContact']],
  ],
  [
    'version 2 takes the common version-1 definitions: a seized commodity has one quantity',
    v2({
      answersOrigin: 'SG-NPARKS',
      seizure: {
        ...outcome().seizure,
        commodities: [
          {
            taxon: { scientificName: 'Manis javanica' },
            product: 'scales',
            quantities: [{ value: 450, unit: 'kg' }],
          },
        ],
      },
    }),
    [INVALID, ['/seizure/commodities/0/quantities', '/seizure/commodities/0/quantity']],
  ],
  [
    'version 3: no such version of outcome',
    outcome({ version: 3 }),
    ['ERR_SCHEMA_UNKNOWN', ['/version']],
  ],
];

/** The vectors document, as test/outcome-vectors.test.ts also builds it to compare with the file. */
export function buildOutcomeVectors() {
  const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
  const vectors = CASES.map(([name, alert, verdict]) => {
    const r = registry.checkAlert(alert);
    const got = r.ok ? true : [r.error.code, r.error.issues.map((i) => i.pointer).sort()];
    if (JSON.stringify(got) !== JSON.stringify(verdict))
      throw new Error(`the hub disagrees: ${name}: ${JSON.stringify(got)}`);
    return verdict === true
      ? { name, valid: true, alert }
      : { name, valid: false, code: verdict[0], pointers: verdict[1], alert };
  });
  return {
    description:
      'Outcomes (docs/protocol.md section 9.3) for implementers: version 1 as published, without answersOrigin, and version 2, version 1 plus the optional answersOrigin (an agency id), on the common version-1 definitions. Each is valid, or refused with this code and an issue at exactly these JSON pointers. Every outcome is issued at 2019-04-08T03:15:00Z by VN-CUSTOMS and answers alert 0169fb6c-1a80-7000-8000-000000000016 of SG-NPARKS.',
    vectors,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = fileURLToPath(new URL('./outcomes.json', import.meta.url));
  const { description, vectors } = buildOutcomeVectors();
  // One vector per line, as alerts-v2.json.
  const lines = vectors.map((v) => `    ${JSON.stringify(v)}`).join(',\n');
  writeFileSync(
    file,
    `{\n  "description": ${JSON.stringify(description)},\n  "vectors": [\n${lines}\n  ]\n}\n`,
  );
}
