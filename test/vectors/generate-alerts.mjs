// Writes test/vectors/alerts-v2.json from the cases of issue #16 (packages/testkit/src/cases-v2.ts):
// for each point, a version-2 alert that is valid and one that is refused, with the JSON pointers
// of the refusal. Run after `npx tsc -b`: node test/vectors/generate-alerts.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { V2_CASES } from '@alert-hub/testkit/cases-v2';

/** The vectors document, as test/alert-vectors.test.ts also builds it to compare with the file. */
export function buildAlertVectors() {
  return {
    description:
      'Version-2 alerts for implementers: each point of the schema with one alert that is valid and one that a verifier refuses (ERR_SCHEMA_INVALID) with an issue at exactly these JSON pointers. The rules of docs/protocol.md section 2.9 are included; every alert is issued at 2019-04-08T03:15:00Z.',
    vectors: V2_CASES.flatMap((c) => [
      { name: c.point, valid: true, alert: c.valid },
      { name: c.point, valid: false, pointers: [...c.at].sort(), alert: c.invalid },
    ]),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = fileURLToPath(new URL('./alerts-v2.json', import.meta.url));
  const { description, vectors } = buildAlertVectors();
  // One vector per line: readable diffs without the bulk of indenting every alert.
  const lines = vectors.map((v) => `    ${JSON.stringify(v)}`).join(',\n');
  writeFileSync(
    file,
    `{\n  "description": ${JSON.stringify(description)},\n  "vectors": [\n${lines}\n  ]\n}\n`,
  );
}
