import { createHmac, hkdfSync } from 'node:crypto';
import { encode } from '@msgpack/msgpack';
import fc from 'fast-check';
import * as jose from 'jose';
import { describe, expect, it } from 'vitest';
import {
  AlertHubError,
  COPY_ID_BYTES,
  ErrorCode,
  MAX_ROUTE_TREE_SIZE,
  ROUTE_TREE_TYP,
  b64url,
  canonicalJson,
  countersign,
  countersignRoutes,
  decodeEnvelope,
  deriveCopyId,
  encodeEnvelope,
  feedSubject,
  hashLeaf,
  openDelivery,
  routeLeafBytes,
  signAlert,
  signBytes,
  signingInput,
  verifyCountersignature,
  verifyOrigin,
  type GeneralJws,
  type JwsSignature,
  type RouteGrant,
} from '@alert-hub/core';
import { makeKey, registry, seizureReport, trustOf } from './helpers.js';

const sg = makeKey('SG-NPARKS');
const hub = makeKey('HUB', 'router');
const otherHub = makeKey('HUB', 'router');
const trust = trustOf([sg.jwks, hub.jwks]);
const schemaId = registry.schemaIdFor('seizure-report', 1)!;
const now = new Date('2019-04-08T04:00:00Z');
const routedAt = '2019-04-08T03:15:02Z';
const alert = seizureReport('SG-NPARKS');
const origin = await signAlert(alert as never, sg.key, schemaId);

/** `n` agencies' grants, in an order that is not the recipients' order. */
function grants(n: number): RouteGrant[] {
  return Array.from({ length: n }, (_, i) => ({
    recipient: `A${String.fromCharCode(65 + (i % 26))}-P${String(n - i).padStart(3, '0')}`,
    agreement: { id: `AGR-${i % 3}`, version: 1 + (i % 2) },
    onward: i % 2 === 0,
  }));
}

async function route(n: number, key = hub.key) {
  const g = grants(n);
  const copies = await countersignRoutes(origin, key, {
    origin: alert.origin,
    alertId: alert.id,
    routedAt,
    grants: g,
  });
  return { g, copies };
}

function verify(jws: GeneralJws, recipient: string, extra: { perCopy?: 'accept' | 'refuse' } = {}) {
  return verifyCountersignature(decodeEnvelope(encodeEnvelope(jws)), {
    trust,
    now,
    recipient,
    alertId: alert.id,
    ...extra,
  });
}

async function expectCode(p: Promise<unknown>, code: string) {
  await expect(p).rejects.toMatchObject({ code });
}

const sig1 = (jws: GeneralJws) => jws.signatures[1]!;
const headerOf = (jws: GeneralJws) =>
  JSON.parse(Buffer.from(sig1(jws).protected, 'base64url').toString()) as Record<string, unknown>;
const leafText = (jws: GeneralJws) => Buffer.from(sig1(jws).header!.leaf, 'base64url').toString();
const leafOf = (jws: GeneralJws) => JSON.parse(leafText(jws)) as Record<string, unknown>;
const pathOf = (jws: GeneralJws) => {
  const b = Buffer.from(sig1(jws).header!.path, 'base64url');
  return Array.from({ length: b.length / 32 }, (_, i) => b.subarray(i * 32, i * 32 + 32));
};

/** The copy with signature 1 replaced: a new leaf and/or path, the same signature. */
function withCopy(jws: GeneralJws, change: Partial<{ leaf: string; path: string }>): GeneralJws {
  const s = sig1(jws);
  return {
    ...jws,
    signatures: [jws.signatures[0]!, { ...s, header: { ...s.header!, ...change } }],
  };
}

/** The copy re-signed by the hub's own key under a changed protected header (text as given). */
async function resigned(jws: GeneralJws, protectedText: string): Promise<GeneralJws> {
  const p = b64url(protectedText);
  const s = await signBytes('EdDSA', signingInput(p, jws.payload), hub.key.privateKey);
  const next: JwsSignature = { ...sig1(jws), protected: p, signature: s.toString('base64url') };
  return { ...jws, signatures: [jws.signatures[0]!, next] };
}

describe('route tree - one countersignature per routing decision', () => {
  for (const k of [1, 2, 3, 5, 10, 108]) {
    it(`k=${k}: every copy verifies for its recipient, all under one signature`, async () => {
      const { g, copies } = await route(k);
      expect(copies).toHaveLength(k);
      expect(new Set(copies.map((c) => sig1(c).signature)).size).toBe(1);
      expect(new Set(copies.map((c) => sig1(c).protected)).size).toBe(1);
      expect(headerOf(copies[0]!)).toMatchObject({
        typ: ROUTE_TREE_TYP,
        router: 'HUB',
        tree_size: k,
        alert_id: alert.id,
        routed_at: routedAt,
      });
      const indexes = new Set<number>();
      for (const [i, c] of copies.entries()) {
        expect(c.signatures[0]).toEqual(origin.signatures[0]);
        const r = await verify(c, g[i]!.recipient);
        expect(r.form).toBe('tree');
        expect(r.header).toEqual({
          router: 'HUB',
          recipient: g[i]!.recipient,
          agreement: g[i]!.agreement,
          routed_at: routedAt,
          onward: g[i]!.onward,
          alert_id: alert.id,
        });
        indexes.add(leafOf(c)['index'] as number);
        // Any other recipient is refused its neighbour's copy.
        if (k > 1) await expectCode(verify(c, g[(i + 1) % k]!.recipient), ErrorCode.HeaderMismatch);
      }
      // Leaves are ordered by recipient id.
      const sorted = [...g].map((x) => x.recipient).sort();
      for (const [i, c] of copies.entries())
        expect(leafOf(c)['index']).toBe(sorted.indexOf(g[i]!.recipient));
      expect(indexes.size).toBe(k);
    });
  }

  it('the same decision gives the same bytes for each copy, whatever the order of the grants', async () => {
    const { g, copies } = await route(10);
    const again = await countersignRoutes(origin, hub.key, {
      origin: alert.origin,
      alertId: alert.id,
      routedAt,
      grants: [...g].reverse(),
    });
    const bytes = (c: GeneralJws) => Buffer.from(encodeEnvelope(c)).toString('hex');
    expect(again.map(bytes)).toEqual([...copies].reverse().map(bytes));
  });

  it('copy ids are 128 bits, one per copy, and depend on the router key', async () => {
    const { copies } = await route(10);
    const ids = copies.map((c) => leafOf(c)['copy'] as string);
    expect(new Set(ids).size).toBe(10);
    for (const id of ids) expect(Buffer.from(id, 'base64url')).toHaveLength(COPY_ID_BYTES);
    const other = await route(10, otherHub.key);
    expect(other.copies.map((c) => leafOf(c)['copy'])).not.toEqual(ids);
  });

  it('the copy id is HMAC-SHA256 under HKDF-SHA256 of the router key, as protocol.md §3.2 says', () => {
    const d = Buffer.from(hub.key.privateKey.export({ format: 'jwk' }).d!, 'base64url');
    const key = Buffer.from(hkdfSync('sha256', d, Buffer.alloc(0), 'alert-hub copy id v1', 32));
    const expected = createHmac('sha256', key)
      .update(JSON.stringify(['alert-hub/copy-id/v1', 'SG-NPARKS', alert.id, 'VN-CUSTOMS']))
      .digest()
      .subarray(0, 16)
      .toString('base64url');
    expect(deriveCopyId(hub.key, 'SG-NPARKS', alert.id, 'VN-CUSTOMS')).toBe(expected);
  });

  it('leaf bytes are the canonical JSON of the leaf, whatever its strings', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme' }),
        fc.string(),
        fc.nat(),
        fc.nat(),
        fc.boolean(),
        (id, recipient, version, index, onward) => {
          const leaf = {
            agreement: { id, version },
            copy: 'AAAAAAAAAAAAAAAAAAAAAA',
            index,
            onward,
            recipient,
          };
          expect(routeLeafBytes(leaf).toString('utf8')).toBe(canonicalJson(leaf));
        },
      ),
      { numRuns: 500 },
    );
  });

  it("a sibling's hash is not the hash of the fields a recipient could guess (the copy id is secret)", async () => {
    const { g, copies } = await route(2);
    // The copy at index 0's path is the hash of the leaf at index 1.
    const first = copies.find((c) => leafOf(c)['index'] === 0)!;
    const second = g.find((x) => x.recipient !== leafOf(first)['recipient'])!;
    const guess = canonicalJson({
      agreement: second.agreement,
      copy: Buffer.alloc(COPY_ID_BYTES).toString('base64url'),
      index: 1,
      onward: second.onward,
      recipient: second.recipient,
    });
    expect(pathOf(first)).toHaveLength(1);
    expect(hashLeaf(Buffer.from(guess)).equals(pathOf(first)[0]!)).toBe(false);
  });

  it('no grant, no signature; a recipient granted twice is a programming error', async () => {
    await expect(
      countersignRoutes(origin, hub.key, {
        origin: 'SG-NPARKS',
        alertId: alert.id,
        routedAt,
        grants: [],
      }),
    ).resolves.toEqual([]);
    const g = grants(2);
    await expect(
      countersignRoutes(origin, hub.key, {
        origin: 'SG-NPARKS',
        alertId: alert.id,
        routedAt,
        grants: [g[0]!, g[0]!],
      }),
    ).rejects.toThrow(RangeError);
  });

  it('is an RFC 7515 General JWS: jose verifies the one signature of a decoded copy', async () => {
    const { copies } = await route(3);
    const decoded = decodeEnvelope(encodeEnvelope(copies[1]!));
    const key = await jose.importJWK(hub.jwks.keys[0]!, 'EdDSA');
    const r = await jose.flattenedVerify(
      { payload: decoded.payload, ...decoded.signatures[1]! },
      key,
      { algorithms: ['EdDSA'] },
    );
    expect(r.unprotectedHeader).toEqual(decoded.signatures[1]!.header);
    expect(r.protectedHeader?.typ).toBe(ROUTE_TREE_TYP);
  });

  it('openDelivery opens a copy of the new form', async () => {
    const { g, copies } = await route(3);
    const opened = await openDelivery(
      encodeEnvelope(copies[0]!),
      feedSubject(g[0]!.recipient, 'SG-NPARKS', 'seizure-report'),
      { trust, registry, now, recipient: g[0]!.recipient },
    );
    expect(opened.ok).toBe(true);
    expect(opened.ok && opened.route.agreement).toEqual(g[0]!.agreement);
  });

  it('routed_at is compared with no clock and not with issued_at: only the router key is checked at it (protocol.md §3.2)', async () => {
    // The alert was issued 2019-04-08T03:15:00Z and the verifier's clock says 04:00: a copy
    // "routed" a year later, or a day before the alert was issued, opens all the same.
    for (const at of ['2020-04-08T03:15:02Z', '2019-04-07T03:15:02Z']) {
      const g = grants(2);
      const copies = await countersignRoutes(origin, hub.key, {
        origin: alert.origin,
        alertId: alert.id,
        routedAt: at,
        grants: g,
      });
      const opened = await openDelivery(
        encodeEnvelope(copies[0]!),
        feedSubject(g[0]!.recipient, 'SG-NPARKS', 'seizure-report'),
        { trust, registry, now, recipient: g[0]!.recipient },
      );
      expect(opened.ok, at).toBe(true);
    }
    // The router key's validity is what routed_at decides.
    const late = makeKey('HUB', 'router', 'EdDSA', { notAfter: '2019-12-31T23:59:59Z' });
    const g = grants(1);
    const [copy] = await countersignRoutes(origin, late.key, {
      origin: alert.origin,
      alertId: alert.id,
      routedAt: '2020-04-08T03:15:02Z',
      grants: g,
    });
    const opened = await openDelivery(
      encodeEnvelope(copy!),
      feedSubject(g[0]!.recipient, 'SG-NPARKS', 'seizure-report'),
      { trust: trustOf([sg.jwks, late.jwks]), registry, now, recipient: g[0]!.recipient },
    );
    expect(!opened.ok && opened.error.code).toBe(ErrorCode.KeyNotValidAt);
  });
});

describe('route tree - every tamper refused with its code', () => {
  it("another recipient's leaf with this copy's path: ERR_PROOF_ROOT_MISMATCH", async () => {
    const { g, copies } = await route(5);
    const mine = copies[0]!;
    const theirs = copies[1]!;
    const spliced = withCopy(mine, { leaf: sig1(theirs).header!.leaf });
    await expectCode(verify(spliced, g[1]!.recipient), ErrorCode.ProofRootMismatch);
    // A leaf re-written for me (my recipient in their leaf, same index) does not lead to the root.
    const forged = b64url(
      canonicalJson({
        ...leafOf(theirs),
        recipient: g[0]!.recipient,
        index: leafOf(mine)['index'],
      }),
    );
    await expectCode(
      verify(withCopy(mine, { leaf: forged }), g[0]!.recipient),
      ErrorCode.ProofRootMismatch,
    );
  });

  it("another copy's path, or the path's hashes swapped: ERR_PROOF_ROOT_MISMATCH", async () => {
    const { g, copies } = await route(8);
    const a = copies[0]!;
    const b = copies.find((c) => leafOf(c)['index'] !== leafOf(a)['index'])!;
    await expectCode(
      verify(withCopy(a, { path: sig1(b).header!.path }), g[0]!.recipient),
      ErrorCode.ProofRootMismatch,
    );
    const p = pathOf(a);
    const swapped = Buffer.concat([p[1]!, p[0]!, ...p.slice(2)]).toString('base64url');
    await expectCode(
      verify(withCopy(a, { path: swapped }), g[0]!.recipient),
      ErrorCode.ProofRootMismatch,
    );
  });

  it('a wrong index: another index in range is ERR_PROOF_ROOT_MISMATCH, one >= the size ERR_PROOF_RANGE', async () => {
    const { g, copies } = await route(5);
    const c = copies[0]!;
    const at = (index: number) => b64url(canonicalJson({ ...leafOf(c), index }));
    const other = ((leafOf(c)['index'] as number) + 1) % 5;
    await expectCode(
      verify(withCopy(c, { leaf: at(other) }), g[0]!.recipient),
      ErrorCode.ProofRootMismatch,
    );
    await expectCode(verify(withCopy(c, { leaf: at(5) }), g[0]!.recipient), ErrorCode.ProofRange);
  });

  it('a path too short, too long or not of 32-byte hashes: ERR_PROOF_LENGTH, ERR_PROOF_HASH_SIZE', async () => {
    const { g, copies } = await route(5);
    const c = copies[0]!;
    const p = pathOf(c);
    const r = g[0]!.recipient;
    const b = (x: Buffer[]) => Buffer.concat(x).toString('base64url');
    await expectCode(verify(withCopy(c, { path: b(p.slice(1)) }), r), ErrorCode.ProofLength);
    await expectCode(verify(withCopy(c, { path: b([...p, p[0]!]) }), r), ErrorCode.ProofLength);
    const ragged = Buffer.concat(p).subarray(0, 95).toString('base64url');
    await expectCode(verify(withCopy(c, { path: ragged }), r), ErrorCode.ProofHashSize);
  });

  it('a modified root or size: ERR_SIGNATURE_INVALID; re-signed, the proof does not fit', async () => {
    const { g, copies } = await route(5);
    const c = copies[0]!;
    const r = g[0]!.recipient;
    const h = headerOf(c);
    const other = Buffer.alloc(32, 7).toString('base64url');
    const edited: GeneralJws = {
      ...c,
      signatures: [
        c.signatures[0]!,
        { ...sig1(c), protected: b64url(canonicalJson({ ...h, tree_root: other })) },
      ],
    };
    await expectCode(verify(edited, r), ErrorCode.SignatureInvalid);
    // Signed by the router, but for another root or size than this copy's leaf and path.
    await expectCode(
      verify(await resigned(c, canonicalJson({ ...h, tree_root: other })), r),
      ErrorCode.ProofRootMismatch,
    );
    await expectCode(
      verify(await resigned(c, canonicalJson({ ...h, tree_size: 9 })), r),
      ErrorCode.ProofLength,
    );
    for (const size of [0, MAX_ROUTE_TREE_SIZE + 1, 2.5, '5'])
      await expectCode(
        verify(await resigned(c, canonicalJson({ ...h, tree_size: size })), r),
        ErrorCode.ProofRange,
      );
    await expectCode(
      verify(await resigned(c, canonicalJson({ ...h, tree_root: 'AAAA' })), r),
      ErrorCode.ProofHashSize,
    );
  });

  it('a protected header that is not canonical or has other members: ERR_ENVELOPE_MALFORMED', async () => {
    const { g, copies } = await route(2);
    const c = copies[0]!;
    const r = g[0]!.recipient;
    const h = headerOf(c);
    await expectCode(
      verify(await resigned(c, JSON.stringify(h, null, 1)), r),
      ErrorCode.EnvelopeMalformed,
    );
    await expectCode(
      verify(await resigned(c, canonicalJson({ ...h, recipient: r })), r),
      ErrorCode.EnvelopeMalformed,
    );
    // A member named twice: parsers disagree on which value counts.
    const text = canonicalJson(h).replace('{', `{"tree_size":1,`);
    await expectCode(verify(await resigned(c, text), r), ErrorCode.PayloadMalformed);
  });

  it('a leaf that is not canonical, has other members or a short copy id: ERR_ROUTE_LEAF_MALFORMED', async () => {
    const { g, copies } = await route(2);
    const c = copies[0]!;
    const r = g[0]!.recipient;
    const leaf = leafOf(c);
    const text = leafText(c);
    const bad = [
      JSON.stringify(leaf, null, 1), // spaces
      JSON.stringify({ recipient: leaf['recipient'], ...leaf }), // members out of order
      text.replace(/"version":(\d+)/, '"version":$1.0'), // another spelling of a number
      text.replace('{', '{"index":0,'), // a member twice
      canonicalJson({ ...leaf, extra: 1 }),
      canonicalJson({ ...leaf, copy: Buffer.alloc(15, 1).toString('base64url') }),
      canonicalJson({ ...leaf, copy: 'not base64url!' }),
      canonicalJson({ ...leaf, index: -1 }),
      canonicalJson({ ...leaf, onward: 'no' }),
      canonicalJson({ ...leaf, agreement: { id: 'A', version: 1, extra: true } }),
      '[]',
      'not json',
    ];
    for (const t of bad)
      await expectCode(verify(withCopy(c, { leaf: b64url(t) }), r), ErrorCode.RouteLeafMalformed);
    await expectCode(
      verify(withCopy(c, { leaf: b64url('x'.repeat(2000)) }), r),
      ErrorCode.RouteLeafMalformed,
    );
  });

  it('an agency key cannot sign a routing decision: ERR_KEY_AGENCY_MISMATCH', async () => {
    const { g, copies } = await route(2, { ...sg.key, principal: 'HUB' });
    await expectCode(verify(copies[0]!, g[0]!.recipient), ErrorCode.KeyAgencyMismatch);
  });

  it('the unprotected header only where it belongs, exactly {leaf, path}: else ERR_ENVELOPE_MALFORMED', async () => {
    const { g, copies } = await route(2);
    const c = copies[0]!;
    const r = g[0]!.recipient;
    const s = sig1(c);
    const env = (sigs: unknown[]) => encode({ payload: c.payload, signatures: sigs });
    const o = c.signatures[0]!;
    const bad = [
      // The tree form without its leaf and path.
      env([o, { protected: s.protected, signature: s.signature }]),
      // A header on the origin's signature.
      env([{ ...o, header: s.header }, s]),
      // Other members, or other types, in the header.
      env([o, { ...s, header: { ...s.header, index: 0 } }]),
      env([o, { ...s, header: { leaf: s.header!.leaf } }]),
      env([o, { ...s, header: { leaf: s.header!.leaf, path: [s.header!.path] } }]),
    ];
    for (const bytes of bad) {
      const p = (async () => {
        const jws = decodeEnvelope(bytes);
        await verifyOrigin(jws, { trust, registry, now });
        return verifyCountersignature(jws, { trust, now, recipient: r, alertId: alert.id });
      })();
      await expectCode(p, ErrorCode.EnvelopeMalformed);
    }
    // A per-copy countersignature carrying a leaf and path.
    const old = await countersign(origin, hub.key, {
      recipient: r,
      agreement: { id: 'X', version: 1 },
      routed_at: routedAt,
      onward: false,
      alert_id: alert.id,
    });
    await expectCode(
      verify({ ...old, signatures: [o, { ...sig1(old), header: s.header! }] }, r),
      ErrorCode.EnvelopeMalformed,
    );
    // The header map naming a key twice (msgpack keeps the last).
    const twice = Buffer.from(encodeEnvelope(c));
    const at = twice.indexOf(Buffer.from('a4706174', 'hex')); // str(4) "path"
    twice.set(Buffer.from('leaf'), at + 1);
    let code: string | undefined;
    try {
      decodeEnvelope(twice);
    } catch (err) {
      code = (err as { code?: string }).code;
    }
    expect(code).toBe(ErrorCode.EnvelopeMalformed);
  });
});

describe('route tree - the per-copy form during the transition', () => {
  const old = () =>
    countersign(origin, hub.key, {
      recipient: 'VN-CUSTOMS',
      agreement: { id: 'OLD', version: 2 },
      routed_at: routedAt,
      onward: true,
      alert_id: alert.id,
    });

  it('is accepted by default and names its form', async () => {
    const r = await verify(await old(), 'VN-CUSTOMS');
    expect(r.form).toBe('per-copy');
    expect(r.header).toMatchObject({
      recipient: 'VN-CUSTOMS',
      agreement: { id: 'OLD', version: 2 },
    });
  });

  it('is refused with ERR_ROUTE_FORM_RETIRED when the verifier refuses it; the tree form is not', async () => {
    await expectCode(
      verify(await old(), 'VN-CUSTOMS', { perCopy: 'refuse' }),
      ErrorCode.RouteFormRetired,
    );
    const { g, copies } = await route(2);
    await expect(verify(copies[0]!, g[0]!.recipient, { perCopy: 'refuse' })).resolves.toMatchObject(
      {
        form: 'tree',
      },
    );
    const opened = await openDelivery(
      encodeEnvelope(await old()),
      'ahub.feed.VN-CUSTOMS.SG-NPARKS.seizure-report',
      { trust, registry, now, recipient: 'VN-CUSTOMS', perCopy: 'refuse' },
    );
    expect(opened.ok).toBe(false);
    expect(!opened.ok && opened.error.code).toBe(ErrorCode.RouteFormRetired);
  });

  it('any other typ on signature 1 is ERR_ENVELOPE_MALFORMED', async () => {
    const { g, copies } = await route(1);
    const h = headerOf(copies[0]!);
    await expectCode(
      verify(
        await resigned(copies[0]!, canonicalJson({ ...h, typ: 'ahub-alert+jws' })),
        g[0]!.recipient,
      ),
      ErrorCode.EnvelopeMalformed,
    );
  });
});

describe('route tree - properties', () => {
  it('one flipped bit anywhere in a copy never verifies, and fails only with a typed error', async () => {
    const { g, copies } = await route(3);
    const valid = encodeEnvelope(copies[1]!);
    const recipient = g[1]!.recipient;
    const open = async (bytes: Uint8Array) => {
      const jws = decodeEnvelope(bytes);
      const v = await verifyOrigin(jws, { trust, registry, now });
      return verifyCountersignature(jws, { trust, now, recipient, alertId: v.alert.id });
    };
    await expect(open(valid)).resolves.toMatchObject({ form: 'tree' });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: valid.length * 8 - 1 }), async (bit) => {
        const mutated = Uint8Array.from(valid);
        mutated[bit >> 3]! ^= 1 << (bit & 7);
        await expect(open(mutated)).rejects.toBeInstanceOf(AlertHubError);
      }),
      { numRuns: 1500 },
    );
  });

  it('random leaves and paths fail only with typed errors', async () => {
    const { g, copies } = await route(5);
    const c = copies[0]!;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.json().map((j) => b64url(j)),
        ),
        fc.oneof(
          fc.string(),
          fc.base64String(),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('base64url')),
        ),
        async (leaf, path) => {
          await expect(verify(withCopy(c, { leaf, path }), g[0]!.recipient)).rejects.toBeInstanceOf(
            AlertHubError,
          );
        },
      ),
      { numRuns: 300 },
    );
  });
});
