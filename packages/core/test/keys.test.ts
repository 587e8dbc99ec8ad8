import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  generateSigningJwk,
  importSigningKey,
  newKeyPair,
  signSync,
  verifySync,
} from '../src/index.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

describe('new keys', () => {
  it('a new key pair signs and verifies, in either algorithm, and its JWK imports back', () => {
    for (const alg of ['EdDSA', 'ES256'] as const) {
      const { privateKey, publicKey } = newKeyPair(alg);
      const data = Buffer.from('seizure report');
      expect(verifySync(alg, data, publicKey, signSync(alg, data, privateKey))).toBe(true);
      const { privateJwk, publicJwk } = generateSigningJwk(alg);
      const key = importSigningKey(privateJwk, 'SG-NPARKS');
      expect(key.kid).toBe(publicJwk.kid);
      expect(key.alg).toBe(alg);
    }
  });

  it('making thousands of keys never hangs, with the garbage collector running all the time (Node.js 20 deadlocked exporting a generated key as a JWK)', () => {
    // Its own process, with a young generation so small that a collection runs during nearly
    // every export: the build's generateSigningJwk, as hubctl and the test kit call it.
    const script = [
      "const { generateSigningJwk } = await import('@alert-hub/core');",
      'for (let i = 0; i < 12000; i++) generateSigningJwk(i % 100 === 0 ? "ES256" : "EdDSA");',
      "console.log('made');",
    ].join('\n');
    const run = spawnSync(
      process.execPath,
      ['--max-semi-space-size=1', '--input-type=module', '-e', script],
      { cwd: ROOT, encoding: 'utf8', timeout: 120_000, killSignal: 'SIGKILL' },
    );
    expect(run.signal, 'killed after 120 s: it hung').toBeNull();
    expect(run.stderr).toBe('');
    expect(run.stdout.trim()).toBe('made');
  }, 150_000);
});
