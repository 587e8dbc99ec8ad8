import { createPublicKey, type KeyObject } from 'node:crypto';
import * as jose from 'jose';
import { describe, expect, it } from 'vitest';
import {
  countersign,
  decodeEnvelope,
  encodeEnvelope,
  ErrorCode,
  jwkThumbprint,
  signAlert,
  signBytes,
  signSync,
  verifyBytes,
  verifyCountersignature,
  verifyOrigin,
  verifySync,
  type GeneralJws,
  type SigningAlgorithm,
} from '@alert-hub/core';
import { makeKey, registry, seizureReport, trustOf } from './helpers.js';

const sg = makeKey('SG-NPARKS');
const vn = makeKey('VN-CUSTOMS', 'agency', 'ES256');
const hub = makeKey('HUB', 'router');
const trust = trustOf([sg.jwks, vn.jwks, hub.jwks]);
const schemaId = registry.schemaIdFor('seizure-report', 1)!;
const now = new Date('2019-04-08T04:00:00Z');

async function signed(alert = seizureReport('SG-NPARKS'), key = sg.key) {
  return signAlert(alert as never, key, schemaId);
}

function b64json(v: unknown) {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

async function expectCode(p: Promise<unknown>, code: string) {
  await expect(p).rejects.toMatchObject({ code });
}

describe('envelope - sign, encode, decode, verify', () => {
  it('round-trips an EdDSA alert through msgpack', async () => {
    const alert = seizureReport();
    const bytes = encodeEnvelope(await signed(alert));
    const v = await verifyOrigin(decodeEnvelope(bytes), { trust, registry, now });
    expect(v.alert).toEqual(alert);
    expect(v.header).toMatchObject({
      alg: 'EdDSA',
      kid: sg.key.kid,
      agency: 'SG-NPARKS',
      alert_id: alert.id,
      schema: schemaId,
      issued_at: alert.issuedAt,
    });
  });
  it('round-trips an ES256 alert', async () => {
    const alert = seizureReport('VN-CUSTOMS');
    const v = await verifyOrigin(decodeEnvelope(encodeEnvelope(await signed(alert, vn.key))), {
      trust,
      registry,
      now,
    });
    expect(v.key.alg).toBe('ES256');
  });
  it('the kid is the RFC 7638 thumbprint, as jose computes it', async () => {
    expect(sg.key.kid).toBe(await jose.calculateJwkThumbprint(sg.jwks.keys[0]! as jose.JWK));
    expect(vn.key.kid).toBe(await jose.calculateJwkThumbprint(vn.jwks.keys[0]! as jose.JWK));
    expect(jwkThumbprint(sg.jwks.keys[0]!)).toBe(sg.key.kid);
  });
});

describe('envelope - interoperability with jose (any conformant JOSE library)', () => {
  it('jose verifies our envelope with the public JWK alone', async () => {
    const alert = seizureReport();
    const jws = decodeEnvelope(encodeEnvelope(await signed(alert)));
    const key = await jose.importJWK(sg.jwks.keys[0]!, 'EdDSA');
    const r = await jose.generalVerify(jws as jose.GeneralJWSInput, key, { algorithms: ['EdDSA'] });
    expect(JSON.parse(new TextDecoder().decode(r.payload))).toEqual(alert);
    expect(r.protectedHeader?.['agency']).toBe('SG-NPARKS');
  });
  it("our signature bytes equal jose's for Ed25519 (deterministic)", async () => {
    const jws = await signed();
    const sig0 = jws.signatures[0]!;
    const header = JSON.parse(
      Buffer.from(sig0.protected, 'base64url').toString(),
    ) as jose.JWSHeaderParameters;
    const privateKey = sg.key.privateKey;
    const built = await new jose.GeneralSign(Buffer.from(jws.payload, 'base64url'))
      .addSignature(privateKey)
      .setProtectedHeader(header)
      .sign();
    expect(built.signatures[0]!.signature).toBe(sig0.signature);
  });
  it('we verify an envelope that jose signed, and its countersignature', async () => {
    const alert = seizureReport();
    const header = {
      alg: 'EdDSA',
      kid: sg.key.kid,
      typ: 'ahub-alert+jws',
      agency: 'SG-NPARKS',
      alert_id: alert.id,
      alert_type: alert.type,
      schema: schemaId,
      issued_at: alert.issuedAt,
    };
    const route = {
      alg: 'EdDSA',
      kid: hub.key.kid,
      typ: 'ahub-route+jws',
      router: 'HUB',
      recipient: 'VN-CUSTOMS',
      agreement: { id: 'A1', version: 2 },
      routed_at: '2019-04-08T03:16:00Z',
      onward: false,
      alert_id: alert.id,
    };
    const jws = await new jose.GeneralSign(new TextEncoder().encode(JSON.stringify(alert)))
      .addSignature(sg.key.privateKey)
      .setProtectedHeader(header)
      .addSignature(hub.key.privateKey)
      .setProtectedHeader(route)
      .sign();
    const decoded = decodeEnvelope(encodeEnvelope(jws as GeneralJws));
    await expect(verifyOrigin(decoded, { trust, registry, now })).resolves.toMatchObject({ alert });
    await expect(
      verifyCountersignature(decoded, { trust, recipient: 'VN-CUSTOMS', alertId: alert.id }),
    ).resolves.toMatchObject({ header: { agreement: { id: 'A1', version: 2 } } });
  });
});

describe('envelope - countersignature', () => {
  it('leaves the origin signature untouched and names recipient and agreement', async () => {
    const alert = seizureReport();
    const jws = await signed(alert);
    const routed = await countersign(jws, hub.key, {
      recipient: 'VN-CUSTOMS',
      agreement: { id: 'ASEAN-WEN', version: 3 },
      routed_at: '2019-04-08T03:16:00Z',
      onward: false,
      alert_id: alert.id,
    });
    expect(routed.signatures[0]).toEqual(jws.signatures[0]);
    const decoded = decodeEnvelope(encodeEnvelope(routed));
    await verifyOrigin(decoded, { trust, now });
    const r = await verifyCountersignature(decoded, {
      trust,
      recipient: 'VN-CUSTOMS',
      alertId: alert.id,
    });
    expect(r.header.agreement).toEqual({ id: 'ASEAN-WEN', version: 3 });
    await expectCode(
      verifyCountersignature(decoded, { trust, recipient: 'CN-GACC', alertId: alert.id }),
      ErrorCode.HeaderMismatch,
    );
    await expectCode(
      verifyCountersignature(decoded, { trust, recipient: 'VN-CUSTOMS', alertId: 'other' }),
      ErrorCode.HeaderMismatch,
    );
  });
  it('an agency key cannot countersign, and a missing countersignature is reported', async () => {
    const alert = seizureReport();
    const jws = await signed(alert);
    await expectCode(
      verifyCountersignature(jws, { trust, recipient: 'VN-CUSTOMS', alertId: alert.id }),
      ErrorCode.SignatureMissing,
    );
    const forged = await countersign(
      jws,
      { ...sg.key, principal: 'HUB' },
      {
        recipient: 'VN-CUSTOMS',
        agreement: { id: 'X', version: 1 },
        routed_at: '2019-04-08T03:16:00Z',
        onward: false,
        alert_id: alert.id,
      },
    );
    await expectCode(
      verifyCountersignature(forged, { trust, recipient: 'VN-CUSTOMS', alertId: alert.id }),
      ErrorCode.KeyAgencyMismatch,
    );
  });
});

describe('envelope - refusals, each with its code', () => {
  async function withHeader(
    patch: Record<string, unknown>,
    signWith = sg.key,
  ): Promise<GeneralJws> {
    const alert = seizureReport();
    const jws = await signed(alert);
    const header = {
      ...JSON.parse(Buffer.from(jws.signatures[0]!.protected, 'base64url').toString()),
      ...patch,
    } as Record<string, unknown>;
    for (const k of Object.keys(patch)) if (patch[k] === undefined) delete header[k];
    const protectedB64 = b64json(header);
    const { sign } = await import('node:crypto');
    const sig = sign(
      null,
      Buffer.from(`${protectedB64}.${jws.payload}`),
      signWith.privateKey,
    ).toString('base64url');
    return { payload: jws.payload, signatures: [{ protected: protectedB64, signature: sig }] };
  }

  it('alg none is refused before any crypto', async () => {
    const jws = await withHeader({ alg: 'none' });
    await expectCode(
      verifyOrigin(
        { ...jws, signatures: [{ ...jws.signatures[0]!, signature: '' }] },
        { trust, now },
      ),
      ErrorCode.AlgorithmNotAllowed,
    );
  });
  it('HS256 with the public key as the HMAC secret is refused', async () => {
    const alert = seizureReport();
    const secret = new TextEncoder().encode(JSON.stringify(sg.jwks.keys[0]));
    const jws = await new jose.GeneralSign(new TextEncoder().encode(JSON.stringify(alert)))
      .addSignature(secret)
      .setProtectedHeader({
        alg: 'HS256',
        kid: sg.key.kid,
        typ: 'ahub-alert+jws',
        agency: 'SG-NPARKS',
        alert_id: alert.id,
        alert_type: alert.type,
        schema: schemaId,
        issued_at: alert.issuedAt,
      })
      .sign();
    await expectCode(
      verifyOrigin(jws as GeneralJws, { trust, now }),
      ErrorCode.AlgorithmNotAllowed,
    );
  });
  it('an alg that does not match the key is refused', async () => {
    await expectCode(
      verifyOrigin(await withHeader({ alg: 'ES256' }), { trust, now }),
      ErrorCode.AlgorithmNotAllowed,
    );
  });
  it('crit is refused', async () => {
    await expectCode(
      verifyOrigin(await withHeader({ crit: ['exp'], exp: 1 }), { trust, now }),
      ErrorCode.CritUnsupported,
    );
  });
  it('an unknown kid', async () => {
    await expectCode(
      verifyOrigin(await withHeader({ kid: 'A'.repeat(43) }), { trust, now }),
      ErrorCode.KeyUnknown,
    );
  });
  it("another agency's kid: VN's key cannot sign for SG", async () => {
    await expectCode(
      verifyOrigin(await withHeader({ kid: vn.key.kid }), { trust, now }),
      ErrorCode.KeyAgencyMismatch,
    );
  });
  it("claiming another agency in the header with one's own key", async () => {
    await expectCode(
      verifyOrigin(await withHeader({ agency: 'VN-CUSTOMS' }), { trust, now }),
      ErrorCode.KeyAgencyMismatch,
    );
  });
  it('a header that disagrees with the payload', async () => {
    await expectCode(
      verifyOrigin(await withHeader({ alert_type: 'consignee-flag' }), { trust, now }),
      ErrorCode.HeaderMismatch,
    );
    await expectCode(
      verifyOrigin(await withHeader({ schema: 'https://example.org/x' }), { trust, registry, now }),
      ErrorCode.HeaderMismatch,
    );
  });
  it('a revoked key verifies nothing', async () => {
    const revokedTrust = trustOf(
      [sg.jwks],
      [
        {
          kid: sg.key.kid,
          principal: 'SG-NPARKS',
          revokedAt: '2019-04-08T00:00:00Z',
          reason: 'keyCompromise',
        },
      ],
    );
    await expectCode(
      verifyOrigin(await signed(), { trust: revokedTrust, now }),
      ErrorCode.KeyRevoked,
    );
  });
  it('a key outside its validity window at issued-at', async () => {
    const old = makeKey('SG-NPARKS', 'agency', 'EdDSA', {
      notBefore: '2018-01-01T00:00:00Z',
      notAfter: '2019-01-01T00:00:00Z',
    });
    await expectCode(
      verifyOrigin(await signed(seizureReport(), old.key), { trust: trustOf([old.jwks]), now }),
      ErrorCode.KeyNotValidAt,
    );
    const future = makeKey('SG-NPARKS', 'agency', 'EdDSA', { notBefore: '2020-01-01T00:00:00Z' });
    await expectCode(
      verifyOrigin(await signed(seizureReport(), future.key), {
        trust: trustOf([future.jwks]),
        now,
      }),
      ErrorCode.KeyNotValidAt,
    );
  });
  it('issued-at far in the future', async () => {
    const alert = seizureReport('SG-NPARKS', { issuedAt: '2019-04-08T05:00:00Z' });
    await expectCode(verifyOrigin(await signed(alert), { trust, now }), ErrorCode.IssuedInFuture);
    await expect(
      verifyOrigin(await signed(alert), { trust, now, maxClockSkewMs: 2 * 3600_000 }),
    ).resolves.toBeDefined();
  });
  it('a changed payload does not verify', async () => {
    const jws = await signed();
    const other = b64json({ ...seizureReport(), summary: 'nothing to see' });
    await expectCode(
      verifyOrigin({ ...jws, payload: other }, { trust, now }),
      ErrorCode.SignatureInvalid,
    );
  });
  it('malformed envelopes', () => {
    const bad = [
      new Uint8Array([0xc1]),
      new Uint8Array([0x90]),
      Buffer.from('{"payload":"x"}'),
      encodeEnvelope({ payload: 'x', signatures: [] }),
    ];
    for (const b of bad)
      expect(() => decodeEnvelope(b)).toThrow(
        expect.objectContaining({ code: ErrorCode.EnvelopeMalformed }),
      );
    expect(() => decodeEnvelope(new Uint8Array(300_000))).toThrow(
      expect.objectContaining({ code: ErrorCode.EnvelopeTooLarge }),
    );
  });
  it('__proto__ and deep nesting in the signed payload are refused', async () => {
    const { sign } = await import('node:crypto');
    const make = (payloadText: string): GeneralJws => {
      const alert = seizureReport();
      const p = b64json({
        alg: 'EdDSA',
        kid: sg.key.kid,
        typ: 'ahub-alert+jws',
        agency: 'SG-NPARKS',
        alert_id: alert.id,
        alert_type: alert.type,
        schema: schemaId,
        issued_at: alert.issuedAt,
      });
      const payload = Buffer.from(payloadText).toString('base64url');
      return {
        payload,
        signatures: [
          {
            protected: p,
            signature: sign(null, Buffer.from(`${p}.${payload}`), sg.key.privateKey).toString(
              'base64url',
            ),
          },
        ],
      };
    };
    await expectCode(
      verifyOrigin(make('{"__proto__":{"admin":true}}'), { trust, now }),
      ErrorCode.PayloadMalformed,
    );
    await expectCode(
      verifyOrigin(make('['.repeat(5000) + ']'.repeat(5000)), { trust, now }),
      ErrorCode.PayloadMalformed,
    );
    const invalidUtf8 = make('x');
    const raw = Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]).toString('base64url');
    const p = invalidUtf8.signatures[0]!.protected;
    await expectCode(
      verifyOrigin(
        {
          payload: raw,
          signatures: [
            {
              protected: p,
              signature: sign(null, Buffer.from(`${p}.${raw}`), sg.key.privateKey).toString(
                'base64url',
              ),
            },
          ],
        },
        { trust, now },
      ),
      ErrorCode.PayloadMalformed,
    );
  });
});

describe('envelope - the thread-pool crypto agrees with the synchronous API', () => {
  /**
   * A verification's outcome: its verdict, or that it threw. Not the error's code: for a digest
   * the key cannot use, Node throws ERR_OSSL_INVALID_DIGEST in sync but passes the callback the
   * same OpenSSL error without a code. Core never lets that reach crypto (a header's alg must be
   * the key's, `ERR_ALG_NOT_ALLOWED`, above) and refuses any crypto error as ERR_SIGNATURE_INVALID.
   */
  async function outcome(f: () => boolean | Promise<boolean>): Promise<string> {
    try {
      return String(await f());
    } catch {
      return 'threw';
    }
  }
  const data = Buffer.from('eyJhbGciOiJFZERTQSJ9.eyJhIjoxfQ', 'latin1');
  for (const alg of ['EdDSA', 'ES256'] as const) {
    it(`${alg}: the same signature checks, verdicts and errors, sync and on the thread pool`, async () => {
      const { key } = makeKey('SG-NPARKS', 'agency', alg);
      const pub = createPublicKey(key.privateKey);
      const otherPub = createPublicKey(makeKey('VN-CUSTOMS', 'agency', alg).key.privateKey);
      const otherAlg: SigningAlgorithm = alg === 'EdDSA' ? 'ES256' : 'EdDSA';
      const sigAsync = await signBytes(alg, data, key.privateKey);
      const sigSync = signSync(alg, data, key.privateKey);
      if (alg === 'EdDSA') expect(sigAsync.equals(sigSync)).toBe(true); // deterministic
      const tampered = Buffer.from(data);
      tampered[5]! ^= 1;
      const badSig = Buffer.from(sigAsync);
      badSig[10]! ^= 1;
      const cases: [string, SigningAlgorithm, Buffer, KeyObject, Buffer][] = [
        ['valid, signed on the pool', alg, data, pub, sigAsync],
        ['valid, signed in sync', alg, data, pub, sigSync],
        ['tampered data', alg, tampered, pub, sigAsync],
        ['tampered signature', alg, data, pub, badSig],
        ['wrong key', alg, data, otherPub, sigAsync],
        ['wrong algorithm for the key', otherAlg, data, pub, sigAsync],
        ['truncated signature', alg, data, pub, sigAsync.subarray(0, 32)],
      ];
      const got: [string, string, string][] = [];
      for (const [name, a, d, k, sig] of cases) {
        const sync = await outcome(() => verifySync(a, d, k, sig));
        const pool = await outcome(() => verifyBytes(a, d, k, sig));
        got.push([name, sync, pool]);
      }
      expect(got.map(([name, sync]) => [name, sync])).toEqual(
        cases.map(([name], i) => [name, got[i]![2]]),
      );
      expect(got.slice(0, 2).map(([, sync]) => sync)).toEqual(['true', 'true']);
      expect(got.slice(2, 5).map(([, sync]) => sync)).toEqual(['false', 'false', 'false']);
      expect(got[6]![1]).toBe('false');
    });
  }
});
