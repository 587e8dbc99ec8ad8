/**
 * Just enough JSON Schema 2020-12 to build a form from the alert schemas: `$ref` (absolute or
 * local), `allOf`, a `$ref` beside other keywords, and `if`/`then` chosen by a `const` member
 * (v2 commodity families), merged into one view per member. Constraints such as `anyOf` of
 * `required` are not drawn: the gateway stays the judge of validity, and the form asks it
 * (POST /console/api/validate) and lists every problem it reports.
 */
export type Schema = Readonly<Record<string, unknown>>;

export interface Located {
  readonly s: Schema;
  readonly base: string;
}

export interface SchemaView {
  readonly type?: string;
  readonly title?: string;
  readonly description?: string;
  readonly properties: Readonly<Record<string, Located>>;
  readonly required: readonly string[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly items?: Located;
  readonly minItems?: number;
  readonly maxLength?: number;
  readonly format?: string;
}

export class SchemaSet {
  readonly #byId = new Map<string, Schema>();
  constructor(docs: readonly Schema[]) {
    for (const d of docs) if (typeof d['$id'] === 'string') this.#byId.set(d['$id'], d);
  }

  get(id: string): Located | undefined {
    const s = this.#byId.get(id);
    return s ? { s, base: id } : undefined;
  }

  #lookup(ref: string, base: string): Located {
    const url = new URL(ref, base);
    const hash = decodeURIComponent(url.hash.replace(/^#/, ''));
    url.hash = '';
    const docId = url.toString();
    let node: unknown = this.#byId.get(docId);
    for (const token of hash.split('/').filter((x) => x !== ''))
      node = (node as Record<string, unknown> | undefined)?.[
        token.replace(/~1/g, '/').replace(/~0/g, '~')
      ];
    if (typeof node !== 'object' || node === null) throw new Error(`unresolved $ref ${ref}`);
    return { s: node as Schema, base: docId };
  }

  /**
   * The merged view of a schema, for the value the form holds there: an `if` whose `const`
   * members and `required` the value meets adds its `then` (how a v2 commodity's `family`
   * selects its members).
   */
  view(at: Located, value?: unknown): SchemaView {
    const { s, base } = at;
    let out: SchemaView = { properties: {}, required: [] };
    if (typeof s['$ref'] === 'string')
      out = merge(out, this.view(this.#lookup(s['$ref'], base), value));
    for (const part of (s['allOf'] as Schema[] | undefined) ?? [])
      out = merge(out, this.view({ s: part, base }, value));
    const cond = s['if'] as Schema | undefined;
    const then = s['then'] as Schema | undefined;
    if (cond && then && meets(cond, value)) out = merge(out, this.view({ s: then, base }, value));
    const own: Record<string, Located> = {};
    for (const [k, v] of Object.entries((s['properties'] as Record<string, Schema>) ?? {}))
      own[k] = { s: v, base };
    return merge(out, {
      properties: own,
      required: (s['required'] as string[] | undefined) ?? [],
      ...(typeof s['type'] === 'string' ? { type: s['type'] } : {}),
      ...(typeof s['title'] === 'string' ? { title: s['title'] } : {}),
      ...(typeof s['description'] === 'string' ? { description: s['description'] } : {}),
      ...(Array.isArray(s['enum']) ? { enum: s['enum'] as unknown[] } : {}),
      ...('const' in s ? { const: s['const'] } : {}),
      ...(s['items'] ? { items: { s: s['items'] as Schema, base } } : {}),
      ...(typeof s['minItems'] === 'number' ? { minItems: s['minItems'] } : {}),
      ...(typeof s['maxLength'] === 'number' ? { maxLength: s['maxLength'] } : {}),
      ...(typeof s['format'] === 'string' ? { format: s['format'] } : {}),
    });
  }
}

/** Whether `value` meets an `if` made of `properties` with `const` and `required`. */
function meets(cond: Schema, value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  for (const k of (cond['required'] as string[] | undefined) ?? []) if (!(k in v)) return false;
  for (const [k, sub] of Object.entries((cond['properties'] as Record<string, Schema>) ?? {}))
    if ('const' in sub && k in v && v[k] !== sub['const']) return false;
  return true;
}

function merge(a: SchemaView, b: SchemaView): SchemaView {
  return {
    ...a,
    ...b,
    properties: { ...a.properties, ...b.properties },
    required: [...new Set([...a.required, ...b.required])],
  };
}

/** The JSON Pointer of a path. */
export function pointerOf(path: readonly (string | number)[]): string {
  return path.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** `value` with `v` at `path` (copies along the way; `undefined` removes the member). */
export function setIn(value: unknown, path: readonly (string | number)[], v: unknown): unknown {
  if (path.length === 0) return v;
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const arr = Array.isArray(value) ? [...(value as unknown[])] : [];
    arr[head] = setIn(arr[head], rest, v);
    return arr;
  }
  const obj = { ...((value as Record<string, unknown> | undefined) ?? {}) };
  const next = setIn(obj[head!], rest, v);
  if (next === undefined) delete obj[head!];
  else obj[head!] = next;
  return obj;
}

export function getIn(value: unknown, path: readonly (string | number)[]): unknown {
  let v = value;
  for (const p of path) v = (v as Record<string | number, unknown> | undefined)?.[p];
  return v;
}

/**
 * What the form sends: empty text and members left empty are dropped, so an optional part left
 * blank is simply absent. Array items stay where they are, so error pointers match the form.
 */
export function prune(value: unknown): unknown {
  if (Array.isArray(value)) return value.map((x) => prune(x) ?? '');
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const p = prune(v);
      if (p !== undefined) out[k] = p;
    }
    return Object.keys(out).length > 0 ? out : undefined;
  }
  if (value === '' || value === undefined) return undefined;
  return value;
}
