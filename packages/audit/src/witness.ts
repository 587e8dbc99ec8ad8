import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProofError, isHash, verifyConsistency } from './merkle.js';
import { parseJsonBytes, type TrustStore } from '@alert-hub/core';
import {
  NoteError,
  cosignCheckpoint,
  openCheckpoint,
  type Checkpoint,
  type NoteSigner,
} from './note.js';

/**
 * What the router publishes on `ahub.audit.checkpoint.<log>`: the signed checkpoint note and
 * consistency proofs to it from the tree sizes the witnesses last cosigned (standard base64).
 */
export interface CheckpointMessage {
  readonly checkpoint: string;
  readonly proofs: readonly { readonly from: number; readonly proof: readonly string[] }[];
}

/** The largest checkpoint message a witness reads. */
export const MAX_CHECKPOINT_MESSAGE = 256 * 1024;
/**
 * The most consistency proofs a checkpoint message may carry: one per size a witness last
 * cosigned, so at least as many as a hub of 109 agencies has witnesses.
 */
export const MAX_CHECKPOINT_PROOFS = 256;

/** What a witness remembers of one log: the last checkpoint it cosigned. */
export interface WitnessState {
  readonly origin: string;
  readonly size: number;
  /** Standard base64 of the root. */
  readonly root: string;
  /** The signed checkpoint note it cosigned, with its cosignature. */
  readonly note: string;
}

/** Both checkpoints and the proof that did not connect them: kept as evidence. */
export interface WitnessEvidence {
  readonly at: string;
  readonly origin: string;
  readonly reason: string;
  readonly cosigned: WitnessState;
  readonly received: CheckpointMessage | string;
}

/** The outcome of {@link Witness.observe}. */
export type WitnessOutcome =
  | {
      readonly kind: 'cosigned';
      readonly checkpoint: Checkpoint;
      readonly note: string;
      /** Nothing of this log was in the witness's store: cosigned on trust (first use). */
      readonly first: boolean;
    }
  /** Older than what the witness cosigned (a late arrival, a rollback): not cosigned. */
  | { readonly kind: 'stale'; readonly checkpoint: Checkpoint }
  /** Not verifiable yet (no proof from the witness's size): not cosigned, nothing concluded. */
  | { readonly kind: 'unverifiable'; readonly checkpoint: Checkpoint; readonly reason: string }
  /** Not a checkpoint of a log the witness follows (malformed, or not signed by the hub). */
  | { readonly kind: 'refused'; readonly code: string; readonly reason: string }
  /** The log contradicts what the witness cosigned: evidence kept, never cosigned. */
  | { readonly kind: 'inconsistent'; readonly evidence: WitnessEvidence };

/** Where a witness keeps its state and its evidence. */
export interface WitnessStore {
  load(origin: string): WitnessState | undefined;
  save(state: WitnessState): void;
  keepEvidence(e: WitnessEvidence): void;
}

/**
 * A witness (c2sp.org/tlog-witness semantics over NATS): it cosigns a checkpoint only after
 * verifying the hub's signature and a consistency proof from the last checkpoint it cosigned,
 * so that the hub cannot show different histories to different parties, nor rewrite, truncate
 * or roll back a history it has shown, without a witness refusing and keeping the evidence.
 */
export class Witness {
  readonly #signer: NoteSigner;
  readonly #hubKeys: () => readonly Buffer[];
  readonly #store: WitnessStore;
  readonly #now: () => Date;

  constructor(o: {
    signer: NoteSigner;
    /** The raw Ed25519 public keys that may sign the hub's checkpoints. */
    hubKeys: () => readonly Buffer[];
    store: WitnessStore;
    now?: () => Date;
  }) {
    this.#signer = o.signer;
    this.#hubKeys = o.hubKeys;
    this.#store = o.store;
    this.#now = o.now ?? (() => new Date());
  }

  get name(): string {
    return this.#signer.name;
  }

  /**
   * Handles one checkpoint message (the bytes published on NATS). Given `origin` (that of the
   * subject's log), a checkpoint of another origin is refused (`ERR_CHECKPOINT_MALFORMED`).
   */
  observe(data: Uint8Array, origin?: string): WitnessOutcome {
    let msg: CheckpointMessage;
    let checkpoint: Checkpoint;
    let note;
    try {
      if (data.length > MAX_CHECKPOINT_MESSAGE) throw new Error('the message is too large');
      msg = parseMessage(data);
    } catch (err) {
      return { kind: 'refused', code: 'ERR_CHECKPOINT_MALFORMED', reason: (err as Error).message };
    }
    try {
      // The note, the checkpoint, the hub's signature: protocol.md §8.3, first failure decides.
      ({ note, checkpoint } = openCheckpoint(msg.checkpoint, this.#hubKeys()));
    } catch (err) {
      if (!(err instanceof NoteError)) throw err;
      return { kind: 'refused', code: err.code, reason: err.message };
    }
    if (origin !== undefined && checkpoint.origin !== origin)
      return {
        kind: 'refused',
        code: 'ERR_CHECKPOINT_MALFORMED',
        reason: `a checkpoint of ${checkpoint.origin} published as one of ${origin}`,
      };
    const last = this.#store.load(checkpoint.origin);
    const evidence = (reason: string): WitnessOutcome => {
      const e: WitnessEvidence = {
        at: this.#now().toISOString(),
        origin: checkpoint.origin,
        reason,
        cosigned: last!,
        received: msg,
      };
      this.#store.keepEvidence(e);
      return { kind: 'inconsistent', evidence: e };
    };
    if (last) {
      const lastRoot = Buffer.from(last.root, 'base64');
      if (checkpoint.size === last.size) {
        if (!checkpoint.root.equals(lastRoot))
          return evidence(`two different roots signed for tree size ${checkpoint.size}`);
        // The checkpoint it cosigned, published again (an idle log): cosigned anew, with the
        // current time, so that an idle log's anchor stays current (protocol.md §8.4).
      } else if (checkpoint.size < last.size) {
        // An older checkpoint arriving late (two routers sharing a log) or a rollback: without a
        // proof it is not cosigned; the next newer checkpoint must still extend what we cosigned.
        return { kind: 'stale', checkpoint };
      } else {
        const p = msg.proofs.find((x) => x.from === last.size);
        if (!p)
          return {
            kind: 'unverifiable',
            checkpoint,
            reason: `checkpoint ${checkpoint.size} carries no consistency proof from ${last.size}, the size this witness cosigned`,
          };
        try {
          verifyConsistency(
            last.size,
            checkpoint.size,
            lastRoot,
            checkpoint.root,
            p.proof.map((h) => Buffer.from(h, 'base64')),
          );
        } catch (err) {
          return evidence(
            `checkpoint ${checkpoint.size} is not an extension of checkpoint ${last.size}: ${(err as Error).message}${err instanceof ProofError ? ` (${err.code})` : ''}`,
          );
        }
      }
    }
    const timestamp = Math.floor(this.#now().getTime() / 1000);
    const line = cosignCheckpoint(note.text, this.#signer, timestamp);
    const cosigned = `${msg.checkpoint}${line}\n`;
    this.#store.save({
      origin: checkpoint.origin,
      size: checkpoint.size,
      root: checkpoint.root.toString('base64'),
      note: cosigned,
    });
    return { kind: 'cosigned', checkpoint, note: cosigned, first: last === undefined };
  }
}

function parseMessage(data: Uint8Array): CheckpointMessage {
  // Strict JSON (protocol.md §4.2: a member named twice, invalid UTF-8, ... are refused).
  const v = parseJsonBytes(data, 4);
  const o = v as Partial<CheckpointMessage>;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof o.checkpoint !== 'string' ||
    !Array.isArray(o.proofs) ||
    o.proofs.length > MAX_CHECKPOINT_PROOFS ||
    !(o.proofs as unknown[]).every((item) => {
      const p = item as { from?: unknown; proof?: unknown } | null;
      return (
        typeof p === 'object' &&
        p !== null &&
        typeof p.from === 'number' &&
        Number.isSafeInteger(p.from) &&
        p.from >= 0 &&
        Array.isArray(p.proof) &&
        p.proof.length <= 128 &&
        (p.proof as unknown[]).every((h) => typeof h === 'string' && isHash(h))
      );
    })
  )
    throw new NoteError('ERR_NOTE_MALFORMED', 'not a checkpoint message {checkpoint, proofs}');
  return { checkpoint: o.checkpoint, proofs: o.proofs };
}

/**
 * The most evidence files a {@link fileWitnessStore} keeps, and their most bytes: a hub that
 * publishes forged checkpoint after forged checkpoint (each up to 256 KiB) must not fill the
 * agency's disk. The same evidence received again (the same checkpoint message against the same
 * cosigned state) is kept once. Beyond, nothing more is written; the alarm is raised all the same.
 */
export const MAX_EVIDENCE_FILES = 1_024;
export const MAX_EVIDENCE_BYTES = 64 * 1024 * 1024;

/** A {@link WitnessStore} in a private directory: one state file per log, evidence beside. */
export function fileWitnessStore(dir: string): WitnessStore {
  const evidence = join(dir, 'evidence');
  mkdirSync(evidence, { recursive: true, mode: 0o700 });
  // What is there already counts (a restart does not start the limits again).
  let files = 0;
  let bytes = 0;
  for (const f of readdirSync(evidence)) {
    files++;
    bytes += statSync(join(evidence, f)).size;
  }
  const kept = new Set<string>();
  const file = (origin: string) =>
    join(dir, `log-${createHash('sha256').update(origin).digest('hex').slice(0, 16)}.json`);
  return {
    load(origin) {
      try {
        const s = JSON.parse(readFileSync(file(origin), 'utf8')) as WitnessState;
        return s.origin === origin ? s : undefined;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    save(state) {
      const f = file(state.origin);
      writeFileSync(`${f}.tmp`, JSON.stringify(state), { mode: 0o600 });
      renameSync(`${f}.tmp`, f);
    },
    keepEvidence(e) {
      const text = JSON.stringify(e, null, 2);
      const same = createHash('sha256')
        .update(JSON.stringify([e.origin, e.cosigned.size, e.cosigned.root, e.received]))
        .digest('hex');
      if (kept.has(same)) return;
      const size = Buffer.byteLength(text);
      if (files >= MAX_EVIDENCE_FILES || bytes + size > MAX_EVIDENCE_BYTES) return;
      const name = `${e.at.replace(/[:.]/g, '-')}-${same.slice(0, 8)}.json`;
      writeFileSync(join(evidence, name), text, { mode: 0o600 });
      kept.add(same);
      files++;
      bytes += size;
    },
  };
}

/** A witness's note key name: `alert-hub/witness/<agency>`. */
export function witnessName(agency: string): string {
  return `alert-hub/witness/${agency}`;
}

/** One agency's witness key: its kid and raw key, and the key name its cosignatures carry. */
export interface AgencyWitness {
  readonly agency: string;
  readonly kid: string;
  /** The Ed25519 public key, base64url (the JWK's `x`). */
  readonly x: string;
  readonly name: string;
  readonly publicKey: Buffer;
}

/** The witness keys of a trust store's agencies: Ed25519 only, as a cosignature is Ed25519. */
export function trustStoreWitnesses(
  trust: Pick<TrustStore, 'agencies' | 'keysOf'>,
): AgencyWitness[] {
  return trust.agencies.flatMap((agency) =>
    trust
      .keysOf(agency, 'agency')
      .filter((k) => k.alg === 'EdDSA')
      .map((k) => ({
        agency,
        kid: k.kid,
        x: k.jwk.x,
        name: witnessName(agency),
        publicKey: Buffer.from(k.jwk.x, 'base64url'),
      })),
  );
}
