import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAX_EVIDENCE_BYTES,
  MAX_EVIDENCE_FILES,
  fileWitnessStore,
  type WitnessEvidence,
} from '../src/index.js';

// A hub that publishes forged checkpoint after forged checkpoint makes every witness keep
// evidence: the store keeps the same evidence once, and at most so many files and bytes, so the
// hub cannot fill an agency's disk through its witness (docs/security.md).
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function store() {
  const dir = mkdtempSync(join(tmpdir(), 'ahub-witness-store-'));
  dirs.push(dir);
  return { dir, store: fileWitnessStore(dir), files: () => readdirSync(join(dir, 'evidence')) };
}
function evidence(n: number, received = `forged checkpoint ${n}`): WitnessEvidence {
  return {
    at: new Date(Date.UTC(2026, 11, 1, 0, 0, 0, n)).toISOString(),
    origin: 'alert-hub/audit/hub',
    reason: `two different roots signed for tree size ${n}`,
    cosigned: { origin: 'alert-hub/audit/hub', size: 4, root: 'cm9vdA==', note: 'note\n' },
    received,
  };
}

describe('witness store - evidence is bounded', () => {
  it('the same evidence received again is kept once, at any time', () => {
    const { store: s, files } = store();
    s.keepEvidence(evidence(1));
    s.keepEvidence({ ...evidence(1), at: '2026-12-01T00:00:09.000Z' });
    expect(files()).toHaveLength(1);
    s.keepEvidence(evidence(2));
    expect(files()).toHaveLength(2);
  });

  it(`at most ${MAX_EVIDENCE_FILES} files, counting those there before a restart`, () => {
    const { dir, store: s, files } = store();
    for (let i = 0; i < MAX_EVIDENCE_FILES - 10; i++) s.keepEvidence(evidence(i));
    expect(files()).toHaveLength(MAX_EVIDENCE_FILES - 10);
    const again = fileWitnessStore(dir);
    for (let i = 0; i < 30; i++) again.keepEvidence(evidence(100_000 + i));
    expect(files()).toHaveLength(MAX_EVIDENCE_FILES);
  });

  it(`at most ${MAX_EVIDENCE_BYTES / 1024 / 1024} MiB of them`, () => {
    const { dir, store: s, files } = store();
    const big = 'x'.repeat(256 * 1024);
    for (let i = 0; i < 300; i++) s.keepEvidence(evidence(i, `${big}${i}`));
    const bytes = files().reduce((n, f) => n + statSync(join(dir, 'evidence', f)).size, 0);
    // Full up to less than one more of them, and never beyond.
    expect(bytes).toBeLessThanOrEqual(MAX_EVIDENCE_BYTES);
    expect(bytes).toBeGreaterThan(MAX_EVIDENCE_BYTES - 257 * 1024);
    expect(files().length).toBeLessThan(300);
  });
});
