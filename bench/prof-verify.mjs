import {
  generateSigningJwk,
  importSigningKey,
  signAlert,
  createTrustStore,
  encodeEnvelope,
  decodeEnvelope,
  verifyOrigin,
} from '@alert-hub/core';
import { loadSchemaRegistry, DEFAULT_SCHEMAS_DIR } from '@alert-hub/runtime';
import { benchAlert } from './dist/core.js';
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const g = generateSigningJwk();
const k = importSigningKey(g.privateJwk, 'SG-NPARKS');
const trust = createTrustStore({
  jwks: [
    { source: 's', document: { principal: 'SG-NPARKS', role: 'agency', keys: [g.publicJwk] } },
  ],
  registry,
});
const a = benchAlert('SG-NPARKS');
const bytes = encodeEnvelope(await signAlert(a, k, registry.schemaIdFor(a.type, 1)));
let n = 0;
const end = Date.now() + 4000;
await Promise.all(
  Array.from({ length: 64 }, async () => {
    while (Date.now() < end) {
      await verifyOrigin(decodeEnvelope(bytes), { trust, registry });
      n++;
    }
  }),
);
console.log(n / 4);
