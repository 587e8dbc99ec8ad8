import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCode, signAlert, verifyOrigin } from '@alert-hub/core';
import { generateKey, revokeKey, rotateKey } from '@alert-hub/operator';
import {
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  loadSigningKey,
  loadTrustStore,
  readSigningKey,
} from '@alert-hub/runtime';

const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
let certs: string;
beforeEach(() => {
  certs = mkdtempSync(join(tmpdir(), 'ahub-keys-'));
});
afterEach(() => rmSync(certs, { recursive: true, force: true }));

function alertAt(issuedAt: string) {
  return {
    id: '0169fb6c-1a80-7000-8000-000000000009',
    type: 'consignee-flag',
    version: 1,
    origin: 'SG-NPARKS',
    issuedAt,
    handling: 'TLP:GREEN',
    consignee: { name: 'X', country: 'VN' },
    reason: 'intelligence',
  } as const;
}

describe('keystore - generate, rotate, revoke', () => {
  it('writes the private key 0600 in a 0700 directory and the public key to the trust store', () => {
    const g = generateKey({
      certsDir: certs,
      principal: 'SG-NPARKS',
      name: 'National Parks Board',
    });
    expect(statSync(g.privateFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(certs, 'private', 'SG-NPARKS')).mode & 0o777).toBe(0o700);
    const jwks = JSON.parse(readFileSync(g.jwksFile, 'utf8')) as {
      keys: { kid: string; d?: string }[];
    };
    expect(jwks.keys.map((k) => k.kid)).toEqual([g.kid]);
    expect(jwks.keys[0]).not.toHaveProperty('d');
    expect(loadTrustStore(join(certs, 'trust'), registry).agencies).toEqual(['SG-NPARKS']);
  });

  it('rotation: the new key signs from now, the old one verifies only until the overlap ends', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const first = generateKey({ certsDir: certs, principal: 'SG-NPARKS', now: t0 });
    const t1 = new Date('2026-06-01T00:00:00Z');
    const r = rotateKey({ certsDir: certs, principal: 'SG-NPARKS', overlapDays: 7, now: t1 });
    expect(r.retired).toEqual([{ kid: first.kid, notAfter: '2026-06-08T00:00:00.000Z' }]);
    expect(loadSigningKey(join(certs, 'private', 'SG-NPARKS'), 'SG-NPARKS', t1).kid).toBe(r.kid);
    expect(
      loadSigningKey(
        join(certs, 'private', 'SG-NPARKS'),
        'SG-NPARKS',
        new Date('2026-05-31T00:00:00Z'),
      ).kid,
    ).toBe(first.kid);

    const trust = loadTrustStore(join(certs, 'trust'), registry);
    const old = readSigningKey(first.privateFile, 'SG-NPARKS');
    const sid = registry.schemaIdFor('consignee-flag', 1)!;
    const within = await signAlert(alertAt('2026-06-05T00:00:00Z'), old, sid);
    await expect(
      verifyOrigin(within, { trust, now: new Date('2026-06-05T00:00:00Z') }),
    ).resolves.toBeDefined();
    const after = await signAlert(alertAt('2026-06-09T00:00:00Z'), old, sid);
    await expect(
      verifyOrigin(after, { trust, now: new Date('2026-06-09T00:00:00Z') }),
    ).rejects.toMatchObject({ code: ErrorCode.KeyNotValidAt });
  });

  it('a revoked key verifies nothing', async () => {
    const g = generateKey({ certsDir: certs, principal: 'SG-NPARKS' });
    const jws = await signAlert(
      alertAt(new Date().toISOString()),
      readSigningKey(g.privateFile, 'SG-NPARKS'),
      registry.schemaIdFor('consignee-flag', 1)!,
    );
    await expect(
      verifyOrigin(jws, { trust: loadTrustStore(join(certs, 'trust'), registry) }),
    ).resolves.toBeDefined();
    revokeKey({ certsDir: certs, kid: g.kid, reason: 'keyCompromise' });
    await expect(
      verifyOrigin(jws, { trust: loadTrustStore(join(certs, 'trust'), registry) }),
    ).rejects.toMatchObject({ code: ErrorCode.KeyRevoked });
  });

  it('refuses a private key file that group or others can read', () => {
    const g = generateKey({ certsDir: certs, principal: 'SG-NPARKS' });
    chmodSync(g.privateFile, 0o644);
    expect(() => readSigningKey(g.privateFile, 'SG-NPARKS')).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_FILE_PERMISSIONS' }),
    );
    chmodSync(g.privateFile, 0o640);
    expect(() => readSigningKey(g.privateFile, 'SG-NPARKS')).toThrow(
      expect.objectContaining({ code: 'ERR_KEY_FILE_PERMISSIONS' }),
    );
    chmodSync(g.privateFile, 0o400);
    expect(readSigningKey(g.privateFile, 'SG-NPARKS').kid).toBe(g.kid);
  });

  it('refuses a trust store that holds a private key', () => {
    const g = generateKey({ certsDir: certs, principal: 'SG-NPARKS' });
    const jwks = JSON.parse(readFileSync(g.jwksFile, 'utf8')) as {
      keys: Record<string, unknown>[];
    };
    const priv = JSON.parse(readFileSync(g.privateFile, 'utf8')) as Record<string, unknown>;
    jwks.keys[0] = priv;
    writeFileSync(g.jwksFile, JSON.stringify(jwks));
    expect(() => loadTrustStore(join(certs, 'trust'), registry)).toThrow(
      expect.objectContaining({ code: ErrorCode.TrustStoreInvalid }),
    );
  });

  it('never writes a key file the trust store would refuse: an agency id starts with an ISO 3166-1 country', () => {
    for (const [principal, role] of [
      ['XX-CUSTOMS', 'agency'],
      ['UK-HMRC', 'agency'],
      ['SGNPARKS', 'agency'],
      ['HUB-1', 'router'],
    ] as const) {
      expect(() => generateKey({ certsDir: certs, principal, role, registry }), principal).toThrow(
        expect.objectContaining({ code: ErrorCode.TrustStoreInvalid }),
      );
      expect(existsSync(join(certs, 'trust', `${principal}.jwks.json`)), principal).toBe(false);
      expect(existsSync(join(certs, 'private', principal)), principal).toBe(false);
    }
    // what the trust store accepts is written, and the store still loads
    generateKey({ certsDir: certs, principal: 'GB-HMRC', registry });
    generateKey({ certsDir: certs, principal: 'HUB', role: 'router', registry });
    expect(loadTrustStore(join(certs, 'trust'), registry).agencies).toEqual(['GB-HMRC']);
  });
});
