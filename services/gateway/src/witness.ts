import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  AUDIT_CHECKPOINTS_ALL,
  AUDIT_COSIGNATURES_ALL,
  auditCosignatureSubject,
  auditOrigin,
  auditProofSubject,
  decodeEnvelope,
  parseAuditCheckpointSubject,
  parseAuditCosignatureSubject,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import {
  MAX_NOTE_SIGNATURES,
  Witness,
  entryBytes,
  fileWitnessStore,
  findCosignature,
  hashLeaf,
  isHash,
  isOversizedCosignatureMessage,
  parseCheckpoint,
  parseNote,
  routedDetail,
  setSignatureLine,
  verifyInclusion,
  verifyNote,
  verifyRouteInclusion,
  witnessName,
  type AuditRecord,
  type RouteInclusion,
  type WitnessStore,
} from '@alert-hub/audit';
import type { Logger } from '@alert-hub/runtime';
import type { GatewayMetrics } from './metrics.js';

/** Ed25519 verifications another witness's cosignatures may cost this gateway per checkpoint. */
const COSIGNATURE_VERIFICATIONS = 8;

function ed25519Keys(trust: TrustStore, principal: string, role: 'agency' | 'router'): Buffer[] {
  return trust
    .keysOf(principal, role)
    .filter((k) => k.alg === 'EdDSA')
    .map((k) => Buffer.from(k.jwk.x, 'base64url'));
}

export interface GatewayWitnessDeps {
  readonly nc: NatsConnection;
  readonly agency: string;
  readonly hubPrincipal: string;
  readonly signingKey: () => SigningKey;
  readonly trust: () => TrustStore;
  /** Private directory for the witness state and evidence. */
  readonly dir: string;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  readonly requestTimeoutMs: number;
}

/**
 * Checkpoints in a row that do not extend what a witness cosigned (older, or with no proof from
 * it) before it raises the alarm. One or two happen when two routers share a log, or before the
 * router has seen this witness's last cosignature; a log rolled back never extends it again.
 */
export const WITNESS_STALL_CHECKPOINTS = 5;

/** What the stalled alarm says of `log`. */
function stallText(log: string, count: number, reason: string): string {
  return `log ${log}: ${count} checkpoints in a row do not extend what this witness cosigned (last: ${reason})`;
}

/**
 * The agency gateway as a witness of the hub's audit log: it verifies each checkpoint the router
 * publishes (hub signature, consistency proof from the last checkpoint it cosigned), cosigns it
 * with the agency's key and publishes the cosignature; on an inconsistency it refuses, keeps the
 * evidence, logs an error and reports it in its metrics and health. It also gathers the other
 * witnesses' cosignatures of the checkpoint it cosigned, so its API serves an anchor for
 * `hubctl audit verify`.
 */
export class GatewayWitness {
  readonly #d: GatewayWitnessDeps;
  readonly #store: WitnessStore;
  #witness: Witness | undefined;
  readonly #subs: Subscription[] = [];
  /** Latest cosigned note per log id, with the cosignatures gathered for it. */
  readonly #latest = new Map<string, string>();
  #inconsistency: string | undefined;
  /** Per log: checkpoints in a row that did not extend what this witness cosigned, and why. */
  readonly #notExtending = new Map<string, { count: number; reason: string }>();
  #stalled: string | undefined;
  /** Per agency: verifications spent on its cosignatures since this witness last cosigned. */
  readonly #spent = new Map<string, number>();
  /** Per log: the checkpoint size for which the last cosignature was published again. */
  readonly #reminded = new Map<string, number>();

  constructor(d: GatewayWitnessDeps) {
    this.#d = d;
    this.#store = fileWitnessStore(join(d.dir));
  }

  /** The last inconsistency seen, if any (kept until the operator investigates and restarts). */
  get inconsistency(): string | undefined {
    return this.#inconsistency;
  }

  /**
   * Why the hub's checkpoints have stopped extending what this witness cosigned, if they have:
   * {@link WITNESS_STALL_CHECKPOINTS} in a row older than it (stale) or without a proof from it
   * (unverifiable). That is what a log and its checkpoint stream rolled back together look like.
   * Cleared by the next checkpoint it cosigns.
   */
  get stalled(): string | undefined {
    return this.#stalled;
  }

  /** The latest checkpoint of `log` this witness cosigned, with every cosignature gathered. */
  latest(log: string): string | undefined {
    // After a restart, until the next checkpoint: the one this witness cosigned last.
    return this.#latest.get(log) ?? this.#store.load(auditOrigin(log))?.note;
  }

  start(): void {
    const key = this.#d.signingKey();
    if (key.alg !== 'EdDSA') {
      this.#d.log.warn(
        { kid: key.kid },
        'the agency key is not Ed25519: this gateway cannot witness the audit log',
      );
      return;
    }
    this.#witness = new Witness({
      signer: {
        name: witnessName(this.#d.agency),
        privateKey: key.privateKey,
        publicKey: Buffer.from(key.publicJwk.x, 'base64url'),
      },
      hubKeys: () => ed25519Keys(this.#d.trust(), this.#d.hubPrincipal, 'router'),
      store: this.#store,
    });
    this.#subs.push(
      this.#d.nc.subscribe(AUDIT_CHECKPOINTS_ALL, {
        callback: (err, m) => {
          if (!err) this.#checkpoint(m.subject, m.data);
        },
      }),
      this.#d.nc.subscribe(AUDIT_COSIGNATURES_ALL, {
        callback: (err, m) => {
          if (!err) this.#cosignature(m.subject, m.data);
        },
      }),
    );
  }

  #checkpoint(subject: string, data: Uint8Array): void {
    const log = parseAuditCheckpointSubject(subject);
    if (!log || !this.#witness) return;
    const { metrics } = this.#d;
    const out = this.#witness.observe(data, auditOrigin(log));
    metrics.witnessed.inc({ outcome: out.kind });
    if (out.kind === 'stale' || out.kind === 'unverifiable') this.#notExtended(log, out);
    else if (out.kind === 'cosigned') this.#notExtending.delete(log);
    switch (out.kind) {
      case 'cosigned':
        if (this.#stalled) this.#restall();
        this.#latest.set(log, out.note);
        this.#spent.clear();
        this.#d.nc.publish(auditCosignatureSubject(log, this.#d.agency), out.note);
        this.#d.log.info(
          { log, auditSize: out.checkpoint.size },
          'audit checkpoint verified and cosigned',
        );
        return;
      case 'inconsistent':
        this.#inconsistency = out.evidence.reason;
        metrics.witnessInconsistent.set(1);
        this.#d.log.error(
          { log, reason: out.evidence.reason },
          'AUDIT LOG INCONSISTENT: checkpoint refused, evidence kept',
        );
        return;
      case 'refused':
        this.#d.log.warn({ log, code: out.code, reason: out.reason }, 'audit checkpoint refused');
        return;
      case 'unverifiable':
        this.#d.log.warn({ log, reason: out.reason }, 'audit checkpoint not yet verifiable');
        this.#remind(log, out.checkpoint.size);
        return;
      case 'stale':
        return;
    }
  }

  #notExtended(
    log: string,
    out: { kind: 'stale'; checkpoint: { size: number } } | { kind: 'unverifiable'; reason: string },
  ): void {
    const reason =
      out.kind === 'stale'
        ? `checkpoint ${out.checkpoint.size} is older than the one this witness cosigned`
        : out.reason;
    const n = (this.#notExtending.get(log)?.count ?? 0) + 1;
    this.#notExtending.set(log, { count: n, reason });
    if (n !== WITNESS_STALL_CHECKPOINTS) return;
    this.#stalled = stallText(log, n, reason);
    this.#d.metrics.witnessStalled.set(1);
    this.#d.log.error(
      { log, reason },
      'AUDIT LOG NOT EXTENDING WHAT THIS WITNESS COSIGNED: rolled back, or its proofs withheld',
    );
  }

  /**
   * The router sent a checkpoint without a proof from the size this witness cosigned: it does not
   * know that size (its stored cosignatures are gone, or it restarted before seeing this one).
   * The witness publishes its last cosignature again, once per checkpoint, so the router's next
   * checkpoint carries the proof from it and the witness cosigns again.
   */
  #remind(log: string, size: number): void {
    if (this.#reminded.get(log) === size) return;
    const last = this.#store.load(auditOrigin(log));
    if (!last) return;
    this.#reminded.set(log, size);
    this.#d.nc.publish(auditCosignatureSubject(log, this.#d.agency), last.note);
    this.#d.log.info(
      { log, auditSize: last.size },
      'last cosignature published again: the router did not know what this witness cosigned',
    );
  }

  /** The alarm after a log cosigned again: kept (naming a log still stalled) or cleared. */
  #restall(): void {
    const still = [...this.#notExtending].find(([, v]) => v.count >= WITNESS_STALL_CHECKPOINTS);
    this.#stalled = still && stallText(still[0], still[1].count, still[1].reason);
    this.#d.metrics.witnessStalled.set(still ? 1 : 0);
  }

  #cosignature(subject: string, data: Uint8Array): void {
    const who = parseAuditCosignatureSubject(subject);
    const mine = who && this.#latest.get(who.log);
    if (!who || !mine || who.agency === this.#d.agency) return;
    // Any agency publishes here: cheap checks first, at most one verification per key.
    if (isOversizedCosignatureMessage(data)) return;
    try {
      const note = parseNote(new TextDecoder('utf-8', { fatal: true }).decode(data));
      const ours = parseNote(mine);
      if (note.text !== ours.text) return;
      const name = witnessName(who.agency);
      // One line per witness, the newest valid; the line already gathered is not verified again.
      const had = ours.signatures.find((s) => s.name === name);
      if (had && note.signatures.some((s) => s.line === had.line)) return;
      // A note is read with at most MAX_NOTE_SIGNATURES lines: the first witnesses fill it.
      if (!had && ours.signatures.length >= MAX_NOTE_SIGNATURES) return;
      const spent = this.#spent.get(who.agency) ?? 0;
      if (spent >= COSIGNATURE_VERIFICATIONS) return;
      const keys = ed25519Keys(this.#d.trust(), who.agency, 'agency');
      const { found, verified } = findCosignature(
        note,
        name,
        keys,
        COSIGNATURE_VERIFICATIONS - spent,
      );
      this.#spent.set(who.agency, spent + verified);
      if (!found || (had && had.signature.readBigUInt64BE(0) > BigInt(found.timestamp))) return;
      this.#latest.set(who.log, setSignatureLine(mine, name, found.line));
    } catch {
      // A malformed cosignature is somebody else's problem; it is simply not gathered.
    }
  }

  /**
   * Asks the router for the inclusion proofs of the entries recording deliveries of `alertId` to
   * this agency, and verifies them against a checkpoint signed by the hub and, when it is the one
   * this witness cosigned, against that.
   */
  async inclusionProof(log: string, alertId: string): Promise<InclusionAnswer> {
    const reply = await this.#d.nc.request(
      auditProofSubject(log, this.#d.agency),
      JSON.stringify({ alertId }),
      { timeout: this.#d.requestTimeoutMs },
    );
    const body = JSON.parse(reply.string()) as
      | { error: { code: string; message: string; retryAfterMs?: number } }
      | {
          checkpoint: string;
          entries: {
            record: AuditRecord;
            index: number;
            proof: string[];
            route?: RouteInclusion;
          }[];
        };
    if ('error' in body) {
      const { code, message, retryAfterMs } = body.error;
      return {
        ok: false,
        error: {
          code: String(code),
          message: String(message),
          ...(typeof retryAfterMs === 'number' ? { retryAfterMs } : {}),
        },
      };
    }
    const note = parseNote(body.checkpoint);
    const cp = parseCheckpoint(note.text);
    const hubSigned = ed25519Keys(this.#d.trust(), this.#d.hubPrincipal, 'router').some(
      (publicKey) => {
        try {
          verifyNote(note, { name: cp.origin, publicKey });
          return true;
        } catch {
          return false;
        }
      },
    );
    if (!hubSigned)
      return {
        ok: false,
        error: { code: 'ERR_NOTE_SIGNATURE', message: 'the checkpoint is not signed by the hub' },
      };
    const entries = body.entries.map((e) => {
      const r = e.record;
      // A routing decision names no recipient: this agency's route leaf and its path lead to the
      // route tree root the entry records (and shows no other recipient). A `forwarded` entry
      // names the agency itself.
      let verified =
        e.index === r.seq - 1 &&
        r.alertId === alertId &&
        (e.route
          ? verifyRouteInclusion(r, e.route, this.#d.agency) === undefined
          : r.recipient === this.#d.agency && r.event === 'forwarded');
      try {
        if (!e.proof.every(isHash)) throw new Error('a proof hash is not canonical base64');
        verifyInclusion(
          e.index,
          cp.size,
          hashLeaf(entryBytes(r)),
          e.proof.map((h) => Buffer.from(h, 'base64')),
          cp.root,
        );
      } catch {
        verified = false;
      }
      return { ...e, verified };
    });
    // The router never sends an empty list (none is ERR_NOT_FOUND): a reply without an entry
    // proves nothing, whatever its checkpoint (docs/protocol.md §8.5).
    return {
      ok: entries.length > 0 && entries.every((e) => e.verified),
      checkpoint: body.checkpoint,
      entries,
    };
  }

  close(): void {
    for (const s of this.#subs) s.unsubscribe();
  }
}

/**
 * Whether the routing decision an audit entry records is the one this agency's copy carries:
 * the copy's countersignature signs the same route tree root the entry commits to, and carries
 * the same leaf the proof gives. Anything that does not read as such is `false`.
 */
export function copyMatchesDecision(
  envelope: Uint8Array,
  record: AuditRecord,
  route: RouteInclusion,
): boolean {
  try {
    const routed = decodeEnvelope(envelope).signatures[1];
    if (!routed?.header) return false;
    const header = JSON.parse(Buffer.from(routed.protected, 'base64url').toString('utf8')) as {
      tree_root?: unknown;
    };
    const root = routedDetail(record)?.root;
    return (
      root !== undefined &&
      header.tree_root === root &&
      Buffer.from(routed.header.leaf, 'base64url').toString('utf8') === route.leaf
    );
  } catch {
    return false;
  }
}

/** What `GET /v1/audit/inclusion/:alertId` answers. */
export type InclusionAnswer =
  | { ok: false; error: { code: string; message: string; retryAfterMs?: number } }
  | {
      ok: boolean;
      checkpoint: string;
      entries: {
        record: AuditRecord;
        index: number;
        proof: string[];
        route?: RouteInclusion;
        verified: boolean;
      }[];
    };
