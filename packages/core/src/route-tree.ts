import { hash, hkdfSync, type KeyObject } from 'node:crypto';
import {
  AlertHubError,
  EnvelopeMalformedError,
  ErrorCode,
  HeaderMismatchError,
  SignatureMissingError,
} from './errors.js';
import { AGENCY_ID_FORM } from './formats.js';
import { canonicalJson, parseJsonBytes } from './json.js';
import {
  ROUTE_TYP,
  b64url,
  checkSignature,
  fromB64url,
  parseHeader,
  requireString,
  signBytes,
  signingInput,
  verifyPerCopyCountersignature,
  type GeneralJws,
  type JwsSignature,
  type VerifyOptions,
} from './jws.js';
import type { SigningAlgorithm, SigningKey } from './keys.js';
import {
  MerkleProofError,
  hashLeaf,
  rootAndInclusionProofs,
  rootFromInclusionProof,
} from './merkle.js';
import { parseRfc3339 } from './rfc3339.js';
import type { TrustedKey } from './trust-store.js';

/** An agreement id (protocol.md §2.3; `common.v1.schema.json` `agreementId`). */
const AGREEMENT_ID_FORM = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * The router's one countersignature per routing decision (protocol.md §3.2). The router builds
 * an RFC 9162 Merkle tree whose leaves are the per-recipient grants (recipient, agreement,
 * onward, a copy id and the leaf's index), signs the root once (RFC 7515, over the same payload
 * as the origin), and gives each copy the one signature, its own leaf and its inclusion path in
 * the signature's unprotected header. A recipient recomputes the root from its leaf and path and
 * checks the one signature. The copy id (128 bits the recipient cannot guess) keeps the leaves
 * of the other recipients from being guessed from the path's hashes.
 */

/** `typ` of the router's one signature over a routing decision's tree. */
export const ROUTE_TREE_TYP = 'ahub-route-tree+jws';

/** Most leaves a routing decision's tree may have: a verifier refuses a larger `tree_size`. */
export const MAX_ROUTE_TREE_SIZE = 65_536;
/** Longest leaf (canonical JSON bytes) a verifier accepts. */
export const MAX_ROUTE_LEAF_BYTES = 1024;
/** Bytes of a copy id: 128 bits. */
export const COPY_ID_BYTES = 16;

/** The protected header of the router's signature over a routing decision. */
export interface RouteTreeHeader {
  readonly alg: SigningAlgorithm;
  readonly kid: string;
  readonly typ: typeof ROUTE_TREE_TYP;
  /** The router principal in the trust store (role `router`). */
  readonly router: string;
  readonly alert_id: string;
  readonly routed_at: string;
  /** Number of leaves: the number of recipients of this decision. */
  readonly tree_size: number;
  /** base64url of the 32-byte RFC 9162 root over the leaves. */
  readonly tree_root: string;
}

/** One leaf: what the router granted one recipient. Encoded as canonical JSON. */
export interface RouteLeaf {
  readonly agreement: { readonly id: string; readonly version: number };
  /** base64url of 16 bytes, unique to this copy and unguessable by other recipients. */
  readonly copy: string;
  /** Position of the leaf in the tree (leaves are ordered by recipient id). */
  readonly index: number;
  readonly onward: boolean;
  readonly recipient: string;
}

/** What the router grants one recipient in a routing decision. */
export interface RouteGrant {
  readonly recipient: string;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly onward: boolean;
}

/** One routing decision: the alert, when it was routed, and who gets a copy under what. */
export interface RoutingDecisionGrants {
  /** The alert's origin agency; with `alertId` it names the alert. */
  readonly origin: string;
  readonly alertId: string;
  /** RFC 3339; the router uses the time the inbound stream stored the alert. */
  readonly routedAt: string;
  readonly grants: readonly RouteGrant[];
}

/** What a verified countersignature vouches for, whichever form it came in. */
export interface RouteClaims {
  readonly router: string;
  readonly recipient: string;
  readonly agreement: { readonly id: string; readonly version: number };
  readonly routed_at: string;
  readonly onward: boolean;
  readonly alert_id: string;
}

/** A verified countersignature. */
export interface VerifiedRoute {
  readonly header: RouteClaims;
  readonly key: TrustedKey;
  /** `tree`: one signature per routing decision; `per-copy`: the retired per-copy form. */
  readonly form: 'tree' | 'per-copy';
}

/** What a verifier does with the retired per-copy countersignature (`typ` `ahub-route+jws`). */
export type PerCopyCountersignaturePolicy = 'accept' | 'refuse';
/**
 * Accepted during the transition (protocol.md §3.4): copies the previous router release put on a
 * feed, or a router not yet upgraded, still verify. A gateway refuses them with
 * `feed.perCopyCountersignature: refuse`.
 */
export const DEFAULT_PER_COPY_COUNTERSIGNATURE: PerCopyCountersignaturePolicy = 'accept';

/** A leaf that is not exactly the canonical JSON object of {@link RouteLeaf}. */
export class RouteLeafMalformedError extends AlertHubError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.RouteLeafMalformed, message, options);
  }
}

/** A per-copy countersignature where the verifier's policy refuses that retired form. */
export class RouteFormRetiredError extends AlertHubError {
  constructor() {
    super(
      ErrorCode.RouteFormRetired,
      `the per-copy countersignature (${ROUTE_TYP}) is refused here; the router signs a routing decision's tree`,
    );
  }
}

/** HMAC-SHA256 pads (RFC 2104) of a router's copy-id key, by its private key object. */
const copyKeys = new WeakMap<KeyObject, { readonly inner: Buffer; readonly outer: Buffer }>();

/**
 * The key copy ids are derived with: HKDF-SHA256 of the router's private key (`d`), so no new
 * secret has to be provisioned, and a recipient, who never sees the key, cannot compute the copy
 * ids of the others. Kept as its two HMAC pads (key XOR 0x36.., key XOR 0x5c..), cached per key.
 */
function copyIdKey(key: SigningKey): { readonly inner: Buffer; readonly outer: Buffer } {
  const cached = copyKeys.get(key.privateKey);
  if (cached) return cached;
  const d = key.privateKey.export({ format: 'jwk' }).d;
  if (typeof d !== 'string') throw new TypeError('the router key has no private part');
  const secret = Buffer.from(
    hkdfSync('sha256', Buffer.from(d, 'base64url'), Buffer.alloc(0), 'alert-hub copy id v1', 32),
  );
  const block = Buffer.alloc(64);
  secret.copy(block);
  const pads = {
    inner: Buffer.from(block.map((b) => b ^ 0x36)),
    outer: Buffer.from(block.map((b) => b ^ 0x5c)),
  };
  copyKeys.set(key.privateKey, pads);
  return pads;
}

/**
 * The copy id of `recipient`'s copy of alert (`origin`, `alertId`): the first 16 bytes of
 * HMAC-SHA256 under the router's copy-id key of the JSON array
 * `["alert-hub/copy-id/v1", origin, alertId, recipient]`, base64url. Deterministic, so a copy
 * forwarded again after a router crash has the same bytes (receipts name a copy by its digest).
 * HMAC is computed from its definition (RFC 2104) with one-shot hashes: a Hmac object per leaf
 * costs several times more (measured), and a decision may have a hundred leaves.
 */
export function deriveCopyId(
  key: SigningKey,
  origin: string,
  alertId: string,
  recipient: string,
): string {
  const { inner, outer } = copyIdKey(key);
  const message = Buffer.from(
    JSON.stringify(['alert-hub/copy-id/v1', origin, alertId, recipient]),
    'utf8',
  );
  const innerHash = hash('sha256', Buffer.concat([inner, message]), 'buffer');
  return hash('sha256', Buffer.concat([outer, innerHash]), 'buffer')
    .subarray(0, COPY_ID_BYTES)
    .toString('base64url');
}

/**
 * The bytes of a leaf: its canonical JSON (members sorted, no whitespace), UTF-8. Written out
 * member by member, which is what `canonicalJson` gives for these types, without its generic walk.
 */
export function routeLeafBytes(leaf: RouteLeaf): Buffer {
  return Buffer.from(
    `{"agreement":{"id":${JSON.stringify(leaf.agreement.id)},"version":${JSON.stringify(leaf.agreement.version)}},"copy":${JSON.stringify(leaf.copy)},"index":${JSON.stringify(leaf.index)},"onward":${JSON.stringify(leaf.onward)},"recipient":${JSON.stringify(leaf.recipient)}}`,
    'utf8',
  );
}

/** The leaves of a decision, ordered by recipient id (UTF-16 code units, as `Array#sort`). */
export function routeLeaves(key: SigningKey, decision: RoutingDecisionGrants): RouteLeaf[] {
  const sorted = [...decision.grants].sort((a, b) =>
    a.recipient < b.recipient ? -1 : a.recipient > b.recipient ? 1 : 0,
  );
  for (let i = 1; i < sorted.length; i++)
    if (sorted[i]!.recipient === sorted[i - 1]!.recipient)
      throw new RangeError(`${sorted[i]!.recipient} is granted twice in one routing decision`);
  return sorted.map((g, index) => ({
    agreement: { id: g.agreement.id, version: g.agreement.version },
    copy: deriveCopyId(key, decision.origin, decision.alertId, g.recipient),
    index,
    onward: g.onward,
    recipient: g.recipient,
  }));
}

/** A countersigned routing decision: the copies, and the tree the one signature covers. */
export interface CountersignedDecision {
  /** One envelope per grant, in the order of the decision's grants. */
  readonly copies: GeneralJws[];
  /** The tree's root (32 bytes), the `tree_root` the signature covers. */
  readonly root: Buffer;
  /** The leaves in tree order (by recipient): each recipient and its leaf's canonical JSON text. */
  readonly leaves: readonly { readonly recipient: string; readonly text: string }[];
}

/**
 * Countersigns a routing decision with ONE signature: the root of the tree over the grants'
 * leaves, signed under {@link RouteTreeHeader} over the same payload as the origin's signature.
 * Returns one envelope per grant, in the order of `decision.grants`, each carrying the origin's
 * signature and the one countersignature with that copy's leaf and inclusion path. No grant, no
 * signature: an empty list.
 */
export async function countersignRoutes(
  jws: GeneralJws,
  key: SigningKey,
  decision: RoutingDecisionGrants,
): Promise<GeneralJws[]> {
  return (await countersignDecision(jws, key, decision)).copies;
}

/**
 * {@link countersignRoutes}, also returning the tree's root and leaves: what the router's audit
 * entry for the decision commits to (docs/protocol.md §8.1).
 */
export async function countersignDecision(
  jws: GeneralJws,
  key: SigningKey,
  decision: RoutingDecisionGrants,
): Promise<CountersignedDecision> {
  const origin = jws.signatures[0];
  if (!origin) throw new SignatureMissingError('there is no origin signature to countersign');
  if (decision.grants.length === 0) return { copies: [], root: Buffer.alloc(0), leaves: [] };
  if (decision.grants.length > MAX_ROUTE_TREE_SIZE)
    throw new RangeError(`a routing decision has at most ${MAX_ROUTE_TREE_SIZE} recipients`);
  const leaves = routeLeaves(key, decision);
  const leafBytes = leaves.map(routeLeafBytes);
  const { root, proofs } = rootAndInclusionProofs(leafBytes.map((b) => hashLeaf(b)));
  const header: RouteTreeHeader = {
    alg: key.alg,
    kid: key.kid,
    typ: ROUTE_TREE_TYP,
    router: key.principal,
    alert_id: decision.alertId,
    routed_at: decision.routedAt,
    tree_size: leaves.length,
    tree_root: root.toString('base64url'),
  };
  const protectedB64 = b64url(canonicalJson(header));
  const signature = (
    await signBytes(key.alg, signingInput(protectedB64, jws.payload), key.privateKey)
  ).toString('base64url');
  const byRecipient = new Map(leaves.map((l, i) => [l.recipient, i]));
  const copies = decision.grants.map((g) => {
    const i = byRecipient.get(g.recipient)!;
    const routed: JwsSignature = {
      protected: protectedB64,
      header: {
        leaf: leafBytes[i]!.toString('base64url'),
        path: Buffer.concat(proofs[i]!).toString('base64url'),
      },
      signature,
    };
    return { payload: jws.payload, signatures: [origin, routed] };
  });
  return {
    copies,
    root,
    leaves: leaves.map((l, i) => ({
      recipient: l.recipient,
      text: leafBytes[i]!.toString('utf8'),
    })),
  };
}

const TREE_HEADER_MEMBERS = [
  'alg',
  'alert_id',
  'kid',
  'router',
  'routed_at',
  'tree_root',
  'tree_size',
  'typ',
];
const LEAF_MEMBERS = ['agreement', 'copy', 'index', 'onward', 'recipient'];

function hasExactly(obj: object, members: readonly string[]): boolean {
  const own = Object.keys(obj);
  return own.length === members.length && members.every((m) => Object.hasOwn(obj, m));
}

/** Parses and checks a leaf: canonical JSON of exactly the members of {@link RouteLeaf}. */
export function parseRouteLeaf(bytes: Uint8Array): RouteLeaf {
  if (bytes.length > MAX_ROUTE_LEAF_BYTES)
    throw new RouteLeafMalformedError(`the leaf is longer than ${MAX_ROUTE_LEAF_BYTES} bytes`);
  let value: unknown;
  try {
    value = parseJsonBytes(bytes, 3);
  } catch (cause) {
    throw new RouteLeafMalformedError('the leaf is not a JSON object', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new RouteLeafMalformedError('the leaf is not a JSON object');
  const v = value as Record<string, unknown>;
  if (!hasExactly(v, LEAF_MEMBERS))
    throw new RouteLeafMalformedError(`the leaf must have exactly ${LEAF_MEMBERS.join(', ')}`);
  const a = v['agreement'];
  if (
    typeof a !== 'object' ||
    a === null ||
    Array.isArray(a) ||
    !hasExactly(a, ['id', 'version']) ||
    typeof (a as { id: unknown }).id !== 'string' ||
    !AGREEMENT_ID_FORM.test((a as { id: string }).id) ||
    !Number.isSafeInteger((a as { version: unknown }).version) ||
    (a as { version: number }).version < 1
  )
    throw new RouteLeafMalformedError(
      'the leaf "agreement" must be {id: an agreement id, version: an integer from 1}',
    );
  if (
    typeof v['recipient'] !== 'string' ||
    !AGENCY_ID_FORM.test(v['recipient']) ||
    typeof v['onward'] !== 'boolean'
  )
    throw new RouteLeafMalformedError(
      'the leaf "recipient" is an agency id and "onward" a boolean',
    );
  if (!Number.isSafeInteger(v['index']) || (v['index'] as number) < 0)
    throw new RouteLeafMalformedError('the leaf "index" is a non-negative integer');
  let copy: Buffer;
  try {
    copy = fromB64url(v['copy'], 'the leaf "copy"');
  } catch (cause) {
    throw new RouteLeafMalformedError('the leaf "copy" is not canonical base64url', { cause });
  }
  if (copy.length !== COPY_ID_BYTES)
    throw new RouteLeafMalformedError(`the leaf "copy" is not ${COPY_ID_BYTES} bytes`);
  const leaf = value as RouteLeaf;
  // Canonical: one spelling per leaf, so two parsers hash and read the same thing.
  if (!routeLeafBytes(leaf).equals(bytes))
    throw new RouteLeafMalformedError('the leaf is not canonical JSON (sorted members, no spaces)');
  return leaf;
}

/**
 * Verifies the router's one countersignature over a routing decision (signature 1,
 * `typ` `ahub-route-tree+jws`) for `recipient` and this alert. In order: the protected header
 * (allow-listed `alg`, no `crit`, canonical JSON of exactly its members, `tree_size` 1 to
 * {@link MAX_ROUTE_TREE_SIZE}, a 32-byte `tree_root`); the leaf (canonical, exactly its
 * members) and the path (32-byte hashes); the router's key valid at `routed_at`; the signature
 * over the payload; the root the leaf and path lead to equals `tree_root`; the leaf is for
 * `recipient` and the header for `alertId`. Throws a typed error at the first failure.
 */
export async function verifyRouteTree(
  jws: GeneralJws,
  options: VerifyOptions & { readonly recipient: string; readonly alertId: string },
): Promise<VerifiedRoute> {
  const sig = jws.signatures[1];
  const h = parseHeader(sig, 1);
  if (h['typ'] !== ROUTE_TREE_TYP)
    throw new EnvelopeMalformedError(`signature 1 typ must be ${ROUTE_TREE_TYP}`);
  if (!sig!.header)
    throw new EnvelopeMalformedError('signature 1 carries no leaf and path ("header")');
  if (!hasExactly(h, TREE_HEADER_MEMBERS))
    throw new EnvelopeMalformedError(
      `signature 1 protected header must have exactly ${TREE_HEADER_MEMBERS.join(', ')}`,
    );
  if (b64url(canonicalJson(h)) !== sig!.protected)
    throw new EnvelopeMalformedError('signature 1 protected header is not canonical JSON');
  const router = requireString(h, 'router');
  const alertId = requireString(h, 'alert_id');
  const routedAtText = requireString(h, 'routed_at');
  const routedAtMs = parseRfc3339(routedAtText);
  if (routedAtMs === undefined)
    throw new EnvelopeMalformedError('protected header "routed_at" is not an RFC 3339 date-time');
  const size = h['tree_size'];
  if (!Number.isSafeInteger(size) || (size as number) < 1 || (size as number) > MAX_ROUTE_TREE_SIZE)
    throw new MerkleProofError(
      ErrorCode.ProofRange,
      `"tree_size" must be an integer from 1 to ${MAX_ROUTE_TREE_SIZE}`,
    );
  const root = fromB64url(h['tree_root'], 'protected header "tree_root"');
  if (root.length !== 32)
    throw new MerkleProofError(ErrorCode.ProofHashSize, '"tree_root" is not 32 bytes');

  const leafBytes = fromB64url(sig!.header.leaf, 'the leaf');
  const leaf = parseRouteLeaf(leafBytes);
  const pathBytes = fromB64url(sig!.header.path, 'the inclusion path');
  if (pathBytes.length % 32 !== 0)
    throw new MerkleProofError(ErrorCode.ProofHashSize, 'the path is not a list of 32-byte hashes');
  const path: Buffer[] = [];
  for (let i = 0; i < pathBytes.length; i += 32) path.push(pathBytes.subarray(i, i + 32));
  // Shape first (index below size, as many hashes as the tree needs), then the signature.
  const leadsTo = rootFromInclusionProof(leaf.index, size as number, hashLeaf(leafBytes), path);

  const key = options.trust.resolve(h['kid'] as string, router, 'router', new Date(routedAtMs));
  await checkSignature(key, h['alg'], sig!, jws.payload);
  if (!leadsTo.equals(root))
    throw new MerkleProofError(
      ErrorCode.ProofRootMismatch,
      'the leaf and its inclusion path do not lead to the signed root',
    );
  if (leaf.recipient !== options.recipient)
    throw new HeaderMismatchError('recipient', `is ${leaf.recipient}, not ${options.recipient}`);
  if (alertId !== options.alertId)
    throw new HeaderMismatchError('alert_id', 'differs from the alert id');
  return {
    header: {
      router,
      recipient: leaf.recipient,
      agreement: { id: leaf.agreement.id, version: leaf.agreement.version },
      routed_at: routedAtText,
      onward: leaf.onward,
      alert_id: alertId,
    },
    key,
    form: 'tree',
  };
}

/**
 * Verifies the router's countersignature (signature 1) for `recipient` and this alert, in either
 * form: the one signature over a routing decision's tree ({@link verifyRouteTree}), or the
 * retired per-copy form, accepted or refused (`ERR_ROUTE_FORM_RETIRED`) as `perCopy` says
 * (default {@link DEFAULT_PER_COPY_COUNTERSIGNATURE}). The origin signature is verified
 * separately with `verifyOrigin`.
 */
export async function verifyCountersignature(
  jws: GeneralJws,
  options: VerifyOptions & {
    readonly recipient: string;
    readonly alertId: string;
    readonly perCopy?: PerCopyCountersignaturePolicy;
  },
): Promise<VerifiedRoute> {
  if (jws.signatures.length < 2)
    throw new SignatureMissingError('the router countersignature is missing');
  if (jws.signatures.length > 2)
    throw new EnvelopeMalformedError('an envelope carries at most two signatures');
  const h = parseHeader(jws.signatures[1], 1);
  if (h['typ'] === ROUTE_TREE_TYP) return verifyRouteTree(jws, options);
  if (h['typ'] === ROUTE_TYP) {
    if ((options.perCopy ?? DEFAULT_PER_COPY_COUNTERSIGNATURE) === 'refuse')
      throw new RouteFormRetiredError();
    const r = await verifyPerCopyCountersignature(jws, options);
    return { header: r.header, key: r.key, form: 'per-copy' };
  }
  throw new EnvelopeMalformedError(
    `signature 1 typ must be ${ROUTE_TREE_TYP} (or the retired ${ROUTE_TYP})`,
  );
}
