import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { SchemaInvalidError, SchemaUnknownError, type Issue } from './errors.js';
import { createFormatChecks, type FormatCheck } from './formats.js';
import { isFullDate, isRfc3339 } from './rfc3339.js';
import type { Alert } from './alert.js';
import { ALERT_RULES, type AlertRules } from './semantics.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** `$id` of the common definitions; the country list is read from it. */
/** ajv-formats' uri and email; date and date-time are the hub's own (rfc3339.ts). */
function addStrictFormats(ajv: Ajv2020): void {
  addFormats(ajv, ['uri', 'email']);
  ajv.addFormat('date', { type: 'string', validate: isFullDate });
  ajv.addFormat('date-time', { type: 'string', validate: isRfc3339 });
}

export const COMMON_SCHEMA_ID = 'https://schemas.alert-hub.example/common/v1.json';

/** A JSON Schema document as loaded from `schemas/`. */
export type SchemaDocument = Record<string, unknown> & { $id: string };

/** Outcome of a validation: the typed value, or every issue found. */
export type Validation<T> =
  | { readonly ok: true; readonly value: T; readonly schemaId: string }
  | { readonly ok: false; readonly error: SchemaInvalidError | SchemaUnknownError };

/** The alert-type schemas (and any other documents' schemas) compiled once, validated many times. */
export interface SchemaRegistry {
  /** Country codes of ISO 3166-1 alpha-2, from the common schema. */
  readonly countries: ReadonlySet<string>;
  /** Every alert type and version that has a schema. */
  readonly alertTypes: readonly { type: string; version: number; schemaId: string }[];
  /** `$id` of the schema of an alert type and version, if one is registered. */
  schemaIdFor(type: string, version: number): string | undefined;
  /** Validates an alert against the schema its `type` and `version` name. Never throws. */
  checkAlert(value: unknown): Validation<Alert>;
  /** Like {@link checkAlert} but throws `SchemaInvalidError` or `SchemaUnknownError`. */
  validateAlert(value: unknown): Alert;
  /** The schema document registered under `$id`, as loaded (for tools that render forms from it). */
  schemaDocument(schemaId: string): SchemaDocument | undefined;
  /** Validates any registered document by schema `$id`; returns its issues (empty when valid). */
  validateDocument(schemaId: string, value: unknown): Issue[];
}

interface AlertEntry {
  readonly schemaId: string;
  /** Compiled on first use, then kept. */
  validate(): ValidateFunction;
  /** Top-level member names, worked out the first time an alert of this schema is refused. */
  knownMembers(): readonly string[];
  readonly rules: AlertRules | undefined;
}

/**
 * Compiles the given schemas. The common schema must be among them. An alert schema is
 * recognised by `properties.type.const` and `properties.version.const`.
 */
export function createSchemaRegistry(schemas: readonly SchemaDocument[]): SchemaRegistry {
  const common = schemas.find((s) => s.$id === COMMON_SCHEMA_ID);
  const countryEnum = (common?.['$defs'] as { country?: { enum?: unknown } } | undefined)?.country
    ?.enum;
  if (!Array.isArray(countryEnum)) {
    throw new Error(`the schemas must include ${COMMON_SCHEMA_ID} with $defs/country/enum`);
  }
  const countries = new Set(countryEnum as string[]);
  const formatChecks = createFormatChecks(countries);

  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, verbose: true });
  addStrictFormats(ajv);
  for (const [name, check] of Object.entries(formatChecks)) {
    ajv.addFormat(name, { type: 'string', validate: (v: string) => check(v) === undefined });
  }
  for (const s of schemas) ajv.addSchema(s);

  const byTypeVersion = new Map<string, AlertEntry>();
  const alertTypes: { type: string; version: number; schemaId: string }[] = [];
  for (const s of schemas) {
    const props = s['properties'] as Record<string, { const?: unknown }> | undefined;
    const type = props?.['type']?.const;
    const version = props?.['version']?.const;
    if (typeof type !== 'string' || typeof version !== 'number') continue;
    // Each schema is compiled when an alert first needs it, not here: a service starts without
    // compiling every type and version it may never see (Ajv already checked each document
    // against the 2020-12 meta-schema in addSchema; the tests compile every one).
    let compiled: ValidateFunction | undefined;
    let members: string[] | undefined;
    byTypeVersion.set(`${type}@${version}`, {
      schemaId: s.$id,
      validate: () => {
        compiled ??= ajv.getSchema(s.$id);
        if (!compiled) throw new Error(`schema ${s.$id} did not compile`);
        return compiled;
      },
      knownMembers: () => (members ??= collectMembers(ajv, s)),
      rules: ALERT_RULES[s.$id],
    });
    alertTypes.push({ type, version, schemaId: s.$id });
  }

  const checkAlert = (value: unknown): Validation<Alert> => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return fail(new SchemaInvalidError([{ pointer: '', message: 'must be a JSON object' }]));
    }
    const { type, version } = value as { type?: unknown; version?: unknown };
    const known = [...new Set(alertTypes.map((t) => t.type))].join(', ');
    if (typeof type !== 'string' || !alertTypes.some((t) => t.type === type)) {
      const message =
        type === undefined ? `is required (one of: ${known})` : `must be one of: ${known}`;
      return fail(new SchemaUnknownError([{ pointer: '/type', message }], 'unknown alert type'));
    }
    if (typeof version !== 'number') {
      return fail(
        new SchemaInvalidError([
          {
            pointer: '/version',
            message: version === undefined ? 'is required' : 'must be an integer',
          },
        ]),
      );
    }
    const entry = byTypeVersion.get(`${type}@${version}`);
    if (!entry) {
      const versions = alertTypes.filter((t) => t.type === type).map((t) => t.version);
      return fail(
        new SchemaUnknownError(
          [
            {
              pointer: '/version',
              message: `${type} has no version ${version} (known: ${versions.join(', ')})`,
            },
          ],
          'unknown schema version',
        ),
      );
    }
    const validate = entry.validate();
    if (validate(value)) {
      const broken = entry.rules?.(value as Record<string, unknown>) ?? [];
      if (broken.length === 0) return { ok: true, value: value as Alert, schemaId: entry.schemaId };
      return fail(new SchemaInvalidError(broken, 'the alert breaks a rule of its schema version'));
    }
    return fail(
      new SchemaInvalidError(toIssues(validate.errors ?? [], formatChecks, entry.knownMembers())),
    );
  };

  return {
    countries,
    alertTypes,
    schemaIdFor: (type, version) => byTypeVersion.get(`${type}@${version}`)?.schemaId,
    checkAlert,
    validateAlert(value) {
      const r = checkAlert(value);
      if (!r.ok) throw r.error;
      return r.value;
    },
    schemaDocument: (schemaId) => schemas.find((s) => s.$id === schemaId),
    validateDocument(schemaId, value) {
      const validate = ajv.getSchema(schemaId);
      if (!validate) throw new Error(`no schema ${schemaId} is registered`);
      return validate(value) ? [] : toIssues(validate.errors ?? [], formatChecks, []);
    },
  };
}

/**
 * Compiles a standalone JSON Schema (2020-12) for documents other than alerts, such as a
 * service configuration. With `useDefaults`, missing members get the schema's defaults in place.
 * The returned function lists every issue; an empty list means valid.
 */
export function compileDocumentSchema(
  schema: Record<string, unknown>,
  options: { useDefaults?: boolean } = {},
): (value: unknown) => Issue[] {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: true,
    strictRequired: false,
    verbose: true,
    useDefaults: options.useDefaults ?? false,
  });
  addStrictFormats(ajv);
  const validate = ajv.compile(schema);
  const rootMembers = Object.keys((schema['properties'] as object | undefined) ?? {});
  return (value) => (validate(value) ? [] : toIssues(validate.errors ?? [], {}, rootMembers));
}

function fail(error: SchemaInvalidError | SchemaUnknownError): Validation<never> {
  return { ok: false, error };
}

/** Top-level member names an alert schema allows, following `$ref` into the common base. */
function collectMembers(ajv: Ajv2020, schema: Record<string, unknown>): string[] {
  const names = new Set<string>(Object.keys((schema['properties'] as object | undefined) ?? {}));
  const ref = schema['$ref'];
  if (typeof ref === 'string') {
    const target = ajv.getSchema(ref)?.schema;
    if (target && typeof target === 'object') {
      for (const n of collectMembers(ajv, target)) names.add(n);
    }
  }
  return [...names];
}

function escapePointerToken(token: string): string {
  return token.replace(/~/g, '~0').replace(/\//g, '~1');
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  integer: 'an integer',
  object: 'an object',
  array: 'an array',
  boolean: 'true or false',
  null: 'null',
};

/**
 * Turns Ajv's errors into issues an officer can act on: one per place, the most specific
 * message kept (a failed check digit rather than "must match pattern"), typos answered with
 * the member that was probably meant.
 */
function toIssues(
  errors: readonly ErrorObject[],
  formatChecks: Record<string, FormatCheck>,
  rootMembers: readonly string[],
): Issue[] {
  const byPointer = new Map<string, { rank: number; message: string }>();
  const put = (pointer: string, message: string, rank: number) => {
    const prev = byPointer.get(pointer);
    if (!prev || rank > prev.rank) byPointer.set(pointer, { rank, message });
    else if (rank === prev.rank && !prev.message.includes(message)) {
      prev.message = `${prev.message}; ${message}`;
    }
  };
  // `anyOf` of `required` branches means "at least one of these members": said once, not per branch.
  const oneOf = new Map<string, { at: string; names: string[] }>();
  for (const e of errors) {
    const at = e.instancePath;
    const params = e.params as Record<string, unknown>;
    const anyOfBranch = /^(.*\/anyOf)\/\d+\/required$/.exec(e.schemaPath);
    if (e.keyword === 'required' && anyOfBranch) {
      const k = `${at} ${anyOfBranch[1]!}`;
      const group = oneOf.get(k) ?? { at, names: [] };
      group.names.push(String(params['missingProperty']));
      oneOf.set(k, group);
      continue;
    }
    switch (e.keyword) {
      case 'false schema':
        // The only false schemas are a shipment's identifiers of another transport mode and a
        // company's personal members.
        put(
          at,
          /\/(?:nationality|dateOfBirth)$/.test(at)
            ? 'is not allowed for a company (persons only)'
            : 'does not agree with the transport mode (see "mode")',
          3,
        );
        break;
      case 'required':
        put(`${at}/${escapePointerToken(String(params['missingProperty']))}`, 'is required', 3);
        break;
      case 'additionalProperties':
      case 'unevaluatedProperties': {
        const name = String(params['additionalProperty'] ?? params['unevaluatedProperty']);
        const members =
          at === ''
            ? rootMembers
            : Object.keys(
                (e.parentSchema as { properties?: object } | undefined)?.properties ?? {},
              );
        const hint = closest(name, members);
        put(
          `${at}/${escapePointerToken(name)}`,
          hint ? `is not a known member; did you mean "${hint}"?` : 'is not a known member',
          3,
        );
        break;
      }
      case 'format': {
        const check = formatChecks[String(params['format'])];
        const detail = typeof e.data === 'string' && check ? check(e.data) : undefined;
        put(at, detail ?? `must be a valid ${String(params['format'])}`, 2);
        break;
      }
      case 'enum': {
        const allowed = params['allowedValues'] as unknown[];
        put(
          at,
          e.schemaPath.endsWith('/$defs/country/enum')
            ? `${JSON.stringify(e.data)} is not an ISO 3166-1 alpha-2 country code`
            : e.schemaPath.endsWith('/$defs/currency/enum')
              ? `${JSON.stringify(e.data)} is not an ISO 4217 currency code`
              : allowed.length > 12
                ? `${JSON.stringify(e.data)} is not one of the ${allowed.length} allowed codes`
                : `must be one of: ${allowed.map((v) => JSON.stringify(v)).join(', ')}`,
          2,
        );
        break;
      }
      case 'const':
        put(at, `must be ${JSON.stringify(params['allowedValue'])}`, 2);
        break;
      case 'type':
        put(
          at,
          `must be ${String(params['type'])
            .split(',')
            .map((t) => TYPE_WORDS[t] ?? t)
            .join(' or ')}`,
          2,
        );
        break;
      case 'if':
      case 'allOf':
      case 'anyOf':
        break; // the failing branch reports its own, more specific error
      default:
        put(at, e.message ?? `fails ${e.keyword}`, 1);
    }
  }
  for (const { at, names } of oneOf.values())
    put(at, `needs at least one of: ${names.map((n) => JSON.stringify(n)).join(', ')}`, 2);
  return [...byPointer.entries()]
    .map(([pointer, { message }]) => ({ pointer, message }))
    .sort((a, b) => (a.pointer < b.pointer ? -1 : a.pointer > b.pointer ? 1 : 0));
}

/** The member name nearest to `name` by edit distance, if it is near enough to be a typo. */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Number.POSITIVE_INFINITY;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        prev[j]! + 1,
        cur[j - 1]! + 1,
        prev[j - 1]! + (a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1),
      );
    }
    prev = cur;
  }
  return prev[b.length]!;
}
