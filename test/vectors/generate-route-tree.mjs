#!/usr/bin/env node
// Builds the test vectors of the router's one countersignature per routing decision
// (route-tree.json, docs/protocol.md §3.2). Run from the repository root after `npm run build`:
//   node test/vectors/generate-route-tree.mjs
//
// Same keys as generate.mjs (the router keys derive from published seeds; the origin is the
// RFC 8037 §A.1 key). Ed25519 and the copy ids (HMAC under a key derived from the router key) are
// deterministic, so every byte regenerates; test/route-tree-vectors.test.ts checks that it does.
// The one exception is `es256`, the decision countersigned by the router's ES256 key: ECDSA draws
// a nonce, so its signatures differ each time. Its committed envelopes are kept while everything
// but the signature regenerates the same; the test checks that, and that they verify.
import { createHash, createHmac, hkdfSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode, encode } from '@msgpack/msgpack';
import {
  b64url,
  canonicalJson,
  countersign,
  countersignRoutes,
  encodeEnvelope,
  importSigningKey,
  routeLeafBytes,
  routeLeaves,
  signAlert,
  signBytes,
  signingInput,
} from '@alert-hub/core';
import { VECTOR_TIME, vectorAlert, vectorKeys } from './generate.mjs';

const SCHEMA = 'https://schemas.alert-hub.example/alerts/seizure-report/v1.json';
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

/** The routing decision of the vectors: one alert of SG-NPARKS to three partners. */
export function vectorDecision() {
  const alert = vectorAlert();
  return {
    origin: alert.origin,
    alertId: alert.id,
    routedAt: '2019-04-08T03:15:02Z',
    // In the order the policy listed them; the leaves are ordered by recipient id.
    grants: [
      { recipient: 'VN-CUSTOMS', agreement: { id: 'WEN-ASIA-AFRICA', version: 3 }, onward: false },
      { recipient: 'NG-CUSTOMS', agreement: { id: 'WEN-ASIA-AFRICA', version: 3 }, onward: false },
      { recipient: 'KE-KWS', agreement: { id: 'AFRICA-PANGOLIN', version: 1 }, onward: true },
    ],
  };
}

/** Every route-tree vector. */
export async function buildRouteTreeVectors() {
  const k = vectorKeys();
  const sgKey = importSigningKey(k.sg.privateJwk, 'SG-NPARKS');
  const hubKey = importSigningKey(k.hub.privateJwk, 'HUB');
  const alert = vectorAlert();
  const decision = vectorDecision();
  const origin = await signAlert(alert, sgKey, SCHEMA);
  const copies = await countersignRoutes(origin, hubKey, decision);
  const leaves = routeLeaves(hubKey, decision).map((leaf) => {
    const bytes = routeLeafBytes(leaf);
    return {
      recipient: leaf.recipient,
      index: leaf.index,
      copy: leaf.copy,
      json: bytes.toString('utf8'),
      leafHash: sha256(Buffer.concat([Buffer.from([0]), bytes])),
    };
  });
  const routed = copies[0].signatures[1];
  const protectedHeader = Buffer.from(routed.protected, 'base64url').toString('utf8');
  const root = Buffer.from(JSON.parse(protectedHeader).tree_root, 'base64url');
  const node = (l, r) =>
    sha256(Buffer.concat([Buffer.from([1]), Buffer.from(l, 'hex'), Buffer.from(r, 'hex')]));
  const [h0, h1, h2] = leaves.map((l) => l.leafHash);
  const copyVectors = decision.grants.map((g, i) => {
    const c = copies[i];
    const bytes = encodeEnvelope(c);
    const path = Buffer.from(c.signatures[1].header.path, 'base64url');
    return {
      recipient: g.recipient,
      index: leaves.find((l) => l.recipient === g.recipient).index,
      leaf: c.signatures[1].header.leaf,
      path: Array.from({ length: path.length / 32 }, (_, j) => hex(path.subarray(j * 32, j * 32 + 32))),
      envelope: hex(bytes),
      sha256: sha256(bytes),
    };
  });

  // Refusals a verifier must make, each on a copy for `recipient`, with the code it must give.
  const invalid = [];
  const first = copies[decision.grants.findIndex((g) => g.recipient === 'KE-KWS')];
  // NG-CUSTOMS's leaf is at index 1, whose path has as many hashes as KE-KWS's (index 0).
  const other = copies[decision.grants.findIndex((g) => g.recipient === 'NG-CUSTOMS')];
  const vn = copies[decision.grants.findIndex((g) => g.recipient === 'VN-CUSTOMS')];
  const s = first.signatures[1];
  const withSig = (sig) => encodeEnvelope({ payload: first.payload, signatures: [first.signatures[0], sig] });
  const resigned = async (text) => {
    const p = b64url(text);
    const signature = (await signBytes('EdDSA', signingInput(p, first.payload), hubKey.privateKey)).toString('base64url');
    return { ...s, protected: p, signature };
  };
  const add = (name, description, bytes, code) => invalid.push({ name, description, recipient: 'KE-KWS', envelope: hex(bytes), code });
  const leafJson = JSON.parse(Buffer.from(s.header.leaf, 'base64url').toString('utf8'));
  const header = JSON.parse(protectedHeader);
  add('tree-other-recipients-leaf', "NG-CUSTOMS's leaf with KE-KWS's path.", withSig({ ...s, header: { ...s.header, leaf: other.signatures[1].header.leaf } }), 'ERR_PROOF_ROOT_MISMATCH');
  add('tree-other-path', "KE-KWS's leaf with NG-CUSTOMS's path.", withSig({ ...s, header: { ...s.header, path: other.signatures[1].header.path } }), 'ERR_PROOF_ROOT_MISMATCH');
  add('tree-not-for-me', "VN-CUSTOMS's whole copy, verified by KE-KWS.", encodeEnvelope(vn), 'ERR_ENVELOPE_HEADER_MISMATCH');
  add('tree-index-out-of-range', 'The leaf rewritten with index 3 in a tree of 3.', withSig({ ...s, header: { ...s.header, leaf: b64url(canonicalJson({ ...leafJson, index: 3 })) } }), 'ERR_PROOF_RANGE');
  add('tree-path-too-short', 'The last hash of the path removed.', withSig({ ...s, header: { ...s.header, path: Buffer.from(s.header.path, 'base64url').subarray(0, 32).toString('base64url') } }), 'ERR_PROOF_LENGTH');
  add('tree-wrong-size', 'Re-signed by the router with tree_size 5: the path no longer fits.', withSig(await resigned(canonicalJson({ ...header, tree_size: 5 }))), 'ERR_PROOF_LENGTH');
  add('tree-modified-root', 'tree_root changed without re-signing.', withSig({ ...s, protected: b64url(canonicalJson({ ...header, tree_root: Buffer.alloc(32).toString('base64url') })) }), 'ERR_SIGNATURE_INVALID');
  add('tree-leaf-not-canonical', 'The same leaf with a space after a colon.', withSig({ ...s, header: { ...s.header, leaf: b64url(canonicalJson(leafJson).replace('"onward":', '"onward": ')) } }), 'ERR_ROUTE_LEAF_MALFORMED');
  add('tree-header-not-canonical', 'Re-signed by the router with the header members in another order.', withSig(await resigned(JSON.stringify({ typ: header.typ, ...header }))), 'ERR_ENVELOPE_MALFORMED');
  add('tree-no-leaf', 'The tree countersignature without its unprotected header.', withSig({ protected: s.protected, signature: s.signature }), 'ERR_ENVELOPE_MALFORMED');
  add('tree-header-extra-member', 'An unprotected header with a string member beyond leaf and path.', encode({ payload: first.payload, signatures: [first.signatures[0], { ...s, header: { ...s.header, note: 'x' } }] }), 'ERR_ENVELOPE_MALFORMED');
  add('tree-header-member-not-string', 'An unprotected header whose path is the integer 0.', encode({ payload: first.payload, signatures: [first.signatures[0], { ...s, header: { ...s.header, path: 0 } }] }), 'ERR_ENVELOPE_MALFORMED');
  add('tree-header-on-origin-signature', "An unprotected header on signature 0 (the origin's): only signature 1 may carry one.", encode({ payload: first.payload, signatures: [{ ...first.signatures[0], header: s.header }, s] }), 'ERR_ENVELOPE_MALFORMED');
  add('tree-protected-extra-member', 'Re-signed by the router with one more (string) member in the protected header.', withSig(await resigned(canonicalJson({ ...header, note: 'x' }))), 'ERR_ENVELOPE_MALFORMED');
  add('tree-routed-at-lower-case', 'Re-signed by the router with routed_at ending in a lower-case z.', withSig(await resigned(canonicalJson({ ...header, routed_at: '2019-04-08T03:15:02z' }))), 'ERR_ENVELOPE_MALFORMED');
  add('tree-size-not-integer', 'Re-signed by the router with tree_size the string "3".', withSig(await resigned(canonicalJson({ ...header, tree_size: '3' }))), 'ERR_PROOF_RANGE');
  const rootB64 = header.tree_root;
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  add('tree-root-not-canonical', "Re-signed by the router with tree_root's unused low bits set: same 32 bytes, another spelling.", withSig(await resigned(canonicalJson({ ...header, tree_root: rootB64.slice(0, -1) + alphabet[alphabet.indexOf(rootB64.at(-1)) ^ 1] }))), 'ERR_ENVELOPE_MALFORMED');
  add('tree-root-31-bytes', 'Re-signed by the router with a 31-byte tree_root.', withSig(await resigned(canonicalJson({ ...header, tree_root: Buffer.from(rootB64, 'base64url').subarray(0, 31).toString('base64url') }))), 'ERR_PROOF_HASH_SIZE');
  add('tree-path-not-hashes', 'A path of 65 bytes: not a whole number of 32-byte hashes.', withSig({ ...s, header: { ...s.header, path: Buffer.concat([Buffer.from(s.header.path, 'base64url'), Buffer.alloc(1)]).toString('base64url') } }), 'ERR_PROOF_HASH_SIZE');
  add('tree-leaf-version-negative', "The leaf's agreement version rewritten as -1.", withSig({ ...s, header: { ...s.header, leaf: b64url(canonicalJson({ ...leafJson, agreement: { ...leafJson.agreement, version: -1 } })) } }), 'ERR_ROUTE_LEAF_MALFORMED');
  const leafWith = (changes) => withSig({ ...s, header: { ...s.header, leaf: b64url(canonicalJson({ ...leafJson, ...changes })) } });
  add('tree-leaf-version-0', "The leaf's agreement version rewritten as 0: versions start at 1 (protocol.md §2.3).", leafWith({ agreement: { ...leafJson.agreement, version: 0 } }), 'ERR_ROUTE_LEAF_MALFORMED');
  add('tree-leaf-agreement-id-bad', "The leaf's agreement id rewritten as \"AFRICA PANGOLIN\" (a space): not an agreement id.", leafWith({ agreement: { ...leafJson.agreement, id: 'AFRICA PANGOLIN' } }), 'ERR_ROUTE_LEAF_MALFORMED');
  add('tree-leaf-recipient-not-agency-id', 'The leaf\'s recipient rewritten as "ke-kws": not an agency id.', leafWith({ recipient: 'ke-kws' }), 'ERR_ROUTE_LEAF_MALFORMED');
  add('tree-router-not-key-owner', 'Re-signed by the router key with router "SG-NPARKS": the key belongs to HUB.', withSig(await resigned(canonicalJson({ ...header, router: 'SG-NPARKS' }))), 'ERR_KEY_AGENCY_MISMATCH');
  add('tree-routed-after-key-expiry', "Re-signed by the router with routed_at one second after its key's notAfter (2029-01-01T00:00:00Z).", withSig(await resigned(canonicalJson({ ...header, routed_at: '2029-01-01T00:00:01Z' }))), 'ERR_KEY_NOT_VALID_AT');
  // Signature 1's `signature`: canonical base64url, checked at check 5 after the key and its alg (protocol.md §3.2).
  const respeltSig = s.signature.slice(0, -1) + alphabet[alphabet.indexOf(s.signature.at(-1)) ^ 1];
  add('tree-signature-not-canonical', "The countersignature's signature with the unused low bits of its last character set: same 64 bytes, another spelling.", withSig({ ...s, signature: respeltSig }), 'ERR_ENVELOPE_MALFORMED');
  add('tree-signature-not-canonical-and-leaf-malformed', 'That non-canonical signature and a leaf whose agreement version is 0: the leaf (check 3) is read before the signature (check 5).', withSig({ ...s, signature: respeltSig, header: { ...s.header, leaf: b64url(canonicalJson({ ...leafJson, agreement: { ...leafJson.agreement, version: 0 } })) } }), 'ERR_ROUTE_LEAF_MALFORMED');
  add('tree-signature-63-bytes', "The countersignature's signature one byte short.", withSig({ ...s, signature: Buffer.from(s.signature, 'base64url').subarray(0, 63).toString('base64url') }), 'ERR_SIGNATURE_INVALID');

  // The retired per-copy form, for a verifier's transition setting (§3.4).
  const perCopy = await countersign(origin, hubKey, {
    recipient: 'KE-KWS',
    agreement: { id: 'AFRICA-PANGOLIN', version: 1 },
    routed_at: decision.routedAt,
    onward: true,
    alert_id: alert.id,
  });
  // Refusals of the per-copy form when it is accepted (the default), each on a copy for KE-KWS.
  const pc = perCopy.signatures[1];
  const pcHeader = JSON.parse(Buffer.from(pc.protected, 'base64url').toString('utf8'));
  const pcSigned = async (h, text = JSON.stringify(h)) => {
    const p = b64url(text);
    const signature = (await signBytes('EdDSA', signingInput(p, perCopy.payload), hubKey.privateKey)).toString('base64url');
    return encodeEnvelope({ payload: perCopy.payload, signatures: [perCopy.signatures[0], { protected: p, signature }] });
  };
  const perCopyInvalid = [
    { name: 'per-copy-with-unprotected-header', description: 'The per-copy countersignature with an unprotected header (a leaf and path).', recipient: 'KE-KWS', envelope: hex(encode({ payload: perCopy.payload, signatures: [perCopy.signatures[0], { ...pc, header: s.header }] })), code: 'ERR_ENVELOPE_MALFORMED' },
    { name: 'per-copy-router-not-key-owner', description: 'Signed by the router key with router "SG-NPARKS".', recipient: 'KE-KWS', envelope: hex(await pcSigned({ ...pcHeader, router: 'SG-NPARKS' })), code: 'ERR_KEY_AGENCY_MISMATCH' },
    { name: 'per-copy-for-another-recipient', description: 'A genuine per-copy countersignature for KE-KWS, read by NG-CUSTOMS.', recipient: 'NG-CUSTOMS', envelope: hex(encodeEnvelope(perCopy)), code: 'ERR_ENVELOPE_HEADER_MISMATCH' },
    { name: 'per-copy-agreement-version-not-integer', description: 'Signed by the router key with agreement version "1" (a string).', recipient: 'KE-KWS', envelope: hex(await pcSigned({ ...pcHeader, agreement: { id: 'AFRICA-PANGOLIN', version: '1' } })), code: 'ERR_ENVELOPE_MALFORMED' },
    { name: 'per-copy-agreement-version-1.5', description: 'Signed by the router key with agreement version 1.5: a number, not an integer.', recipient: 'KE-KWS', envelope: hex(await pcSigned({ ...pcHeader, agreement: { id: 'AFRICA-PANGOLIN', version: 1.5 } })), code: 'ERR_ENVELOPE_MALFORMED' },
    { name: 'per-copy-agreement-version-true', description: 'Signed by the router key with agreement version true: not a number (whatever a language makes of true).', recipient: 'KE-KWS', envelope: hex(await pcSigned({ ...pcHeader, agreement: { id: 'AFRICA-PANGOLIN', version: true } })), code: 'ERR_ENVELOPE_MALFORMED' },
  ];
  // Per-copy countersignatures a verifier accepting the form must accept, with what it reads.
  const pcText = JSON.stringify(pcHeader);
  if (!pcText.includes('"version":1}')) throw new Error('the per-copy header has no agreement version 1');
  const perCopyAccepted = [
    { name: 'per-copy-agreement-version-1.0', description: 'Signed by the router key with the agreement version spelt 1.0: a number whose value is an integer, so version 1.', recipient: 'KE-KWS', envelope: hex(await pcSigned(undefined, pcText.replace('"version":1}', '"version":1.0}'))), expected: { router: 'HUB', recipient: 'KE-KWS', agreement: { id: 'AFRICA-PANGOLIN', version: 1 }, routed_at: decision.routedAt, onward: true, alert_id: alert.id } },
  ];
  // The same decision countersigned by the router's ES256 key (a router may have either).
  const esKey = importSigningKey(k.hubEs.privateJwk, 'HUB');
  const esCopies = await countersignRoutes(origin, esKey, decision);
  const es256 = {
    description: "The decision countersigned by the router's ES256 (P-256) key. ECDSA signatures are randomised: these envelopes verify but do not regenerate byte for byte; all but the countersignature's signature does.",
    routerKid: k.hubEs.publicJwk.kid,
    protectedHeader: Buffer.from(esCopies[0].signatures[1].protected, 'base64url').toString('utf8'),
    copies: decision.grants.map((g, i) => ({ recipient: g.recipient, envelope: hex(encodeEnvelope(esCopies[i])) })),
  };
  // The copy id of KE-KWS's copy, derived from its definition (protocol.md §3.2) with node's HKDF
  // and HMAC; it must be the one the hub put in the leaf.
  const ke = leaves.find((l) => l.recipient === 'KE-KWS');
  const hkdfInfo = 'alert-hub copy id v1';
  const copyIdKey = Buffer.from(hkdfSync('sha256', Buffer.from(k.hub.privateJwk.d, 'base64url'), Buffer.alloc(0), hkdfInfo, 32));
  const hmacInput = JSON.stringify(['alert-hub/copy-id/v1', decision.origin, decision.alertId, 'KE-KWS']);
  const hmac = createHmac('sha256', copyIdKey).update(hmacInput, 'utf8').digest();
  const copyIdDerivation = {
    description: "The copy id of KE-KWS's copy: the router key's JWK d (the HUB key of test/vectors/trust/, seed SHA-256(\"alert-hub test vector router key\")), HKDF-SHA256 with an empty salt and this info to 32 bytes, HMAC-SHA256 under it of this UTF-8 text, its first 16 bytes in base64url.",
    routerJwkD: k.hub.privateJwk.d,
    hkdfInfo,
    hkdfOutput: copyIdKey.toString('hex'),
    hmacInput,
    hmac: hmac.toString('hex'),
    copyId: hmac.subarray(0, 16).toString('base64url'),
  };
  if (copyIdDerivation.copyId !== ke.copy) throw new Error('the copy id derivation differs from the hub');
  return {
    verifyAt: VECTOR_TIME,
    decision,
    routerKid: k.hub.publicJwk.kid,
    copyIdDerivation,
    leaves,
    nodes: { 'MTH(D[0:2])': node(h0, h1), root: node(node(h0, h1), h2) },
    root: hex(root),
    protectedHeader,
    signature: routed.signature,
    copies: copyVectors,
    invalid,
    perCopy: {
      recipient: 'KE-KWS',
      envelope: hex(encodeEnvelope(perCopy)),
      expected: { router: 'HUB', recipient: 'KE-KWS', agreement: { id: 'AFRICA-PANGOLIN', version: 1 }, routed_at: decision.routedAt, onward: true, alert_id: alert.id },
      refusedWith: 'ERR_ROUTE_FORM_RETIRED',
      invalid: perCopyInvalid,
      accepted: perCopyAccepted,
    },
    es256,
  };
}

/**
 * A copy envelope (hex) with the signature bytes of its countersignature left out: what an ES256
 * copy regenerates to.
 */
export function withoutCountersignature(envelopeHex) {
  const env = decode(Buffer.from(envelopeHex, 'hex'));
  const { signature: _signature, ...rest } = env.signatures[1];
  return { ...env, signatures: [env.signatures[0], rest] };
}

async function main() {
  const dir = fileURLToPath(new URL('./', import.meta.url));
  const v = await buildRouteTreeVectors();
  // ECDSA draws a nonce: keep the committed ES256 copies while all but their signatures is the same.
  const file = `${dir}route-tree.json`;
  const kept = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).es256 : undefined;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  if (
    kept &&
    same({ ...kept, copies: kept.copies.map((c) => ({ ...c, envelope: withoutCountersignature(c.envelope) })) }, { ...v.es256, copies: v.es256.copies.map((c) => ({ ...c, envelope: withoutCountersignature(c.envelope) })) })
  )
    v.es256 = kept;
  writeFileSync(`${dir}route-tree.json`, `${JSON.stringify(v, null, 2)}\n`);
  console.log(`wrote ${v.copies.length} copies and ${v.invalid.length} refusals to ${dir}route-tree.json`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
