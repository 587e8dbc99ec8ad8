import { PayloadMalformedError } from './errors.js';

/** Deepest nesting the hub accepts in any JSON it parses; alerts need fewer than 8 levels. */
export const DEFAULT_MAX_JSON_DEPTH = 32;

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes strict UTF-8 (no replacement characters: invalid bytes are an error), parses JSON,
 * and refuses documents nested deeper than `maxDepth` or carrying `__proto__`, `constructor`
 * or `prototype` keys, which can poison objects that later code merges or spreads.
 */
export function parseJsonBytes(bytes: Uint8Array, maxDepth = DEFAULT_MAX_JSON_DEPTH): unknown {
  return parseJsonText(decodeUtf8Strict(bytes), maxDepth);
}

/**
 * Decodes UTF-8, refusing invalid sequences with `ERR_PAYLOAD_MALFORMED` instead of replacing
 * them, and refusing a byte-order mark (RFC 8259 §8.1: JSON text must not begin with one; a
 * decoder that strips it silently and one that keeps it read different documents).
 */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
    throw new PayloadMalformedError('payload begins with a UTF-8 byte-order mark');
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new PayloadMalformedError('payload is not valid UTF-8', { cause });
  }
}

/**
 * Throws `ERR_PAYLOAD_MALFORMED` when an object in `text` (valid JSON) names a member twice,
 * compared after unescaping (`"a"` and `"\u0061"` are one name). RFC 7493 (I-JSON) §2.3:
 * `JSON.parse` keeps the last value, other parsers the first, so a partner could read another
 * alert than the hub routed.
 */
export function assertNoDuplicateNames(text: string): void {
  // One entry per open object (its names so far, and whether a name comes next) or array (null).
  const stack: ({ names: Set<string>; expectName: boolean } | null)[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x7b) stack.push({ names: new Set(), expectName: true });
    else if (c === 0x5b) stack.push(null);
    else if (c === 0x7d || c === 0x5d) stack.pop();
    else if (c === 0x2c) {
      const top = stack[stack.length - 1];
      if (top) top.expectName = true;
    } else if (c === 0x22) {
      const start = i;
      let escaped = false;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (escaped) escaped = false;
        else if (d === 0x5c) escaped = true;
        else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (top?.expectName) {
        const raw = text.slice(start + 1, i);
        const name = raw.includes('\\') ? (JSON.parse(text.slice(start, i + 1)) as string) : raw;
        if (top.names.has(name))
          throw new PayloadMalformedError(
            `JSON names a member${/^[A-Za-z0-9_]{1,64}$/.test(name) ? ` "${name}"` : ''} twice`,
          );
        top.names.add(name);
        top.expectName = false;
      }
    }
  }
}

/**
 * True for a JSON object (what `JSON.parse` makes of `{...}`): of type `object`, not `null`, not
 * an array. The value is then readable member by member, each member `unknown`.
 */
export function isJsonObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Canonical JSON (as RFC 8785 for the values JSON.parse produces): object members sorted by
 * key, no whitespace, numbers and strings as JSON.stringify writes them. Two documents with the
 * same content have the same canonical text, whatever their member order or spacing.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .sort()
      .filter((k) => obj[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** {@link parseJsonBytes} for text already decoded. */
export function parseJsonText(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    // Not the parser's message: V8 quotes the text around the error, and alert text must reach
    // no log and no audit reason. Where it says a position, keep that.
    const at = /position (\d+)/.exec((cause as Error).message)?.[1];
    throw new PayloadMalformedError(`payload is not JSON${at ? ` (at position ${at})` : ''}`, {
      cause,
    });
  }
  if (text.charCodeAt(0) === 0xfeff)
    throw new PayloadMalformedError('JSON text begins with a byte-order mark');
  assertSafeJson(value, maxDepth, text);
  assertNoDuplicateNames(text);
  assertNoLoneSurrogates(value, text);
  return value;
}

// A UTF-16 code unit of a surrogate pair without its other half.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Text decoded from strict UTF-8 holds none; a `\uD800`-style escape can still make one.
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Throws `ERR_PAYLOAD_MALFORMED` when a string or member name of the document holds a lone
 * surrogate (`"\ud800"`): RFC 7493 (I-JSON) §2.1 forbids them, and parsers disagree on them (one
 * keeps the code unit, another writes U+FFFD, a third refuses the document).
 */
function assertNoLoneSurrogates(value: unknown, text: string): void {
  if (LONE_SURROGATE.test(text))
    throw new PayloadMalformedError('JSON text holds a lone surrogate');
  if (!SURROGATE_ESCAPE.test(text)) return;
  const visit = (v: unknown): void => {
    if (typeof v === 'string') {
      if (LONE_SURROGATE.test(v))
        throw new PayloadMalformedError('JSON escapes a lone surrogate (RFC 7493 §2.1)');
    } else if (Array.isArray(v)) v.forEach(visit);
    else if (typeof v === 'object' && v !== null)
      for (const [k, item] of Object.entries(v)) {
        visit(k);
        visit(item);
      }
  };
  visit(value);
}

// A forbidden key can only appear in the text literally or through a \u escape.
const MAY_HAVE_FORBIDDEN_KEY = /__proto__|constructor|prototype|\\u/;

/**
 * RFC 7493 (I-JSON) §2.2: a number beyond what an IEEE 754 double holds exactly is read
 * differently by different parsers. An integer above 2^53 - 1 (`9007199254740993`) is rounded by
 * JavaScript and kept exactly by Python; a magnitude beyond a double (`1e400`) is Infinity in
 * one, an error in another, and `null` once re-serialised. Both are refused.
 */
function checkNumber(n: number): void {
  if (!Number.isFinite(n))
    throw new PayloadMalformedError('JSON holds a number beyond a double (RFC 7493 §2.2)');
  if (Number.isInteger(n) && !Number.isSafeInteger(n))
    throw new PayloadMalformedError(
      'JSON holds an integer beyond 2^53 - 1, which parsers read differently (RFC 7493 §2.2)',
    );
}

/**
 * Throws `PayloadMalformedError` when a parsed value nests deeper than `maxDepth`, has a
 * forbidden key or holds a number other parsers read differently. Given the source `text`, the
 * key check is skipped when the text cannot hold one; the depth and number checks always run.
 * Recursion is bounded by `maxDepth`, so it cannot overflow.
 */
export function assertSafeJson(
  value: unknown,
  maxDepth = DEFAULT_MAX_JSON_DEPTH,
  text?: string,
): void {
  walk(value, 0, maxDepth, text === undefined || MAY_HAVE_FORBIDDEN_KEY.test(text));
}

function walk(v: unknown, depth: number, maxDepth: number, checkKeys: boolean): void {
  if (typeof v === 'number') return checkNumber(v);
  if (typeof v !== 'object' || v === null) return;
  if (depth >= maxDepth)
    throw new PayloadMalformedError(`JSON nests deeper than ${maxDepth} levels`);
  if (Array.isArray(v)) {
    for (const item of v) walk(item, depth + 1, maxDepth, checkKeys);
    return;
  }
  const obj = v as Record<string, unknown>;
  for (const key in obj) {
    if (checkKeys && FORBIDDEN_KEYS.has(key))
      throw new PayloadMalformedError(`JSON key "${key}" is not allowed`);
    walk(obj[key], depth + 1, maxDepth, checkKeys);
  }
}
