import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  AUDIT_CHECKPOINTS_ALL,
  AUDIT_COSIGNATURES_ALL,
  auditCosignatureSubject,
  auditOrigin,
  auditProofSubject,
  decodeEnvelope,
  isJsonObject,
  parseAuditCheckpointSubject,
  parseJsonBytes,
  parseAuditCosignatureSubject,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import {
  MAX_NOTE_SIGNATURES,
  SignatureType,
  Witness,
  entryBytes,
  fileWitnessStore,
  findCosignature,
  hashLeaf,
  isHash,
  isOversizedCosignatureMessage,
  noteKeyId,
  parseCheckpoint,
  parseNote,
  routedDetail,
  setSignatureLine,
  verifyInclusion,
  verifyNote,
  verifyRouteInclusion,
  witnessName,
  type AuditRecord,
  type Checkpoint,
  type RouteInclusion,
  type WitnessState,
  type WitnessStore,
} from '@alert-hub/audit';
import type { Logger } from '@alert-hub/runtime';
import { NatsUnavailableError } from './errors.js';
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

/**
 * Checkpoints of each log this witness remembers cosigning (size, root, note), the newest kept:
 * a proof of delivery is bound to the witnessed log when it comes with one of them. At the
 * router's default interval (5 s, when entries were added) that is the last 85 minutes or more.
 */
export const REMEMBERED_COSIGNED = 1_024;

/**
 * Logs whose cosigned checkpoints are remembered, the most recently used kept: a gateway asks for
 * proofs of one (`witness.auditLog`); a hub that signs many others costs it no more memory.
 */
export const REMEMBERED_LOGS = 8;

/**
 * How long a proof of delivery waits for this witness to cosign the checkpoint it came with,
 * when that checkpoint is newer than the last one it cosigned (the router publishes each
 * checkpoint before it answers with it, so this is usually a few milliseconds).
 */
export const PROOF_WITNESS_WAIT_MS = 2_000;

/** A checkpoint published again after this long is reminded of again (see `#remind`). */
const REMIND_AGAIN_MS = 60_000;

/**
 * How the checkpoint of a proof of delivery stands with this gateway's witness:
 * - `cosigned`: it is one this witness cosigned (same size, same root), so the entries are in
 *   the log this witness has seen extend, and the hub cannot show another history without
 *   contradicting a signature it gave;
 * - `not-yet`: newer than what this witness has cosigned, and not cosigned within
 *   {@link PROOF_WITNESS_WAIT_MS} (a checkpoint the router did not publish, or one this witness
 *   could not verify yet): ask again;
 * - `older`: older than every checkpoint this witness remembers cosigning;
 * - `conflict`: the hub signed another root for a size this witness cosigned: two histories.
 *   Evidence is kept and the inconsistency alarm raised, as for a checkpoint on NATS;
 * - `disabled`: this gateway does not witness (its key is not Ed25519).
 */
export type ProofWitnessing = 'cosigned' | 'not-yet' | 'older' | 'conflict' | 'disabled';

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
  /** The witness of the agency key it signs with (none while that key is not Ed25519). */
  #witness: { readonly kid: string; readonly witness: Witness | undefined } | undefined;
  readonly #subs: Subscription[] = [];
  /** Latest cosigned note per log id, with the cosignatures gathered for it. */
  readonly #latest = new Map<string, string>();
  #inconsistency: string | undefined;
  /** Per log: checkpoints in a row that did not extend what this witness cosigned, and why. */
  readonly #notExtending = new Map<string, { count: number; reason: string }>();
  #stalled: string | undefined;
  /** Per agency: verifications spent on its cosignatures since this witness last cosigned. */
  readonly #spent = new Map<string, number>();
  /** Per log: the checkpoint size for which the last cosignature was published again, and when. */
  readonly #reminded = new Map<string, { size: number; at: number }>();
  /** Per log: the checkpoints cosigned since the start (and the last one before), by size. */
  readonly #cosigned = new Map<string, Map<number, WitnessState>>();
  /** Per log: proofs waiting for this witness to cosign their checkpoint, woken by each cosign. */
  readonly #waiting = new Map<string, Set<() => void>>();
  /**
   * Conflicts kept as evidence (`origin size root`), at most {@link REMEMBERED_COSIGNED}: a repeated
   * reply (whatever cosignature lines the router adds to its note) writes no more files, and
   * beyond that many none is written (the alarm is raised all the same).
   */
  readonly #conflicts = new Set<string>();
  /** The last checkpoint that could not be handled, until one of that log is. */
  #failure: { readonly log: string; readonly reason: string } | undefined;
  #closed = false;
  /** The connection to the hub, from `start()` on. */
  #nc: NatsConnection | undefined;

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

  /**
   * The witness, signing with the agency's key now: a key rotated and reloaded (SIGHUP) cosigns
   * the next checkpoint, never the key the gateway started with. Undefined while the key is not
   * Ed25519 (said once per key).
   */
  #current(): Witness | undefined {
    const key = this.#d.signingKey();
    if (this.#witness?.kid === key.kid) return this.#witness.witness;
    if (key.alg !== 'EdDSA') {
      this.#d.log.warn(
        { kid: key.kid },
        'the agency key is not Ed25519: this gateway cannot witness the audit log',
      );
      this.#witness = { kid: key.kid, witness: undefined };
      return undefined;
    }
    if (this.#witness) this.#d.log.info({ kid: key.kid }, 'the witness cosigns with the new key');
    const witness = new Witness({
      signer: {
        name: witnessName(this.#d.agency),
        privateKey: key.privateKey,
        publicKey: Buffer.from(key.publicJwk.x, 'base64url'),
      },
      hubKeys: () => ed25519Keys(this.#d.trust(), this.#d.hubPrincipal, 'router'),
      store: this.#store,
    });
    this.#witness = { kid: key.kid, witness };
    return witness;
  }

  /**
   * Starts witnessing on the connection to the hub. Until then (behind a leaf node, the gateway
   * may run before it reaches the hub) it serves what it cosigned before (`latest`), and a proof
   * of delivery is refused with `NatsUnavailableError`.
   */
  start(nc: NatsConnection): void {
    this.#nc = nc;
    this.#current();
    this.#subs.push(
      nc.subscribe(AUDIT_CHECKPOINTS_ALL, {
        callback: (err, m) => {
          if (!err) this.#checkpoint(m.subject, m.data);
        },
      }),
      nc.subscribe(AUDIT_COSIGNATURES_ALL, {
        callback: (err, m) => {
          if (!err) this.#cosignature(m.subject, m.data);
        },
      }),
    );
  }

  #checkpoint(subject: string, data: Uint8Array): void {
    const log = parseAuditCheckpointSubject(subject);
    if (!log) return;
    try {
      this.#observe(log, data);
      if (this.#failure?.log === log) this.#failure = undefined;
    } catch (err) {
      // Its state or evidence could not be read or written (a damaged file, a full disk). Thrown
      // from a subscription's callback, it would end the reader of the hub connection, and with
      // it every feed delivery and reply, reconnecting again and again: say so instead.
      this.#d.metrics.witnessed.inc({ outcome: 'failed' });
      this.#failure = { log, reason: (err as Error).message };
      this.#d.log.error(
        { log, err: (err as Error).message },
        'AUDIT CHECKPOINT NOT HANDLED: this witness could not read or write its state; not cosigned',
      );
    }
  }

  /** A checkpoint this witness could not handle (its state unreadable or unwritable), if any. */
  get failure(): string | undefined {
    return this.#failure && `log ${this.#failure.log}: ${this.#failure.reason}`;
  }

  #observe(log: string, data: Uint8Array): void {
    const witness = this.#current();
    if (!witness) return;
    const { metrics } = this.#d;
    // What it cosigned last before it started, read before `observe` replaces it on disk.
    const before = this.#cosigned.has(log) ? undefined : this.#store.load(auditOrigin(log));
    const out = witness.observe(data, auditOrigin(log));
    metrics.witnessed.inc({ outcome: out.kind });
    if (out.kind === 'stale' || out.kind === 'unverifiable') this.#notExtended(log, out);
    else if (out.kind === 'cosigned') this.#notExtending.delete(log);
    switch (out.kind) {
      case 'cosigned':
        if (this.#stalled) this.#restall();
        // Nothing of this log in the store (what is in memory is on disk too): first use.
        if (out.first) this.#newLog(log, out.checkpoint.size);
        this.#latest.set(log, out.note);
        this.#remember(log, before, {
          origin: out.checkpoint.origin,
          size: out.checkpoint.size,
          root: out.checkpoint.root.toString('base64'),
          note: this.#compact(out.note, out.checkpoint.origin),
        });
        for (const wake of [...(this.#waiting.get(log) ?? [])]) wake();
        this.#spent.clear();
        this.#nc?.publish(auditCosignatureSubject(log, this.#d.agency), out.note);
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

  /**
   * A log this witness has no state of: it cosigned its first checkpoint with nothing to check it
   * against. Expected once per log (the hub's first start, a new router's log); otherwise the hub
   * began a history under another name, which no anchor of the old one verifies.
   */
  #newLog(log: string, size: number): void {
    this.#d.metrics.witnessNewLogs.inc();
    this.#d.metrics.witnessNewLogAt.set(Date.now() / 1000);
    this.#d.log.warn(
      { log, auditSize: size },
      'AUDIT LOG NEW TO THIS WITNESS: its first checkpoint cosigned on trust, nothing earlier of it to check',
    );
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
   * The witness publishes its last cosignature again, once per checkpoint (and again when that one is
   * published again {@link REMIND_AGAIN_MS} or more later), so the router's next
   * checkpoint carries the proof from it and the witness cosigns again.
   */
  #remind(log: string, size: number): void {
    // Once per checkpoint, and again for the same one published again a while later (an idle
    // log's refresh): a reminder the router missed (its rate limit, a restart) is not the last.
    const before = this.#reminded.get(log);
    if (before?.size === size && Date.now() - before.at < REMIND_AGAIN_MS) return;
    const last = this.#store.load(auditOrigin(log));
    if (!last) return;
    this.#reminded.set(log, { size, at: Date.now() });
    this.#nc?.publish(auditCosignatureSubject(log, this.#d.agency), last.note);
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

  /**
   * Per log: what this witness cosigned, the last {@link REMEMBERED_COSIGNED} (a Map keeps order),
   * starting with `last`, what it cosigned before it started (by default as on disk now).
   */
  #remembered(
    log: string,
    last: () => WitnessState | undefined = () => this.#store.load(auditOrigin(log)),
  ): Map<number, WitnessState> {
    let m = this.#cosigned.get(log);
    if (m) {
      // Most recently used last: the first is the one forgotten when a ninth log comes.
      this.#cosigned.delete(log);
    } else {
      m = new Map();
      const s = last();
      if (s) m.set(s.size, { ...s, note: this.#compact(s.note, s.origin) });
    }
    this.#cosigned.set(log, m);
    if (this.#cosigned.size > REMEMBERED_LOGS)
      this.#cosigned.delete(this.#cosigned.keys().next().value!);
    return m;
  }

  /**
   * A cosigned note as remembered: its text, the hub's signature (one line per hub key, those
   * `observe` verified) and this witness's own line. The other witnesses' lines, and whatever
   * else the hub put beside its own, are dropped: a state costs well under 1 KiB, and it is still
   * the hub's signed checkpoint, the evidence a conflict needs.
   */
  #compact(note: string, origin: string): string {
    try {
      const n = parseNote(note);
      const hubIds = ed25519Keys(this.#d.trust(), this.#d.hubPrincipal, 'router').map((k) =>
        noteKeyId(origin, SignatureType.Ed25519, k),
      );
      const hub = hubIds.flatMap((id) => {
        const line = n.signatures.find((x) => x.name === origin && x.keyId.equals(id));
        return line ? [line.line] : [];
      });
      const own = n.signatures.filter((x) => x.name === witnessName(this.#d.agency)).at(-1);
      return `${n.text}\n${[...hub, ...(own ? [own.line] : [])].map((l) => `${l}\n`).join('')}`;
    } catch {
      return '';
    }
  }

  #remember(log: string, before: WitnessState | undefined, state: WitnessState): void {
    const m = this.#remembered(log, () => before);
    m.delete(state.size);
    m.set(state.size, state);
    if (m.size > REMEMBERED_COSIGNED) m.delete(m.keys().next().value!);
  }

  /** How `cp` (hub-signed, of `log`) stands with what this witness cosigned, now. */
  #witnessing(log: string, cp: Checkpoint, note: string): ProofWitnessing {
    if (!this.#current()) return 'disabled';
    const m = this.#remembered(log);
    const at = m.get(cp.size);
    const root = cp.root.toString('base64');
    if (at) return at.root === root ? 'cosigned' : this.#conflict(log, at, root, note);
    const last = this.#store.load(auditOrigin(log));
    return last && cp.size < last.size ? 'older' : 'not-yet';
  }

  /** Two roots signed by the hub for one size: the same alarm and evidence as on NATS. */
  #conflict(log: string, cosigned: WitnessState, root: string, note: string): 'conflict' {
    const reason = `two different roots signed for tree size ${cosigned.size} (one in a proof of delivery)`;
    // The alarm first: evidence that cannot be written (a full disk) must not silence it.
    this.#inconsistency = reason;
    this.#d.metrics.witnessInconsistent.set(1);
    this.#d.log.error(
      { log, reason },
      'AUDIT LOG INCONSISTENT: a proof of delivery came with a checkpoint that contradicts one this witness cosigned',
    );
    const key = `${cosigned.origin} ${cosigned.size} ${root}`;
    if (!this.#conflicts.has(key) && this.#conflicts.size < REMEMBERED_COSIGNED) {
      try {
        this.#store.keepEvidence({
          at: new Date().toISOString(),
          origin: cosigned.origin,
          reason,
          cosigned,
          received: note,
        });
        this.#conflicts.add(key);
      } catch (err) {
        // Not counted as kept: the next reply with that root tries again.
        this.#d.log.error({ log, err }, 'the evidence of the inconsistency could not be written');
      }
    }
    return 'conflict';
  }

  /** `cp`'s standing, waiting up to `waitMs` for this witness to cosign it if it is newer. */
  async #witnessed(
    log: string,
    cp: Checkpoint,
    note: string,
    waitMs: number,
  ): Promise<ProofWitnessing> {
    const until = Date.now() + waitMs;
    for (;;) {
      const w = this.#witnessing(log, cp, note);
      const left = until - Date.now();
      if (w !== 'not-yet' || left <= 0 || this.#closed) return w;
      await new Promise<void>((resolve) => {
        const waiting = this.#waiting.get(log) ?? new Set();
        this.#waiting.set(log, waiting);
        const wake = (): void => {
          clearTimeout(timer);
          waiting.delete(wake);
          if (waiting.size === 0 && this.#waiting.get(log) === waiting) this.#waiting.delete(log);
          resolve();
        };
        const timer = setTimeout(wake, left);
        waiting.add(wake);
      });
    }
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
   * this agency, verifies them against the checkpoint the router answers with (signed by the hub),
   * and tells how that checkpoint stands with what this witness cosigned ({@link ProofWitnessing}):
   * `ok` only when every entry verifies and the checkpoint is one this witness cosigned.
   * Throws {@link NatsUnavailableError} when no router answers in time, or before `start()`.
   */
  async inclusionProof(
    log: string,
    alertId: string,
    waitMs = PROOF_WITNESS_WAIT_MS,
  ): Promise<InclusionAnswer> {
    const nc = this.#nc;
    if (!nc)
      throw new NatsUnavailableError(
        'a proof of delivery needs the hub, and this gateway is not connected to it yet (behind its leaf node it takes alerts without the hub and keeps connecting); retry later',
      );
    const reply = await nc
      .request(auditProofSubject(log, this.#d.agency), JSON.stringify({ alertId }), {
        timeout: this.#d.requestTimeoutMs,
      })
      .catch((err: unknown) => {
        // No router answered in time (or none is subscribed): NATS's fault, a retry may help.
        // Only this: a fault of this gateway after the answer is its own (a 500).
        throw new NatsUnavailableError(
          `the router did not answer the proof request: ${(err as Error).message}`,
          { cause: err },
        );
      });
    let body: ProofReply;
    try {
      body = readProofReply(reply.data);
    } catch (err) {
      return {
        ok: false,
        error: {
          code: 'ERR_HUB_REPLY_INVALID',
          message: `the router's reply to the proof request is not one of the protocol: ${(err as Error).message}`,
        },
      };
    }
    if ('error' in body) return { ok: false, error: body.error };
    let note;
    let cp;
    try {
      note = parseNote(body.checkpoint);
      cp = parseCheckpoint(note.text);
    } catch (err) {
      return {
        ok: false,
        error: {
          code: 'ERR_HUB_REPLY_INVALID',
          message: `the checkpoint of the router's reply does not parse: ${(err as Error).message}`,
        },
      };
    }
    const hubSigned =
      cp.origin === auditOrigin(log) &&
      ed25519Keys(this.#d.trust(), this.#d.hubPrincipal, 'router').some((publicKey) => {
        try {
          verifyNote(note, { name: cp.origin, publicKey });
          return true;
        } catch {
          return false;
        }
      });
    if (!hubSigned)
      return {
        ok: false,
        error: {
          code: 'ERR_NOTE_SIGNATURE',
          message: `the checkpoint is not signed by the hub for ${auditOrigin(log)}`,
        },
      };
    const entries = body.entries.map((e) => {
      const r = e.record;
      let verified: boolean;
      try {
        if (!e.proof.every(isHash)) throw new Error('a proof hash is not canonical base64');
        // A routing decision names no recipient: this agency's route leaf and its path lead to
        // the route tree root the entry records (and show no other recipient). A `forwarded`
        // entry names the agency itself.
        verified =
          e.index === r.seq - 1 &&
          r.alertId === alertId &&
          (e.route
            ? verifyRouteInclusion(r, e.route, this.#d.agency) === undefined
            : r.recipient === this.#d.agency && r.event === 'forwarded');
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
    // Compared with what this witness cosigned only once the hub's signature holds: a conflict is
    // two roots the hub signed for one size.
    const witness = await this.#witnessed(log, cp, body.checkpoint, waitMs);
    // The router never sends an empty list (none is ERR_NOT_FOUND): a reply without an entry
    // proves nothing, whatever its checkpoint (docs/protocol.md §8.5).
    return {
      ok: entries.length > 0 && entries.every((e) => e.verified) && witness === 'cosigned',
      checkpoint: body.checkpoint,
      witness,
      entries,
    };
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#subs) s.unsubscribe();
    for (const waiting of [...this.#waiting.values()]) for (const wake of [...waiting]) wake();
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
      /** How the checkpoint stands with this gateway's witness. */
      witness: ProofWitnessing;
      entries: {
        record: AuditRecord;
        index: number;
        proof: string[];
        route?: RouteInclusion;
        verified: boolean;
      }[];
    };

type ProofReply =
  | { error: { code: string; message: string; retryAfterMs?: number } }
  | {
      checkpoint: string;
      entries: { record: AuditRecord; index: number; proof: string[]; route?: RouteInclusion }[];
    };

/** The largest proof-of-delivery reply read (the router's are a few kilobytes per entry). */
const MAX_PROOF_REPLY = 1024 * 1024;

/**
 * The router's reply to a proof request, in strict JSON (a member named twice, invalid UTF-8, ...
 * refused) and of the shape docs/protocol.md §8.5 gives; anything else throws. The record's 17
 * members are typed by `entryBytes` when the entry is verified.
 */
function readProofReply(data: Uint8Array): ProofReply {
  if (data.length > MAX_PROOF_REPLY) throw new Error('the reply is over 1 MiB');
  const v = parseJsonBytes(data, 8);
  const isIndex = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;
  const strings = (x: unknown): x is string[] =>
    Array.isArray(x) && x.every((h) => typeof h === 'string');
  if (!isJsonObject(v)) throw new Error('not a JSON object');
  if ('error' in v) {
    const e = v['error'];
    if (!isJsonObject(e) || typeof e['code'] !== 'string' || typeof e['message'] !== 'string')
      throw new Error('an error without a string code and message');
    const retry = e['retryAfterMs'];
    if (retry !== undefined && !isIndex(retry))
      throw new Error('retryAfterMs is not a non-negative integer');
    return {
      error: {
        code: e['code'],
        message: e['message'],
        ...(retry !== undefined ? { retryAfterMs: retry } : {}),
      },
    };
  }
  const { checkpoint, entries } = v;
  if (typeof checkpoint !== 'string') throw new Error('no string checkpoint');
  if (!Array.isArray(entries)) throw new Error('no array of entries');
  for (const e of entries as unknown[]) {
    if (
      !isJsonObject(e) ||
      !isJsonObject(e['record']) ||
      !isIndex(e['index']) ||
      !strings(e['proof'])
    )
      throw new Error('an entry is not {record, index, proof, route?}');
    const route = e['route'];
    if (
      route !== undefined &&
      (!isJsonObject(route) ||
        typeof route['leaf'] !== 'string' ||
        !isIndex(route['index']) ||
        !strings(route['path']))
    )
      throw new Error("an entry's route is not {leaf, index, path}");
  }
  return v as ProofReply;
}
