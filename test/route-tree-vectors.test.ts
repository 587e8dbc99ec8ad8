import { createHash, createPublicKey, verify as edVerify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import { AlertHubError, feedSubject, openDelivery } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { buildRouteTreeVectors, type RouteTreeVectors } from './vectors/generate-route-tree.mjs';

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

/**
 * A second implementation, written from docs/protocol.md §3.2 alone with node:crypto and a
 * msgpack decoder: leaf hash, the RFC 9162 §2.1.3.2 fold of the path, the signed root, Ed25519.
 */
function verifyAsAPartner(envelopeHex: string, recipient: string, routerX: string): boolean {
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
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: routerX }, format: 'jwk' });
  const ok = edVerify(
    null,
    Buffer.from(`${sig.protected}.${env.payload}`, 'ascii'),
    key,
    Buffer.from(sig.signature, 'base64url'),
  );
  return ok && leaf.recipient === recipient;
}

describe('route tree vectors (test/vectors/route-tree.json, protocol.md §3.2)', () => {
  it('regenerate byte for byte from the published keys', async () => {
    expect(await buildRouteTreeVectors()).toEqual(file);
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
    const routerX = (trust.get(file.routerKid)!.jwk as { x: string }).x;
    for (const c of file.copies)
      expect(verifyAsAPartner(c.envelope, c.recipient, routerX)).toBe(true);
    // ...and refuses the tampered ones it can tell apart without the checks of §5.
    for (const name of ['tree-other-recipients-leaf', 'tree-other-path', 'tree-modified-root'])
      expect(
        verifyAsAPartner(file.invalid.find((v) => v.name === name)!.envelope, 'KE-KWS', routerX),
        name,
      ).toBe(false);
  });

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
});
