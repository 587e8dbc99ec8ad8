#!/usr/bin/env node
// Writes test/vectors/formats.json: for each custom format of docs/protocol.md §2.3, values with
// whether they are valid (the contract, written here by hand) and, for the invalid ones, the hub's
// reason (for people). Refuses to write when the hub disagrees with a stated verdict. Run from the
// repository root after `npm run build`:  node test/vectors/generate-formats.mjs
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createFormatChecks } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry } from '@alert-hub/runtime';

/** Each format's values and verdicts. */
const VALUES = {
  'iso6346': [
    ["CSQU3054383", true],
    ["MSKU9070323", true],
    ["PCIU8150218", true],
    ["TGHU0000008", true],
    ["ABCU1234560", true],
    ["CSQU3054384", false],
    ["CSQX3054383", false],
    ["csqu3054383", false],
    ["CSQU 305438 3", false],
    ["CSQU305438", false],
  ],
  'imo-number': [
    ["9074729", true],
    ["9378125", true],
    ["9074728", false],
    ["IMO9074729", false],
    ["907472", false],
  ],
  'iata-awb': [
    ["176-12345675", true],
    ["618-12345675", true],
    ["020-00000000", true],
    ["176-12345676", false],
    ["17612345675", false],
    ["176-1234567", false],
    ["176-00000070", true],
    ["176-00000077", false],
  ],
  'upu-s10': [
    ["RR473124829GB", true],
    ["EE000000080CN", true],
    ["CP000000155DE", true],
    ["RR473124828GB", false],
    ["RR473124829XX", false],
    ["rr473124829gb", false],
    ["RR47312482GB", false],
  ],
  'mmsi': [
    ["563012345", true],
    ["201000000", true],
    ["775999999", true],
    ["111563123", false],
    ["970123456", false],
    ["056301234", false],
    ["200999999", false],
    ["776000000", false],
    ["56301234", false],
  ],
  'hs-code': [
    ["0507", true],
    ["050790", true],
    ["0507.90", true],
    ["0507.90.00", true],
    ["9705100000", true],
    ["507", false],
    ["0507.9", false],
    ["0007", false],
    ["7701", false],
    ["0507-90", false],
    ["0507.90.00.10", true],
    ["050790.00", true],
    ["0507.9000", true],
    ["05079000", true],
    ["0507.", false],
    ["0507..90", false],
    ["05.07", false],
    ["05079", false],
    ["0507.90.00.10.20", false],
  ],
  'un-locode': [
    ["SGSIN", true],
    ["VNHPH", true],
    ["NGAPP", true],
    ["GB2RK", true],
    ["XXSIN", false],
    ["SG SIN", false],
    ["SGS1N", false],
    ["sgsin", false],
  ],
  'agency-id': [
    ["SG-NPARKS", true],
    ["GB-HMRC", true],
    ["UK-HMRC", false],
    ["SG-N", false],
    ["sg-nparks", false],
  ],
  'alert-id': [
    ["01890a5d-ac96-774b-bcce-b302099a8057", true],
    ["01ARZ3NDEKTSV4RRFFQ69G5FAV", true],
    ["f47ac10b-58cc-4372-a567-0e02b2c3d479", false],
    ["01890A5D-AC96-774B-BCCE-B302099A8057", false],
    ["81ARZ3NDEKTSV4RRFFQ69G5FAV", false],
    ["01JDZ7Q5X3M8W2E4R6T8Y0V2K4", true],
    ["01JDZ7Q5X3M8W2E4R6T8Y0U2I4", false],
  ],
};

/** The vectors document, as test/format-vectors.test.ts also builds it to compare with the file. */
export function buildFormatVectors() {
  const checks = createFormatChecks(loadSchemaRegistry(DEFAULT_SCHEMAS_DIR).countries);
  const formats = Object.fromEntries(
    Object.entries(VALUES).map(([name, list]) => [
      name,
      list.map(([value, valid]) => {
        const why = checks[name](value);
        if ((why === undefined) !== valid) throw new Error(`the hub disagrees: ${name} ${value} valid=${valid}`);
        return why === undefined ? { value, valid } : { value, valid, why };
      }),
    ]),
  );
  return { description: "Test vectors of the custom formats in schemas/: each value with whether it is valid and, when not, why (the reason is for people; only `valid` is the contract). docs/protocol.md \u00a72.3 defines each format.", formats };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const file = fileURLToPath(new URL('./formats.json', import.meta.url));
  writeFileSync(file, `${JSON.stringify(buildFormatVectors(), null, 2)}\n`);
}
