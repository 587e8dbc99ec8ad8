import { createHash, type Hash } from 'node:crypto';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { EnvelopeMalformedError, EnvelopeTooLargeError } from './errors.js';
import type { GeneralJws, JwsSignature } from './jws.js';

/** Largest envelope the hub accepts (bytes of msgpack); JetStream streams use the same limit. */
export const DEFAULT_MAX_ENVELOPE_BYTES = 256 * 1024;

/**
 * Room an inbound envelope leaves for the router's countersignature: its protected header, this
 * copy's leaf (at most 1,024 bytes) and inclusion path (at most 16 hashes), the signature and
 * their msgpack framing come to under 3 KiB; 8 KiB leaves a margin.
 */
export const COUNTERSIGNATURE_HEADROOM_BYTES = 8 * 1024;

/**
 * Largest inbound envelope (the origin's signature only) the hub accepts, so that every routed
 * copy of it fits {@link DEFAULT_MAX_ENVELOPE_BYTES} at its recipient.
 */
export const MAX_INBOUND_ENVELOPE_BYTES =
  DEFAULT_MAX_ENVELOPE_BYTES - COUNTERSIGNATURE_HEADROOM_BYTES;

const encoder = new Encoder();
// Map keys the decoder has read in the current decode (decoding is synchronous, so one counter
// serves): the decoder keeps the last of two equal keys, so a duplicate shows as a key read but
// missing from the result.
let keysRead = 0;
const decoder = new Decoder({
  mapKeyConverter: (key: unknown) => {
    keysRead++;
    if (typeof key !== 'string') throw new TypeError('map keys must be strings');
    return key;
  },
  maxStrLength: DEFAULT_MAX_ENVELOPE_BYTES,
  maxBinLength: 0,
  maxArrayLength: 4,
  maxMapLength: 4,
  maxExtLength: 0,
});
refuseNonAsciiStrBytes(decoder);

/** The one refusal of a str byte outside ASCII, wherever it is found. */
const nonAscii = () => new EnvelopeMalformedError('envelope string holds a byte outside ASCII');

/**
 * Every string of a valid envelope is ASCII (a member name or base64url), so a str (key or value)
 * holding a byte from 0x80 to 0xFF is refused on its bytes, before they are decoded. Checking the
 * decoded text is not enough: @msgpack/msgpack 3.1 decodes a str of up to 200 bytes with its own
 * UTF-8 decoder, which reads an overlong form (`C1 98`, `E0 81 98`) or a lead byte without its
 * continuation as an ASCII character, where Python's msgpack refuses the str; two parsers would
 * read the same copy differently. The decoder has no public hook for a str's bytes, so its
 * `decodeUtf8String` (through which every str, key or value, is read) is wrapped here; if a later
 * version of the library renames it, this throws at load rather than checking nothing
 * (`packages/core/test/parser-differentials.test.ts` holds the overlong vectors).
 */
function refuseNonAsciiStrBytes(d: Decoder): void {
  const inner = d as unknown as {
    bytes: Uint8Array;
    pos: number;
    decodeUtf8String: (byteLength: number, headerOffset: number) => string;
  };
  const decodeUtf8String = inner.decodeUtf8String;
  if (typeof decodeUtf8String !== 'function')
    throw new Error('@msgpack/msgpack has no Decoder#decodeUtf8String: str bytes go unchecked');
  inner.decodeUtf8String = function (this: typeof inner, byteLength, headerOffset) {
    const start = this.pos + headerOffset;
    // A truncated str is the library's to refuse; only the bytes present are read.
    const end = Math.min(start + byteLength, this.bytes.byteLength);
    for (let i = start; i < end; i++) if (this.bytes[i]! > 0x7f) throw nonAscii();
    return decodeUtf8String.call(this, byteLength, headerOffset);
  };
}

/**
 * Encodes an envelope for NATS: the General JWS object as a msgpack map
 * `{payload: str, signatures: [{protected: str, signature: str}, ...]}`.
 * `encode` copies into a fresh buffer, which nats.js may hold until it flushes.
 */
export function encodeEnvelope(jws: GeneralJws): Uint8Array {
  return encoder.encode({ payload: jws.payload, signatures: jws.signatures.map(signatureMap) });
}

function signatureMap(s: JwsSignature): object {
  return s.header
    ? {
        protected: s.protected,
        header: { leaf: s.header.leaf, path: s.header.path },
        signature: s.signature,
      }
    : { protected: s.protected, signature: s.signature };
}

/** The bytes of a routed copy and their SHA-256 (lowercase hex). */
export interface EncodedCopy {
  readonly bytes: Uint8Array;
  readonly sha256: string;
}

/**
 * An encoder for the copies of one routing decision, which all carry `jws`'s payload and origin
 * signature and differ only in the router's signature (its leaf and path). msgpack encodes a map
 * member after member, so every copy's bytes start with the same prefix (the map of two, the
 * payload, the array of two, the origin's signature): it is encoded and hashed once, and each
 * copy adds the encoding of its own countersignature, with the hash state of the prefix copied.
 * The bytes are exactly {@link encodeEnvelope}'s (test: `packages/core/test/codec.test.ts`); a
 * copy of another shape is encoded whole.
 */
export function copyEncoder(jws: GeneralJws): (copy: GeneralJws) => EncodedCopy {
  const origin = jws.signatures[0];
  const whole = (copy: GeneralJws): EncodedCopy => {
    const bytes = encodeEnvelope(copy);
    return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') };
  };
  if (!origin) return whole;
  const prefix = Buffer.concat([
    MAP_OF_TWO,
    encoder.encode('payload'),
    encoder.encode(jws.payload),
    encoder.encode('signatures'),
    ARRAY_OF_TWO,
    encoder.encode(signatureMap(origin)),
  ]);
  const prefixHash = createHash('sha256').update(prefix);
  // Every copy of a decision carries the same protected header and signature (one signature per
  // decision, docs/protocol.md §3.2): what comes before its leaf (with the hash state up to there)
  // and what comes after its path are encoded once, for the last pair seen.
  let shared:
    | {
        readonly protected: string;
        readonly signature: string;
        readonly head: Buffer;
        readonly headHash: Hash;
        readonly tail: Buffer;
      }
    | undefined;
  return (copy) => {
    const [first, second] = copy.signatures;
    if (copy.payload !== jws.payload || copy.signatures.length !== 2 || first !== origin)
      return whole(copy);
    if (!second!.header) {
      const own = encoder.encode(signatureMap(second!));
      return {
        bytes: Buffer.concat([prefix, own]),
        sha256: prefixHash.copy().update(own).digest('hex'),
      };
    }
    if (shared?.protected !== second!.protected || shared.signature !== second!.signature) {
      // The members in signatureMap's order: protected, header {leaf, path}, signature.
      const head = Buffer.concat([
        MAP_OF_THREE,
        strBytes('protected'),
        strBytes(second!.protected),
        strBytes('header'),
        MAP_OF_TWO,
        strBytes('leaf'),
      ]);
      shared = {
        protected: second!.protected,
        signature: second!.signature,
        head,
        headHash: prefixHash.copy().update(head),
        tail: Buffer.concat([strBytes('signature'), strBytes(second!.signature)]),
      };
    }
    const { leaf, path } = second!.header;
    const leafLength = Buffer.byteLength(leaf);
    const pathLength = Buffer.byteLength(path);
    const ownLength =
      strHeaderLength(leafLength) + leafLength + PATH_KEY.length + strHeaderLength(pathLength);
    const bytes = Buffer.allocUnsafe(
      prefix.length + shared.head.length + ownLength + pathLength + shared.tail.length,
    );
    let at = prefix.copy(bytes, 0);
    at += shared.head.copy(bytes, at);
    const ownStart = at;
    at = writeStrHeader(bytes, at, leafLength);
    at += bytes.write(leaf, at, leafLength, 'utf8');
    at += PATH_KEY.copy(bytes, at);
    at = writeStrHeader(bytes, at, pathLength);
    at += bytes.write(path, at, pathLength, 'utf8');
    shared.tail.copy(bytes, at);
    return {
      bytes,
      sha256: shared.headHash.copy().update(bytes.subarray(ownStart)).digest('hex'),
    };
  };
}

/** msgpack's encoding of a string, as `encoder` makes it (fixstr, str 8, 16 or 32). */
function strBytes(s: string): Buffer {
  const length = Buffer.byteLength(s);
  const out = Buffer.allocUnsafe(strHeaderLength(length) + length);
  out.write(s, writeStrHeader(out, 0, length), length, 'utf8');
  return out;
}

function strHeaderLength(length: number): number {
  return length < 32 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
}

/** Writes the header of a msgpack string of `length` bytes at `at`; returns the offset after it. */
function writeStrHeader(out: Buffer, at: number, length: number): number {
  if (length < 32) return out.writeUInt8(0xa0 | length, at);
  if (length < 0x100) return out.writeUInt8(length, out.writeUInt8(0xd9, at));
  if (length < 0x10000) return out.writeUInt16BE(length, out.writeUInt8(0xda, at));
  return out.writeUInt32BE(length, out.writeUInt8(0xdb, at));
}

const MAP_OF_THREE = Buffer.from([0x83]);
const PATH_KEY = strBytes('path');
const MAP_OF_TWO = Buffer.from([0x82]);
const ARRAY_OF_TWO = Buffer.from([0x92]);

/**
 * Decodes and shape-checks an envelope. Anything but exactly the documented map (one or two
 * signatures, string members, nothing extra; only signature 1 may carry an unprotected `header`,
 * and then exactly `{leaf: str, path: str}`) is `ERR_ENVELOPE_MALFORMED`; more than `maxBytes`
 * is `ERR_ENVELOPE_TOO_LARGE`, refused before parsing.
 */
export function decodeEnvelope(
  bytes: Uint8Array,
  maxBytes = DEFAULT_MAX_ENVELOPE_BYTES,
): GeneralJws {
  if (bytes.byteLength > maxBytes) throw new EnvelopeTooLargeError(bytes.byteLength, maxBytes);
  let value: unknown;
  keysRead = 0;
  try {
    value = decoder.decode(bytes);
  } catch (cause) {
    if (cause instanceof EnvelopeMalformedError) throw cause;
    throw new EnvelopeMalformedError(`not a msgpack envelope: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!isPlainObject(value) || !hasExactly(value, ['payload', 'signatures'])) {
    throw new EnvelopeMalformedError(
      'envelope must be a map of exactly "payload" and "signatures"',
    );
  }
  const { payload, signatures } = value as { payload: unknown; signatures: unknown };
  if (typeof payload !== 'string') throw new EnvelopeMalformedError('"payload" must be a string');
  if (!Array.isArray(signatures) || signatures.length < 1 || signatures.length > 2) {
    throw new EnvelopeMalformedError('"signatures" must be an array of one or two signatures');
  }
  let expectedKeys = 2;
  const sigs: JwsSignature[] = signatures.map((s: unknown, i) => {
    if (!isPlainObject(s)) throw new EnvelopeMalformedError(`signature ${i} must be a map`);
    const routed = i === 1 && Object.hasOwn(s, 'header');
    if (
      !hasExactly(s, routed ? ['protected', 'header', 'signature'] : ['protected', 'signature'])
    ) {
      throw new EnvelopeMalformedError(
        i === 1
          ? 'signature 1 must be a map of exactly "protected" and "signature", and optionally "header"'
          : `signature ${i} must be a map of exactly "protected" and "signature"`,
      );
    }
    const {
      protected: p,
      signature,
      header,
    } = s as {
      protected: unknown;
      signature: unknown;
      header?: unknown;
    };
    if (typeof p !== 'string' || typeof signature !== 'string') {
      throw new EnvelopeMalformedError(`signature ${i} members must be strings`);
    }
    expectedKeys += 2;
    if (!routed) return { protected: p, signature };
    if (!isPlainObject(header) || !hasExactly(header, ['leaf', 'path']))
      throw new EnvelopeMalformedError(
        'signature 1 "header" must be a map of exactly "leaf" and "path"',
      );
    const { leaf, path } = header as { leaf: unknown; path: unknown };
    if (typeof leaf !== 'string' || typeof path !== 'string')
      throw new EnvelopeMalformedError('signature 1 "header" members must be strings');
    expectedKeys += 3;
    return { protected: p, header: { leaf, path }, signature };
  });
  if (keysRead !== expectedKeys) throw new EnvelopeMalformedError('envelope map names a key twice');
  // Refused on their bytes while decoding (refuseNonAsciiStrBytes); checked again on the text,
  // which costs little and holds should the library read a str some other way.
  const strings = [
    payload,
    ...sigs.flatMap((s) => [
      s.protected,
      s.signature,
      ...(s.header ? [s.header.leaf, s.header.path] : []),
    ]),
  ];
  if (strings.some((s) => NON_ASCII.test(s))) throw nonAscii();
  return { payload, signatures: sigs };
}

const NON_ASCII = /[^\p{ASCII}]/u;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.getPrototypeOf(v) === Object.prototype
  );
}

function hasExactly(v: Record<string, unknown>, keys: readonly string[]): boolean {
  const own = Object.keys(v);
  return own.length === keys.length && keys.every((k) => Object.hasOwn(v, k));
}
