import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AlertHubError, ErrorCode, parseJsonBytes, parseJsonText } from '@alert-hub/core';

const refused = (text: string) =>
  expect(() => parseJsonText(text)).toThrow(
    expect.objectContaining({ code: ErrorCode.PayloadMalformed }),
  );

describe('json - strict parsing', () => {
  it('refuses prototype-poisoning keys, also when spelt with \\u escapes', () => {
    refused('{"__proto__":{"x":1}}');
    refused('{"a":{"constructor":{"prototype":{}}}}');
    refused('{"\\u005f_proto__":{"x":1}}');
    refused('[{"b":[{"\\u0063onstructor":1}]}]');
    expect(parseJsonText('{"note":"the constructor of the crate"}')).toEqual({
      note: 'the constructor of the crate',
    });
  });
  it('refuses nesting deeper than the limit, however deep', () => {
    refused('['.repeat(33) + ']'.repeat(33));
    refused('{"a":'.repeat(100_000) + '1' + '}'.repeat(100_000));
    expect(() => parseJsonText('['.repeat(32) + ']'.repeat(32))).not.toThrow();
  });
  it('refuses numbers other parsers read differently: integers beyond 2^53 - 1, magnitudes beyond a double', () => {
    refused('{"weight":9007199254740993}');
    refused('{"value":-9007199254740992}');
    refused('[12345678901234567890]');
    refused('{"quantity":1e400}');
    refused('{"quantity":-1e309}');
    refused('{"quantity":1e300}'); // an integer as a double, and far beyond 2^53
    // The rule is on the value (the nearest double), whatever the token's spelling.
    refused('{"quantity":1e20}');
    refused('{"quantity":9007199254740993.0}');
    refused('{"quantity":9007199254740992}');
    refused('{"quantity":2e53}');
    refused('{"quantity":9007199254740991.5}'); // rounds to 2^53
    expect(parseJsonText('[9007199254740991.0,-90071992547409910e-1,1e-400,1E2]')).toEqual([
      9007199254740991, -9007199254740991, 0, 100,
    ]);
    expect(
      parseJsonText('{"a":9007199254740991,"b":-9007199254740991,"c":0.1,"d":1.5e-300}'),
    ).toEqual({
      a: 9007199254740991,
      b: -9007199254740991,
      c: 0.1,
      d: 1.5e-300,
    });
  });
  it('refuses invalid UTF-8 instead of replacing it', () => {
    expect(() => parseJsonBytes(Uint8Array.from([0x22, 0xc3, 0x28, 0x22]))).toThrow(
      expect.objectContaining({ code: ErrorCode.PayloadMalformed }),
    );
    expect(parseJsonBytes(Buffer.from('"Hải Phòng"'))).toBe('Hải Phòng');
  });
  it('any string either parses or fails with a typed error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.uint8Array()), (input) => {
        try {
          if (typeof input === 'string') parseJsonText(input);
          else parseJsonBytes(input);
        } catch (err) {
          expect(err).toBeInstanceOf(AlertHubError);
        }
      }),
    );
  });
});
