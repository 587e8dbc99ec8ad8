import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as jose from 'jose';
import { describe, expect, it } from 'vitest';
import {
  AlertHubError,
  decodeEnvelope,
  noticeSubject,
  openNotice,
  openReceipt,
  receiptSubject,
  routedRefusals,
  verifyNotice,
} from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { buildStatementVectors } from './vectors/generate-statements.mjs';

interface Vector {
  name: string;
  kind: 'receipt' | 'notice';
  envelope: string;
  /** The envelope bytes are followed by zero bytes up to this length (a vector over the limit). */
  paddedTo?: number;
  to?: string;
  /** The subject the statement is read on (protocol.md §9.1 step 1, §9.2 step 7). */
  subject: string;
  /** A notice's routed refusals, one per recipient, as a reader gives them. */
  refusals?: { alertId: string; recipient: string; code: string; reason: string }[];
  expected:
    { ok: true; kid: string; receipt?: unknown; notice?: unknown } | { ok: false; code: string };
}

const dir = fileURLToPath(new URL('./vectors/', import.meta.url));
const file = JSON.parse(readFileSync(`${dir}statements.json`, 'utf8')) as {
  verifyAt: string;
  forwarded: { envelope: string; sha256: string };
  forwardedTree: { envelope: string; sha256: string };
  vectors: Vector[];
};
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const trust = loadTrustStore(`${dir}trust`, registry);
const now = new Date(file.verifyAt);

/** A vector's bytes, as received. */
function bytesOf(v: Vector): Buffer {
  const bytes = Buffer.from(v.envelope, 'hex');
  return v.paddedTo ? Buffer.concat([bytes, Buffer.alloc(v.paddedTo - bytes.length)]) : bytes;
}

/** Opens a vector on its subject, as the router opens a receipt and a gateway a notice. */
async function verify(v: Vector) {
  const opened =
    v.kind === 'receipt'
      ? await openReceipt(bytesOf(v), v.subject, { trust, registry, now })
      : await openNotice(bytesOf(v), v.subject, { trust, registry, now, recipient: v.to! });
  if (!opened.ok) throw opened.error;
  return opened;
}

describe('receipt and notice test vectors (test/vectors/statements.json)', () => {
  it('the receipt names the forwarded envelope by the SHA-256 of its bytes', () => {
    const digest = createHash('sha256')
      .update(Buffer.from(file.forwarded.envelope, 'hex'))
      .digest('hex');
    expect(digest).toBe(file.forwarded.sha256);
    const valid = file.vectors.find((v) => v.name === 'valid-receipt')!;
    const receipt = (valid.expected as { receipt: { deliveries: { envelopeSha256: string }[] } })
      .receipt;
    expect(receipt.deliveries[0]!.envelopeSha256).toBe(digest);
  });

  it('a receipt names a route-tree copy (the form the router sends) the same way', async () => {
    const digest = createHash('sha256')
      .update(Buffer.from(file.forwardedTree.envelope, 'hex'))
      .digest('hex');
    expect(digest).toBe(file.forwardedTree.sha256);
    // The copy carries the route-tree countersignature: an unprotected header (leaf, path).
    const jws = decodeEnvelope(Buffer.from(file.forwardedTree.envelope, 'hex'));
    expect(jws.signatures[1]?.header).toBeDefined();
    const v = file.vectors.find((x) => x.name === 'valid-receipt-route-tree-copy')!;
    const opened = await openReceipt(bytesOf(v), v.subject, { trust, registry, now });
    expect(opened.ok && opened.receipt.deliveries.map((d) => d.envelopeSha256)).toEqual([digest]);
  });

  it('every vector names its subject, and each subject check has a refusal', () => {
    expect(file.vectors.every((v) => typeof v.subject === 'string')).toBe(true);
    const codes = file.vectors.map((v) => (v.expected.ok ? 'ok' : v.expected.code));
    expect(codes).toContain('ERR_SUBJECT_INVALID');
    expect(codes.filter((c) => c === 'ERR_SUBJECT_MISMATCH')).toHaveLength(2);
  });

  for (const v of file.vectors) {
    it(`${v.name}: ${v.expected.ok ? 'verifies' : `fails with ${v.expected.code}`}`, async () => {
      if (v.expected.ok) {
        const r = await verify(v);
        expect(r.key.kid).toBe(v.expected.kid);
        if ('receipt' in r) expect(r.receipt).toEqual(v.expected.receipt);
        else expect(r.notice).toEqual(v.expected.notice);
      } else {
        const err = await verify(v).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(AlertHubError);
        expect((err as AlertHubError).code).toBe(v.expected.code);
      }
    });
  }

  it("a notice's grouped refusal gives each of its recipients the item's code and reason", async () => {
    const v = file.vectors.find((x) => x.name === 'valid-notice')!;
    const { notice } = await verifyNotice(decodeEnvelope(Buffer.from(v.envelope, 'hex')), {
      trust,
      registry,
      now,
      to: v.to!,
    });
    const read = notice.events.flatMap((e) =>
      e.event === 'routed'
        ? routedRefusals(e.denied).map((r) => ({ alertId: e.alertId, ...r }))
        : [],
    );
    expect(read).toEqual(v.refusals);
    expect(v.refusals).toHaveLength(3);
  });

  it('the size limit: 262,144 bytes accepted and one more refused, as the router opens a receipt and a gateway a notice', async () => {
    const named = (name: string) => file.vectors.find((v) => v.name === name)!;
    const options = { trust, registry, now };
    const receipt = (name: string) =>
      openReceipt(bytesOf(named(name)), receiptSubject('NG-CUSTOMS'), options);
    const notice = (name: string) =>
      openNotice(bytesOf(named(name)), noticeSubject('SG-NPARKS', 'HUB'), {
        ...options,
        recipient: 'SG-NPARKS',
      });
    for (const [name, open] of [
      ['receipt', receipt],
      ['notice', notice],
    ] as const) {
      expect(bytesOf(named(`${name}-at-size-limit`)).length).toBe(262_144);
      const atLimit = await open(`${name}-at-size-limit`);
      expect(atLimit.ok, atLimit.ok ? '' : atLimit.error.code).toBe(true);
      expect(bytesOf(named(`${name}-too-large`)).length).toBe(262_145);
      const over = await open(`${name}-too-large`);
      expect(!over.ok && over.error.code).toBe('ERR_ENVELOPE_TOO_LARGE');
    }
  });

  it('the valid vectors also verify with jose, a second JOSE implementation', async () => {
    for (const v of file.vectors.filter((x) => x.expected.ok)) {
      const jws = decodeEnvelope(Buffer.from(v.envelope, 'hex'));
      const sig = jws.signatures[0]!;
      const { kid } = JSON.parse(Buffer.from(sig.protected, 'base64url').toString()) as {
        kid: string;
      };
      const key = await jose.importJWK(trust.get(kid)!.jwk, 'EdDSA');
      const r = await jose.flattenedVerify({ payload: jws.payload, ...sig }, key, {
        algorithms: ['EdDSA'],
      });
      const expected = v.expected as { receipt?: unknown; notice?: unknown };
      expect(JSON.parse(new TextDecoder().decode(r.payload))).toEqual(
        expected.receipt ?? expected.notice,
      );
    }
  });

  it('every vector and the NG-CUSTOMS trust file regenerate byte for byte', async () => {
    const rebuilt = await buildStatementVectors();
    expect(rebuilt.forwarded.envelope).toBe(file.forwarded.envelope);
    expect(rebuilt.vectors.map((r) => r.name)).toEqual(file.vectors.map((v) => v.name));
    for (const r of rebuilt.vectors)
      expect(r.envelope, r.name).toBe(file.vectors.find((v) => v.name === r.name)?.envelope);
    expect(JSON.parse(readFileSync(`${dir}trust/NG-CUSTOMS.jwks.json`, 'utf8'))).toEqual(
      rebuilt.ngJwks,
    );
  });
});
