#!/usr/bin/env node
// Builds the protocol test vectors in this directory. Run from the repository root after
// `npm run build`:  node test/vectors/generate.mjs
//
// No private key file is committed: the keys are the Ed25519 example key of RFC 8037 §A.1 and
// keys derived from the published seeds below, so anyone can regenerate every Ed25519 vector
// byte for byte (Ed25519 signatures are deterministic). The ES256 vector is not reproducible
// (ECDSA uses a random nonce); its committed bytes are checked for verification only.
import { createECDH, createHash, createPrivateKey, sign } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encode } from '@msgpack/msgpack';
import { countersign, encodeEnvelope, importSigningKey, jwkThumbprint, signAlert } from '@alert-hub/core';

export const VECTOR_TIME = '2019-04-08T04:00:00Z';
/** The envelope size limit (protocol.md §4): a vector `paddedTo` it is one byte over. */
export const MAX_ENVELOPE_BYTES = 262_144;
const SCHEMA = 'https://schemas.alert-hub.example/alerts/seizure-report/v1.json';

function ed25519FromSeed(seed) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d };
}

function p256FromSeed(seed) {
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(seed);
  const pt = ecdh.getPublicKey();
  return { kty: 'EC', crv: 'P-256', x: pt.subarray(1, 33).toString('base64url'), y: pt.subarray(33).toString('base64url'), d: ecdh.getPrivateKey().toString('base64url') };
}

function seedOf(label) {
  return createHash('sha256').update(label).digest();
}

function withMeta(jwk, alg, validity) {
  const { d, ...pub } = jwk;
  const kid = jwkThumbprint(pub);
  const publicJwk = { ...pub, kid, alg, use: 'sig', ...validity };
  return { privateJwk: { ...publicJwk, d }, publicJwk };
}

/** The keys of the vectors. */
export function vectorKeys() {
  const validity = { notBefore: '2019-01-01T00:00:00Z', notAfter: '2029-01-01T00:00:00Z' };
  // RFC 8037 Appendix A.1: the Ed25519 example key.
  const sg = withMeta(
    { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A' },
    'EdDSA',
    validity,
  );
  const hub = withMeta(ed25519FromSeed(seedOf('alert-hub test vector router key')), 'EdDSA', validity);
  const ke = withMeta(ed25519FromSeed(seedOf('alert-hub test vector revoked key')), 'EdDSA', validity);
  const vn = withMeta(p256FromSeed(seedOf('alert-hub test vector es256 key')), 'ES256', validity);
  // The router's second key, ES256 (P-256): a router may sign with either algorithm (§3.2).
  const hubEs = withMeta(p256FromSeed(seedOf('alert-hub test vector es256 router key')), 'ES256', validity);
  return { sg, hub, ke, vn, hubEs };
}

export function vectorTrust() {
  const k = vectorKeys();
  return {
    'SG-NPARKS.jwks.json': { principal: 'SG-NPARKS', role: 'agency', name: 'National Parks Board, Singapore (test vectors)', keys: [k.sg.publicJwk] },
    'VN-CUSTOMS.jwks.json': { principal: 'VN-CUSTOMS', role: 'agency', name: 'General Department of Viet Nam Customs (test vectors)', keys: [k.vn.publicJwk] },
    'KE-KWS.jwks.json': { principal: 'KE-KWS', role: 'agency', name: 'Kenya Wildlife Service (test vectors)', keys: [k.ke.publicJwk] },
    'HUB.jwks.json': { principal: 'HUB', role: 'router', name: 'alert-hub router (test vectors)', keys: [k.hub.publicJwk, k.hubEs.publicJwk] },
    'revoked.json': { revoked: [{ kid: k.ke.publicJwk.kid, principal: 'KE-KWS', revokedAt: '2019-03-01T00:00:00Z', reason: 'keyCompromise' }] },
  };
}

export function vectorAlert(origin = 'SG-NPARKS', id = '0169fb6c-1a80-7000-8000-000000000001') {
  return {
    id,
    type: 'seizure-report',
    version: 1,
    origin,
    issuedAt: '2019-04-08T03:15:00Z',
    handling: 'TLP:AMBER',
    seizure: {
      date: '2019-04-08',
      location: { country: 'SG', locode: 'SGSIN' },
      commodities: [{ taxon: { scientificName: 'Manis gigantea', citesAppendix: 'I' }, product: 'scales', quantity: { value: 12.9, unit: 't' } }],
      shipment: { mode: 'sea', containers: ['CSQU3054383'], route: { origin: 'NGAPP', destination: 'VNHPH' } },
    },
  };
}

const b64 = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

function resign(privateJwk, header, payloadB64) {
  const p = b64(header);
  const key = createPrivateKey({ key: privateJwk, format: 'jwk' });
  return { protected: p, signature: sign(null, Buffer.from(`${p}.${payloadB64}`), key).toString('base64url') };
}

function headerOf(alert, kid) {
  return { alg: 'EdDSA', kid, typ: 'ahub-alert+jws', agency: alert.origin, alert_id: alert.id, alert_type: alert.type, schema: SCHEMA, issued_at: alert.issuedAt };
}

const hex = (bytes) => Buffer.from(bytes).toString('hex');

/** Every vector; `deterministic` ones regenerate byte for byte. */
export async function buildVectors() {
  const k = vectorKeys();
  const sgKey = importSigningKey(k.sg.privateJwk, 'SG-NPARKS');
  const hubKey = importSigningKey(k.hub.privateJwk, 'HUB');
  const alert = vectorAlert();
  const origin = await signAlert(alert, sgKey, SCHEMA);
  const route = { recipient: 'VN-CUSTOMS', agreement: { id: 'WEN-ASIA-AFRICA', version: 3 }, routed_at: '2019-04-08T03:15:02Z', onward: false, alert_id: alert.id };
  const routed = await countersign(origin, hubKey, route);
  const v = [];
  const add = (name, description, bytes, expected, extra = {}) => v.push({ name, description, envelope: hex(bytes), expected, deterministic: true, ...extra });

  add('valid-origin', 'An alert signed by its origin agency (EdDSA), as it travels on ahub.in.SG-NPARKS.seizure-report.', encodeEnvelope(origin), { ok: true, alert, kid: k.sg.publicJwk.kid });
  add('valid-routed', 'The same alert with the retired per-copy countersignature (protocol.md §3.4) for VN-CUSTOMS: it opens for a verifier that accepts that form; one that refuses it gives refusedWith.', encodeEnvelope(routed), { ok: true, alert, kid: k.sg.publicJwk.kid, route }, { recipient: 'VN-CUSTOMS', refusedWith: 'ERR_ROUTE_FORM_RETIRED' });

  const tamperedPayload = b64({ ...alert, handling: 'TLP:CLEAR' });
  add('bad-signature', 'The payload was changed after signing (handling lowered to TLP:CLEAR).', encodeEnvelope({ payload: tamperedPayload, signatures: origin.signatures }), { ok: false, code: 'ERR_SIGNATURE_INVALID' });

  const none = { protected: b64({ ...headerOf(alert, k.sg.publicJwk.kid), alg: 'none' }), signature: '' };
  add('alg-none', 'alg "none" is refused before any cryptography.', encodeEnvelope({ payload: origin.payload, signatures: [none] }), { ok: false, code: 'ERR_JWS_ALG_NOT_ALLOWED' });

  add('key-of-another-principal', "Signed with the router's key but claiming agency SG-NPARKS.", encodeEnvelope({ payload: origin.payload, signatures: [resign(k.hub.privateJwk, headerOf(alert, k.hub.publicJwk.kid), origin.payload)] }), { ok: false, code: 'ERR_KEY_AGENCY_MISMATCH' });

  add('unknown-kid', 'A kid that is not in the trust store.', encodeEnvelope({ payload: origin.payload, signatures: [resign(k.sg.privateJwk, headerOf(alert, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'), origin.payload)] }), { ok: false, code: 'ERR_KEY_UNKNOWN' });

  const keAlert = vectorAlert('KE-KWS', '0169fb6c-1a80-7000-8000-000000000002');
  const kePayload = b64(keAlert);
  add('revoked-key', 'Signed by KE-KWS with a key listed in revoked.json.', encodeEnvelope({ payload: kePayload, signatures: [resign(k.ke.privateJwk, headerOf(keAlert, k.ke.publicJwk.kid), kePayload)] }), { ok: false, code: 'ERR_KEY_REVOKED' });

  add('header-mismatch', 'A validly signed header whose alert_id differs from the payload.', encodeEnvelope({ payload: origin.payload, signatures: [resign(k.sg.privateJwk, { ...headerOf(alert, k.sg.publicJwk.kid), alert_id: '0169fb6c-1a80-7000-8000-0000000000ff' }, origin.payload)] }), { ok: false, code: 'ERR_ENVELOPE_HEADER_MISMATCH' });

  add('crit-header', 'A crit extension; alert-hub understands none.', encodeEnvelope({ payload: origin.payload, signatures: [resign(k.sg.privateJwk, { ...headerOf(alert, k.sg.publicJwk.kid), crit: ['exp'], exp: 1 }, origin.payload)] }), { ok: false, code: 'ERR_JWS_CRIT_UNSUPPORTED' });

  const s = origin.signatures[0].signature;
  const last = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const alt = last[last.indexOf(s.at(-1)) ^ 1];
  add('non-canonical-signature', 'The signature with the unused low bits of its last base64url character set: same bytes, different spelling.', encodeEnvelope({ payload: origin.payload, signatures: [{ ...origin.signatures[0], signature: s.slice(0, -1) + alt }] }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });

  add('not-msgpack', 'Bytes that are not a msgpack map.', Buffer.from('{"payload":"e30","signatures":[]}'), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });
  add('extra-member', 'A msgpack map with a member beyond payload and signatures.', encode({ payload: origin.payload, signatures: origin.signatures, header: {} }), { ok: false, code: 'ERR_ENVELOPE_MALFORMED' });

  // ---- the header, the key and the time (protocol.md §5, in the order of its table) ----
  const sg = k.sg.privateJwk;
  const sgKid = k.sg.publicJwk.kid;
  /** `alert` (or the exact payload text or bytes) signed by SG-NPARKS under its header with `overrides`. */
  const signedBy = (privateJwk, kid, a, overrides = {}, payload = JSON.stringify(a)) => {
    const p = Buffer.from(payload).toString('base64url');
    return encodeEnvelope({ payload: p, signatures: [resign(privateJwk, { ...headerOf(a, kid), ...overrides }, p)] });
  };
  const signed = (a, overrides, payload) => signedBy(sg, sgKid, a, overrides, payload);
  const refused = (code) => ({ ok: false, code });
  add('wrong-typ', 'An alert whose header says ahub-receipt+jws.', signed(alert, { typ: 'ahub-receipt+jws' }), refused('ERR_ENVELOPE_MALFORMED'));
  add('b64-header', 'A header with "b64": true (RFC 7797); alert-hub refuses the member whatever its value.', signed(alert, { b64: true }), refused('ERR_ENVELOPE_MALFORMED'));
  add('alg-not-the-keys', 'Signed with the Ed25519 key but the header says ES256: the key is found, then its alg differs.', signed(alert, { alg: 'ES256' }), refused('ERR_JWS_ALG_NOT_ALLOWED'));
  const before = { ...alert, issuedAt: '2018-12-31T23:59:59Z' };
  add('key-not-valid-at', "issued_at before the key's notBefore (2019-01-01T00:00:00Z).", signed(before), refused('ERR_KEY_NOT_VALID_AT'));
  const keBefore = { ...keAlert, issuedAt: '2018-12-31T23:59:59Z' };
  add('revoked-and-not-valid-at', 'A revoked key and an issued_at outside its validity: revocation is checked first.', signedBy(k.ke.privateJwk, k.ke.publicJwk.kid, keBefore), refused('ERR_KEY_REVOKED'));
  const lower = { ...alert, issuedAt: '2019-04-08T03:15:00z' };
  add('time-lower-case-z-and-unknown-kid', 'issued_at (and issuedAt) with a lower-case z, under an unknown kid: the time is read before the key is looked up.', signedBy(sg, 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', lower), refused('ERR_ENVELOPE_MALFORMED'));
  const fraction = { ...alert, issuedAt: '2019-04-08T03:15:00.123456789Z' };
  add('time-nine-fraction-digits', 'issuedAt with nine fractional digits: valid (read to the millisecond).', signed(fraction), { ok: true, alert: fraction, kid: sgKid });
  const ahead = { ...alert, issuedAt: '2019-04-08T04:05:00Z' };
  add('issued-at-5-minutes-ahead', 'issuedAt exactly 5 minutes after verifyAt: accepted.', signed(ahead), { ok: true, alert: ahead, kid: sgKid });
  const future = { ...alert, issuedAt: '2019-04-08T04:05:00.001Z' };
  add('issued-at-future', 'issuedAt 5 minutes and 1 ms after verifyAt.', signed(future), refused('ERR_ISSUED_AT_FUTURE'));
  add('issued-at-other-spelling', 'issued_at 2019-04-08T11:15:00+08:00 for an issuedAt of 2019-04-08T03:15:00Z: the same instant, another string.', signed(alert, { issued_at: '2019-04-08T11:15:00+08:00' }), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  add('schema-other-version', 'A version-1 alert whose header names the version-2 schema.', signed(alert, { schema: 'https://schemas.alert-hub.example/alerts/seizure-report/v2.json' }), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  add('schema-missing', 'A version-1 alert under a header without "schema": a schema is registered for its type and version, so the header must name it (protocol.md §3.1).', signed(alert, { schema: undefined }), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  // Step 19 compares strings only; step 20 finds a schema for a number only (never for true or "1").
  const idNumber = JSON.stringify(alert).replace(`"id":"${alert.id}"`, '"id":5');
  add('header-alert-id-number', 'The payload\'s id and the header\'s alert_id are both the number 5: equal, but not strings.', signed(alert, { alert_id: 5 }, idNumber), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  const versionTrue = JSON.stringify(alert).replace('"version":1,', '"version":true,');
  add('version-true-under-v1-schema', 'The payload\'s version is true under a header naming the version-1 schema: true is no number, so no schema is registered for it.', signed(alert, {}, versionTrue), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  const { schema: _s1, ...headerNoSchema } = headerOf(alert, sgKid);
  const versionText = b64(JSON.parse(JSON.stringify(alert).replace('"version":1,', '"version":"1",')));
  add('version-string-without-schema', 'The payload\'s version is the string "1" under a header without "schema": steps 19 and 20 pass, the schema step refuses it.', encodeEnvelope({ payload: versionText, signatures: [resign(sg, headerNoSchema, versionText)] }), refused('ERR_SCHEMA_INVALID'));
  add('version-string-schema-null', 'The payload\'s version is the string "1" under a header whose "schema" is null: no schema is registered, and only a header without "schema" passes step 20 (null is not absent).', encodeEnvelope({ payload: versionText, signatures: [resign(sg, { ...headerNoSchema, schema: null }, versionText)] }), refused('ERR_ENVELOPE_HEADER_MISMATCH'));
  const invalid = { ...alert, handling: 'TLP:PURPLE' };
  add('schema-invalid', 'A validly signed alert its schema refuses (handling TLP:PURPLE).', signed(invalid), refused('ERR_SCHEMA_INVALID'));
  const v9 = { ...alert, version: 9 };
  const { schema: _schema, ...noSchema } = headerOf(v9, sgKid);
  const v9Payload = b64(v9);
  add('schema-unknown', 'seizure-report version 9, under a header without "schema" (with one, the header would not match: ERR_ENVELOPE_HEADER_MISMATCH).', encodeEnvelope({ payload: v9Payload, signatures: [resign(sg, noSchema, v9Payload)] }), refused('ERR_SCHEMA_UNKNOWN'));

  // ---- the payload's JSON (protocol.md §4) ----
  const text = JSON.stringify(alert);
  add('json-duplicate-member', 'The payload names "handling" twice (TLP:CLEAR, then TLP:AMBER).', signed(alert, {}, text.replace('"handling":"TLP:AMBER"', '"handling":"TLP:CLEAR","handling":"TLP:AMBER"')), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-byte-order-mark', 'The payload starts with a UTF-8 byte-order mark.', signed(alert, {}, `\ufeff${text}`), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-invalid-utf8', 'The payload holds the byte 0xff in a string.', signed(alert, {}, Buffer.concat([Buffer.from(text.slice(0, -1)), Buffer.from(',"summary":"'), Buffer.from([0xff]), Buffer.from('"}')])), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-lone-surrogate', 'The payload has "summary": "\\ud800", a lone surrogate (RFC 7493 §2.1).', signed(alert, {}, `${text.slice(0, -1)},"summary":"\\ud800"}`), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-proto-key', 'The payload has a member "__proto__".', signed(alert, {}, `{"__proto__":{},${text.slice(1)}`), refused('ERR_PAYLOAD_MALFORMED'));
  const nested = (levels) => `${text.slice(0, -1)},"summary":${'['.repeat(levels)}${']'.repeat(levels)}}`;
  add('json-depth-32', 'The alert object (level 1) holds 31 nested arrays: 32 levels parse, and the schema then refuses the member.', signed(alert, {}, nested(31)), refused('ERR_SCHEMA_INVALID'));
  add('json-depth-33', 'The alert object (level 1) holds 32 nested arrays: 33 levels.', signed(alert, {}, nested(32)), refused('ERR_PAYLOAD_MALFORMED'));
  const respelt = origin.payload.slice(0, -1) + last[last.indexOf(origin.payload.at(-1)) ^ 1];
  add('payload-not-canonical', 'The payload spelt with the unused low bits of its last character set, and signed as spelt.', encodeEnvelope({ payload: respelt, signatures: [resign(sg, headerOf(alert, sgKid), respelt)] }), refused('ERR_ENVELOPE_MALFORMED'));
  add('signature-63-bytes', 'A signature one byte short.', encodeEnvelope({ payload: origin.payload, signatures: [{ ...origin.signatures[0], signature: Buffer.from(s, 'base64url').subarray(0, 63).toString('base64url') }] }), refused('ERR_SIGNATURE_INVALID'));

  // ---- the msgpack envelope (protocol.md §4) ----
  const sig0 = origin.signatures[0];
  /** A msgpack str 32 or bin 32 (`first` 0xdb or 0xc6) holding `t`: the widest forms. */
  const wide32 = (first, t) => {
    const b = Buffer.from(t, 'utf8');
    const h = Buffer.alloc(5);
    h[0] = first;
    h.writeUInt32BE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  /** {@link wide32} for bytes already encoded. */
  const wide32Bytes = (first, b) => {
    const h = Buffer.alloc(5);
    h[0] = first;
    h.writeUInt32BE(b.length, 1);
    return Buffer.concat([h, b]);
  };
  const str = (t) => wide32(0xdb, t);
  const wide = Buffer.concat([
    Buffer.from([0xdf, 0, 0, 0, 2]), str('payload'), str(origin.payload), str('signatures'),
    Buffer.from([0xdd, 0, 0, 0, 1]), Buffer.from([0xdf, 0, 0, 0, 2]), str('signature'), str(sig0.signature), str('protected'), str(sig0.protected),
  ]);
  add('msgpack-widest-types', 'valid-origin with every map as map32, the array as array32, every string as str32, and the signature members in the other order.', wide, { ok: true, alert, kid: sgKid });
  const tail = (...parts) => Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : encode(p))));
  add('msgpack-duplicate-key', 'A map of three entries naming "payload" twice (first a base64url of {}, then the signed payload).', tail(Buffer.from([0x83]), 'payload', 'e30', 'payload', origin.payload, 'signatures', origin.signatures), refused('ERR_ENVELOPE_MALFORMED'));
  add('msgpack-binary-payload', 'The payload as msgpack bin 32 holding its base64url text.', tail(Buffer.from([0x82]), 'payload', wide32(0xc6, origin.payload), 'signatures', origin.signatures), refused('ERR_ENVELOPE_MALFORMED'));
  add('msgpack-nil-payload', 'The payload as nil.', tail(Buffer.from([0x82]), 'payload', null, 'signatures', origin.signatures), refused('ERR_ENVELOPE_MALFORMED'));
  add('msgpack-integer-key', 'A map key that is the integer 1, not a string.', tail(Buffer.from([0x83]), 1, 'x', 'payload', origin.payload, 'signatures', origin.signatures), refused('ERR_ENVELOPE_MALFORMED'));
  add('msgpack-trailing-byte', 'valid-origin followed by one byte (0xc0, nil).', Buffer.concat([encodeEnvelope(origin), Buffer.from([0xc0])]), refused('ERR_ENVELOPE_MALFORMED'));
  add('zero-signatures', 'An empty signatures array.', encode({ payload: origin.payload, signatures: [] }), refused('ERR_ENVELOPE_MALFORMED'));
  add('three-signatures', 'Three signatures (the origin signature three times).', encode({ payload: origin.payload, signatures: [sig0, sig0, sig0] }), refused('ERR_ENVELOPE_MALFORMED'));
  add('too-large', `valid-origin followed by zero bytes up to ${MAX_ENVELOPE_BYTES + 1} bytes in all (\`paddedTo\`): refused unread.`, encodeEnvelope(origin), refused('ERR_ENVELOPE_TOO_LARGE'), { paddedTo: MAX_ENVELOPE_BYTES + 1 });
  add('feed-copy-without-countersignature', 'valid-origin read from the feed of VN-CUSTOMS: no router signature.', encodeEnvelope(origin), refused('ERR_SIGNATURE_MISSING'), { recipient: 'VN-CUSTOMS' });

  // ---- partner findings of session 26 (protocol.md §4.1, §4.2, §4.3, §5.1 step 25) ----
  /** An envelope whose payload str holds exactly these bytes, signed over them by SG-NPARKS (signing input read as Latin-1). */
  const rawPayload = (bytes, signature) => {
    const p = Buffer.from(sig0.protected);
    const sigText = signature ?? sign(null, Buffer.concat([p, Buffer.from('.'), bytes]), createPrivateKey({ key: sg, format: 'jwk' })).toString('base64url');
    return Buffer.concat([Buffer.from([0x82]), encode('payload'), wide32Bytes(0xdb, bytes), encode('signatures'), Buffer.from([0x91, 0x82]), encode('protected'), encode(sig0.protected), encode('signature'), encode(sigText)]);
  };
  add('msgpack-non-ascii-payload', 'The payload str ends with "é" (UTF-8 c3 a9), and the signer signed those two bytes: a byte outside ASCII in a str is refused while decoding.', rawPayload(Buffer.concat([Buffer.from(origin.payload), Buffer.from('é')])), refused('ERR_ENVELOPE_MALFORMED'));
  add('msgpack-invalid-utf8-payload', "The payload str ends with the byte 0xff (not UTF-8), under valid-origin's signature: refused while decoding, not at the signature.", rawPayload(Buffer.concat([Buffer.from(origin.payload), Buffer.from([0xff])]), sig0.signature), refused('ERR_ENVELOPE_MALFORMED'));
  // ---- identifier-corpus findings of session 38: overlong UTF-8 in a short str (protocol.md §4.1) ----
  /** `t` with its first character (ASCII) written as the overlong two-byte form C0|c>>6, 80|c&3f. */
  const overlong = (t) => Buffer.concat([Buffer.from([0xc0 | (t.charCodeAt(0) >> 6), 0x80 | (t.charCodeAt(0) & 0x3f)]), Buffer.from(t.slice(1))]);
  const overlongSignature = overlong(sig0.signature);
  add('msgpack-overlong-utf8-signature', `valid-origin with the signature's first character "${sig0.signature[0]}" written as the overlong UTF-8 pair ${overlongSignature.subarray(0, 2).toString('hex')} (str 8 of ${overlongSignature.length} bytes): not UTF-8, and not ASCII, so refused while decoding, though a lenient decoder reads the same signature.`, Buffer.concat([Buffer.from([0x82]), encode('payload'), encode(origin.payload), encode('signatures'), Buffer.from([0x91, 0x82]), encode('protected'), encode(sig0.protected), encode('signature'), Buffer.from([0xd9, overlongSignature.length]), overlongSignature]), refused('ERR_ENVELOPE_MALFORMED'));
  const overlongKey = overlong('payload');
  add('msgpack-overlong-utf8-key', `valid-origin with the key "payload" written with its "p" as the overlong UTF-8 pair ${overlongKey.subarray(0, 2).toString('hex')}: refused while decoding, as a key.`, Buffer.concat([Buffer.from([0x82, 0xa0 | overlongKey.length]), overlongKey, encode(origin.payload), encode('signatures'), encode(origin.signatures)]), refused('ERR_ENVELOPE_MALFORMED'));
  const member = (token) => `{"count":${token},${text.slice(1)}`;
  add('json-integer-beyond-2^53', 'The payload has "count":9007199254740993, an integer token beyond 2^53 - 1.', signed(alert, {}, member('9007199254740993')), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-integer-2^53-minus-1', 'The payload has "count":9007199254740991: it parses, and the schema then refuses the member.', signed(alert, {}, member('9007199254740991')), refused('ERR_SCHEMA_INVALID'));
  add('json-number-1e400', 'The payload has "count":1e400, beyond a double.', signed(alert, {}, member('1e400')), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-number-1e20', 'The payload has "count":1e20: not an integer token, but its value is an integer beyond 2^53 - 1.', signed(alert, {}, member('1e20')), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-number-9007199254740993.0', 'The payload has "count":9007199254740993.0, whose nearest double is 2^53.', signed(alert, {}, member('9007199254740993.0')), refused('ERR_PAYLOAD_MALFORMED'));
  add('json-number-9007199254740991.0', 'The payload has "count":9007199254740991.0, the value 2^53 - 1: it parses, and the schema then refuses the member.', signed(alert, {}, member('9007199254740991.0')), refused('ERR_SCHEMA_INVALID'));
  add('time-non-ascii-digits', 'issued_at written with Arabic-Indic digits (٢٠١٩-٠٤-٠٨T03:15:00Z): only 0-9 are digits.', signed(alert, { issued_at: '٢٠١٩-٠٤-٠٨T03:15:00Z' }), refused('ERR_ENVELOPE_MALFORMED'));
  add('time-year-0000', 'issued_at 0000-01-01T00:00:00Z: years are 0001 to 9999.', signed(alert, { issued_at: '0000-01-01T00:00:00Z' }), refused('ERR_ENVELOPE_MALFORMED'));
  add('time-year-10000-after-offset', 'issued_at 9999-12-31T23:59:59-00:01, which is in the year 10000 in UTC.', signed(alert, { issued_at: '9999-12-31T23:59:59-00:01' }), refused('ERR_ENVELOPE_MALFORMED'));
  // ---- partner findings of session 33: leap seconds (protocol.md §4.3) and lengths (§2.3) ----
  const leap = (expiresAt) => ({ ...alert, expiresAt });
  add('time-leap-second-any-year', 'expiresAt 2019-06-30T23:59:60Z: a leap second is read at 23:59:60 UTC on the last day of June or December of any year (none was announced for that day; no table is consulted).', signed(leap('2019-06-30T23:59:60Z')), { ok: true, alert: leap('2019-06-30T23:59:60Z'), kid: sgKid });
  add('time-leap-second-after-offset', 'expiresAt 2017-01-01T07:59:60+08:00, which is 2016-12-31T23:59:60 UTC: read.', signed(leap('2017-01-01T07:59:60+08:00')), { ok: true, alert: leap('2017-01-01T07:59:60+08:00'), kid: sgKid });
  add('time-leap-second-not-utc-midnight', 'expiresAt 2016-12-31T23:59:60+01:00, which is 22:59:60 UTC: not a place a leap second can be, so the schema refuses the date-time.', signed(leap('2016-12-31T23:59:60+01:00')), refused('ERR_SCHEMA_INVALID'));
  add('time-leap-second-in-march', 'issued_at 2019-03-31T23:59:60Z: a leap second only at the end of June or December.', signed(alert, { issued_at: '2019-03-31T23:59:60Z' }), refused('ERR_ENVELOPE_MALFORMED'));
  const astral = '\u{1F994}'; // HEDGEHOG, outside the BMP: one code point, two UTF-16 code units, four UTF-8 bytes
  const long = (member, n) => ({ ...alert, [member]: astral.repeat(n) });
  add('length-astral-case-reference-60', 'caseReference of 60 U+1F994 (120 UTF-16 code units): lengths count code points, so 60 is the limit and passes.', signed(long('caseReference', 60)), { ok: true, alert: long('caseReference', 60), kid: sgKid });
  add('length-astral-case-reference-61', 'caseReference of 61 U+1F994: one code point over the limit of 60.', signed(long('caseReference', 61)), refused('ERR_SCHEMA_INVALID'));
  add('length-astral-summary-4000', 'summary of 4,000 U+1F994 (8,000 UTF-16 code units, 16,000 UTF-8 bytes): at the limit of 4,000 code points.', signed(long('summary', 4000)), { ok: true, alert: long('summary', 4000), kid: sgKid });
  if (!text.includes('"version":1,')) throw new Error('the vector alert has no "version":1');
  add('version-1.0', 'The payload spells the version 1.0: a number whose value is 1, so version 1.', signed(alert, {}, text.replace('"version":1,', '"version":1.0,')), { ok: true, alert, kid: sgKid });
  return v;
}

async function main() {
  const dir = fileURLToPath(new URL('./', import.meta.url));
  mkdirSync(`${dir}trust`, { recursive: true });
  for (const [f, doc] of Object.entries(vectorTrust())) writeFileSync(`${dir}trust/${f}`, `${JSON.stringify(doc, null, 2)}\n`);
  const vectors = await buildVectors();
  const k = vectorKeys();
  const vnKey = importSigningKey(k.vn.privateJwk, 'VN-CUSTOMS');
  const vnAlert = vectorAlert('VN-CUSTOMS', '0169fb6c-1a80-7000-8000-000000000003');
  // ECDSA draws a nonce: keep the committed bytes while the alert they sign is the same.
  const file = `${dir}vectors.json`;
  const kept = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')).vectors.find((x) => x.name === 'valid-es256') : undefined;
  const same = kept && JSON.stringify(kept.expected.alert) === JSON.stringify(vnAlert);
  vectors.push({
    name: 'valid-es256',
    description: 'An ES256 (P-256) alert. ECDSA signatures are randomised: these bytes verify but do not regenerate.',
    envelope: same ? kept.envelope : hex(encodeEnvelope(await signAlert(vnAlert, vnKey, SCHEMA))),
    expected: { ok: true, alert: vnAlert, kid: k.vn.publicJwk.kid },
    deterministic: false,
  });
  writeFileSync(`${dir}vectors.json`, `${JSON.stringify({ verifyAt: VECTOR_TIME, vectors }, null, 2)}\n`);
  console.log(`wrote ${vectors.length} vectors to ${dir}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
