#!/usr/bin/env node
// Writes test/vectors/outcomes.json: outcomes of version 1 and 2 (docs/protocol.md §9.3), each
// with the verdict stated here by hand (the contract: valid, or refused with this code at exactly
// these JSON pointers), and outcome copies on the origin's feed (signed and countersigned with the
// keys of generate.mjs, Ed25519 only, so byte for byte), each with the result stated here.
// Refuses to write when the hub disagrees with a stated verdict. Run from the repository root
// after `npm run build`:  node test/vectors/generate-outcomes.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  countersignRoutes,
  encodeEnvelope,
  feedSubject,
  importSigningKey,
  openDelivery,
  signAlert,
} from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { sampleOutcome } from '@alert-hub/testkit/samples';
import { VECTOR_TIME, vectorKeys } from './generate.mjs';

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
    'version 2, a seizure dated weeks after issuedAt: the rules of section 2.9 do not apply to outcomes',
    v2({ answersOrigin: 'SG-NPARKS', seizure: { ...outcome().seizure, date: '2019-05-01' } }),
    true,
  ],
  [
    'version 3: no such version of outcome',
    outcome({ version: 3 }),
    ['ERR_SCHEMA_UNKNOWN', ['/version']],
  ],
];

/**
 * Outcome copies on the origin's feed, as the router forwards them: signed by SG-NPARKS (the
 * Ed25519 key of RFC 8037 in test/vectors/trust/, so they regenerate byte for byte) and
 * countersigned by HUB for VN-CUSTOMS, the origin of the alert they answer. Each: [name,
 * description, outcome, stated result (`true`: opens, else the code)].
 */
const VN_ALERT = '0169fb6c-1a80-7000-8000-000000000b01';
const copyOutcome = (n, overrides) => {
  const o = sampleOutcome('SG-NPARKS', VN_ALERT, overrides, {
    ...OPTS,
    id: `0169fb6c-1a80-7000-8000-000000000a1${n}`,
  });
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
};
const COPIES = [
  ['outcome-v1-copy', 'Version 1, no answersOrigin.', copyOutcome(1, {}), true],
  [
    'outcome-v2-copy',
    'Version 2 naming the reader as the origin of the alert it answers.',
    copyOutcome(2, { version: 2, answersOrigin: 'VN-CUSTOMS' }),
    true,
  ],
  [
    'outcome-v2-copy-answers-origin-not-the-reader',
    'Version 2 naming another agency (KE-KWS) in answersOrigin: the recipient does not check it (the router chose the recipient), so it opens.',
    copyOutcome(3, { version: 2, answersOrigin: 'KE-KWS' }),
    true,
  ],
  [
    'outcome-v1-copy-carrying-answers-origin',
    'Version 1 carrying answersOrigin: refused by the version-1 schema.',
    copyOutcome(4, { answersOrigin: 'VN-CUSTOMS' }),
    'ERR_SCHEMA_INVALID',
  ],
];

async function buildCopies(registry) {
  const k = vectorKeys();
  const sgKey = importSigningKey(k.sg.privateJwk, 'SG-NPARKS');
  const hubKey = importSigningKey(k.hub.privateJwk, 'HUB');
  const trust = loadTrustStore(fileURLToPath(new URL('./trust/', import.meta.url)), registry);
  const recipient = 'VN-CUSTOMS';
  const copies = [];
  for (const [name, description, alert, stated] of COPIES) {
    const schemaId = `https://schemas.alert-hub.example/alerts/outcome/v${alert.version}.json`;
    const [copy] = await countersignRoutes(await signAlert(alert, sgKey, schemaId), hubKey, {
      origin: alert.origin,
      alertId: alert.id,
      routedAt: '2019-04-08T03:15:02Z',
      grants: [{ recipient, agreement: { id: 'WEN-ASIA-AFRICA', version: 3 }, onward: false }],
    });
    const bytes = encodeEnvelope(copy);
    const subject = feedSubject(recipient, alert.origin, alert.type);
    const opened = await openDelivery(bytes, subject, {
      trust,
      registry,
      recipient,
      now: new Date(VECTOR_TIME),
    });
    const got = opened.ok ? true : opened.error.code;
    if (got !== stated) throw new Error(`the hub disagrees: ${name}: ${got}`);
    copies.push({
      name,
      description,
      recipient,
      subject,
      envelope: Buffer.from(bytes).toString('hex'),
      expected: stated === true ? { ok: true, alert } : { ok: false, code: stated },
    });
  }
  return copies;
}

/** The vectors document, as test/outcome-vectors.test.ts also builds it to compare with the file. */
export async function buildOutcomeVectors() {
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
    copiesDescription: `Outcome copies on the feed of the origin of the alert they answer (VN-CUSTOMS), opened as docs/protocol.md section 5.1 says with the trust store test/vectors/trust/ at ${VECTOR_TIME}: signed by SG-NPARKS, countersigned by HUB (one routing decision per copy). The recipient checks neither that answersOrigin names itself nor that answers is an id it sent (section 9.3).`,
    copies: await buildCopies(registry),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = fileURLToPath(new URL('./outcomes.json', import.meta.url));
  const { description, vectors, copiesDescription, copies } = await buildOutcomeVectors();
  // One vector per line, as alerts-v2.json.
  const lines = (list) => list.map((v) => `    ${JSON.stringify(v)}`).join(',\n');
  writeFileSync(
    file,
    `{\n  "description": ${JSON.stringify(description)},\n  "vectors": [\n${lines(vectors)}\n  ],\n` +
      `  "copiesDescription": ${JSON.stringify(copiesDescription)},\n  "copies": [\n${lines(copies)}\n  ]\n}\n`,
  );
}
