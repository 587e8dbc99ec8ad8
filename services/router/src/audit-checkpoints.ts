import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import {
  Streams,
  auditCheckpointSubject,
  auditCosignatureSubject,
  auditCosignatures,
  auditOrigin,
  auditProofRequests,
  isAlertId,
  parseAuditCosignatureSubject,
  parseJsonBytes,
  type SigningKey,
  type TrustStore,
} from '@alert-hub/core';
import {
  AuditIntegrityError,
  EMPTY_ROOT,
  MAX_CHECKPOINT_MESSAGE,
  MAX_CHECKPOINT_PROOFS,
  MAX_NOTE_SIGNATURES,
  findCosignature,
  hubCheckpoint,
  isOversizedCosignatureMessage,
  parseCheckpoint,
  parseNote,
  routeInclusion,
  setSignatureLine,
  traceAlert,
  witnessName,
  type Checkpoint,
  type CheckpointMessage,
  type CosignatureLine,
  type Note,
  type NoteSigner,
} from '@alert-hub/audit';
import type { Logger } from '@alert-hub/runtime';
import type { RouterMetrics } from './metrics.js';
import { KeyedRateLimit } from './rate-limit.js';
import type { RouterStore } from './store.js';

/**
 * Ed25519 verifications an agency's cosignatures may cost the router between two checkpoints: a
 * witness sends one cosignature per checkpoint, and one more to make its size known again.
 */
export const COSIGNATURE_VERIFICATIONS = 8;

/**
 * Cosignature messages an agency may send per checkpoint interval, on average, before the router
 * stops reading them (an honest witness sends one per checkpoint, and at most one reminder).
 */
export const COSIGNATURE_MESSAGES_PER_CHECKPOINT = 4;
/** Cosignature messages an agency may send at once after being quiet. */
export const COSIGNATURE_MESSAGES_BURST = 16;

/** The note signer of the hub key for log `origin`; checkpoints are Ed25519 notes. */
export function hubNoteSigner(key: SigningKey, origin: string): NoteSigner {
  if (key.alg !== 'EdDSA')
    throw new AuditIntegrityError(
      `the hub key ${key.kid} is ${key.alg}; audit checkpoints are signed with an Ed25519 (EdDSA) key`,
    );
  return { name: origin, privateKey: key.privateKey, publicKey: rawKey(key.publicJwk.x) };
}

function rawKey(x: string): Buffer {
  return Buffer.from(x, 'base64url');
}

/** Raw Ed25519 keys of `principal` in `role` in the trust store (those revoked for compromise with `compromised`). */
export function noteKeysOf(
  trust: TrustStore,
  principal: string,
  role: 'agency' | 'router',
  compromised = false,
): Buffer[] {
  return (compromised ? trust.compromisedKeysOf(principal, role) : trust.keysOf(principal, role))
    .filter((k) => k.alg === 'EdDSA')
    .map((k) => rawKey(k.jwk.x));
}

/**
 * The hub keys that vouch for what the audit log holds: trusted (not revoked) router keys of
 * `principal` that the router also holds (a key merely added to the trust store, by whoever can
 * write it, vouches for nothing).
 */
export function vouchingKeysOf(
  trust: TrustStore,
  principal: string,
  held: readonly SigningKey[],
): Buffer[] {
  const heldRaw = held.filter((k) => k.alg === 'EdDSA').map((k) => rawKey(k.publicJwk.x));
  return noteKeysOf(trust, principal, 'router').filter((k) => heldRaw.some((h) => h.equals(k)));
}

/** What a checkpoint message's proofs may take: well within a witness's MAX_CHECKPOINT_MESSAGE. */
const PROOFS_BYTES = MAX_CHECKPOINT_MESSAGE - 32 * 1024;

export interface CheckpointerDeps {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly store: RouterStore;
  readonly log: string;
  readonly principal: string;
  readonly hubKey: () => SigningKey;
  /**
   * The public keys of the private keys the router holds (every key file of its `signingKey`):
   * only these vouch for the audit head at start. The trust store may list more router keys,
   * and whoever can write it must not be able to vouch for entries the router never wrote.
   */
  readonly heldKeys: () => readonly SigningKey[];
  readonly trust: () => TrustStore;
  readonly metrics: RouterMetrics;
  readonly logger: Logger;
  readonly publishTimeoutMs: number;
  /** How often checkpoints are signed: an agency's cosignature messages are read at 4 per interval. */
  readonly checkpointIntervalMs: number;
  /** Inclusion-proof requests answered per agency per second on average (twice that at once). */
  readonly proofRequestsPerSecond: number;
  /** Clock of the rate limits, in milliseconds (tests). */
  readonly now?: () => number;
  /**
   * Entries may wait this long for a published checkpoint: past it the router stops taking new
   * inbound messages (`paused`) until one is out, so that no more than this much activity is
   * ever unwitnessed, whatever keeps checkpoints from NATS.
   */
  readonly unpublishedMaxMs: number;
  /**
   * With nothing new to sign for this long since the last publication, the latest checkpoint is
   * published again (the same note), so that the witnesses cosign it anew with a current
   * timestamp and the anchor of an idle log stays within `hubctl audit verify --max-anchor-age`.
   */
  readonly anchorRefreshMs: number;
  /** Called when a checkpoint was published (routing paused for want of one may resume). */
  readonly onPublished?: () => void;
  /** Called when a failed publish finds routing paused (the pull under way should end). */
  readonly onPaused?: () => void;
  /** Called once when the database no longer matches what the router wrote or published. */
  readonly onFailure: (reason: string) => void;
}

/**
 * The router's side of the transparency log: it checks the database against the last checkpoint
 * published on NATS before anything else, signs and publishes checkpoints (with consistency
 * proofs from each witness's last cosigned size), gathers the witnesses' cosignatures, and
 * answers agencies' requests for inclusion proofs of the entries recording deliveries to them.
 */
export class AuditCheckpointer {
  readonly #d: CheckpointerDeps;
  readonly origin: string;
  /** The tree size each witness last cosigned. */
  readonly #witnessSizes = new Map<string, number>();
  #latest: { checkpoint: Checkpoint; note: string } | undefined;
  /** The latest checkpoint as the hub signed it (no cosignature), to publish again when idle. */
  #signedLatest: { checkpoint: Checkpoint; note: string } | undefined;
  /** When a checkpoint was last published (ms since the epoch). */
  #publishedAt = 0;
  /** The size whose stored checkpoint could not be adopted (warned once). */
  #unadoptable: number | undefined;
  #failed: string | undefined;
  readonly #subs: Subscription[] = [];
  /** The checkpoint being made, if one is. */
  #running: Promise<void> | undefined;
  /** Per witness: its line in the latest note. */
  readonly #anchored = new Map<string, CosignatureLine>();
  /** Per agency: Ed25519 verifications spent on its cosignatures since the last checkpoint. */
  readonly #spent = new Map<string, number>();
  /** Agencies whose ignored cosignature was logged since the last checkpoint (once each). */
  readonly #warned = new Set<string>();
  /** A checkpoint signed and not yet published: published before (or with) the next one. */
  #unpublished: { checkpoint: Checkpoint; note: string } | undefined;
  /** When publishing checkpoints started to fail (undefined while they are published). */
  #failingSince: number | undefined;
  /** Per agency: what its cosignature messages and proof requests may cost, before any parsing. */
  readonly #cosignatureRate: KeyedRateLimit;
  readonly #proofRate: KeyedRateLimit;

  constructor(d: CheckpointerDeps) {
    this.#d = d;
    this.origin = auditOrigin(d.log);
    const clock = d.now ? { now: d.now } : {};
    this.#cosignatureRate = new KeyedRateLimit({
      perSecond: (COSIGNATURE_MESSAGES_PER_CHECKPOINT * 1000) / d.checkpointIntervalMs,
      burst: COSIGNATURE_MESSAGES_BURST,
      ...clock,
    });
    this.#proofRate = new KeyedRateLimit({
      perSecond: d.proofRequestsPerSecond,
      burst: 2 * d.proofRequestsPerSecond,
      ...clock,
    });
  }

  /** Why the log was found tampered with, if it was. */
  get failure(): string | undefined {
    return this.#failed;
  }

  /** How long checkpoints have failed to reach NATS, in milliseconds (0 while they do). */
  get unpublishedMs(): number {
    return this.#failingSince === undefined ? 0 : Date.now() - this.#failingSince;
  }

  /** Routing waits: checkpoints have failed to reach NATS for longer than `unpublishedMaxMs`. */
  get paused(): boolean {
    return this.unpublishedMs > this.#d.unpublishedMaxMs;
  }

  /** The latest published checkpoint note, with the cosignatures gathered for it. */
  get latest(): string | undefined {
    return this.#latest?.note;
  }

  /** Marks the log as no longer trustworthy (the router stops routing, signs nothing more). */
  fail(reason: string): void {
    if (this.#failed) return;
    this.#failed = reason;
    this.#d.metrics.auditFailed.set(1);
    this.#d.logger.error(
      { reason },
      'audit log integrity lost: routing stopped, nothing more is signed',
    );
    this.#d.onFailure(reason);
  }

  /**
   * Checks the database against the last checkpoint on NATS (throws {@link AuditIntegrityError}
   * on a mismatch, before the router routes anything), then listens for cosignatures and proof
   * requests.
   */
  async start(): Promise<void> {
    const { jsm, store, nc, log } = this.#d;
    if (!store.audit.transparency) return;
    const hubKeys = noteKeysOf(this.#d.trust(), this.#d.principal, 'router');
    const vouching = vouchingKeysOf(this.#d.trust(), this.#d.principal, this.#d.heldKeys());
    // What a checkpoint on NATS under such a key covers needs no head; anything after it does.
    let vouched = 0;
    const last = await lastMessage(jsm, Streams.Audit, auditCheckpointSubject(log));
    if (last) {
      const msg = JSON.parse(new TextDecoder().decode(last)) as CheckpointMessage;
      const cp = hubCheckpoint(msg.checkpoint, this.origin, hubKeys);
      // Signed by a router key revoked for compromise since (the router's key rotated, then the
      // old one revoked before a checkpoint under the new one was out): it still bounds the log,
      // which must extend it, but vouches for nothing. What the log holds is vouched for by the
      // head, which must verify under a key that still counts (#checkUnpublished), and a
      // checkpoint under such a key is what agencies get proofs against.
      const bound =
        cp ??
        hubCheckpoint(
          msg.checkpoint,
          this.origin,
          noteKeysOf(this.#d.trust(), this.#d.principal, 'router', true),
        );
      if (bound === undefined)
        throw new AuditIntegrityError(
          `the last checkpoint published for ${this.origin} is not signed by a hub key`,
        );
      if (cp === undefined && store.audit.head() === undefined)
        throw new AuditIntegrityError(
          `the last checkpoint published for ${this.origin} is signed by a router key revoked for compromise, and no head signed by a key still trusted vouches for the log`,
        );
      if (cp === undefined)
        this.#d.logger.warn(
          { auditSize: bound.size },
          'the last published audit checkpoint is signed by a router key revoked for compromise: the log is held to it, and its signed head must verify under a key still trusted',
        );
      // A router sharing the file may have appended and published since this one read it.
      store.audit.db
        .transaction(() => {
          store.audit.takeIn();
          store.audit.checkAgainst(bound);
        })
        .immediate();
      if (cp) this.#setLatest({ checkpoint: cp, note: msg.checkpoint });
      vouched = hubCheckpoint(msg.checkpoint, this.origin, vouching)?.size ?? 0;
    } else store.audit.checkAgainst({ origin: this.origin, size: 0, root: EMPTY_ROOT });
    this.#checkUnpublished(vouching, vouched);
    // Entries no published checkpoint covers have waited since the first of them was written: a
    // restart does not start the clock again (else each restart would buy another
    // `unpublishedMaxMs` of routing nobody witnesses while checkpoints cannot reach NATS). The
    // entry the start appends is checkpointed and published at the first tick, if NATS takes it.
    if (store.audit.size > vouched) {
      const first = store.audit.db
        .prepare('SELECT at FROM audit WHERE seq = ?')
        .get(vouched + 1) as { at: string } | undefined;
      const at = first && Date.parse(first.at);
      if (at !== undefined && Number.isFinite(at)) this.#failingSince = Math.min(at, Date.now());
    }
    for (const agency of this.#d.trust().agencies) {
      const data = await lastMessage(
        jsm,
        Streams.AuditCosignatures,
        auditCosignatureSubject(log, agency),
      );
      if (data) this.#cosignature(agency, data);
    }
    const cosigs = nc.subscribe(auditCosignatures(log), {
      callback: (err, m) => {
        if (err) return;
        if (leafRewritten(m.reply))
          return void this.#d.metrics.cosignatures.inc({ outcome: 'refused' });
        const who = parseAuditCosignatureSubject(m.subject);
        if (!who) return;
        // Over its rate an agency's message is not even parsed: NATS has no per-account rate.
        if (this.#cosignatureRate.take(who.agency) > 0)
          return void this.#d.metrics.cosignatures.inc({ outcome: 'limited' });
        this.#cosignature(who.agency, m.data);
      },
    });
    const proofs = nc.subscribe(auditProofRequests(log), {
      callback: (err, m) => {
        if (err || !m.reply) return;
        if (leafRewritten(m.reply))
          return void this.#d.metrics.proofRequests.inc({ outcome: 'refused' });
        const agency = m.subject.split('.')[4]!;
        const wait = this.#proofRate.take(agency);
        if (wait > 0) {
          this.#d.metrics.proofRequests.inc({ outcome: 'limited' });
          m.respond(
            JSON.stringify({
              error: {
                code: 'ERR_RATE_LIMITED',
                message: `more proof requests than ${agency} may send per second; retry in ${wait} ms`,
                retryAfterMs: wait,
              },
            }),
          );
          return;
        }
        const answer = this.#proofsFor(agency, m.data);
        this.#d.metrics.proofRequests.inc({
          outcome: 'error' in answer ? answer.error.code : 'served',
        });
        m.respond(JSON.stringify(answer));
      },
    });
    this.#subs.push(cosigs, proofs);
  }

  /**
   * Entries after the last published checkpoint were written since (the router stopped before it
   * published them, or crashed). A router writes the signed head with every append, in the same
   * transaction: the head must name exactly the log as it is, size and root, under a key the
   * router holds and the trust store still counts (a key merely added to the trust store, by
   * whoever can write it, vouches for nothing), so
   * entries appended or changed by someone without the key while the router was stopped are
   * refused here, before they could ever be signed into a checkpoint and witnessed. One
   * transaction: a router sharing the file may be appending meanwhile.
   */
  #checkUnpublished(vouching: readonly Buffer[], published: number): void {
    const audit = this.#d.store.audit;
    audit.db.transaction(() => audit.checkHead(this.origin, vouching, published)).immediate();
  }

  /**
   * One witness's cosignature message. An agency may publish anything on its cosignature subject,
   * so the cheap checks come first and the expensive one (Ed25519) last, at most once per key of
   * the agency and at most {@link COSIGNATURE_VERIFICATIONS} times per agency between two
   * checkpoints: the size, the line count, the witness's key name, and that the note's text is a
   * checkpoint of this log as the router's own tree has it (the latest, or an earlier or later
   * size of the same tree: it tells the size the witness cosigned). The latest note keeps one line
   * per witness, the newest valid.
   */
  #cosignature(agency: string, data: Uint8Array): void {
    const { metrics } = this.#d;
    const drop = (reason: string): void => {
      metrics.cosignatures.inc({ outcome: 'ignored' });
      if (this.#warned.has(agency)) return;
      this.#warned.add(agency);
      this.#d.logger.warn({ agency, reason }, 'cosignature ignored');
    };
    if (isOversizedCosignatureMessage(data))
      return drop('larger, or with more lines, than a cosignature message');
    let note: Note;
    let cp: Checkpoint;
    try {
      note = parseNote(new TextDecoder('utf-8', { fatal: true }).decode(data));
      cp = parseCheckpoint(note.text);
    } catch (err) {
      return drop((err as Error).message);
    }
    if (cp.origin !== this.origin) return drop('a checkpoint of another log');
    const name = witnessName(agency);
    if (!note.signatures.some((s) => s.name === name))
      return drop('no cosignature line of this witness');
    const latest = this.#latest;
    const current = latest !== undefined && cp.size === latest.checkpoint.size;
    if (current) {
      if (!cp.root.equals(latest.checkpoint.root))
        return drop('not the checkpoint the router published');
    } else {
      // Another size only tells how far the witness got: worth a verification only when it is
      // more than the router knows, and only when the router's tree has that root there.
      // Beyond what this router holds: another router's newer checkpoint (routers sharing the
      // log), or nothing; either way nothing to learn here.
      const audit = this.#d.store.audit;
      if (cp.size <= (this.#witnessSizes.get(agency) ?? 0) || cp.size > audit.size)
        return void metrics.cosignatures.inc({ outcome: 'ignored' });
      if (!audit.tree.root(cp.size).equals(cp.root)) return drop('not a checkpoint of this log');
    }
    // The line already in the latest note is not verified again (a replay costs nothing).
    const anchored = current ? this.#anchored.get(agency) : undefined;
    if (anchored && note.signatures.some((s) => s.line === anchored.line))
      return void metrics.cosignatures.inc({ outcome: 'ignored' });
    // A note is read with at most MAX_NOTE_SIGNATURES lines (hubctl audit verify too): the
    // first witnesses to cosign fill it; the others still tell the router their size.
    const full =
      current && !anchored && parseNote(latest.note).signatures.length >= MAX_NOTE_SIGNATURES;
    const spent = this.#spent.get(agency) ?? 0;
    if (spent >= COSIGNATURE_VERIFICATIONS)
      return drop('too many cosignatures since the last checkpoint');
    const keys = noteKeysOf(this.#d.trust(), agency, 'agency');
    const { found, verified } = findCosignature(
      note,
      name,
      keys,
      COSIGNATURE_VERIFICATIONS - spent,
    );
    this.#spent.set(agency, spent + verified);
    metrics.cosignatureVerifications.inc(verified);
    if (!found) return drop('the cosignature does not verify');
    metrics.cosignatures.inc({ outcome: 'accepted' });
    this.#witnessSizes.set(agency, Math.max(this.#witnessSizes.get(agency) ?? 0, cp.size));
    if (current && !full && found.timestamp >= (anchored?.timestamp ?? 0)) {
      this.#anchored.set(agency, found);
      this.#latest = { ...latest, note: setSignatureLine(latest.note, name, found.line) };
    }
  }

  /** A new latest checkpoint: its note carries no cosignature yet, every agency's budget is new. */
  #setLatest(latest: { checkpoint: Checkpoint; note: string }): void {
    this.#latest = latest;
    this.#signedLatest = latest;
    this.#anchored.clear();
    this.#newBudgets();
  }

  /** Every agency's cosignature budget starts again (a checkpoint published, or published anew). */
  #newBudgets(): void {
    this.#spent.clear();
    this.#warned.clear();
  }

  /** Inclusion proofs of the entries recording deliveries of one alert to `agency`. */
  #proofsFor(
    agency: string,
    data: Uint8Array,
  ): { error: { code: string; message: string } } | { checkpoint: string; entries: unknown[] } {
    try {
      const alertId = parseProofRequest(data);
      if (alertId === undefined)
        return {
          error: { code: 'ERR_BAD_REQUEST', message: 'the request is {"alertId": <alert id>}' },
        };
      const latest = this.#latest;
      if (!latest) return { error: { code: 'ERR_NOT_FOUND', message: 'no checkpoint yet' } };
      const size = latest.checkpoint.size;
      const db = this.#d.store.audit.db;
      // A forward is recorded in the routing decision's entry (the agency among its routes: the
      // proof then has two levels, the agency's route leaf in the decision's route tree, and the
      // entry in the log) or, for a copy held and sent later and in older logs, in a
      // `forwarded` entry naming the agency.
      const entries = traceAlert(db, alertId).flatMap((r) => {
        if (r.seq > size) return [];
        if (r.event === 'forwarded' && r.recipient === agency) return [{ record: r }];
        if (r.event !== 'routed') return [];
        const route = routeInclusion(db, r.seq, agency);
        const { routes: _others, ...record } = r;
        return route ? [{ record, route }] : [];
      });
      if (entries.length === 0)
        return {
          error: {
            code: 'ERR_NOT_FOUND',
            message: `no checkpointed entry records a delivery of ${alertId} to ${agency}`,
          },
        };
      return {
        checkpoint: latest.note,
        entries: entries.map((e) => ({
          ...e,
          index: e.record.seq - 1,
          proof: this.#d.store.audit.tree
            .inclusionProof(e.record.seq - 1, size)
            .map((h) => h.toString('base64')),
        })),
      };
    } catch (err) {
      // Only the router's own faults reach here (the request was read above): not the agency's,
      // and their text stays in the router's log.
      this.#d.logger.error({ agency, err }, 'a proof request could not be answered');
      return {
        error: { code: 'ERR_INTERNAL', message: 'the router could not answer this proof request' },
      };
    }
  }

  /**
   * Signs and publishes a checkpoint if entries were appended since the last one. Before it
   * signs, the appender checks the database against what the router wrote whenever another
   * connection has written to the file (`AuditAppender.checkpoint`); on a mismatch the router
   * fails closed. Calls run one at a time: a call while one runs waits for it.
   */
  async checkpoint(): Promise<void> {
    while (this.#running) await this.#running.catch(() => undefined);
    const run = this.#checkpointOnce();
    this.#running = run;
    try {
      await run;
    } finally {
      if (this.#running === run) this.#running = undefined;
    }
  }

  async #checkpointOnce(): Promise<void> {
    if (this.#failed) return;
    const { store } = this.#d;
    let signed: { checkpoint: Checkpoint; note: string } | undefined;
    try {
      const signer = hubNoteSigner(this.#d.hubKey(), this.origin);
      const hubKeys = noteKeysOf(this.#d.trust(), this.#d.principal, 'router');
      signed = store.audit.db
        .transaction(() => store.audit.checkpoint(signer, this.origin, hubKeys))
        .immediate();
    } catch (err) {
      if (err instanceof AuditIntegrityError) return this.fail(err.message);
      throw err;
    }
    // Nothing new to sign: the last one signed goes out again if it has not yet (the log does
    // not sign one size twice), or, once the log has been idle for anchorRefreshMs, the latest
    // published one, for the witnesses to cosign anew (their lines then replace the older ones).
    signed ??= this.#unpublished;
    const now = Date.now();
    const due = !signed && now - this.#publishedAt >= this.#d.anchorRefreshMs;
    // Idle, and another router sharing the database signed the checkpoint of the log as it
    // stands: this router takes it as its latest and publishes it again now, so the witnesses
    // cosign it anew and their lines are gathered here too (else it would publish again its own
    // older one, which every witness answers as stale). While entries keep coming, each router
    // serves its own cosigned checkpoint.
    if (due) this.#adoptStoredLatest();
    const refresh =
      due &&
      this.#signedLatest !== undefined &&
      // never an older checkpoint than the log's: witnesses would answer it as stale
      this.#signedLatest.checkpoint.size === this.#d.store.audit.size;
    if (refresh) signed = this.#signedLatest;
    if (!signed) return;
    if (!refresh) this.#unpublished = signed;
    const { checkpoint, note } = signed;
    // One proof per size a witness last cosigned, those most witnesses share first (then the
    // newest), as many as a witness reads: MAX_CHECKPOINT_PROOFS, and the message within
    // PROOFS_BYTES of the witness's limit. A witness left out makes its size known again and
    // is served by a later checkpoint.
    const shared = new Map<number, number>();
    for (const s of this.#witnessSizes.values())
      if (s > 0 && s < checkpoint.size) shared.set(s, (shared.get(s) ?? 0) + 1);
    const froms = [...shared].sort((a, b) => b[1] - a[1] || b[0] - a[0]).map(([s]) => s);
    const proofs: { from: number; proof: string[] }[] = [];
    let bytes = note.length + 64;
    for (const from of froms) {
      if (proofs.length === MAX_CHECKPOINT_PROOFS) break;
      const proof = store.audit.tree
        .consistencyProof(from, checkpoint.size)
        .map((h) => h.toString('base64'));
      const size = 32 + proof.length * 47;
      if (bytes + size > PROOFS_BYTES) break;
      bytes += size;
      proofs.push({ from, proof });
    }
    const msg: CheckpointMessage = { checkpoint: note, proofs };
    try {
      await this.#d.js.publish(auditCheckpointSubject(this.#d.log), JSON.stringify(msg), {
        // Published anew: another message than the first publication (not a duplicate of it).
        msgID: `${checkpointMsgId(this.origin, checkpoint)}${refresh ? `:${now}` : ''}`,
        timeout: this.#d.publishTimeoutMs,
      });
    } catch (err) {
      // The same checkpoint out before: nothing waits on this one (a later tick tries again).
      if (refresh) throw err;
      this.#failingSince ??= Date.now();
      if (this.paused) {
        this.#d.logger.error(
          { auditSize: checkpoint.size, unpublishedMs: this.unpublishedMs },
          'audit checkpoints have not reached NATS for too long: routing paused until one does',
        );
        this.#d.onPaused?.();
      }
      throw err;
    }
    this.#publishedAt = now;
    if (refresh) {
      this.#newBudgets();
      this.#d.logger.debug(
        { auditSize: checkpoint.size },
        'audit checkpoint published again for the witnesses to cosign anew',
      );
      return;
    }
    // Out: witnesses can cosign it, and agencies get proofs against it (never against one that
    // never left the router).
    this.#unpublished = undefined;
    this.#failingSince = undefined;
    this.#setLatest(signed);
    this.#d.onPublished?.();
    this.#d.metrics.checkpoints.inc();
    this.#d.logger.info(
      { auditSize: checkpoint.size, auditRoot: checkpoint.root.toString('base64') },
      'audit checkpoint signed',
    );
  }

  /**
   * Takes as latest the hub-signed checkpoint another router sharing the database stored at the
   * log's current size, when it is newer than this router's (checked as it was stored:
   * `AuditAppender.checkpoint` refuses one not signed by a hub key or of another root).
   */
  #adoptStoredLatest(): void {
    const { store } = this.#d;
    const size = store.audit.size;
    if (size === 0 || (this.#signedLatest?.checkpoint.size ?? 0) >= size) return;
    const row = store.audit.db.prepare('SELECT note FROM checkpoints WHERE size = ?').get(size) as
      { note: string } | undefined;
    const hubKeys = noteKeysOf(this.#d.trust(), this.#d.principal, 'router');
    const cp = row && hubCheckpoint(row.note, this.origin, hubKeys);
    if (cp?.size === size && cp.root.equals(store.audit.root())) {
      this.#setLatest({ checkpoint: cp, note: row!.note });
      return;
    }
    if (this.#unadoptable === size) return;
    this.#unadoptable = size;
    this.#d.logger.warn(
      { auditSize: size },
      'the checkpoint of the log as it stands, signed by a router sharing the database, cannot be read back: the anchor is not refreshed until this router signs one',
    );
  }

  close(): void {
    for (const s of this.#subs) s.unsubscribe();
  }
}

/**
 * The JetStream message id of a checkpoint: its origin, size and root. Nobody but the router can
 * publish on the checkpoint subject, and the root makes the id of a checkpoint not yet signed
 * unknowable anyway; the same checkpoint published twice (a retry) is still one message.
 */
export function checkpointMsgId(origin: string, c: Checkpoint): string {
  return `${origin}:${c.size}:${c.root.toString('base64')}`;
}

async function lastMessage(
  jsm: JetStreamManager,
  stream: string,
  subject: string,
): Promise<Uint8Array | undefined> {
  try {
    const m = await jsm.streams.getMessage(stream, { last_by_subj: subject });
    return m?.data;
  } catch (err) {
    if (
      (err as { status?: number }).status === 404 ||
      /no message found/i.test((err as Error).message)
    )
      return undefined;
    throw err;
  }
}

/**
 * The alert id of an inclusion-proof request (protocol.md §8.5), or undefined when the request is
 * not exactly `{"alertId": <alert id>}` in strict JSON (§4.2: a member named twice, invalid UTF-8,
 * ... are refused) with an id of the `alert-id` format (§2.3).
 */
export function parseProofRequest(data: Uint8Array): string | undefined {
  let v: unknown;
  try {
    v = parseJsonBytes(data, 1);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const keys = Object.keys(v);
  const { alertId } = v as { alertId?: unknown };
  return keys.length === 1 && isAlertId(alertId) ? alertId : undefined;
}

/**
 * A message whose subject a leaf node chose: nats-server 2.9 delivers a message from a leaf
 * connection under the subject after an `@` in a `$JS.ACK.` reply, and leaves the reply's first
 * part. No gateway's cosignature or proof request has such a reply, and since a leaf lands in an
 * account that imports nothing of the hub none comes from a leaf; refused all the same, never
 * answered (an answer would go to a `$JS.ACK.` subject of the hub's account).
 */
function leafRewritten(reply: string | undefined): boolean {
  return reply !== undefined && reply.startsWith('$JS.ACK.');
}
