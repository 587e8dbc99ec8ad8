import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hubctl, ROOT } from '@alert-hub/testkit';

/**
 * The example alerts under examples/ (the README's sender and partner sections copy them): each
 * one valid against its schema as `hubctl validate` and the gateway judge it, so they never rot.
 */
const dir = join(ROOT, 'examples');
const files = readdirSync(dir).filter((f) => /\.(json|ndjson)$/.test(f));

describe('examples - every example alert is valid', () => {
  it('holds one example of each type the README names, and the NDJSON batch', () => {
    expect(files.sort()).toEqual(
      expect.arrayContaining([
        'alerts.ndjson',
        'consignee-flag.json',
        'outcome.json',
        'retraction.json',
        'seizure-report.json',
        'suspicious-shipment.json',
      ]),
    );
  });

  for (const f of files)
    it(`${f}: hubctl validate finds it valid, with id, origin and issuedAt left to the gateway`, async () => {
      const r = await hubctl(['validate', join(dir, f), '--origin', 'SG-NPARKS', '--json']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      const out = JSON.parse(r.stdout) as unknown;
      const results = (Array.isArray(out) ? out : [out]) as {
        valid: boolean;
        type: string;
        filled: string[];
      }[];
      expect(results.length).toBe(
        f.endsWith('.ndjson') ? readFileSync(join(dir, f), 'utf8').trim().split('\n').length : 1,
      );
      for (const x of results) {
        expect(x.valid).toBe(true);
        expect(x.filled).toEqual(['id', 'origin', 'issuedAt']);
      }
      if (f.endsWith('.json')) expect(results[0]!.type).toBe(f.replace(/\.json$/, ''));
    });
});
