/**
 * Formats the schemas in `schemas/` name but JSON Schema cannot express: check digits and
 * code lists. Each check returns `undefined` when the value is valid, otherwise the reason in
 * words, so that a validation error says *why* (`check digit is 5, expected 3`), not only *that*.
 *
 * The country list is not repeated here: it is read from `common.v1.json#/$defs/country`.
 */
export type FormatCheck = (value: string) => string | undefined;

const ISO6346_LETTER_VALUES: ReadonlyMap<string, number> = (() => {
  const values = new Map<string, number>();
  let v = 10;
  for (let c = 65; c <= 90; c++) {
    if (v % 11 === 0) v++; // 11, 22 and 33 are skipped (ISO 6346 Annex A)
    values.set(String.fromCharCode(c), v++);
  }
  return values;
})();

/** ISO 6346 check digit of the first ten characters of a container number. */
export function iso6346CheckDigit(first10: string): number {
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    const ch = first10.charAt(i);
    const value = ISO6346_LETTER_VALUES.get(ch) ?? Number(ch);
    sum += value * 2 ** i;
  }
  return (sum % 11) % 10;
}

/** IMO number check digit: digits 1-6 weighted 7..2, sum modulo 10. */
export function imoCheckDigit(first6: string): number {
  let sum = 0;
  for (let i = 0; i < 6; i++) sum += Number(first6.charAt(i)) * (7 - i);
  return sum % 10;
}

/** IATA air waybill check digit: the first seven serial digits modulo 7. */
export function awbCheckDigit(serial7: string): number {
  return Number(serial7) % 7;
}

/** UPU S10 weights of the eight serial digits. */
const S10_WEIGHTS = [8, 6, 4, 2, 3, 5, 9, 7] as const;

/**
 * UPU S10 check digit of an eight-digit serial: 11 minus (the weighted sum modulo 11), where
 * 10 becomes 0 and 11 becomes 5 (UPU S10, section 6).
 */
export function s10CheckDigit(serial8: string): number {
  let sum = 0;
  for (let i = 0; i < 8; i++) sum += Number(serial8.charAt(i)) * S10_WEIGHTS[i]!;
  const c = 11 - (sum % 11);
  return c === 10 ? 0 : c === 11 ? 5 : c;
}

/** Lowest and highest Maritime Identification Digits a ship station MMSI can start with. */
export const MID_RANGE = { min: 201, max: 775 } as const;

/**
 * The form of an agency id: an ISO 3166-1 alpha-2 country, a hyphen and the agency's code
 * (`SG-NPARKS`). The `agency-id` format also checks that the country exists.
 */
export const AGENCY_ID_FORM = /^[A-Z]{2}-[A-Z0-9]{2,16}$/;

/**
 * The form of a principal in the trust store (`schemas/trust-jwks.v1.schema.json`): an agency id,
 * or for the hub's router a capital and 1 to 15 capitals or digits (`HUB`).
 */
export const PRINCIPAL_FORM = /^(?:[A-Z]{2}-[A-Z0-9]{2,16}|[A-Z][A-Z0-9]{1,15})$/;

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/;

/** True when `v` is an alert, receipt or notice id: the `alert-id` format (protocol.md §2.3). */
export function isAlertId(v: unknown): v is string {
  return typeof v === 'string' && (UUID_V7.test(v) || ULID.test(v));
}

/** Builds the format checks; `countries` is the ISO 3166-1 alpha-2 list from the common schema. */
export function createFormatChecks(countries: ReadonlySet<string>): Record<string, FormatCheck> {
  const country = (code: string): string | undefined =>
    countries.has(code) ? undefined : `"${code}" is not an ISO 3166-1 alpha-2 country code`;
  return {
    'alert-id': (v) =>
      isAlertId(v)
        ? undefined
        : 'must be a UUIDv7 (lower-case, RFC 9562) or a ULID (26 Crockford base-32 characters)',
    'agency-id': (v) =>
      AGENCY_ID_FORM.test(v)
        ? country(v.slice(0, 2))
        : 'must be a country code, a hyphen and an agency code, e.g. SG-NPARKS',
    iso6346: (v) => {
      if (!/^[A-Z]{3}[UJZ][0-9]{7}$/.test(v))
        return 'must be an ISO 6346 container number: 3-letter owner code, U, J or Z, 7 digits';
      const expected = iso6346CheckDigit(v.slice(0, 10));
      const actual = Number(v.charAt(10));
      return actual === expected
        ? undefined
        : `ISO 6346 check digit is ${actual}, expected ${expected}`;
    },
    'imo-number': (v) => {
      if (!/^[0-9]{7}$/.test(v)) return 'must be a 7-digit IMO number';
      const expected = imoCheckDigit(v.slice(0, 6));
      const actual = Number(v.charAt(6));
      return actual === expected ? undefined : `IMO check digit is ${actual}, expected ${expected}`;
    },
    'iata-awb': (v) => {
      if (!/^[0-9]{3}-[0-9]{8}$/.test(v))
        return 'must be an air waybill number: 3-digit airline prefix, hyphen, 8 digits';
      const expected = awbCheckDigit(v.slice(4, 11));
      const actual = Number(v.charAt(11));
      return actual === expected
        ? undefined
        : `air waybill check digit is ${actual}, expected ${expected} (serial modulo 7)`;
    },
    'hs-code': (v) => {
      if (!/^[0-9]{4}(?:\.?[0-9]{2}){0,3}$/.test(v))
        return 'must be an HS code: 4, 6, 8 or 10 digits, optionally dotted (0507.10)';
      const chapter = Number(v.slice(0, 2));
      return chapter === 0 || chapter === 77
        ? `HS chapter ${v.slice(0, 2)} does not exist`
        : undefined;
    },
    'upu-s10': (v) => {
      if (!/^[A-Z]{2}[0-9]{9}[A-Z]{2}$/.test(v))
        return 'must be a UPU S10 item id: 2 letters, 8 digits, check digit, country code (RR473124829GB)';
      const expected = s10CheckDigit(v.slice(2, 10));
      const actual = Number(v.charAt(10));
      if (actual !== expected) return `UPU S10 check digit is ${actual}, expected ${expected}`;
      return country(v.slice(11, 13));
    },
    mmsi: (v) => {
      if (!/^[0-9]{9}$/.test(v)) return 'must be a 9-digit MMSI';
      const mid = Number(v.slice(0, 3));
      return mid >= MID_RANGE.min && mid <= MID_RANGE.max
        ? undefined
        : `is not a ship station MMSI: it must start with Maritime Identification Digits ${MID_RANGE.min}-${MID_RANGE.max} (ITU-R M.585)`;
    },
    'un-locode': (v) =>
      /^[A-Z]{2}[A-Z2-9]{3}$/.test(v)
        ? country(v.slice(0, 2))
        : 'must be a UN/LOCODE: country code and 3 location characters, without a space (SGSIN)',
  };
}
