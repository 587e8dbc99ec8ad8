/**
 * Turns the common ways officers write identifiers into the machine form the schemas require:
 * `CSQU 305438 3` becomes `CSQU3054383`, `618-1234 5675` becomes `618-12345675`. Pure: it never
 * changes its input, and it reports every change so that the officer is told.
 *
 * It only removes separators (spaces, dots, hyphens, slashes where the form has none), changes
 * letter case, drops a leading `IMO` and inserts the air waybill's hyphen. It never corrects a
 * check digit or guesses a character: a value that does not reach the exact form this way is
 * left as it was, and the schema then refuses it with the reason.
 */

/** One change the normaliser made, located by RFC 6901 JSON pointer. */
export interface Normalisation {
  readonly pointer: string;
  readonly from: string;
  readonly to: string;
  /** The identifier's kind: `container`, `air-waybill`, `imo`, `mmsi`, `un-locode`, ... */
  readonly rule: NormalisationRule;
}

export type NormalisationRule =
  | 'container'
  | 'air-waybill'
  | 'imo'
  | 'mmsi'
  | 'un-locode'
  | 'upu-s10'
  | 'hs-code'
  | 'call-sign'
  | 'flight-number'
  | 'seal';

/** The normalised value (a copy; only changed branches are new objects) and the changes. */
export interface Normalised<T> {
  readonly value: T;
  readonly changes: readonly Normalisation[];
}

type Rule = (v: string) => string | undefined;

/**
 * Separators the normaliser removes: `.`, `-`, `/` (where the form has none) and spacing, which
 * is the space, the tab and the no-break space U+00A0 (what a copy from a word processor leaves).
 * Any other character, U+3000 and U+FEFF included, stays, and the value is then refused.
 */
const SEPARATORS = /[ \t\u00a0./-]+/g;
const SPACING = /[ \t\u00a0]+/g;
const EDGE_SPACING = /^[ \t\u00a0]+|[ \t\u00a0]+$/g;
/**
 * Upper case for a-z only: `toUpperCase` would turn a long s (U+017F) into S, a dotless i into
 * I and the ligature U+FB01 into FI, which is guessing a character.
 */
const asciiUpper = (v: string) => v.replace(/[a-z]+/g, (m) => m.toUpperCase());
const squeeze = (v: string) => asciiUpper(v.replace(SEPARATORS, ''));

/** Each rule returns the machine form, or undefined when the spelling is not a known variant. */
const RULES: Readonly<Record<NormalisationRule, Rule>> = {
  container: (v) => {
    const s = squeeze(v);
    return /^[A-Z]{3}[UJZ][0-9]{7}$/.test(s) ? s : undefined;
  },
  'air-waybill': (v) => {
    const s = v.replace(SEPARATORS, '');
    return /^[0-9]{11}$/.test(s) ? `${s.slice(0, 3)}-${s.slice(3)}` : undefined;
  },
  imo: (v) => {
    const s = squeeze(v).replace(/^IMO:?/, '');
    return /^[0-9]{7}$/.test(s) ? s : undefined;
  },
  mmsi: (v) => {
    const s = squeeze(v).replace(/^MMSI:?/, '');
    return /^[0-9]{9}$/.test(s) ? s : undefined;
  },
  'un-locode': (v) => {
    const s = squeeze(v);
    return /^[A-Z]{2}[A-Z2-9]{3}$/.test(s) ? s : undefined;
  },
  'upu-s10': (v) => {
    const s = squeeze(v);
    return /^[A-Z]{2}[0-9]{9}[A-Z]{2}$/.test(s) ? s : undefined;
  },
  // Dots separate heading, subheading and tariff line and are allowed: only spaces go.
  'hs-code': (v) => {
    const s = v.replace(SPACING, '');
    return /^[0-9]{4}(?:\.?[0-9]{2}){0,3}$/.test(s) ? s : undefined;
  },
  'call-sign': (v) => {
    const s = squeeze(v);
    return /^[A-Z0-9]{3,8}$/.test(s) ? s : undefined;
  },
  'flight-number': (v) => {
    const s = squeeze(v);
    return /^(?:[A-Z][A-Z0-9]|[0-9][A-Z]|[A-Z]{3})[0-9]{1,4}[A-Z]?$/.test(s) ? s : undefined;
  },
  seal: (v) => {
    const s = asciiUpper(v.replace(EDGE_SPACING, ''));
    return /^[A-Z0-9][A-Z0-9-]{0,24}$/.test(s) ? s : undefined;
  },
};

/** Members of a route (v1 and v2) that hold a UN/LOCODE. */
const ROUTE_PLACES = new Set([
  'origin',
  'destination',
  'transit',
  'placeOfReceipt',
  'portOfLoading',
  'portOfDischarge',
  'placeOfDelivery',
]);

/**
 * Which rule applies to member `key` of an object that is itself member `parentKey`, or to the
 * items of an array held in `key`. Top-level `origin` is an agency id, so places are recognised
 * only inside a `route`.
 */
function ruleFor(key: string, parentKey: string | undefined): NormalisationRule | undefined {
  if (parentKey === 'route' && ROUTE_PLACES.has(key)) return 'un-locode';
  if (parentKey === 'containers' && key === 'number') return 'container';
  switch (key) {
    case 'containers':
      return 'container';
    case 'airWaybill':
    case 'masterAirWaybill':
      return 'air-waybill';
    case 'imo':
      return 'imo';
    case 'mmsi':
      return 'mmsi';
    case 'locode':
      return 'un-locode';
    case 'postalItems':
      return 'upu-s10';
    case 'hsCode':
      return 'hs-code';
    case 'callSign':
      return 'call-sign';
    case 'flightNumber':
      return 'flight-number';
    case 'seals':
      return 'seal';
    default:
      return undefined;
  }
}

function escapeToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * Normalises the identifiers in an alert as submitted (any version). Values that are not
 * strings, or not a recognised spelling, are left untouched.
 */
export function normaliseAlert<T>(value: T): Normalised<T> {
  const changes: Normalisation[] = [];
  const apply = (v: unknown, rule: NormalisationRule, pointer: string): unknown => {
    if (typeof v !== 'string') return v;
    const to = RULES[rule](v);
    if (to === undefined || to === v) return v;
    changes.push({ pointer, from: v, to, rule });
    return to;
  };
  const walk = (v: unknown, pointer: string, parentKey: string | undefined): unknown => {
    if (Array.isArray(v)) {
      const list = v as unknown[];
      let copy: unknown[] | undefined;
      list.forEach((item, i) => {
        const next = walk(item, `${pointer}/${i}`, parentKey);
        if (next !== item) (copy ??= [...list])[i] = next;
      });
      return copy ?? v;
    }
    if (typeof v !== 'object' || v === null) return v;
    let copy: Record<string, unknown> | undefined;
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const at = `${pointer}/${escapeToken(k)}`;
      const rule = ruleFor(k, parentKey);
      let next: unknown;
      if (rule && Array.isArray(child)) {
        const list = child as unknown[];
        let arr: unknown[] | undefined;
        list.forEach((item, i) => {
          const n =
            typeof item === 'string'
              ? apply(item, rule, `${at}/${i}`)
              : walk(item, `${at}/${i}`, k);
          if (n !== item) (arr ??= [...list])[i] = n;
        });
        next = arr ?? child;
      } else if (rule) next = apply(child, rule, at);
      else next = walk(child, at, k);
      if (next !== child) {
        copy ??= { ...(v as Record<string, unknown>) };
        // Defined as own data properties, as JSON.parse makes them, whatever the key.
        Object.defineProperty(copy, k, {
          value: next,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
    return copy ?? v;
  };
  return { value: walk(value, '', undefined) as T, changes };
}
