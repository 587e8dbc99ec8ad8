import { sign } from 'node:crypto';
import { Encoder } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';
import {
  ErrorCode,
  decodeEnvelope,
  encodeEnvelope,
  parseAgreements,
  parseJsonBytes,
  parseJsonText,
  parseRfc3339,
  signAlert,
  verifyOrigin,
  type GeneralJws,
} from '@alert-hub/core';
import { makeKey, registry, seizureReport, seizureReportV2, trustOf } from './helpers.js';

// Attacker's review, finding 8: what the hub reads must be what every partner reads.
const sg = makeKey('SG-NPARKS');
const trust = trustOf([sg.jwks]);
const schemaId = registry.schemaIdFor('seizure-report', 1)!;
const now = new Date('2019-04-08T04:00:00Z');
const malformed = expect.objectContaining({ code: ErrorCode.PayloadMalformed }) as Error;

/** An envelope whose payload and protected header are exactly these base64url strings, validly signed. */
function signedAs(payload: string, protectedB64: string): GeneralJws {
  const signature = sign(
    null,
    Buffer.from(`${protectedB64}.${payload}`),
    sg.key.privateKey,
  ).toString('base64url');
  return { payload, signatures: [{ protected: protectedB64, signature }] };
}

describe('parser differentials - JSON (I-JSON, RFC 7493)', () => {
  it('refuses a member named twice, at any depth, also when one spelling is escaped', () => {
    expect(() => parseJsonText('{"handling":"TLP:RED","handling":"TLP:AMBER"}')).toThrow(malformed);
    expect(() => parseJsonText('{"a":[{"origin":"VN","x":1,"origin":"SG"}]}')).toThrow(malformed);
    expect(() => parseJsonText('{"origin":"VN","\\u006frigin":"SG"}')).toThrow(malformed);
    // The same name in sibling objects, and names that only look alike, are fine.
    expect(parseJsonText('[{"a":1},{"a":2},{"a":{"a":3}}]')).toEqual([
      { a: 1 },
      { a: 2 },
      { a: { a: 3 } },
    ]);
    expect(parseJsonText('{"a":"\\"a\\":","b":"{\\"a\\":1}","A":1}')).toEqual({
      a: '"a":',
      b: '{"a":1}',
      A: 1,
    });
  });
  it('refuses a lone surrogate, escaped or not, in a value or a member name (RFC 7493 §2.1)', () => {
    for (const text of [
      '{"a":"\\ud800"}',
      '{"a":"x\\uDC00"}',
      '{"\\ud83d":1}',
      '["\\ude00\\ud83d"]',
      '{"a":"\ud800"}',
    ])
      expect(() => parseJsonText(text), text).toThrow(malformed);
    expect(parseJsonText('{"a":"\\ud83d\\ude00 \\u00e9"}')).toEqual({ a: '\u{1f600} é' });
  });

  it('refuses a UTF-8 byte-order mark', () => {
    expect(() => parseJsonBytes(Buffer.from('\ufeff{"a":1}'))).toThrow(malformed);
    expect(() => parseJsonText('\ufeff{"a":1}')).toThrow(malformed);
  });
  it('never quotes the text it could not parse', () => {
    try {
      parseJsonText('{"note":"SECRET-CONTAINER-MSCU1234565",');
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('SECRET');
    }
  });
  it('a validly signed alert with a duplicate member is refused by the verifier', async () => {
    const alert = seizureReport('SG-NPARKS');
    const jws = await signAlert(alert as never, sg.key, schemaId);
    const text = JSON.stringify(alert).replace('{', '{"handling":"TLP:RED",');
    const forged = signedAs(Buffer.from(text).toString('base64url'), jws.signatures[0]!.protected);
    await expect(verifyOrigin(forged, { trust, now })).rejects.toMatchObject({
      code: ErrorCode.PayloadMalformed,
    });
  });
});

describe('parser differentials - the envelope', () => {
  it('refuses a msgpack map that names a key twice (an unsigned payload, then a signed one)', async () => {
    const jws = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    // Hand-built: fixmap of 3 entries, "payload" twice.
    const enc = new Encoder();
    const parts = [
      Uint8Array.of(0x83),
      enc.encode('payload'),
      enc.encode('unsigned'),
      enc.encode('payload'),
      enc.encode(jws.payload),
      enc.encode('signatures'),
      enc.encode(jws.signatures),
    ];
    const bytes = Buffer.concat(parts);
    expect(() => decodeEnvelope(bytes)).toThrow(
      expect.objectContaining({ code: ErrorCode.EnvelopeMalformed }),
    );
    const sigTwice = Buffer.concat([
      Uint8Array.of(0x82),
      enc.encode('payload'),
      enc.encode(jws.payload),
      enc.encode('signatures'),
      Uint8Array.of(0x91, 0x83),
      enc.encode('protected'),
      enc.encode(jws.signatures[0]!.protected),
      enc.encode('signature'),
      enc.encode('AAAA'),
      enc.encode('signature'),
      enc.encode(jws.signatures[0]!.signature),
    ]);
    expect(() => decodeEnvelope(sigTwice)).toThrow(
      expect.objectContaining({ code: ErrorCode.EnvelopeMalformed }),
    );
    expect(decodeEnvelope(encodeEnvelope(jws))).toEqual(jws);
  });
  it('refuses non-canonical base64url in the payload and the protected header, even when signed as spelt', async () => {
    const jws = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    const std = (b64u: string) => Buffer.from(b64u, 'base64url').toString('base64');
    // Each member's text lengthened with JSON whitespace until its base64url has unused bits
    // (accepted as it stands), so every case below runs whatever the alert.
    const lengthened = (b64u: string) => {
      let bytes = Buffer.from(b64u, 'base64url');
      while (bytes.length % 3 === 0) bytes = Buffer.concat([bytes, Buffer.from(' ')]);
      return bytes.toString('base64url');
    };
    // Non-zero unused bits in the last character: Node's lenient decoder reads the same bytes.
    const unusedBitsSet = (b64u: string) => {
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const spelt = b64u.slice(0, -1) + alphabet[alphabet.indexOf(b64u.at(-1)!) + 1]!;
      expect(Buffer.from(spelt, 'base64url')).toEqual(Buffer.from(b64u, 'base64url'));
      return spelt;
    };
    const payload = lengthened(jws.payload);
    const header = lengthened(jws.signatures[0]!.protected);
    await expect(verifyOrigin(signedAs(payload, header), { trust, now })).resolves.toBeDefined();
    const variants: [string, string][] = [
      [std(payload), header], // padding (and + and / where they occur)
      [payload, std(header)],
      [`${payload}=`, header], // a padding character after unpadded text
      [unusedBitsSet(payload), header],
      [payload, unusedBitsSet(header)],
    ];
    for (const [p, h] of variants)
      await expect(verifyOrigin(signedAs(p, h), { trust, now })).rejects.toMatchObject({
        code: ErrorCode.EnvelopeMalformed,
      });
  });
  it('refuses any byte outside ASCII in any string of the envelope, valid UTF-8 or not, short or long', async () => {
    const jws = await signAlert(seizureReport('SG-NPARKS') as never, sg.key, schemaId);
    const enc = new Encoder();
    const sig = jws.signatures[0]!;
    /** A msgpack str 32 holding exactly these bytes. */
    const str = (bytes: Buffer) => {
      const h = Buffer.alloc(5);
      h[0] = 0xdb;
      h.writeUInt32BE(bytes.length, 1);
      return Buffer.concat([h, bytes]);
    };
    const envelope = (
      payload: Buffer,
      protectedB64 = Buffer.from(sig.protected),
      signature = Buffer.from(sig.signature),
    ) =>
      Buffer.concat([
        Uint8Array.of(0x82),
        enc.encode('payload'),
        str(payload),
        enc.encode('signatures'),
        Uint8Array.of(0x91, 0x82),
        enc.encode('protected'),
        str(protectedB64),
        enc.encode('signature'),
        str(signature),
      ]);
    const p = Buffer.from(jws.payload);
    expect(decodeEnvelope(envelope(p))).toEqual(jws);
    for (const bytes of [
      Buffer.concat([p, Buffer.from('é')]), // valid UTF-8
      Buffer.concat([p, Uint8Array.of(0xff)]), // invalid UTF-8, short enough to be kept as Latin-1
      Buffer.concat([p, Buffer.alloc(300, 'A'), Uint8Array.of(0xc3, 0x28)]), // invalid, replaced
      Buffer.concat([Uint8Array.of(0x80), p]),
    ])
      expect(() => decodeEnvelope(envelope(bytes))).toThrow(
        expect.objectContaining({ code: ErrorCode.EnvelopeMalformed }),
      );
    expect(() =>
      decodeEnvelope(envelope(p, Buffer.concat([Buffer.from(sig.protected), Buffer.from('ß')]))),
    ).toThrow(expect.objectContaining({ code: ErrorCode.EnvelopeMalformed }));
    // A str of up to 200 bytes, which @msgpack/msgpack decodes with its own lenient decoder: an
    // overlong form of an ASCII character, or a lead byte whose continuation is missing, reads as
    // ASCII there (Python's msgpack refuses the str), so it is refused on its bytes.
    const h = sig.signature.charCodeAt(0);
    const rest = Buffer.from(sig.signature.slice(1));
    expect(decodeEnvelope(envelope(p, undefined, Buffer.from(sig.signature)))).toEqual(jws);
    for (const first of [
      Uint8Array.of(0xc0 | (h >> 6), 0x80 | (h & 0x3f)), // overlong, two bytes
      Uint8Array.of(0xe0, 0x80 | (h >> 6), 0x80 | (h & 0x3f)), // overlong, three bytes
      Uint8Array.of(0xc3, h), // a lead byte, then an ASCII byte
    ])
      expect(
        () => decodeEnvelope(envelope(p, undefined, Buffer.concat([first, rest]))),
        Buffer.from(first).toString('hex'),
      ).toThrow(
        expect.objectContaining({
          code: ErrorCode.EnvelopeMalformed,
          message: 'envelope string holds a byte outside ASCII',
        }),
      );
  });
});

describe('ES256 signatures (protocol.md §3.3): any s, no low-s rule', () => {
  it('(r, s) and (r, n − s) both verify: an ES256 envelope has two valid spellings', async () => {
    const es = makeKey('SG-NPARKS', 'agency', 'ES256');
    const esTrust = trustOf([es.jwks]);
    const jws = await signAlert(seizureReport('SG-NPARKS') as never, es.key, schemaId);
    const sig = Buffer.from(jws.signatures[0]!.signature, 'base64url');
    const n = BigInt('0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551');
    const s = BigInt(`0x${sig.subarray(32).toString('hex')}`);
    const flipped = Buffer.concat([
      sig.subarray(0, 32),
      Buffer.from((n - s).toString(16).padStart(64, '0'), 'hex'),
    ]).toString('base64url');
    const other: GeneralJws = {
      payload: jws.payload,
      signatures: [{ ...jws.signatures[0]!, signature: flipped }],
    };
    expect(flipped).not.toBe(jws.signatures[0]!.signature);
    for (const j of [jws, other])
      await expect(verifyOrigin(j, { trust: esTrust, now })).resolves.toBeDefined();
  });
});

describe('parser differentials - one strict RFC 3339 parser', () => {
  it('refuses what RFC 3339 forbids and reads what it allows, one way', () => {
    for (const bad of [
      '2020-01-01T00:00:00+00',
      '2020-01-01T00:00:00+08',
      '2020-01-01T00:00:00+0800',
      '2020-01-01 00:00:00Z',
      '2020-01-01t00:00:00z',
      '2020-02-30T00:00:00Z',
      '2021-02-29T00:00:00Z',
      '2020-01-01T24:00:00Z',
      '2020-01-01T00:00:00',
      '2020-01-01',
      '2020-01-01T12:00:60Z', // a leap second can only be 23:59:60 UTC
      '2020-03-31T23:59:60Z', // ... at the end of June or December
    ])
      expect([bad, parseRfc3339(bad)]).toEqual([bad, undefined]);
    expect(parseRfc3339('2020-01-01T08:00:00+08:00')).toBe(Date.parse('2020-01-01T00:00:00Z'));
    expect(parseRfc3339('2020-01-01T00:00:00-00:00')).toBe(Date.parse('2020-01-01T00:00:00Z'));
    expect(parseRfc3339('2020-02-29T00:00:00.123456789Z')).toBe(
      Date.parse('2020-02-29T00:00:00.123Z'),
    );
    // A leap second reads as the last millisecond of its minute.
    expect(parseRfc3339('2016-12-31T23:59:60Z')).toBe(Date.parse('2016-12-31T23:59:59.999Z'));
    expect(parseRfc3339('2017-01-01T07:59:60+08:00')).toBe(Date.parse('2016-12-31T23:59:59.999Z'));
  });
  it('reads years 0001 to 9999 only, as written and after the offset', () => {
    for (const bad of [
      '0000-01-01T00:00:00Z',
      '0000-12-31T23:59:59Z',
      '0001-01-01T00:00:00+00:01', // 0000-12-31T23:59:00Z
      '9999-12-31T23:59:59-00:01', // 10000-01-01T00:00:59Z
      '9999-12-31T23:30:00-23:59',
    ])
      expect([bad, parseRfc3339(bad)]).toEqual([bad, undefined]);
    expect(parseRfc3339('0001-01-01T00:00:00Z')).toBe(-62_135_596_800_000);
    expect(parseRfc3339('0001-01-01T00:01:00+00:01')).toBe(-62_135_596_800_000);
    expect(parseRfc3339('9999-12-31T23:59:59.999999Z')).toBe(253_402_300_799_999);
    expect(parseRfc3339('9999-12-31T23:59:60Z')).toBe(253_402_300_799_999);
  });
  it('reads ASCII digits only', () => {
    for (const bad of ['٢٠١٩-٠٤-٠٨T03:15:00Z', '2019-04-08T0３:15:00Z', '2019-04-08T03:15:00.१Z'])
      expect([bad, parseRfc3339(bad)]).toEqual([bad, undefined]);
  });
  it('the schemas use it: an alert with an ISO 8601 offset is invalid, a leap second valid', () => {
    const a = seizureReport('SG-NPARKS') as Record<string, unknown>;
    expect(registry.checkAlert({ ...a, issuedAt: '2019-04-08T11:00:00+08' }).ok).toBe(false);
    expect(registry.checkAlert({ ...a, issuedAt: '2019-04-08 03:00:00Z' }).ok).toBe(false);
    expect(registry.checkAlert({ ...a, issuedAt: '2016-12-31T23:59:60Z' }).ok).toBe(true);
  });
  it('the rules of version 2 read times with it too: a leap second with a fraction is an instant', () => {
    const a = seizureReportV2('SG-NPARKS'); // issued 2019-04-08T03:15:00Z
    const at = (expiresAt: string) => registry.checkAlert({ ...a, expiresAt });
    expect(at('2019-06-30T23:59:60.5Z').ok).toBe(true);
    expect(at('2019-07-01T07:59:60.25+08:00').ok).toBe(true);
    const early = at('2018-12-31T23:59:60.5Z');
    expect(!early.ok && [early.error.code, early.error.issues.map((i) => i.pointer)]).toEqual([
      ErrorCode.SchemaInvalid,
      ['/expiresAt'],
    ]);
  });
});

describe('parser differentials - unparseable times are refused at load', () => {
  const agreement = (validUntil: string) => ({
    agreements: [
      {
        id: 'SG-VN',
        version: 1,
        title: 't',
        parties: ['SG', 'VN'],
        alertTypes: ['seizure-report'],
        maxHandling: 'TLP:AMBER',
        validFrom: '2019-01-01T00:00:00Z',
        validUntil,
      },
    ],
  });
  it('an agreement whose validUntil has an ISO 8601 offset (it would never expire) is refused', () => {
    expect(() => parseAgreements(agreement('2020-01-01T00:00:00+00'), registry)).toThrow(
      expect.objectContaining({ code: ErrorCode.AgreementsInvalid }),
    );
    expect(parseAgreements(agreement('2020-06-30T23:59:60Z'), registry).agreements).toHaveLength(1);
  });
  it('a key whose notAfter has an ISO 8601 offset is refused', () => {
    const jwks = {
      ...sg.jwks,
      keys: sg.jwks.keys.map((k) => ({ ...k, notAfter: '2020-01-01T00:00:00+00' })),
    };
    expect(() => trustOf([jwks])).toThrow();
  });
});
