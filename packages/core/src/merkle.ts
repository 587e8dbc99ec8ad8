import { createHash, hash } from 'node:crypto';
import { AlertHubError, ErrorCode } from './errors.js';

/**
 * RFC 9162 §2.1 Merkle tree hashing with SHA-256, the pure part: leaf hashes
 * `SHA-256(0x00 || leaf)`, interior nodes `SHA-256(0x01 || left || right)`, the tree over n
 * leaves split at the largest power of two smaller than n, inclusion proofs (§2.1.3) of a tree
 * held in memory and their verification. The router's one countersignature per routing decision
 * (route-tree.ts) and the audit log (`@alert-hub/audit`, which adds the tree over stored leaves,
 * consistency proofs and checkpoints) share these functions. Hashes are 32-byte Buffers.
 */

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// One-shot `hash` over one buffer: several times cheaper than a Hash object per call (measured),
// which counts when a routing decision hashes a leaf and a node per recipient.

/** The hash of a leaf: SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** The hash of an interior node: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
}

/** The largest power of two strictly smaller than n (n > 1). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** An inclusion proof that does not have the shape its index and tree size require. */
export class MerkleProofError extends AlertHubError {
  declare readonly code:
    | typeof ErrorCode.ProofRange
    | typeof ErrorCode.ProofLength
    | typeof ErrorCode.ProofHashSize
    | typeof ErrorCode.ProofRootMismatch;
  constructor(
    code:
      | typeof ErrorCode.ProofRange
      | typeof ErrorCode.ProofLength
      | typeof ErrorCode.ProofHashSize
      | typeof ErrorCode.ProofRootMismatch,
    message: string,
  ) {
    super(code, message);
  }
}

/**
 * The right edge of a growing tree: the roots of its complete subtrees, largest first. Appending
 * is O(1) amortised and the root O(log n), with O(log n) memory, whatever the size of the log.
 */
export class CompactRange {
  #size = 0;
  /** `#nodes[i]` is the root of a complete subtree; sizes are the set bits of `#size`. */
  readonly #nodes: Buffer[] = [];

  get size(): number {
    return this.#size;
  }

  append(leafHash: Buffer): void {
    let h = leafHash;
    let s = this.#size;
    while (s & 1) {
      h = hashChildren(this.#nodes.pop()!, h);
      s >>>= 1;
    }
    this.#nodes.push(h);
    this.#size++;
  }

  root(): Buffer {
    if (this.#nodes.length === 0) return EMPTY_ROOT;
    let h = this.#nodes[this.#nodes.length - 1]!;
    for (let i = this.#nodes.length - 2; i >= 0; i--) h = hashChildren(this.#nodes[i]!, h);
    return h;
  }

  clone(): CompactRange {
    const c = new CompactRange();
    c.#size = this.#size;
    c.#nodes.push(...this.#nodes);
    return c;
  }
}

/** MTH of a list of leaf hashes held in memory. */
export function rootOf(leafHashes: readonly Buffer[]): Buffer {
  const c = new CompactRange();
  for (const h of leafHashes) c.append(h);
  return c.root();
}

/**
 * RFC 9162 §2.1.3.1 for a tree held in memory: the root over `leafHashes` and the inclusion
 * proof (audit path) of every leaf, hashes in the order the RFC lists them. O(n log n).
 */
export function rootAndInclusionProofs(leafHashes: readonly Buffer[]): {
  readonly root: Buffer;
  readonly proofs: Buffer[][];
} {
  const proofs: Buffer[][] = leafHashes.map(() => []);
  // Each leaf's proof lists its siblings from the bottom up; the recursion returns the subtree
  // root and appends the other side's root to the proofs of the leaves below, deepest first.
  const build = (start: number, end: number): Buffer => {
    const n = end - start;
    if (n === 1) return leafHashes[start]!;
    const k = splitPoint(n);
    const left = build(start, start + k);
    const right = build(start + k, end);
    for (let i = start; i < start + k; i++) proofs[i]!.push(right);
    for (let i = start + k; i < end; i++) proofs[i]!.push(left);
    return hashChildren(left, right);
  };
  const root = leafHashes.length === 0 ? EMPTY_ROOT : build(0, leafHashes.length);
  return { root, proofs };
}

function checkHash(h: Uint8Array, what: string): void {
  if (h.length !== 32)
    throw new MerkleProofError(ErrorCode.ProofHashSize, `${what} is not 32 bytes`);
}

/**
 * RFC 9162 §2.1.3.2: the root that an inclusion proof of `leafHash` at `index` in a tree of
 * `size` leaves leads to. Throws {@link MerkleProofError} when the proof has the wrong shape:
 * `ERR_PROOF_RANGE` (index not below size), `ERR_PROOF_LENGTH` (too many or too few hashes),
 * `ERR_PROOF_HASH_SIZE` (a hash not 32 bytes).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
): Buffer {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size))
    throw new MerkleProofError(ErrorCode.ProofRange, `leaf ${index} is not in a tree of ${size}`);
  checkHash(leafHash, 'the leaf hash');
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    checkHash(p, 'a proof hash');
    if (sn === 0) throw new MerkleProofError(ErrorCode.ProofLength, 'the proof is too long');
    if (fn % 2 === 1 || fn === sn) {
      r = hashChildren(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) throw new MerkleProofError(ErrorCode.ProofLength, 'the proof is too short');
  return r;
}
