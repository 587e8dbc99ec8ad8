import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  TrustStoreInvalidError,
  createTrustStore,
  generateSigningJwk,
  type JwksDocument,
  type PublicJwk,
} from '@alert-hub/core';
import { registry } from './helpers.js';

/**
 * docs/protocol.md §5.3: the hub refuses a trust store with any fault, listing them all. Each
 * fault is told apart by where it is (a JSON pointer into the documents by file name), not by
 * its wording.
 */
const pub = (alg: 'EdDSA' | 'ES256' = 'EdDSA') => generateSigningJwk(alg).publicJwk;
const doc = (principal: string, keys: PublicJwk[], role = 'agency'): JwksDocument =>
  ({ principal, role, keys }) as JwksDocument;

function load(docs: Record<string, JwksDocument>) {
  return createTrustStore({
    jwks: Object.entries(docs).map(([source, document]) => ({ source, document })),
    registry,
  });
}

/** The places of the faults `load` refused, or 'loaded'. */
function faults(docs: Record<string, JwksDocument>): string[] | 'loaded' {
  try {
    load(docs);
    return 'loaded';
  } catch (err) {
    expect(err).toBeInstanceOf(TrustStoreInvalidError);
    expect((err as TrustStoreInvalidError).code).toBe(ErrorCode.TrustStoreInvalid);
    return (err as TrustStoreInvalidError).issues.map((i) => i.pointer);
  }
}

describe('trust store - every fault refused, all listed (ERR_TRUST_STORE_INVALID)', () => {
  const sg = pub();
  const vn = pub('ES256');
  const good = () => ({
    'SG-NPARKS.jwks.json': doc('SG-NPARKS', [sg]),
    'VN-CUSTOMS.jwks.json': doc('VN-CUSTOMS', [vn]),
  });

  it('the store without faults loads', () => {
    expect(faults(good())).toBe('loaded');
  });

  const cases: [string, () => Record<string, JwksDocument>, string[]][] = [
    [
      "a kid that is not the key's thumbprint (another key's kid)",
      () => ({ ...good(), 'SG-NPARKS.jwks.json': doc('SG-NPARKS', [{ ...pub(), kid: vn.kid }]) }),
      ['/SG-NPARKS.jwks.json/keys/0'],
    ],
    [
      'a principal defined twice',
      () => ({ ...good(), 'SG-NPARKS-2.jwks.json': doc('SG-NPARKS', [pub()]) }),
      ['/SG-NPARKS-2.jwks.json/principal'],
    ],
    [
      'a kid used twice, by two principals',
      () => ({ ...good(), 'KE-KWS.jwks.json': doc('KE-KWS', [sg]) }),
      ['/KE-KWS.jwks.json/keys/0'],
    ],
    [
      'a kid used twice, in one key set',
      () => ({ ...good(), 'VN-CUSTOMS.jwks.json': doc('VN-CUSTOMS', [vn, vn]) }),
      ['/VN-CUSTOMS.jwks.json/keys/1'],
    ],
    [
      'an alg that does not fit the key (ES256 on an Ed25519 key)',
      () => ({ ...good(), 'SG-NPARKS.jwks.json': doc('SG-NPARKS', [{ ...sg, alg: 'ES256' }]) }),
      ['/SG-NPARKS.jwks.json/keys/0'],
    ],
    [
      'an alg that does not fit the key (EdDSA on a P-256 key)',
      () => ({ ...good(), 'VN-CUSTOMS.jwks.json': doc('VN-CUSTOMS', [{ ...vn, alg: 'EdDSA' }]) }),
      ['/VN-CUSTOMS.jwks.json/keys/0'],
    ],
  ];
  for (const [name, docs, at] of cases)
    it(name, () => {
      expect(faults(docs())).toEqual(at);
    });

  it('a store with several faults at once lists every one, each at its place', () => {
    const other = pub();
    expect(
      faults({
        'SG-NPARKS.jwks.json': doc('SG-NPARKS', [{ ...pub(), kid: other.kid }, sg]),
        'VN-CUSTOMS.jwks.json': doc('VN-CUSTOMS', [{ ...vn, alg: 'EdDSA' }]),
        'SG-NPARKS-2.jwks.json': doc('SG-NPARKS', [pub()]),
        'KE-KWS.jwks.json': doc('KE-KWS', [other, sg]),
        'UK-HMRC.jwks.json': doc('UK-HMRC', [pub()]),
      }),
    ).toEqual([
      '/SG-NPARKS.jwks.json/keys/0',
      '/VN-CUSTOMS.jwks.json/keys/0',
      '/SG-NPARKS-2.jwks.json/principal',
      '/KE-KWS.jwks.json/keys/1',
      '/UK-HMRC.jwks.json/principal',
    ]);
  });
});

describe('trust store - revocation, JWS and signed notes (protocol.md §5.2)', () => {
  it('a revoked key verifies no JWS whatever the reason; signed notes drop only keys revoked for keyCompromise', () => {
    const [compromised, superseded, current] = [pub(), pub(), pub()];
    const trust = createTrustStore({
      jwks: [{ source: 'HUB', document: doc('HUB', [compromised, superseded, current], 'router') }],
      revocations: {
        source: 'revoked',
        document: {
          revoked: [
            {
              kid: compromised.kid,
              principal: 'HUB',
              revokedAt: '2020-01-01T00:00:00Z',
              reason: 'keyCompromise',
            },
            {
              kid: superseded.kid,
              principal: 'HUB',
              revokedAt: '2020-01-01T00:00:00Z',
              reason: 'superseded',
            },
          ],
        },
      },
      registry,
    });
    const at = new Date('2019-01-01T00:00:00Z'); // before either revokedAt: it does not matter
    for (const k of [compromised, superseded])
      expect(() => trust.resolve(k.kid, 'HUB', 'router', at)).toThrow(
        expect.objectContaining({ code: ErrorCode.KeyRevoked }),
      );
    expect(trust.resolve(current.kid, 'HUB', 'router', at).kid).toBe(current.kid);
    // The keys a witness or the router checks checkpoints and cosignatures with.
    expect(
      trust
        .keysOf('HUB', 'router')
        .map((k) => k.kid)
        .sort(),
    ).toEqual([superseded.kid, current.kid].sort());
    expect(trust.compromisedKeysOf('HUB', 'router').map((k) => k.kid)).toEqual([compromised.kid]);
  });
});
