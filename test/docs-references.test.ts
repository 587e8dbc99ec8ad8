import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '@alert-hub/testkit';

/** The documents that make promises: the README, docs/ and every package's README. */
function documents(): string[] {
  const docs = ['README.md', 'bench/README.md', 'deploy/README.md', 'certs/README.md'];
  for (const f of readdirSync(join(ROOT, 'docs'))) if (f.endsWith('.md')) docs.push(`docs/${f}`);
  for (const group of ['packages', 'services'])
    for (const p of readdirSync(join(ROOT, group)))
      if (existsSync(join(ROOT, group, p, 'README.md'))) docs.push(`${group}/${p}/README.md`);
  return docs.filter((d) => existsSync(join(ROOT, d)));
}

describe('docs - every reference resolves inside the repository', () => {
  const docs = documents();

  it('every test file a document names exists, written from the repository root', () => {
    const missing: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(/[A-Za-z0-9_./-]+\.test\.ts/g))
        if (!existsSync(join(ROOT, m[0]))) missing.push(`${doc}: ${m[0]}`);
    }
    expect(docs.length).toBeGreaterThan(10);
    expect(missing).toEqual([]);
  });

  it('every relative link a document makes points at a file of the repository', () => {
    const broken: string[] = [];
    for (const doc of docs) {
      const text = readFileSync(join(ROOT, doc), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!.split('#')[0]!;
        if (target === '' || /^[a-z]+:/.test(target)) continue;
        const file = join(ROOT, dirname(doc), target);
        if (relative(ROOT, file).startsWith('..') || !existsSync(file))
          broken.push(`${doc}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
