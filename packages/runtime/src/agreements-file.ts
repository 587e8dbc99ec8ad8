import { createHash } from 'node:crypto';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { LineCounter, parseDocument, isNode } from 'yaml';
import {
  AgreementsInvalidError,
  parseAgreements,
  type AgreementSet,
  type Issue,
  type SchemaRegistry,
} from '@alert-hub/core';

/** A loaded agreements file: the set, and the hash of the bytes it came from. */
export interface LoadedAgreements {
  readonly set: AgreementSet;
  readonly sha256: string;
}

/**
 * Reads and validates an agreements file (YAML or JSON). Errors name the place twice over:
 * the JSON pointer and the file's line and column (`agreements.yaml:14:5 /agreements/1/maxHandling`).
 */
export function loadAgreementsFile(
  file: string,
  registry: SchemaRegistry,
  /** The trust store's agencies: an agreement naming another is refused. */
  knownAgencies?: readonly string[],
): LoadedAgreements {
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new AgreementsInvalidError(
      file,
      doc.errors.map((e) => ({
        pointer: '',
        message: `${basename(file)}:${e.linePos?.[0].line ?? '?'}:${e.linePos?.[0].col ?? '?'} ${e.message.split('\n')[0]}`,
      })),
    );
  }
  try {
    return {
      set: parseAgreements(doc.toJS(), registry, file, knownAgencies),
      sha256: createHash('sha256').update(text).digest('hex'),
    };
  } catch (err) {
    if (!(err instanceof AgreementsInvalidError)) throw err;
    const located: Issue[] = err.issues.map((i) => {
      const path = i.pointer
        .split('/')
        .slice(1)
        .map((t) => (/^\d+$/.test(t) ? Number(t) : t.replace(/~1/g, '/').replace(/~0/g, '~')));
      let node = doc.getIn(path, true);
      // A missing member has no node: point at its parent.
      for (let p = path; !isNode(node) && p.length > 0; p = p.slice(0, -1))
        node = doc.getIn(p.slice(0, -1), true);
      const offset = isNode(node) ? node.range?.[0] : undefined;
      const pos = offset === undefined ? undefined : lineCounter.linePos(offset);
      return {
        pointer: i.pointer,
        message: pos ? `${basename(file)}:${pos.line}:${pos.col} ${i.message}` : i.message,
      };
    });
    throw new AgreementsInvalidError(file, located);
  }
}

/**
 * Watches the agreements file and calls `onChange` (debounced) when it may have changed. The
 * directory is watched, not the file, so that editors that save by renaming are seen too.
 */
export function watchAgreementsFile(
  file: string,
  onChange: () => void,
  debounceMs = 200,
): FSWatcher {
  let timer: NodeJS.Timeout | undefined;
  const name = basename(file);
  const w = watch(dirname(file), (_event, changed) => {
    if (changed !== null && changed !== name) return;
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  });
  w.unref();
  return w;
}
