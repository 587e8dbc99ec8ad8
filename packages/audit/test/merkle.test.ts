import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  EMPTY_ROOT,
  MerkleTree,
  type ProofError,
  hashLeaf,
  rootFromInclusionProof,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from '@alert-hub/audit';

// RFC 6962 / RFC 9162 reference data as published with transparency-dev/merkle (testonly and
// proof/verify_test.go): eight leaf inputs, the root of every prefix, and known proofs.
const LEAVES = [
  '',
  '00',
  '10',
  '2021',
  '3031',
  '40414243',
  '5051525354555657',
  '606162636465666768696a6b6c6d6e6f',
].map((h) => Buffer.from(h, 'hex'));
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const INCLUSION: [number, number, string[]][] = [
  [
    0,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    5,
    8,
    [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [
    1,
    5,
    [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
];
const CONSISTENCY: [number, number, string[]][] = [
  [
    1,
    8,
    [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ],
  ],
  [
    6,
    8,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
  [
    2,
    5,
    [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ],
  ],
  [
    6,
    7,
    [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ],
  ],
];
const hex = (b: Buffer) => b.toString('hex');
const unhex = (a: string[]) => a.map((h) => Buffer.from(h, 'hex'));
const leafHashes = LEAVES.map(hashLeaf);
const treeOf = (hashes: Buffer[], cacheLevel = 1) =>
  new MerkleTree((s, e) => hashes.slice(s, e), cacheLevel);

describe('merkle - RFC 9162 hashing against the published vectors', () => {
  it('the root of every prefix of the eight reference leaves', () => {
    expect(hex(EMPTY_ROOT)).toBe(ROOTS[0]);
    for (let n = 1; n <= 8; n++) {
      expect(hex(rootOf(leafHashes.slice(0, n)))).toBe(ROOTS[n]);
      expect(hex(treeOf(leafHashes).root(n))).toBe(ROOTS[n]);
    }
  });
  it('inclusion proofs are generated and verified as published', () => {
    for (const [index, size, proof] of INCLUSION) {
      const tree = treeOf(leafHashes);
      expect(tree.inclusionProof(index, size).map(hex)).toEqual(proof);
      expect(() =>
        verifyInclusion(
          index,
          size,
          leafHashes[index]!,
          unhex(proof),
          Buffer.from(ROOTS[size]!, 'hex'),
        ),
      ).not.toThrow();
    }
  });
  it('consistency proofs are generated and verified as published', () => {
    for (const [m, n, proof] of CONSISTENCY) {
      expect(treeOf(leafHashes).consistencyProof(m, n).map(hex)).toEqual(proof);
      expect(() =>
        verifyConsistency(
          m,
          n,
          Buffer.from(ROOTS[m]!, 'hex'),
          Buffer.from(ROOTS[n]!, 'hex'),
          unhex(proof),
        ),
      ).not.toThrow();
    }
  });
  it('a corrupted proof, index, size or root is refused with a code', () => {
    const [index, size, proof] = INCLUSION[1]!;
    const root = Buffer.from(ROOTS[size]!, 'hex');
    const leaf = leafHashes[index]!;
    const code = (f: () => void) => {
      try {
        f();
        return 'verified';
      } catch (err) {
        return (err as ProofError).code;
      }
    };
    expect(code(() => verifyInclusion(index + 1, size, leaf, unhex(proof), root))).toBe(
      'ERR_PROOF_ROOT_MISMATCH',
    );
    expect(code(() => verifyInclusion(index, size * 2, leaf, unhex(proof), root))).not.toBe(
      'verified',
    );
    expect(code(() => verifyInclusion(index, size, leaf, unhex(proof).slice(1), root))).not.toBe(
      'verified',
    );
    expect(code(() => verifyInclusion(index, size, leaf, [...unhex(proof), root], root))).toBe(
      'ERR_PROOF_LENGTH',
    );
    expect(code(() => verifyInclusion(8, 8, leaf, unhex(proof), root))).toBe('ERR_PROOF_RANGE');
    const [m, n, cp] = CONSISTENCY[1]!;
    const r1 = Buffer.from(ROOTS[m]!, 'hex');
    const r2 = Buffer.from(ROOTS[n]!, 'hex');
    expect(code(() => verifyConsistency(m, n, r2, r1, unhex(cp)))).toBe('ERR_PROOF_ROOT_MISMATCH');
    expect(code(() => verifyConsistency(m, n, r1, r2, []))).toBe('ERR_PROOF_LENGTH');
    expect(code(() => verifyConsistency(n, m, r1, r2, unhex(cp)))).toBe('ERR_PROOF_RANGE');
    const flipped = unhex(cp);
    flipped[0]![0]! ^= 16;
    expect(code(() => verifyConsistency(m, n, r1, r2, flipped))).toBe('ERR_PROOF_ROOT_MISMATCH');
  });
  it('property: every generated proof verifies, for any sizes, with or without the subtree cache', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }),
        fc.nat(),
        fc.nat(),
        fc.integer({ min: 0, max: 9 }),
        (n, a, b, level) => {
          const hashes = Array.from({ length: n }, (_, i) => hashLeaf(Buffer.from(String(i))));
          const tree = treeOf(hashes, level);
          const root = rootOf(hashes);
          expect(tree.root(n).equals(root)).toBe(true);
          const i = a % n;
          verifyInclusion(i, n, hashes[i]!, tree.inclusionProof(i, n), root);
          const m = b % (n + 1);
          verifyConsistency(m, n, rootOf(hashes.slice(0, m)), root, tree.consistencyProof(m, n));
        },
      ),
      { numRuns: 200 },
    );
  });
  it('rootFromInclusionProof recomputes the root', () => {
    const tree = treeOf(leafHashes);
    expect(hex(rootFromInclusionProof(3, 7, leafHashes[3]!, tree.inclusionProof(3, 7)))).toBe(
      ROOTS[7],
    );
  });
});
