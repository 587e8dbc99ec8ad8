import { describe, expect, it } from 'vitest';
import { loadRepoSchemas, registry, seizureReportV2 } from './helpers.js';

/** Every `pattern` (and `patternProperties` key) of the repository's schemas. */
function patterns(): string[] {
  const found = new Set<string>();
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null)
      for (const [k, item] of Object.entries(v)) {
        if (k === 'pattern' && typeof item === 'string') found.add(item);
        if (k === 'patternProperties' && typeof item === 'object' && item !== null)
          for (const p of Object.keys(item as object)) found.add(p);
        walk(item);
      }
  };
  walk(loadRepoSchemas());
  return [...found];
}

/**
 * Why `pattern` breaks the subset of protocol.md §2.3 (on which ECMA-262 with the `u` flag,
 * Python `re` with `$` read as `\Z`, and Java agree), or undefined: ASCII only, anchored `^...$`,
 * literal characters, bracket classes of literals and ranges, `(?:...)` groups, `|`, the
 * quantifiers `? * + {m} {m,} {m,n}`; the only escapes are a metacharacter and `\uXXXX`.
 */
function outsideSubset(pattern: string): string | undefined {
  if (!/^[\x20-\x7e]*$/.test(pattern)) return 'not printable ASCII';
  if (!pattern.startsWith('^') || !pattern.endsWith('$') || pattern.endsWith('\\$'))
    return 'not anchored ^...$';
  let inClass = false;
  for (let i = 1; i < pattern.length - 1; i++) {
    const c = pattern[i]!;
    if (c === '\\') {
      const next = pattern[i + 1] ?? '';
      if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(pattern.slice(i + 2, i + 6))) i += 5;
      else if ('.+-/\\^$[](){}*?|'.includes(next) && next !== '') i += 1;
      else return `the escape \\${next}`;
    } else if (inClass) {
      if (c === ']') inClass = false;
      else if (c === '[') return '[ inside a class';
    } else if (c === '[') {
      inClass = true;
      if (pattern[i + 1] === '^') i += 1;
    } else if (c === '(') {
      if (pattern.slice(i + 1, i + 3) !== '?:') return 'a group other than (?:...)';
      i += 2;
    } else if (c === '.') return 'an unescaped . outside a class';
    else if (c === '^' || c === '$') return 'an anchor inside the pattern';
  }
  return inClass ? 'an unclosed class' : undefined;
}

describe('schema patterns: the regex subset of protocol.md §2.3', () => {
  it('every pattern of every schema is in the subset every engine reads alike', () => {
    const all = patterns();
    expect(all.length).toBeGreaterThan(10);
    expect(all.map((p) => [p, outsideSubset(p)]).filter(([, why]) => why)).toEqual([]);
  });
  it('the subset check refuses what engines read differently', () => {
    for (const p of [
      '^\\d+$',
      '^a.b$',
      '^\\w$',
      '^(a)$',
      '^a$|^b$',
      'abc$',
      '^abc',
      '^é$',
      '^\\s$',
    ])
      expect([p, outsideSubset(p)]).not.toEqual([p, undefined]);
  });
  it('a final line feed is refused ($ is the very end, ECMA-262), as vector alerts-v2.json says', () => {
    const at = (scientificName: string) => {
      const a = seizureReportV2('SG-NPARKS') as {
        seizure: { commodities: { taxon: { scientificName: string } }[] };
      };
      a.seizure.commodities[0]!.taxon.scientificName = scientificName;
      return registry.checkAlert(a);
    };
    expect(at('Manis javanica').ok).toBe(true);
    const r = at('Manis javanica\n');
    expect(!r.ok && r.error.issues.map((i) => i.pointer)).toEqual([
      '/seizure/commodities/0/taxon/scientificName',
    ]);
  });
});
