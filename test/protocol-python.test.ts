import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AlertHubError, decodeEnvelope, verifyOrigin } from '@alert-hub/core';
import { DEFAULT_SCHEMAS_DIR, loadSchemaRegistry, loadTrustStore } from '@alert-hub/runtime';
import { ROOT } from '@alert-hub/testkit';

/**
 * docs/protocol.md §5.4 gives partners a Python verifier of steps 1 to 21 of §5.1. This test runs
 * the ```python block of §5.4 as the document has it (a change to the document is what is tested)
 * with Python 3, `msgpack` and `cryptography`, through test/python/run-snippet.py, over every
 * vector of test/vectors/vectors.json, and compares each result with the vector's expected one.
 */

const INSTALL = 'apt-get install python3 python3-msgpack python3-cryptography';
/**
 * Tried in this order: the PATH's (a developer's pyenv or venv), then Debian's (`.ci/run` installs
 * Debian's packages when neither has both modules).
 */
const PYTHONS = ['python3', '/usr/bin/python3'];

interface Vector {
  name: string;
  envelope: string;
  recipient?: string;
  paddedTo?: number;
  expected: { ok: true; alert: unknown } | { ok: false; code: string };
}

type SnippetResult =
  | { name: string; result: 'accepted'; alert: unknown }
  | { name: string; result: 'refused'; code: string }
  | { name: string; result: 'error'; error: string };

/** The one ```python block of the section "### 5.4 In Python" of docs/protocol.md. */
function extractSnippet(doc: string): string {
  const lines = doc.split('\n');
  const start = lines.indexOf('### 5.4 In Python');
  if (start < 0) throw new Error('docs/protocol.md has no section "### 5.4 In Python"');
  const blocks: string[] = [];
  let fence: 'python' | 'other' | undefined;
  let block: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.startsWith('```')) {
      if (fence === 'python') blocks.push(`${block.join('\n')}\n`);
      fence = fence ? undefined : line === '```python' ? 'python' : 'other';
      block = [];
    } else if (fence === 'python') block.push(line);
    else if (!fence && /^#{1,3} /.test(line)) break; // the next section
  }
  if (blocks.length !== 1)
    throw new Error(`§5.4 of docs/protocol.md holds ${blocks.length} python blocks, not 1`);
  return blocks[0]!;
}

const VERSIONS =
  'import sys, msgpack, cryptography; ' +
  'print("Python %s, msgpack %s, cryptography %s" % (sys.version.split()[0], ' +
  '".".join(map(str, msgpack.version)), cryptography.__version__))';

/** The first Python 3 that imports msgpack and cryptography, or an error naming the install. */
function findPython(): { python: string; versions: string } {
  const tried: string[] = [];
  for (const python of PYTHONS) {
    const r = spawnSync(python, ['-c', VERSIONS], { encoding: 'utf8' });
    if (r.status === 0) return { python, versions: r.stdout.trim() };
    const why = r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? '');
    tried.push(`${python}: ${why}`);
  }
  throw new Error(
    `the Python snippet of docs/protocol.md §5.4 needs Python 3 with msgpack and cryptography ` +
      `(on Debian or Ubuntu: sudo ${INSTALL}); tried ${tried.join('; ')}`,
  );
}

const vectorsFile = join(ROOT, 'test/vectors/vectors.json');
const { verifyAt, vectors } = JSON.parse(readFileSync(vectorsFile, 'utf8')) as {
  verifyAt: string;
  vectors: Vector[];
};
const registry = loadSchemaRegistry(DEFAULT_SCHEMAS_DIR);
const trust = loadTrustStore(join(ROOT, 'test/vectors/trust'), registry);

const envelopeOf = (v: Vector) => {
  const bytes = Buffer.from(v.envelope, 'hex');
  return v.paddedTo ? Buffer.concat([bytes, Buffer.alloc(v.paddedTo - bytes.length)]) : bytes;
};

/**
 * What steps 1 to 21 give for a vector, by the hub's own code for them (`decodeEnvelope`, then
 * `verifyOrigin`, as §5.1 names them): the alert, or the code of the first of them that fails.
 * A vector these steps accept but whose expected outcome is a refusal is refused by a step the
 * snippet omits (22 to 26).
 */
async function hubSteps1To21(v: Vector): Promise<{ alert: unknown } | { code: string }> {
  try {
    const { alert } = await verifyOrigin(decodeEnvelope(envelopeOf(v)), {
      trust,
      registry,
      now: new Date(verifyAt),
    });
    return { alert };
  } catch (err) {
    if (err instanceof AlertHubError) return { code: err.code };
    throw err;
  }
}

const steps1To21 = new Map(
  await Promise.all(vectors.map(async (v) => [v.name, await hubSteps1To21(v)] as const)),
);

const describeResult = (r: SnippetResult | undefined) =>
  r === undefined
    ? 'no result'
    : r.result === 'accepted'
      ? 'accepted'
      : r.result === 'refused'
        ? `Refused(${r.code})`
        : `an error:\n${r.error}`;

/**
 * Runs run-snippet.py and the snippet, both written to `work`, with `python` over the vectors.
 * Throws when the snippet cannot be found in the document or the driver fails.
 */
function runSnippet(python: string, work: string): SnippetResult[] {
  writeFileSync(
    join(work, 'protocol_snippet.py'),
    extractSnippet(readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8')),
  );
  copyFileSync(join(ROOT, 'test/python/run-snippet.py'), join(work, 'run-snippet.py'));
  const r = spawnSync(
    python,
    [
      '-B',
      join(work, 'run-snippet.py'),
      join(work, 'protocol_snippet.py'),
      vectorsFile,
      join(ROOT, 'test/vectors/trust'),
      DEFAULT_SCHEMAS_DIR,
    ],
    { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0)
    throw new Error(`${python} run-snippet.py exited with ${r.status}:\n${r.stderr}`, {
      cause: r.error,
    });
  return JSON.parse(r.stdout) as SnippetResult[];
}

describe('protocol.md §5.4 - the Python verifier, run over test/vectors/vectors.json', () => {
  let work: string | undefined;
  let ranWith = '';
  const results = new Map<string, SnippetResult>();
  // A missing Python or a snippet that does not run fails every test below, never skips one.
  let notRun: Error | undefined;
  const ran = () => {
    if (notRun) throw new Error('the snippet did not run (see the first test)');
  };

  beforeAll(() => {
    try {
      const { python, versions } = findPython();
      ranWith = `${python} (${versions})`;
      work = mkdtempSync(join(tmpdir(), 'ahub-python-'));
      for (const r of runSnippet(python, work)) results.set(r.name, r);
    } catch (err) {
      notRun = err instanceof Error ? err : new Error(String(err));
    }
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs, from docs/protocol.md, under Python 3 with msgpack and cryptography', () => {
    if (notRun) throw notRun;
    console.log(`protocol.md §5.4: the snippet ran with ${ranWith}`);
    expect(results.size).toBeGreaterThan(0);
  });

  for (const v of vectors) {
    const hub = steps1To21.get(v.name)!;
    const title =
      'code' in hub
        ? `Refused(${hub.code})`
        : v.expected.ok
          ? 'accepted'
          : `accepted: ${v.expected.code} is of a step the snippet omits (22 to 26)`;
    it(`${v.name}: ${title}`, () => {
      ran();
      const got = results.get(v.name);
      expect(got?.result, `${v.name}: the snippet gave ${describeResult(got)}`).not.toBe('error');
      if ('code' in hub) {
        // Refused at a step the snippet checks: the vector's code is that step's.
        expect(v.expected, `${v.name}: refused at steps 1 to 21`).toEqual({
          ok: false,
          code: hub.code,
        });
        expect(describeResult(got), v.name).toBe(`Refused(${hub.code})`);
      } else {
        // Accepted, or refused at a step the snippet omits: its own steps pass.
        expect(describeResult(got), v.name).toBe('accepted');
        expect((got as { alert: unknown }).alert, v.name).toEqual(
          v.expected.ok ? v.expected.alert : hub.alert,
        );
      }
    });
  }

  it('checks every vector steps 1 to 21 decide, and reports those it omits', () => {
    const omitted = vectors.filter((v) => !v.expected.ok && !('code' in steps1To21.get(v.name)!));
    ran();
    const checked = vectors.length - omitted.length;
    console.log(
      `protocol.md §5.4: the Python snippet checked ${checked} of ${vectors.length} vectors; ` +
        `omitted (steps 22 to 26): ${omitted.map((v) => v.name).join(', ') || 'none'}`,
    );
    expect([...results.keys()]).toEqual(vectors.map((v) => v.name));
    expect(checked).toBeGreaterThan(0);
    const asExpected = vectors.filter((v) => {
      const r = results.get(v.name);
      return v.expected.ok
        ? r?.result === 'accepted'
        : r?.result === 'refused' && r.code === v.expected.code;
    });
    expect(asExpected.length).toBe(checked);
  });
});
