// Regenerates the generated part of docs/security.md (what an agency's NATS connection can
// reach) from the configuration `hubctl nats-config` renders. Run through `npm run docs:security`.
import { readFileSync, writeFileSync } from 'node:fs';
import { updateSecurityDoc } from '@alert-hub/operator';

const file = new URL('../docs/security.md', import.meta.url);
writeFileSync(file, updateSecurityDoc(readFileSync(file, 'utf8')));
