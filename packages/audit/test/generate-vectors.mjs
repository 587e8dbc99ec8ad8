#!/usr/bin/env node
// Writes packages/audit/test/audit-vectors.json from vectors.ts (`buildAuditVectors`), which
// fails when the code reads a crafted note otherwise than the verdict it states. Run from the
// repository root after `npm run build`:  node packages/audit/test/generate-vectors.mjs
// vectors.ts is TypeScript: it is transpiled (typescript's transpileModule, no type check) to a
// temporary module beside it, so that `@alert-hub/audit` resolves as in the tests.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { URL, fileURLToPath } from 'node:url';
import ts from 'typescript';

const dir = fileURLToPath(new URL('./', import.meta.url));
const tmp = `${dir}.vectors-${process.pid}.mjs`;
const { outputText } = ts.transpileModule(readFileSync(`${dir}vectors.ts`, 'utf8'), {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
});
writeFileSync(tmp, outputText);
try {
  const { buildAuditVectors } = await import(tmp);
  writeFileSync(`${dir}audit-vectors.json`, `${JSON.stringify(buildAuditVectors(), null, 2)}\n`);
  console.log(`wrote ${dir}audit-vectors.json`);
} finally {
  rmSync(tmp, { force: true });
}
