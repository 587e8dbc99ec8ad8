import { describe, expect, it } from 'vitest';
import { parseJsonBytes } from '@alert-hub/core';
import { MAX_REFUSAL_REASON_CHARS, bounded } from '../src/refusal-text.js';

/**
 * A refusal's reason is cut to a bound for the audit log, the dead letter and the sender's notice;
 * the cut must leave well-formed text, or the notice's JSON holds a lone surrogate that partners
 * refuse (core's parser among them) and the sender never learns why.
 */
/** Half of a surrogate pair (with the `u` flag, a whole pair is one code point, not matched). */
const LONE_SURROGATE = /\p{Cs}/u;

describe('refusal reasons - cut to their bound, never inside a character', () => {
  it('a reason over the bound is cut with an ellipsis; one cut where a surrogate pair begins keeps no half of it; every cut parses back as JSON', () => {
    expect(bounded('short')).toBe('short');
    const exact = 'x'.repeat(MAX_REFUSAL_REASON_CHARS);
    expect(bounded(exact)).toBe(exact);
    // Astral characters (two UTF-16 code units each) at every offset around the cut.
    for (let lead = 0; lead < 4; lead++) {
      const reason = `${'a'.repeat(MAX_REFUSAL_REASON_CHARS - 10 + lead)}${'😀'.repeat(20)}`;
      const cut = bounded(reason);
      expect(cut.length, `lead ${lead}`).toBeLessThanOrEqual(MAX_REFUSAL_REASON_CHARS);
      expect(cut.endsWith('…'), `lead ${lead}`).toBe(true);
      expect(cut, `lead ${lead}`).not.toMatch(LONE_SURROGATE);
      expect(reason.startsWith(cut.slice(0, -1)), `lead ${lead}`).toBe(true);
      const json = Buffer.from(JSON.stringify({ reason: cut }));
      expect(parseJsonBytes(json), `lead ${lead}`).toEqual({ reason: cut });
    }
    // With astral characters before the cut too.
    const mixed = `😀${'a'.repeat(MAX_REFUSAL_REASON_CHARS - 4)}😀😀tail`;
    expect(bounded(mixed)).not.toMatch(LONE_SURROGATE);
    expect(bounded(mixed).length).toBeLessThanOrEqual(MAX_REFUSAL_REASON_CHARS);
  });
});
