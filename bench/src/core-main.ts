import { mkdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_SCHEMAS_DIR, ROOT_DIR, loadSchemaRegistry } from '@alert-hub/runtime';
import { benchCore } from './core.js';
import { describeMachine } from './machine.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '1500' },
    rounds: { type: 'string', default: '5' },
    'in-flight': { type: 'string', default: '64' },
    out: { type: 'string' },
  },
});
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const r = await benchCore(registry, {
  durationMs: Number(values.duration),
  inFlight: Number(values['in-flight']),
  rounds: Number(values.rounds),
});
const f = (n: number) => Math.round(n).toLocaleString('en-US').padStart(9);
console.log(
  `core benchmark: ${r.alertBytes}-byte alert, ${r.envelopeBytes}-byte routed envelope, ${values['in-flight']} in flight, median of ${values.rounds} alternating rounds`,
);
console.log(
  `  node:crypto Ed25519 sign    sync ${f(r.raw.signSync)}/s   async ${f(r.raw.signAsync)}/s`,
);
console.log(
  `  node:crypto Ed25519 verify  sync ${f(r.raw.verifySync)}/s   async ${f(r.raw.verifyAsync)}/s`,
);
console.log(
  `  core signAlert                          ${f(r.core.sign)}/s   raw/core ${r.ratios.rawSignOverCoreSign.toFixed(2)}x (goal <= 1.30)`,
);
console.log(
  `  core decode + verifyOrigin              ${f(r.core.verifyOrigin)}/s   raw/core ${r.ratios.rawVerifyOverCoreVerify.toFixed(2)}x (goal <= 1.30)`,
);
console.log(
  `  core decode + verify origin and router  ${f(r.core.verifyRouted)}/s   (two signatures)`,
);
console.log(
  `  msgpack encode ${f(r.core.encode)}/s   decode ${f(r.core.decode)}/s   schema validate ${f(r.core.validate)}/s`,
);
const out = values.out ?? `${ROOT_DIR}bench/results/core.json`;
mkdirSync(new URL('.', `file://${out}`).pathname, { recursive: true });
writeFileSync(out, `${JSON.stringify({ machine: describeMachine(), ...r }, null, 2)}\n`);
console.log(`results: ${out}`);
