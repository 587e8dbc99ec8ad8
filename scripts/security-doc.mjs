// Regenerates the generated part of docs/security.md (what an agency's NATS connection can
// reach) from the configuration `hubctl nats-config` renders. Run through `npm run docs:security`.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { updateSecurityDoc } from '@alert-hub/operator';

const file = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'security.md');
writeFileSync(file, updateSecurityDoc(readFileSync(file, 'utf8')));
