import {
  createHash,
  createHmac,
  createPublicKey,
  hkdfSync,
  verify as verifySignature,
  type JsonWebKey,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { AlertHubError, feedSubject, openDelivery } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import {
  buildRouteTreeVectors,
  withoutCountersignature,
  type RouteTreeVectors,
} from './vectors/generate-route-tree.mjs';

const dir = fileURLToPath(new URL('./vectors/', import.meta.url));
const file = JSON.parse(readFileSync(`${dir}route-tree.json`, 'utf8')) as RouteTreeVectors;
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const trust = loadTrustStore(`${dir}trust`, registry);
const now = new Date(file.verifyAt);
const subject = (recipient: string) => feedSubject(recipient, 'SG-NPARKS', 'seizure-report');

async function open(envelopeHex: string, recipient: string, perCopy?: 'accept' | 'refuse') {
  return openDelivery(Buffer.from(envelopeHex, 'hex'), subject(recipient), {
    trust,
    registry,
    now,
    recipient,
    ...(perCopy ? { perCopy } : {}),
  });
}

/** The router's public key in the vectors' trust store, as a JWK. */
const routerJwk = (kid: string) => trust.get(kid)!.jwk as unknown as JsonWebKey;

/**
 * A second implementation, written from docs/protocol.md §3.2 alone with node:crypto and a
 * msgpack decoder: leaf hash, the RFC 9162 §2.1.3.2 fold of the path, the signed root, Ed25519
 * or ES256 (P-256, the 64-byte r || s of IEEE P1363).
 */
function verifyAsAPartner(envelopeHex: string, recipient: string, routerKey: JsonWebKey): boolean {
  const env = decode(Buffer.from(envelopeHex, 'hex')) as {
    payload: string;
    signatures: { protected: string; header?: { leaf: string; path: string }; signature: string }[];
  };
  const sig = env.signatures[1]!;
  const header = JSON.parse(Buffer.from(sig.protected, 'base64url').toString('utf8')) as {
    typ: string;
    tree_size: number;
    tree_root: string;
  };
  if (header.typ !== 'ahub-route-tree+jws') return false;
  const leafBytes = Buffer.from(sig.header!.leaf, 'base64url');
  const leaf = JSON.parse(leafBytes.toString('utf8')) as { recipient: string; index: number };
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  let r = sha(Buffer.from([0]), leafBytes);
  const p = Buffer.from(sig.header!.path, 'base64url');
  let fn = leaf.index;
  let sn = header.tree_size - 1;
  for (let i = 0; i < p.length; i += 32) {
    const h = p.subarray(i, i + 32);
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha(Buffer.from([1]), h, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else r = sha(Buffer.from([1]), r, h);
    fn >>= 1;
    sn >>= 1;
  }
  if (sn !== 0 || !r.equals(Buffer.from(header.tree_root, 'base64url'))) return false;
  const { kty, crv, x, y } = routerKey;
  const key = createPublicKey({ key: { kty, crv, x, ...(y ? { y } : {}) }, format: 'jwk' });
  const ok = verifySignature(
    kty === 'EC' ? 'sha256' : null,
    Buffer.from(`${sig.protected}.${env.payload}`, 'ascii'),
    { key, dsaEncoding: 'ieee-p1363' },
    Buffer.from(sig.signature, 'base64url'),
  );
  return ok && leaf.recipient === recipient;
}

describe('route tree vectors (test/vectors/route-tree.json, protocol.md §3.2)', () => {
  it('regenerate byte for byte from the published keys (the ES256 copies but for their signatures)', async () => {
    const built = await buildRouteTreeVectors();
    const unsigned = (v: RouteTreeVectors) => ({
      ...v,
      es256: {
        ...v.es256,
        copies: v.es256.copies.map((c) => ({
          ...c,
          envelope: withoutCountersignature(c.envelope),
        })),
      },
    });
    expect(unsigned(built)).toEqual(unsigned(file));
    expect(built.copies).toEqual(file.copies);
  });

  it("the copy id derivation, step by step with node's HKDF and HMAC, gives KE-KWS's copy id", () => {
    const d = file.copyIdDerivation;
    const okm = Buffer.from(
      hkdfSync('sha256', Buffer.from(d.routerJwkD, 'base64url'), Buffer.alloc(0), d.hkdfInfo, 32),
    );
    expect(okm.toString('hex')).toBe(d.hkdfOutput);
    expect(d.hmacInput).toBe(
      JSON.stringify(['alert-hub/copy-id/v1', 'SG-NPARKS', file.decision.alertId, 'KE-KWS']),
    );
    const mac = createHmac('sha256', okm).update(d.hmacInput, 'utf8').digest();
    expect(mac.toString('hex')).toBe(d.hmac);
    expect(mac.subarray(0, 16).toString('base64url')).toBe(d.copyId);
    expect(file.leaves.find((l) => l.recipient === 'KE-KWS')?.copy).toBe(d.copyId);
  });

  it('the leaves are ordered by recipient, and the hashes are those of RFC 9162', () => {
    expect(file.leaves.map((l) => l.recipient)).toEqual(['KE-KWS', 'NG-CUSTOMS', 'VN-CUSTOMS']);
    expect(file.root).toBe(file.nodes['root']);
    expect(JSON.parse(file.protectedHeader)).toMatchObject({
      tree_size: 3,
      tree_root: Buffer.from(file.root, 'hex').toString('base64url'),
    });
  });

  for (const c of file.copies) {
    it(`the copy for ${c.recipient} opens, for its recipient only`, async () => {
      const opened = await open(c.envelope, c.recipient);
      expect(opened.ok).toBe(true);
      const grant = file.decision.grants.find((g) => g.recipient === c.recipient)!;
      expect(opened.ok && opened.route).toMatchObject({
        recipient: c.recipient,
        agreement: grant.agreement,
        onward: grant.onward,
        routed_at: file.decision.routedAt,
      });
      expect(createHash('sha256').update(Buffer.from(c.envelope, 'hex')).digest('hex')).toBe(
        c.sha256,
      );
      const other = file.copies.find((x) => x.recipient !== c.recipient)!.recipient;
      const refused = await open(c.envelope, other);
      expect(!refused.ok && refused.error.code).toBe('ERR_ENVELOPE_HEADER_MISMATCH');
    });
  }

  it('a second implementation written from the protocol document verifies every copy', () => {
    const router = routerJwk(file.routerKid);
    for (const c of file.copies)
      expect(verifyAsAPartner(c.envelope, c.recipient, router)).toBe(true);
    // ...and refuses the tampered ones it can tell apart without the checks of §5.
    for (const name of ['tree-other-recipients-leaf', 'tree-other-path', 'tree-modified-root'])
      expect(
        verifyAsAPartner(file.invalid.find((v) => v.name === name)!.envelope, 'KE-KWS', router),
        name,
      ).toBe(false);
    // The ES256 copies, under the router's P-256 key (and not under its Ed25519 one).
    for (const c of file.es256.copies) {
      expect(verifyAsAPartner(c.envelope, c.recipient, routerJwk(file.es256.routerKid))).toBe(true);
      expect(verifyAsAPartner(c.envelope, c.recipient, router)).toBe(false);
    }
  });

  for (const c of file.es256.copies) {
    it(`the ES256 copy for ${c.recipient} opens, for its recipient only`, async () => {
      const key = trust.get(file.es256.routerKid)!;
      expect([key.principal, key.role, key.alg]).toEqual(['HUB', 'router', 'ES256']);
      expect(JSON.parse(file.es256.protectedHeader)).toMatchObject({
        alg: 'ES256',
        kid: file.es256.routerKid,
        router: 'HUB',
      });
      const opened = await open(c.envelope, c.recipient);
      expect(opened.ok, opened.ok ? '' : opened.error.code).toBe(true);
      const grant = file.decision.grants.find((g) => g.recipient === c.recipient)!;
      expect(opened.ok && opened.route).toMatchObject({
        router: 'HUB',
        recipient: c.recipient,
        agreement: grant.agreement,
        onward: grant.onward,
        routed_at: file.decision.routedAt,
      });
      const other = file.es256.copies.find((x) => x.recipient !== c.recipient)!.recipient;
      const refused = await open(c.envelope, other);
      expect(!refused.ok && refused.error.code).toBe('ERR_ENVELOPE_HEADER_MISMATCH');
    });
  }

  for (const v of file.invalid) {
    it(`${v.name}: refused with ${v.code}`, async () => {
      const opened = await open(v.envelope, v.recipient);
      expect(opened.ok).toBe(false);
      expect(!opened.ok && opened.error).toBeInstanceOf(AlertHubError);
      expect(!opened.ok && opened.error.code).toBe(v.code);
    });
  }

  it('the per-copy form: accepted by default, refused when the verifier retires it', async () => {
    const accepted = await open(file.perCopy.envelope, file.perCopy.recipient);
    expect(accepted.ok && accepted.route).toMatchObject(file.perCopy.expected);
    const refused = await open(file.perCopy.envelope, file.perCopy.recipient, 'refuse');
    expect(!refused.ok && refused.error.code).toBe(file.perCopy.refusedWith);
  });

  for (const v of file.perCopy.invalid) {
    it(`${v.name}: refused with ${v.code} while the per-copy form is accepted`, async () => {
      const opened = await open(v.envelope, v.recipient);
      expect(!opened.ok && opened.error.code).toBe(v.code);
    });
  }

  for (const v of file.perCopy.accepted) {
    it(`${v.name}: accepted while the per-copy form is accepted, refused when it is retired`, async () => {
      const opened = await open(v.envelope, v.recipient);
      expect(opened.ok && opened.route).toMatchObject(v.expected);
      const refused = await open(v.envelope, v.recipient, 'refuse');
      expect(!refused.ok && refused.error.code).toBe(file.perCopy.refusedWith);
    });
  }
});
