import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parseRfc3339 } from '@alert-hub/core';
import { TimeFormatError, parseInstant } from '@alert-hub/audit';

/** What parseInstant must answer for `text`: core's reading, or a TimeFormatError. */
function coreReading(text: string): string {
  const t = parseRfc3339(text);
  return t === undefined ? 'refused' : new Date(t).toISOString();
}

function instantOrRefused(text: string): string {
  try {
    return parseInstant(text);
  } catch (err) {
    expect(err).toBeInstanceOf(TimeFormatError);
    expect((err as TimeFormatError).code).toBe('ERR_TIME_INVALID');
    return 'refused';
  }
}

describe('audit query - since and until are read by core’s one RFC 3339 parser', () => {
  it('the cases the audit’s own parser used to read differently now read as core reads them', () => {
    const cases: [string, string][] = [
      // Lower-case t and z: the audit's parser took them, core refuses them.
      ['2020-01-01t00:00:00z', 'refused'],
      ['2020-01-01T00:00:00z', 'refused'],
      ['2020-01-01t00:00:00Z', 'refused'],
      // A leap second where one can occur: the audit's parser refused it, core reads it as the
      // last millisecond of the minute (so an audit query and an alert's issuedAt agree).
      ['2016-12-31T23:59:60Z', '2016-12-31T23:59:59.999Z'],
      ['2017-01-01T07:59:60+08:00', '2016-12-31T23:59:59.999Z'],
      ['2015-06-30T23:59:60Z', '2015-06-30T23:59:59.999Z'],
      // ... and nowhere else.
      ['2020-01-01T12:00:60Z', 'refused'],
      ['2020-03-31T23:59:60Z', 'refused'],
      // Years are 0001 to 9999 (protocol.md §4.3): 0000 is refused, as every partner reads it.
      ['0000-03-01T00:00:00Z', 'refused'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
      // Fractions are truncated to the millisecond from their digits, not by float arithmetic.
      ['2020-01-01T00:00:00.29Z', '2020-01-01T00:00:00.290Z'],
      ['2020-01-01T00:00:00.999999999Z', '2020-01-01T00:00:00.999Z'],
      // Agreed before and after: offsets, -00:00, ISO 8601 forms that are not RFC 3339.
      ['2026-11-28T09:00:00+01:00', '2026-11-28T08:00:00.000Z'],
      ['2020-01-01T00:00:00-00:00', '2020-01-01T00:00:00.000Z'],
      ['2020-01-01T00:00:00+08', 'refused'],
      ['2020-01-01T00:00:00+0800', 'refused'],
      ['2020-01-01 00:00:00Z', 'refused'],
      ['2020-02-30T00:00:00Z', 'refused'],
      ['2020-01-01T24:00:00Z', 'refused'],
      ['2020-01-01', 'refused'],
      ['yesterday', 'refused'],
    ];
    for (const [text, expected] of cases) {
      expect([text, instantOrRefused(text)]).toEqual([text, expected]);
      expect([text, coreReading(text)]).toEqual([text, expected]);
    }
  });

  it('for any date-time-like text, the audit query and core agree (property)', () => {
    const two = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, '0'));
    const text = fc
      .tuple(
        fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, '0')),
        two(13),
        two(32),
        fc.constantFrom('T', 't', ' '),
        two(25),
        two(60),
        two(61),
        fc.option(fc.stringMatching(/^\.[0-9]{1,10}$/), { nil: '' }),
        fc.constantFrom(
          'Z',
          'z',
          '+00:00',
          '-00:00',
          '+08:00',
          '-23:59',
          '+24:00',
          '+08',
          '+0800',
          '',
        ),
      )
      .map(([y, mo, d, t, h, mi, s, f, z]) => `${y}-${mo}-${d}${t}${h}:${mi}:${s}${f}${z}`);
    fc.assert(
      fc.property(text, (value) => {
        expect(instantOrRefused(value)).toBe(coreReading(value));
      }),
      { numRuns: 2000 },
    );
  });
});
