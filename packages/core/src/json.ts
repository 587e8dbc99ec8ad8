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
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new PayloadMalformedError('payload is not valid UTF-8', { cause });
  }
  return parseJsonText(text, maxDepth);
}

/** {@link parseJsonBytes} for text already decoded. */
export function parseJsonText(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new PayloadMalformedError(`payload is not JSON: ${(cause as Error).message}`, { cause });
  }
  assertSafeJson(value, maxDepth);
  return value;
}

/** Throws `PayloadMalformedError` when a parsed value is too deep or has a forbidden key. */
export function assertSafeJson(value: unknown, maxDepth = DEFAULT_MAX_JSON_DEPTH): void {
  // Iterative, so that a hostile depth cannot overflow the stack before the limit is seen.
  const stack: [unknown, number, string][] = [[value, 0, '']];
  while (stack.length > 0) {
    const [v, depth, pointer] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) {
      throw new PayloadMalformedError(`JSON nests deeper than ${maxDepth} levels at ${pointer}`);
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], depth + 1, `${pointer}/${i}`]);
    } else {
      for (const key of Object.keys(v)) {
        if (FORBIDDEN_KEYS.has(key)) {
          throw new PayloadMalformedError(
            `JSON key "${key}" is not allowed (at ${pointer || '/'})`,
          );
        }
        stack.push([(v as Record<string, unknown>)[key], depth + 1, `${pointer}/${key}`]);
      }
    }
  }
}
