#!/usr/bin/env node
// Builds the delivery-receipt and notice test vectors (statements.json). Run from the
// repository root after `npm run build`:  node test/vectors/generate-statements.mjs
//
// Same keys as generate.mjs, plus NG-CUSTOMS's receipt key derived from a published seed; every
// vector is Ed25519 and regenerates byte for byte.
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  countersign,
  encodeEnvelope,
  importSigningKey,
  jwkThumbprint,
  noticeSubject,
  receiptSubject,
  sha256Hex,
  signAlert,
  signNotice,
  signReceipt,
} from '@alert-hub/core';
import { MAX_ENVELOPE_BYTES, VECTOR_TIME, vectorAlert, vectorKeys } from './generate.mjs';
import { buildRouteTreeVectors } from './generate-route-tree.mjs';

const SCHEMA = 'https://schemas.alert-hub.example/alerts/seizure-report/v1.json';
const hex = (bytes) => Buffer.from(bytes).toString('hex');
const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const text = (b) => Buffer.from(b, 'base64url').toString('utf8');

/** NG-CUSTOMS's key: Ed25519 from the SHA-256 of a published label. */
export function receiptKey() {
  const seed = createHash('sha256').update('alert-hub test vector receipt key').digest();
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  const pub = { kty: 'OKP', crv: 'Ed25519', x: jwk.x };
  const publicJwk = { ...pub, kid: jwkThumbprint(pub), alg: 'EdDSA', use: 'sig', notBefore: '2019-01-01T00:00:00Z', notAfter: '2029-01-01T00:00:00Z' };
  return { publicJwk, privateJwk: { ...publicJwk, d: jwk.d } };
}

/**
 * The envelope `make` builds from `json` with spaces after its opening brace (JSON whitespace,
 * signed as sent), as many as make it exactly `size` bytes.
 */
function paddedTo(size, json, make) {
  const base = make(json).length;
  for (let n = Math.max(0, Math.floor(((size - base) * 3) / 4) - 8); ; n++) {
    const bytes = make(`{${' '.repeat(n)}${json.slice(1)}`);
    if (bytes.length === size) return bytes;
    if (bytes.length > size) throw new Error(`no envelope of exactly ${size} bytes`);
  }
}

function resign(privateJwk, header, payloadB64) {
  const p = b64(header);
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  return { protected: p, signature: sign(null, Buffer.from(`${p}.${payloadB64}`), key).toString('base64url') };
}

/** Every statement vector. */
export async function buildStatementVectors() {
  const k = vectorKeys();
  const ng = receiptKey();
  const sgKey = importSigningKey(k.sg.privateJwk, 'SG-NPARKS');
  const hubKey = importSigningKey(k.hub.privateJwk, 'HUB');
  const ngKey = importSigningKey(ng.privateJwk, 'NG-CUSTOMS');
  const alert = vectorAlert();
  const forwarded = encodeEnvelope(
    await countersign(await signAlert(alert, sgKey, SCHEMA), hubKey, {
      recipient: 'NG-CUSTOMS',
      agreement: { id: 'WEN-ASIA-AFRICA', version: 3 },
      routed_at: '2019-04-08T03:15:02Z',
      onward: false,
      alert_id: alert.id,
    }),
  );
  const receipt = {
    receipt: '0169fb6c-1a80-7000-8000-000000000101',
    agency: 'NG-CUSTOMS',
    committedAt: '2019-04-08T03:15:03.250Z',
    deliveries: [{ alertId: alert.id, origin: 'SG-NPARKS', envelopeSha256: sha256Hex(forwarded) }],
  };
  const signedReceipt = await signReceipt(receipt, ngKey);
  const receiptBytes = encodeEnvelope(signedReceipt);
  const notice = {
    notice: '0169fb6c-1a80-7000-8000-000000000201',
    hub: 'HUB',
    to: 'SG-NPARKS',
    issuedAt: '2019-04-08T03:15:04Z',
    events: [
      { event: 'routed', alertId: alert.id, at: '2019-04-08T03:15:02Z', recipients: ['NG-CUSTOMS'], denied: [{ recipient: 'KE-KWS', code: 'DENY_HANDLING', reason: 'WEN-ASIA-AFRICA@3: TLP:AMBER is above the allowed TLP:GREEN' }, { recipients: ['CN-GACC', 'TH-DNP'], code: 'DENY_ALERT_TYPE', reason: 'no agreement of both covers seizure-report' }] },
      { event: 'delivered', alertId: alert.id, recipient: 'NG-CUSTOMS', committedAt: receipt.committedAt, verifiedAt: '2019-04-08T03:15:03.900Z', envelopeSha256: receipt.deliveries[0].envelopeSha256, receipt: receipt.receipt, receiptSha256: sha256Hex(receiptBytes), kid: ng.publicJwk.kid },
      { event: 'refused', alertId: '0169fb6c-1a80-7000-8000-000000000009', subject: 'ahub.in.SG-NPARKS.retraction', streamSeq: 42, at: '2019-04-08T03:15:04Z', code: 'ERR_RETRACTION_NOT_ORIGIN', reason: 'only VN-CUSTOMS may retract alert 0169fb6c-1a80-7000-8000-000000000003' },
    ],
  };
  const signedNotice = await signNotice(notice, hubKey);
  const rHeader = JSON.parse(text(signedReceipt.signatures[0].protected));
  const nHeader = JSON.parse(text(signedNotice.signatures[0].protected));

  const v = [];
  // Every vector is read on a subject (protocol.md §9.1 step 1, §9.2 step 7): a receipt's the
  // agency's inbound receipt subject, a notice's the reader's feed subject for notices of HUB.
  const add = (name, kind, description, bytes, expected, extra = {}) =>
    v.push({ name, kind, description, envelope: hex(bytes), expected, subject: kind === 'receipt' ? receiptSubject('NG-CUSTOMS') : noticeSubject(extra.to, 'HUB'), ...extra });
  add('valid-receipt', 'receipt', "NG-CUSTOMS's receipt for one inbox commit holding the routed copy `forwarded` (published on ahub.in.NG-CUSTOMS.receipt).", receiptBytes, { ok: true, receipt, kid: ng.publicJwk.kid }, {
    protectedHeader: text(signedReceipt.signatures[0].protected),
    payloadJson: text(signedReceipt.payload),
    signingInput: `${signedReceipt.signatures[0].protected}.${signedReceipt.payload}`,
  });
  add('valid-notice', 'notice', 'The hub tells SG-NPARKS that its alert was routed (refused for KE-KWS, and for CN-GACC and TH-DNP in one item), delivered (receipt verified) and that another message was refused (delivered on ahub.feed.SG-NPARKS.HUB.notice). `refusals` is what a reader makes of the routed event\'s denied items: one refusal per recipient, a group giving each of its recipients its code and reason.', encodeEnvelope(signedNotice), { ok: true, notice, kid: k.hub.publicJwk.kid }, {
    to: 'SG-NPARKS',
    refusals: [
      { alertId: alert.id, recipient: 'KE-KWS', code: 'DENY_HANDLING', reason: 'WEN-ASIA-AFRICA@3: TLP:AMBER is above the allowed TLP:GREEN' },
      { alertId: alert.id, recipient: 'CN-GACC', code: 'DENY_ALERT_TYPE', reason: 'no agreement of both covers seizure-report' },
      { alertId: alert.id, recipient: 'TH-DNP', code: 'DENY_ALERT_TYPE', reason: 'no agreement of both covers seizure-report' },
    ],
  });

  const tampered = b64({ ...receipt, deliveries: [{ ...receipt.deliveries[0], origin: 'KE-KWS' }] });
  add('receipt-bad-signature', 'receipt', 'The payload was changed after signing.', encodeEnvelope({ payload: tampered, signatures: signedReceipt.signatures }), { ok: false, code: 'ERR_SIGNATURE_INVALID' });
  add('receipt-key-of-another-agency', 'receipt', "Signed with SG-NPARKS's key but claiming agency NG-CUSTOMS.", encodeEnvelope({ payload: signedReceipt.payload, signatures: [resign(k.sg.privateJwk, { ...rHeader, kid: k.sg.publicJwk.kid }, signedReceipt.payload)] }), { ok: false, code: 'ERR_KEY_AGENCY_MISMATCH' });
  add('receipt-header-mismatch', 'receipt', 'A validly signed header whose receipt_id differs from the payload.', encodeEnvelope({ payload: signedReceipt.payload, signatures: [resign(ng.privateJwk, { ...rHeader, receipt_id: '0169fb6c-1a80-7000-8000-0000000001ff' }, signedReceipt.payload)] }), { ok: false, code: 'ERR_ENVELOPE_HEADER_MISMATCH' });
  const extra = b64({ ...receipt, note: 'x' });
  add('receipt-schema-invalid', 'receipt', 'A validly signed receipt with a member the schema does not allow.', encodeEnvelope({ payload: extra, signatures: [resign(ng.privateJwk, rHeader, extra)] }), { ok: false, code: 'ERR_RECEIPT_INVALID' });
  add('receipt-wrong-typ', 'receipt', 'A receipt whose header says it is an alert.', encodeEnvelope({ payload: signedReceipt.payload, signatures: [resign(ng.privateJwk, { ...rHeader, typ: 'ahub-alert+jws' }, signedReceipt.payload)] }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });
  add('receipt-two-signatures', 'receipt', 'A receipt carries exactly one signature.', encodeEnvelope({ payload: signedReceipt.payload, signatures: [signedReceipt.signatures[0], signedReceipt.signatures[0]] }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });
  add('notice-signed-by-an-agency', 'notice', 'A "notice" signed by an agency key: notices come only from a key of role router.', encodeEnvelope({ payload: signedNotice.payload, signatures: [resign(k.sg.privateJwk, { ...nHeader, kid: k.sg.publicJwk.kid }, signedNotice.payload)] }), { ok: false, code: 'ERR_KEY_AGENCY_MISMATCH' }, { to: 'SG-NPARKS' });
  add('notice-for-another-agency', 'notice', 'A genuine notice read as if it were addressed to VN-CUSTOMS.', encodeEnvelope(signedNotice), { ok: false, code: 'ERR_ENVELOPE_HEADER_MISMATCH' }, { to: 'VN-CUSTOMS' });
  // Header members, payload, time and order of checks (protocol.md §9.1, §9.2).
  const receiptAs = (r, header, payload = JSON.stringify(r)) => {
    const p = b64(payload);
    return encodeEnvelope({ payload: p, signatures: [resign(ng.privateJwk, header, p)] });
  };
  add('receipt-extra-header-member', 'receipt', 'A validly signed receipt whose protected header has one more member ("cty").', receiptAs(receipt, { ...rHeader, cty: 'json' }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });
  add('receipt-payload-not-json', 'receipt', 'A validly signed receipt whose payload is not JSON.', receiptAs(receipt, rHeader, 'receipt'), { ok: false, code: 'ERR_PAYLOAD_MALFORMED' });
  add('receipt-invalid-and-mismatched', 'receipt', 'A receipt with a member the schema does not allow and a receipt_id that differs: the schema is checked first.', receiptAs({ ...receipt, note: 'x' }, { ...rHeader, receipt_id: '0169fb6c-1a80-7000-8000-0000000001ff' }), { ok: false, code: 'ERR_RECEIPT_INVALID' });
  const later = { ...receipt, committedAt: '2019-04-08T04:05:00.001Z' };
  add('receipt-issued-at-future', 'receipt', 'committedAt and issued_at 5 minutes and 1 ms after verifyAt.', receiptAs(later, { ...rHeader, issued_at: later.committedAt }), { ok: false, code: 'ERR_ISSUED_AT_FUTURE' });
  add('receipt-issued-at-other-spelling', 'receipt', 'issued_at 2019-04-08T11:15:03.250+08:00 for a committedAt of 2019-04-08T03:15:03.250Z: the same instant, another string.', receiptAs(receipt, { ...rHeader, issued_at: '2019-04-08T11:15:03.250+08:00' }), { ok: false, code: 'ERR_ENVELOPE_HEADER_MISMATCH' });
  const noticeAs = (n, header, payload = JSON.stringify(n)) => {
    const p = b64(payload);
    return encodeEnvelope({ payload: p, signatures: [resign(k.hub.privateJwk, header, p)] });
  };
  add('notice-extra-header-member', 'notice', 'A notice signed by the hub whose protected header has one more member ("cty").', noticeAs(notice, { ...nHeader, cty: 'json' }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' }, { to: 'SG-NPARKS' });
  add('notice-schema-invalid', 'notice', 'A notice signed by the hub with no events (the schema wants 1 to 5,000): the code is ERR_RECEIPT_INVALID, as for a receipt.', noticeAs({ ...notice, events: [] }, nHeader), { ok: false, code: 'ERR_RECEIPT_INVALID' }, { to: 'SG-NPARKS' });
  const late = { ...notice, issuedAt: '2029-01-01T00:00:01Z' };
  add('notice-key-not-valid-at', 'notice', "A notice issued one second after the hub key's notAfter: the key is checked at issued_at, before the time is compared with the clock.", noticeAs(late, { ...nHeader, issued_at: late.issuedAt }), { ok: false, code: 'ERR_KEY_NOT_VALID_AT' }, { to: 'SG-NPARKS' });
  // The size limit (protocol.md §5.1 step 1, §9.1 step 2, §9.2 step 1): the envelope's 262,144
  // bytes, for receipts as for notices (the inbound alert's 253,952 is not theirs).
  add('receipt-at-size-limit', 'receipt', `valid-receipt with spaces after the payload's opening brace, signed as sent: ${MAX_ENVELOPE_BYTES} bytes in all, the largest envelope a verifier must accept.`, paddedTo(MAX_ENVELOPE_BYTES, JSON.stringify(receipt), (json) => receiptAs(receipt, rHeader, json)), { ok: true, receipt, kid: ng.publicJwk.kid });
  add('receipt-too-large', 'receipt', `valid-receipt followed by zero bytes up to ${MAX_ENVELOPE_BYTES + 1} bytes in all (\`paddedTo\`): refused unread.`, receiptBytes, { ok: false, code: 'ERR_ENVELOPE_TOO_LARGE' }, { paddedTo: MAX_ENVELOPE_BYTES + 1 });
  add('notice-at-size-limit', 'notice', `valid-notice with spaces after the payload's opening brace, signed as sent: ${MAX_ENVELOPE_BYTES} bytes in all, the largest envelope a verifier must accept.`, paddedTo(MAX_ENVELOPE_BYTES, JSON.stringify(notice), (json) => noticeAs(notice, nHeader, json)), { ok: true, notice, kid: k.hub.publicJwk.kid }, { to: 'SG-NPARKS' });
  add('notice-too-large', 'notice', `valid-notice followed by zero bytes up to ${MAX_ENVELOPE_BYTES + 1} bytes in all (\`paddedTo\`): refused unread.`, encodeEnvelope(signedNotice), { ok: false, code: 'ERR_ENVELOPE_TOO_LARGE' }, { to: 'SG-NPARKS', paddedTo: MAX_ENVELOPE_BYTES + 1 });
  // The subject, and a receipt for a copy under the one countersignature per decision (§3.2).
  add('receipt-subject-invalid', 'receipt', 'valid-receipt read on ahub.in.NG-CUSTOMS.seizure-report: not a receipt subject.', receiptBytes, { ok: false, code: 'ERR_SUBJECT_INVALID' }, { subject: 'ahub.in.NG-CUSTOMS.seizure-report' });
  add('receipt-subject-other-agency', 'receipt', "valid-receipt (signed by NG-CUSTOMS) read on SG-NPARKS's receipt subject.", receiptBytes, { ok: false, code: 'ERR_SUBJECT_MISMATCH' }, { subject: receiptSubject('SG-NPARKS') });
  add('notice-subject-mismatch', 'notice', 'valid-notice read by SG-NPARKS on ahub.feed.SG-NPARKS.HUB.seizure-report: not its notice subject.', encodeEnvelope(signedNotice), { ok: false, code: 'ERR_SUBJECT_MISMATCH' }, { to: 'SG-NPARKS', subject: 'ahub.feed.SG-NPARKS.HUB.seizure-report' });
  // A payload that is JSON but not an object (protocol.md §4.2, §9.1 step 5, §9.2 step 4): the schema refuses it.
  add('receipt-payload-not-an-object', 'receipt', 'A validly signed receipt whose payload is JSON but not an object (an array holding the receipt): the schema refuses it, ERR_RECEIPT_INVALID (an alert payload that is not an object is ERR_ENVELOPE_MALFORMED).', receiptAs(receipt, rHeader, JSON.stringify([receipt])), { ok: false, code: 'ERR_RECEIPT_INVALID' });
  add('notice-payload-not-an-object', 'notice', 'A notice signed by the hub whose payload is JSON but not an object (an array holding the notice): the schema refuses it, ERR_RECEIPT_INVALID.', noticeAs(notice, nHeader, JSON.stringify([notice])), { ok: false, code: 'ERR_RECEIPT_INVALID' }, { to: 'SG-NPARKS' });
  const tree = (await buildRouteTreeVectors()).copies.find((c) => c.recipient === 'NG-CUSTOMS');
  const treeReceipt = { ...receipt, receipt: '0169fb6c-1a80-7000-8000-000000000102', deliveries: [{ alertId: alert.id, origin: 'SG-NPARKS', envelopeSha256: tree.sha256 }] };
  add('valid-receipt-route-tree-copy', 'receipt', "NG-CUSTOMS's receipt for the routed copy `forwardedTree` (the route-tree countersignature of route-tree.json, the form the router sends).", encodeEnvelope(await signReceipt(treeReceipt, ngKey)), { ok: true, receipt: treeReceipt, kid: ng.publicJwk.kid });
  return { forwarded: { envelope: hex(forwarded), sha256: sha256Hex(forwarded), recipient: 'NG-CUSTOMS' }, forwardedTree: { envelope: tree.envelope, sha256: tree.sha256, recipient: 'NG-CUSTOMS' }, vectors: v, ngJwks: { principal: 'NG-CUSTOMS', role: 'agency', name: 'Nigeria Customs Service (test vectors)', keys: [ng.publicJwk] } };
}

async function main() {
  const dir = fileURLToPath(new URL('./', import.meta.url));
  const { forwarded, forwardedTree, vectors, ngJwks } = await buildStatementVectors();
  writeFileSync(`${dir}trust/NG-CUSTOMS.jwks.json`, `${JSON.stringify(ngJwks, null, 2)}\n`);
  writeFileSync(`${dir}statements.json`, `${JSON.stringify({ verifyAt: VECTOR_TIME, forwarded, forwardedTree, vectors }, null, 2)}\n`);
  console.log(`wrote ${vectors.length} statement vectors to ${dir}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
