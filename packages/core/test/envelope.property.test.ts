import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AlertHubError,
  countersign,
  decodeEnvelope,
  encodeEnvelope,
  signAlert,
  verifyCountersignature,
  verifyOrigin,
} from '@alert-hub/core';
import { makeKey, registry, seizureReport, trustOf } from './helpers.js';

const sg = makeKey('SG-NPARKS');
const hub = makeKey('HUB', 'router');
const trust = trustOf([sg.jwks, hub.jwks]);
const now = new Date('2019-04-08T04:00:00Z');
const alert = seizureReport();
const origin = await signAlert(alert as never, sg.key, registry.schemaIdFor('seizure-report', 1)!);
const routed = await countersign(origin, hub.key, {
  recipient: 'VN-CUSTOMS',
  agreement: { id: 'A', version: 1 },
  routed_at: '2019-04-08T03:16:00Z',
  onward: false,
  alert_id: alert.id,
});
const validBytes = encodeEnvelope(routed);

/** Decodes and verifies both signatures; resolves only if everything verifies. */
async function decodeAndVerify(bytes: Uint8Array) {
  const jws = decodeEnvelope(bytes);
  const v = await verifyOrigin(jws, { trust, registry, now });
  await verifyCountersignature(jws, { trust, recipient: 'VN-CUSTOMS', alertId: v.alert.id });
  return v;
}

async function onlyTypedErrors(bytes: Uint8Array): Promise<void> {
  try {
    await decodeAndVerify(bytes);
  } catch (err) {
    if (!(err instanceof AlertHubError))
      throw new Error(`untyped failure: ${String(err)}`, { cause: err });
  }
}

describe('envelope properties', () => {
  it('the unmodified envelope verifies (the baseline the mutations start from)', async () => {
    await expect(decodeAndVerify(validBytes)).resolves.toMatchObject({ alert });
  });

  it('random bytes fail only with typed errors', async () => {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), onlyTypedErrors), {
      numRuns: 500,
    });
  });

  it('random msgpack values fail only with typed errors', async () => {
    const { encode } = await import('@msgpack/msgpack');
    await fc.assert(
      fc.asyncProperty(fc.anything({ maxDepth: 4 }), async (v) => {
        let bytes: Uint8Array;
        try {
          bytes = encode(v);
        } catch {
          return; // not encodable (e.g. a symbol); nothing to decode
        }
        await onlyTypedErrors(bytes);
      }),
      { numRuns: 300 },
    );
  });

  it('envelope-shaped values with random strings fail only with typed errors', async () => {
    const sig = fc.record({
      protected: fc.oneof(fc.string(), fc.base64String()),
      signature: fc.oneof(fc.string(), fc.base64String()),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          payload: fc.oneof(fc.string(), fc.base64String()),
          signatures: fc.array(sig, { minLength: 1, maxLength: 2 }),
        }),
        (jws) => onlyTypedErrors(encodeEnvelope(jws)),
      ),
      { numRuns: 300 },
    );
  });

  it('one flipped bit anywhere in a signed envelope never verifies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: validBytes.length * 8 - 1 }), async (bit) => {
        const mutated = Uint8Array.from(validBytes);
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        await expect(decodeAndVerify(mutated)).rejects.toBeInstanceOf(AlertHubError);
      }),
      { numRuns: 2000 },
    );
  });

  it('every single-bit flip in the last signature character is caught (exhaustive)', async () => {
    // The last base64url character of a 64-byte signature carries 4 unused bits; a lenient
    // decoder would accept several spellings of the same signature.
    for (const index of [0, 1]) {
      const s = routed.signatures[index]!.signature;
      for (let bit = 0; bit < 7; bit++) {
        const last = String.fromCharCode(s.charCodeAt(s.length - 1) ^ (1 << bit));
        const sigs = routed.signatures.map((x, i) =>
          i === index ? { ...x, signature: s.slice(0, -1) + last } : x,
        );
        await expect(
          decodeAndVerify(encodeEnvelope({ payload: routed.payload, signatures: sigs })),
        ).rejects.toBeInstanceOf(AlertHubError);
      }
    }
  });
});
