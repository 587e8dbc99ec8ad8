import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { compileDocumentSchema, type Issue } from '@alert-hub/core';
import { ConfigInvalidError } from './errors.js';

/** One environment variable that overrides one member of a configuration. */
export interface EnvBinding {
  readonly env: string;
  /** Dot path of the member (`nats.servers`). */
  readonly path: string;
  readonly type: 'string' | 'integer' | 'boolean' | 'list';
}

export interface LoadConfigOptions {
  /** JSON Schema (2020-12) of the configuration, with defaults. */
  readonly schema: Record<string, unknown>;
  /** A YAML or JSON file; absent means environment and defaults only. */
  readonly file?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly bindings: readonly EnvBinding[];
  /** Dot paths of members that are file paths: resolved against the config file's directory. */
  readonly paths?: readonly string[];
  /** Dot paths of files or directories that must exist when set (reported with the rest). */
  readonly existing?: readonly string[];
  /**
   * Further checks (the router reads its agreements file), whose issues are reported with the
   * others; it must cope with a document the schema refused.
   */
  readonly check?: (doc: Record<string, unknown>) => readonly Issue[];
  /**
   * Read again on SIGHUP: a file that holds nothing (zero bytes, or only spaces and comments) is
   * refused, whereas at start it means environment and defaults only. A file cut short by an
   * editor or a copy would otherwise revoke every API token at once.
   */
  readonly reload?: boolean;
}

/**
 * The configuration mechanics every service shares: read the file, apply environment
 * overrides, fill defaults, validate, and report every problem at once with
 * `ERR_CONFIG_INVALID` before anything connects. The result is deeply frozen.
 */
export function loadConfigDocument<T>(options: LoadConfigOptions): T {
  const issues: Issue[] = [];
  let doc: Record<string, unknown> = {};
  if (options.file) {
    try {
      const parsed = parseYaml(readFileSync(options.file, 'utf8')) as unknown;
      if ((parsed === null || parsed === undefined) && options.reload) {
        issues.push({
          pointer: '',
          message:
            'the configuration file is empty: refused on a reload (write the file whole, then SIGHUP)',
        });
      } else if (parsed !== null && parsed !== undefined) {
        if (typeof parsed !== 'object' || Array.isArray(parsed)) {
          issues.push({ pointer: '', message: 'the configuration file must hold a mapping' });
        } else doc = parsed as Record<string, unknown>;
      }
    } catch (err) {
      throw new ConfigInvalidError(options.file, [
        { pointer: '', message: (err as Error).message },
      ]);
    }
  }
  const baseDir = options.file ? dirname(resolve(options.file)) : process.cwd();
  for (const p of options.paths ?? []) {
    const v = getPath(doc, p);
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) setPath(doc, p, resolve(baseDir, v));
  }
  for (const b of options.bindings) {
    const raw = options.env[b.env];
    if (raw === undefined || raw === '') continue;
    const value = coerce(raw, b.type);
    if (value === undefined) {
      issues.push({
        pointer: `/${b.path.split('.').join('/')}`,
        message: `environment ${b.env}=${JSON.stringify(raw)} is not ${b.type === 'integer' ? 'an integer' : 'true or false'}`,
      });
      continue;
    }
    setPath(
      doc,
      b.path,
      options.paths?.includes(b.path) && typeof value === 'string' ? resolve(value) : value,
    );
  }
  issues.push(...compileDocumentSchema(options.schema, { useDefaults: true })(doc));
  // Missing files are configuration errors too, listed with the rest (not a raw ENOENT later).
  for (const p of options.existing ?? []) {
    const v = getPath(doc, p);
    if (typeof v === 'string' && v !== '' && !existsSync(v))
      issues.push({ pointer: `/${p.split('.').join('/')}`, message: `no such file: ${v}` });
  }
  if (options.check) issues.push(...options.check(doc));
  if (issues.length > 0)
    throw new ConfigInvalidError(options.file ?? 'environment', mergeIssues(issues));
  return deepFreeze(doc) as T;
}

/** One issue per place, messages joined, sorted by pointer. */
function mergeIssues(issues: readonly Issue[]): Issue[] {
  const byPointer = new Map<string, string[]>();
  for (const i of issues)
    byPointer.set(i.pointer, [...(byPointer.get(i.pointer) ?? []), i.message]);
  return [...byPointer.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([pointer, messages]) => ({ pointer, message: messages.join('; ') }));
}

function coerce(raw: string, type: EnvBinding['type']): unknown {
  switch (type) {
    case 'string':
      return raw;
    case 'integer':
      return /^-?\d+$/.test(raw) ? Number(raw) : undefined;
    case 'boolean':
      return raw === 'true' || raw === '1'
        ? true
        : raw === 'false' || raw === '0'
          ? false
          : undefined;
    case 'list':
      return raw
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  }
}

function getPath(doc: Record<string, unknown>, path: string): unknown {
  let cur: unknown = doc;
  for (const k of path.split('.')) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

function setPath(doc: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split('.');
  let cur = doc;
  for (const k of keys.slice(0, -1)) {
    const next = cur[k];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]!] = value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
