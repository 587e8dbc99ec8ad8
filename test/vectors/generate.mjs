#!/usr/bin/env node
// Builds the protocol test vectors in this directory. Run from the repository root after
// `npm run build`:  node test/vectors/generate.mjs
//
// No private key file is committed: the keys are the Ed25519 example key of RFC 8037 §A.1 and
// keys derived from the published seeds below, so anyone can regenerate every Ed25519 vector
// byte for byte (Ed25519 signatures are deterministic). The ES256 vector is not reproducible
// (ECDSA uses a random nonce); its committed bytes are checked for verification only.
import { createECDH, createHash, createPrivateKey, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { encode } from '@msgpack/msgpack';
import { countersign, encodeEnvelope, importSigningKey, jwkThumbprint, signAlert } from '@alert-hub/core';

export const VECTOR_TIME = '2019-04-08T04:00:00Z';
const SCHEMA = 'https://schemas.alert-hub.example/alerts/seizure-report/v1.json';

function ed25519FromSeed(seed) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
  return { kty: 'OKP', crv: 'Ed25519', x: jwk.x, d: jwk.d };
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
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(seedOf('alert-hub test vector es256 key'));
  const pt = ecdh.getPublicKey();
  const vn = withMeta(
    { kty: 'EC', crv: 'P-256', x: pt.subarray(1, 33).toString('base64url'), y: pt.subarray(33).toString('base64url'), d: ecdh.getPrivateKey().toString('base64url') },
    'ES256',
    validity,
  );
  return { sg, hub, ke, vn };
}

export function vectorTrust() {
  const k = vectorKeys();
  return {
    'SG-NPARKS.jwks.json': { principal: 'SG-NPARKS', role: 'agency', name: 'National Parks Board, Singapore (test vectors)', keys: [k.sg.publicJwk] },
    'VN-CUSTOMS.jwks.json': { principal: 'VN-CUSTOMS', role: 'agency', name: 'General Department of Viet Nam Customs (test vectors)', keys: [k.vn.publicJwk] },
    'KE-KWS.jwks.json': { principal: 'KE-KWS', role: 'agency', name: 'Kenya Wildlife Service (test vectors)', keys: [k.ke.publicJwk] },
    'HUB.jwks.json': { principal: 'HUB', role: 'router', name: 'alert-hub router (test vectors)', keys: [k.hub.publicJwk] },
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
  add('valid-routed', 'The same alert with the router countersignature for VN-CUSTOMS, as it travels on the feed.', encodeEnvelope(routed), { ok: true, alert, kid: k.sg.publicJwk.kid, route }, { recipient: 'VN-CUSTOMS' });

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
  vectors.push({
    name: 'valid-es256',
    description: 'An ES256 (P-256) alert. ECDSA signatures are randomised: these bytes verify but do not regenerate.',
    envelope: hex(encodeEnvelope(await signAlert(vnAlert, vnKey, SCHEMA))),
    expected: { ok: true, alert: vnAlert, kid: k.vn.publicJwk.kid },
    deterministic: false,
  });
  writeFileSync(`${dir}vectors.json`, `${JSON.stringify({ verifyAt: VECTOR_TIME, vectors }, null, 2)}\n`);
  console.log(`wrote ${vectors.length} vectors to ${dir}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
