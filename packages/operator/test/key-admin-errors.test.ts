import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateKey, revokeKey, rotateKey } from '@alert-hub/operator';

let certs: string;
beforeEach(() => {
  certs = mkdtempSync(join(tmpdir(), 'ahub-key-admin-'));
});
afterEach(() => rmSync(certs, { recursive: true, force: true }));

function codeOf(f: () => unknown): string {
  try {
    f();
    return 'done';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

describe('key administration - refusals name their code and change nothing', () => {
  it('a key of another role for a principal already in the store: ERR_KEY_ROLE_CONFLICT', () => {
    generateKey({ certsDir: certs, principal: 'HUB', role: 'router' });
    const before = readdirSync(join(certs, 'private'));
    expect(codeOf(() => generateKey({ certsDir: certs, principal: 'HUB', role: 'agency' }))).toBe(
      'ERR_KEY_ROLE_CONFLICT',
    );
    expect(readdirSync(join(certs, 'private'))).toEqual(before);
  });
  it('rotating a principal with no keys: ERR_KEY_NONE_TO_ROTATE', () => {
    expect(codeOf(() => rotateKey({ certsDir: certs, principal: 'KE-KWS' }))).toBe(
      'ERR_KEY_NONE_TO_ROTATE',
    );
    expect(existsSync(join(certs, 'trust', 'KE-KWS.jwks.json'))).toBe(false);
  });
  it('revoking a kid no key in the store has: ERR_KEY_KID_UNKNOWN', () => {
    generateKey({ certsDir: certs, principal: 'KE-KWS' });
    expect(
      codeOf(() => revokeKey({ certsDir: certs, kid: 'no-such-kid', reason: 'keyCompromise' })),
    ).toBe('ERR_KEY_KID_UNKNOWN');
    expect(existsSync(join(certs, 'trust', 'revoked.json'))).toBe(false);
  });
});
