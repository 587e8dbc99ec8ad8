import {
  CompactRange,
  EMPTY_ROOT,
  MerkleProofError,
  hashChildren,
  hashLeaf,
  rootFromInclusionProof as coreRootFromInclusionProof,
  rootOf,
  splitPoint,
} from '@alert-hub/core';

/**
 * RFC 9162 §2.1 Merkle trees with SHA-256 over the audit log: the tree over stored leaves read on
 * demand, inclusion proofs (§2.1.3) and consistency proofs (§2.1.4), their generation and their
 * verification. The pure hashing (leaf and node hashes, the compact range, the root an inclusion
 * proof leads to) lives in `@alert-hub/core`, which the router's countersignature over a routing
 * decision shares; it is re-exported here. Hashes are 32-byte Buffers.
 */
export { CompactRange, EMPTY_ROOT, hashChildren, hashLeaf, rootOf };

function isPowerOfTwo(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

/** A failed proof check; `code` says which. */
export class ProofError extends Error {
  constructor(
    readonly code:
      'ERR_PROOF_RANGE' | 'ERR_PROOF_LENGTH' | 'ERR_PROOF_ROOT_MISMATCH' | 'ERR_PROOF_HASH_SIZE',
    message: string,
  ) {
    super(message);
    this.name = 'ProofError';
  }
}

/**
 * Reads leaf hashes by index, `[start, end)`. The tree never holds every leaf in memory: it asks
 * for leaves when it needs them and keeps the hashes of large complete subtrees, which never
 * change in an append-only log.
 */
export type LeafHashReader = (start: number, end: number) => readonly Buffer[];

/**
 * Computes tree heads and proofs over a log of leaves it reads on demand. Complete subtrees of
 * at least 2^`cacheLevel` leaves are remembered once computed, so a proof costs O(log n) cached
 * hashes plus at most a few blocks of 2^`cacheLevel` leaves read from storage.
 */
export class MerkleTree {
  readonly #read: LeafHashReader;
  readonly #cacheLevel: number;
  readonly #cache = new Map<string, Buffer>();

  constructor(read: LeafHashReader, cacheLevel = 8) {
    this.#read = read;
    this.#cacheLevel = cacheLevel;
  }

  /** MTH(D[start:end]). */
  hashRange(start: number, end: number): Buffer {
    const n = end - start;
    if (n <= 0) return EMPTY_ROOT;
    if (isPowerOfTwo(n) && start % n === 0) return this.#perfect(start, n);
    const k = splitPoint(n);
    return hashChildren(this.hashRange(start, start + k), this.hashRange(start + k, end));
  }

  #perfect(start: number, n: number): Buffer {
    if (n === 1) {
      const [h] = this.#read(start, start + 1);
      if (!h) throw new ProofError('ERR_PROOF_RANGE', `leaf ${start} is not in the log`);
      return h;
    }
    const level = Math.log2(n);
    if (level < this.#cacheLevel) return rootOf(this.#read(start, start + n));
    const key = `${level}:${start / n}`;
    let h = this.#cache.get(key);
    if (!h) {
      h = hashChildren(this.#perfect(start, n / 2), this.#perfect(start + n / 2, n / 2));
      this.#cache.set(key, h);
    }
    return h;
  }

  /** The root hash of the tree of the first `size` leaves. */
  root(size: number): Buffer {
    return this.hashRange(0, size);
  }

  /** RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves. */
  inclusionProof(index: number, size: number): Buffer[] {
    if (!(index >= 0 && index < size))
      throw new ProofError('ERR_PROOF_RANGE', `leaf ${index} is not in a tree of ${size}`);
    const path: Buffer[] = [];
    const walk = (m: number, start: number, end: number): void => {
      const n = end - start;
      if (n === 1) return;
      const k = splitPoint(n);
      if (m < k) {
        walk(m, start, start + k);
        path.push(this.hashRange(start + k, end));
      } else {
        walk(m - k, start + k, end);
        path.push(this.hashRange(start, start + k));
      }
    };
    walk(index, 0, size);
    return path;
  }

  /** RFC 9162 §2.1.4.1: the consistency proof from the tree of `m` leaves to that of `n`. */
  consistencyProof(m: number, n: number): Buffer[] {
    if (!(m >= 0 && m <= n))
      throw new ProofError('ERR_PROOF_RANGE', `cannot prove ${m} consistent with ${n}`);
    if (m === 0 || m === n) return [];
    const proof: Buffer[] = [];
    const sub = (mm: number, start: number, end: number, b: boolean): void => {
      const nn = end - start;
      if (mm === nn) {
        if (!b) proof.push(this.hashRange(start, end));
        return;
      }
      const k = splitPoint(nn);
      if (mm <= k) {
        sub(mm, start, start + k, b);
        proof.push(this.hashRange(start + k, end));
      } else {
        sub(mm - k, start + k, end, false);
        proof.push(this.hashRange(start, start + k));
      }
    };
    sub(m, 0, n, true);
    return proof;
  }
}

function checkHash(h: Uint8Array, what: string): void {
  if (h.length !== 32) throw new ProofError('ERR_PROOF_HASH_SIZE', `${what} is not 32 bytes`);
}

/**
 * RFC 9162 §2.1.3.2: the root that an inclusion proof of `leafHash` at `index` in a tree of
 * `size` leaves leads to. Throws {@link ProofError} when the proof has the wrong shape.
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer {
  try {
    return coreRootFromInclusionProof(index, size, leafHash, proof);
  } catch (err) {
    if (err instanceof MerkleProofError) throw new ProofError(err.code, err.message);
    throw err;
  }
}

/** Verifies an inclusion proof against a root; throws {@link ProofError} if it does not hold. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  checkHash(root, 'the root');
  const r = rootFromInclusionProof(index, size, leafHash, proof);
  if (!r.equals(root))
    throw new ProofError('ERR_PROOF_ROOT_MISMATCH', 'the inclusion proof leads to another root');
}

/**
 * RFC 9162 §2.1.4.2: verifies that the tree of `size1` leaves with root `root1` is a prefix of
 * the tree of `size2` leaves with root `root2`. Throws {@link ProofError} if not.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  root1: Uint8Array,
  root2: Uint8Array,
  proof: readonly Uint8Array[],
): void {
  if (!(Number.isSafeInteger(size1) && Number.isSafeInteger(size2) && 0 <= size1 && size1 <= size2))
    throw new ProofError('ERR_PROOF_RANGE', `a tree of ${size1} cannot precede one of ${size2}`);
  checkHash(root2, 'the second root');
  if (size1 === 0) {
    if (proof.length !== 0)
      throw new ProofError('ERR_PROOF_LENGTH', 'a proof from the empty tree is empty');
    return;
  }
  checkHash(root1, 'the first root');
  if (size1 === size2) {
    if (proof.length !== 0)
      throw new ProofError('ERR_PROOF_LENGTH', 'a proof between equal sizes is empty');
    if (!Buffer.from(root1).equals(root2))
      throw new ProofError('ERR_PROOF_ROOT_MISMATCH', 'two different roots for one tree size');
    return;
  }
  if (proof.length === 0) throw new ProofError('ERR_PROOF_LENGTH', 'the proof is empty');
  for (const p of proof) checkHash(p, 'a proof hash');
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) throw new ProofError('ERR_PROOF_LENGTH', 'the proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new ProofError('ERR_PROOF_LENGTH', 'the proof is too short');
  if (!fr.equals(root1))
    throw new ProofError('ERR_PROOF_ROOT_MISMATCH', 'the proof does not lead to the first root');
  if (!sr.equals(root2))
    throw new ProofError('ERR_PROOF_ROOT_MISMATCH', 'the proof does not lead to the second root');
}

/** Canonical standard base64, padded, of 32 bytes: the one spelling of a hash (protocol.md §8.5). */
export function isHash(text: string): boolean {
  return /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(text);
}
