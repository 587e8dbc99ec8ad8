import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import { describe, expect, it } from 'vitest';
import {
  AlertHubError,
  decodeEnvelope,
  verifyCountersignature,
  verifyOrigin,
} from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { buildVectors, vectorTrust } from './vectors/generate.mjs';

interface Vector {
  name: string;
  envelope: string;
  recipient?: string;
  /**
   * A copy under the retired per-copy countersignature (protocol.md §3.4): the code a verifier
   * that refuses that form gives; `expected` is what one that accepts it gives.
   */
  refusedWith?: string;
  /** The envelope bytes are followed by zero bytes up to this length (a vector over the limit). */
  paddedTo?: number;
  deterministic: boolean;
  expected:
    { ok: true; alert: unknown; kid: string; route?: unknown } | { ok: false; code: string };
}

const dir = fileURLToPath(new URL('./vectors/', import.meta.url));
const { verifyAt, vectors } = JSON.parse(readFileSync(`${dir}vectors.json`, 'utf8')) as {
  verifyAt: string;
  vectors: Vector[];
};
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const trust = loadTrustStore(`${dir}trust`, registry);
const now = new Date(verifyAt);

/**
 * Verifies a vector as docs/protocol.md §5 says, in its order: the envelope, the origin signature
 * (with the header's `schema`), on a feed the router's countersignature for `recipient`, then the
 * alert's schema. Throws the first refusal.
 */
async function verifyVector(v: Vector) {
  const bytes = Buffer.from(v.envelope, 'hex');
  const jws = decodeEnvelope(
    v.paddedTo ? Buffer.concat([bytes, Buffer.alloc(v.paddedTo - bytes.length)]) : bytes,
  );
  const verified = await verifyOrigin(jws, { trust, registry, now });
  const route = v.recipient
    ? await verifyCountersignature(jws, {
        trust,
        recipient: v.recipient,
        alertId: verified.alert.id,
      })
    : undefined;
  registry.validateAlert(verified.alert);
  return { verified, route };
}

describe('protocol test vectors (test/vectors/vectors.json)', () => {
  it('cover valid and failing cases', () => {
    expect(vectors.filter((v) => v.expected.ok).length).toBeGreaterThanOrEqual(3);
    expect(vectors.filter((v) => !v.expected.ok).length).toBeGreaterThanOrEqual(8);
  });

  for (const v of vectors) {
    it(`${v.name}: ${v.expected.ok ? 'verifies' : `fails with ${v.expected.code}`}`, async () => {
      if (v.expected.ok) {
        const { verified, route } = await verifyVector(v);
        expect(verified.alert).toEqual(v.expected.alert);
        expect(verified.key.kid).toBe(v.expected.kid);
        expect(registry.checkAlert(verified.alert).ok).toBe(true);
        if (v.expected.route) expect(route?.header).toMatchObject(v.expected.route);
      } else {
        const err = await verifyVector(v).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(AlertHubError);
        expect((err as AlertHubError).code).toBe(v.expected.code);
      }
    });
  }

  it('a per-copy copy is refused with its refusedWith by a verifier that refuses that form', async () => {
    const perCopy = vectors.filter((v) => v.refusedWith);
    expect(perCopy.map((v) => v.name)).toEqual(['valid-routed']);
    for (const v of perCopy) {
      const jws = decodeEnvelope(Buffer.from(v.envelope, 'hex'));
      const verified = await verifyOrigin(jws, { trust, registry, now });
      const err = await verifyCountersignature(jws, {
        trust,
        recipient: v.recipient!,
        alertId: verified.alert.id,
        perCopy: 'refuse',
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, v.name).toBeInstanceOf(AlertHubError);
      expect((err as AlertHubError).code, v.name).toBe(v.refusedWith);
    }
  });

  it('every valid vector also verifies with jose, a second JOSE implementation', async () => {
    for (const v of vectors.filter((x) => x.expected.ok)) {
      const jws = decodeEnvelope(Buffer.from(v.envelope, 'hex'));
      for (const [i, sig] of jws.signatures.entries()) {
        const { kid, alg } = JSON.parse(Buffer.from(sig.protected, 'base64url').toString()) as {
          kid: string;
          alg: string;
        };
        const key = await jose.importJWK(trust.get(kid)!.jwk, alg);
        const r = await jose.flattenedVerify({ payload: jws.payload, ...sig }, key, {
          algorithms: ['EdDSA', 'ES256'],
        });
        expect(JSON.parse(new TextDecoder().decode(r.payload)), `${v.name} signature ${i}`).toEqual(
          (v.expected as { alert: unknown }).alert,
        );
      }
    }
  });

  it('the deterministic vectors and the trust files regenerate byte for byte', async () => {
    const rebuilt = await buildVectors();
    for (const r of rebuilt)
      expect(r.envelope, r.name).toBe(vectors.find((v) => v.name === r.name)?.envelope);
    for (const [file, doc] of Object.entries(vectorTrust())) {
      expect(JSON.parse(readFileSync(`${dir}trust/${file}`, 'utf8')), file).toEqual(doc);
    }
  });
});
