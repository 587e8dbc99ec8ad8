import {
  BEFORE_FIRST,
  checkRecord,
  checkRoutes,
  checkSchema,
  entryBeforeFirst,
  entryBytes,
  hasTable,
  headOrigin,
  hubCheckpoint,
  iterateRecords,
  orphanRoute,
  ORPHAN_ROUTES,
  ROUTES_PAST_END,
  routeReader,
  type SqliteDatabase,
} from './audit.js';
import { CompactRange, EMPTY_ROOT, hashLeaf } from './merkle.js';
import {
  NoteError,
  parseCheckpoint,
  parseNote,
  verifyCosignature,
  verifyNote,
  type Checkpoint,
  type NoteVerifier,
} from './note.js';

/** Why {@link verifyAuditLog} found a log wanting. */
export const VerifyProblem = {
  /** The anchor does not parse, or is not signed by the named hub key. */
  AnchorInvalid: 'ERR_ANCHOR_INVALID',
  /** Fewer than k witnesses cosigned the anchor. */
  AnchorNotWitnessed: 'ERR_ANCHOR_NOT_WITNESSED',
  /** A trigger, view, index or table definition the router does not create. */
  Schema: 'ERR_AUDIT_SCHEMA',
  /** `PRAGMA integrity_check` found the file or an index inconsistent. */
  IntegrityCheck: 'ERR_AUDIT_INTEGRITY_CHECK',
  /** An entry edited, deleted, inserted or out of place. */
  Entry: 'ERR_AUDIT_ENTRY',
  /** The log is shorter than the witnessed checkpoint: truncated or rolled back. */
  Truncated: 'ERR_AUDIT_TRUNCATED',
  /** The entries hash to another root than the witnessed checkpoint. */
  Rewritten: 'ERR_AUDIT_REWRITTEN',
  /** The anchor is a checkpoint of another log than the one named. */
  AnchorWrongLog: 'ERR_ANCHOR_WRONG_LOG',
  /** Entries follow an anchor its witnesses cosigned longer ago than allowed. */
  AnchorStale: 'ERR_ANCHOR_STALE',
} as const;
export type VerifyProblem = (typeof VerifyProblem)[keyof typeof VerifyProblem];

/** The problems that are the anchor's alone: not verified, and nothing found tampered. */
export const ANCHOR_PROBLEMS: ReadonlySet<VerifyProblem> = new Set([
  VerifyProblem.AnchorInvalid,
  VerifyProblem.AnchorNotWitnessed,
  VerifyProblem.AnchorWrongLog,
  VerifyProblem.AnchorStale,
]);

/** How far ahead of the verifier's clock a cosignature's time may be and still count. */
export const COSIGNATURE_CLOCK_SKEW_SECONDS = 600;

/** What {@link verifyAuditLog} needs: a witnessed anchor, and whom to believe. */
export interface VerifyOptions {
  /** A signed checkpoint note (c2sp.org/tlog-checkpoint) with witnesses' cosignatures. */
  readonly anchor: string;
  /** The hub's checkpoint key, named explicitly (its note name is the log's origin). */
  readonly hubKey: Buffer;
  /** The witnesses whose cosignatures count. */
  readonly witnesses: readonly NoteVerifier[];
  /** How many distinct witnesses must have cosigned the anchor. */
  readonly minWitnesses: number;
  /**
   * The log the anchor must be a checkpoint of (its origin, `alert-hub/audit/hub`): a log started
   * under another name is witnessed from scratch, so a history made up under it would verify.
   */
  readonly origin?: string;
  /**
   * How long ago (seconds before `now`) the anchor's witnesses may have cosigned it, whatever
   * follows it: the one who serves the anchor chooses which, and an old one leaves a history
   * rewritten after it merely unwitnessed, or an old copy cut at it verified. The time is the
   * latest by which `minWitnesses` had cosigned (their cosignatures' own timestamps, which the
   * server cannot forge).
   */
  readonly maxAnchorAgeSeconds?: number;
  /** The current time (ms since the epoch), for `maxAnchorAgeSeconds`. */
  readonly now?: number;
}

/** The outcome of {@link verifyAuditLog}. */
export interface AuditVerification {
  /** True when no problem was found in the schema, the file, or the witnessed entries. */
  readonly ok: boolean;
  readonly entries: number;
  readonly anchor?: {
    readonly origin: string;
    readonly size: number;
    readonly root: string;
    readonly witnesses: readonly string[];
    /** When `minWitnesses` of them had cosigned it (RFC 3339, from their cosignatures). */
    readonly cosignedAt: string;
  };
  /** Entries covered by the witnessed anchor and proven to match it. */
  readonly witnessed: number;
  /** Entries after the anchor: present, well-formed, but vouched for by no witness yet. */
  readonly unwitnessed: number;
  /** The first entry that is not what the log must hold, and what is wrong with it. */
  readonly firstBad?: { readonly seq: number; readonly problem: string };
  readonly problems: readonly { readonly code: VerifyProblem; readonly message: string }[];
}

/** An anchor {@link checkAnchor} accepted. */
export interface CheckedAnchor {
  readonly checkpoint: Checkpoint;
  readonly witnesses: string[];
  /** When `minWitnesses` of them had cosigned it (seconds). */
  readonly cosignedAt: number;
}

/**
 * How many seconds before `o.now` the anchor's witnesses cosigned it, when that is more than
 * `o.maxAnchorAgeSeconds` allows; undefined when it is not (or no age is set).
 */
export function anchorTooOld(o: VerifyOptions, anchor: CheckedAnchor): number | undefined {
  if (o.maxAnchorAgeSeconds === undefined) return undefined;
  const age = ((o.now ?? Date.now()) - anchor.cosignedAt * 1000) / 1000;
  return age > o.maxAnchorAgeSeconds ? age : undefined;
}

/** The anchor as {@link AuditVerification} reports it. */
export function describeAnchor(anchor: CheckedAnchor): NonNullable<AuditVerification['anchor']> {
  const { checkpoint } = anchor;
  return {
    origin: checkpoint.origin,
    size: checkpoint.size,
    root: checkpoint.root.toString('base64'),
    witnesses: anchor.witnesses,
    cosignedAt: new Date(anchor.cosignedAt * 1000).toISOString(),
  };
}

/** The anchor parsed, signed by the named hub key, with the witnesses that cosigned it; or why not. */
export function checkAnchor(
  o: VerifyOptions,
): CheckedAnchor | { code: VerifyProblem; message: string } {
  try {
    const note = parseNote(o.anchor);
    const checkpoint = parseCheckpoint(note.text);
    if (o.origin !== undefined && checkpoint.origin !== o.origin)
      return {
        code: VerifyProblem.AnchorWrongLog,
        message: `the anchor is a checkpoint of ${checkpoint.origin}, not of ${o.origin}: a log under another name is witnessed from scratch`,
      };
    verifyNote(note, { name: checkpoint.origin, publicKey: o.hubKey });
    // Each witness's newest cosignature time (seconds). One dated more than ten minutes on does
    // not count (a witness wanting its cosignature to look fresh, or past what a Date holds);
    // within them, a clock ahead reads as now.
    const now = Math.floor((o.now ?? Date.now()) / 1000);
    const times = new Map<string, number>();
    for (const w of o.witnesses) {
      try {
        const cosigned = verifyCosignature(note, w);
        const t =
          cosigned === undefined || cosigned > now + COSIGNATURE_CLOCK_SKEW_SECONDS
            ? undefined
            : Math.min(cosigned, now);
        if (t !== undefined && t > (times.get(w.name) ?? -1)) times.set(w.name, t);
      } catch {
        // A cosignature that does not verify does not count.
      }
    }
    const witnesses = [...times.keys()];
    if (witnesses.length < o.minWitnesses)
      return {
        code: VerifyProblem.AnchorNotWitnessed,
        message: `the anchor is cosigned by ${witnesses.length} known witness(es) (${witnesses.join(', ') || 'none'}); ${o.minWitnesses} required`,
      };
    // The time by which minWitnesses had cosigned: the k-th newest.
    const newestFirst = [...times.values()].sort((a, b) => b - a);
    const cosignedAt = newestFirst[Math.max(0, o.minWitnesses - 1)] ?? 0;
    return { checkpoint, witnesses, cosignedAt };
  } catch (err) {
    return {
      code: VerifyProblem.AnchorInvalid,
      message: `the anchor: ${(err as Error).message}${err instanceof NoteError ? ` (${err.code})` : ''}`,
    };
  }
}

/**
 * Verifies an audit database against a witnessed anchor: the schema is exactly the router's,
 * `PRAGMA integrity_check` passes, every entry is in its place and matches its leaf hash (which
 * is recomputed from the content, never read), the first `anchor.size` entries have the
 * anchor's root, and checkpoints stored in the file verify and agree. Entries after the anchor
 * are counted as unwitnessed. The first bad entry is named, with what is wrong with it.
 */
export function verifyAuditLog(db: SqliteDatabase, o: VerifyOptions): AuditVerification {
  // One read transaction: the head, the stored checkpoints, the entries and their routes are then
  // one state of the file, whoever (a running router) appends meanwhile.
  return db.transaction(() => verifyNow(db, o))();
}

function verifyNow(db: SqliteDatabase, o: VerifyOptions): AuditVerification {
  const problems: { code: VerifyProblem; message: string }[] = [];
  let firstBad: { seq: number; problem: string } | undefined;
  const bad = (code: VerifyProblem, seq: number, problem: string) => {
    firstBad ??= { seq, problem };
    problems.push({ code, message: `entry ${seq}: ${problem}` });
  };
  const anchor = checkAnchor(o);
  if ('code' in anchor) problems.push(anchor);
  for (const p of checkSchema(db)) problems.push({ code: VerifyProblem.Schema, message: p });
  const integrity = (db.pragma('integrity_check') as { integrity_check: string }[]).map(
    (r) => r.integrity_check,
  );
  if (integrity.length !== 1 || integrity[0] !== 'ok')
    problems.push({
      code: VerifyProblem.IntegrityCheck,
      message: `PRAGMA integrity_check: ${integrity.slice(0, 5).join('; ')}`,
    });
  if (problems.some((p) => p.code === VerifyProblem.Schema && / audit |missing/.test(p.message)))
    return { ok: false, entries: 0, witnessed: 0, unwitnessed: 0, problems };

  // Checkpoints the router stored beside the entries: not trusted, but those the named key signed
  // narrow down where a rewritten log departs from what was signed. Others (signed by an earlier,
  // superseded hub key, or by nobody) are ignored: they prove nothing either way.
  // The head (the size and root the router signed with its last append, never published) is one
  // more such statement.
  const hubName = 'checkpoint' in anchor ? anchor.checkpoint.origin : undefined;
  const stored = new Map<number, Buffer>();
  let forked: number | undefined;
  /** A note of `origin` signed by the named key, kept by size; anything else proves nothing. */
  const take = (text: string, origin: string, size?: number): Checkpoint | undefined => {
    const cp = hubCheckpoint(text, origin, [o.hubKey]);
    if (cp === undefined || (size !== undefined && cp.size !== size)) return undefined;
    // Two different roots signed for one size: the first decides, the other departs below.
    if (!stored.has(cp.size)) stored.set(cp.size, cp.root);
    else if (!stored.get(cp.size)!.equals(cp.root)) forked = cp.size;
    return cp;
  };
  // The head is signed under `<origin>/head`: a checkpoint note cannot stand in for it.
  let headSize: number | undefined;
  /** The log has the head table (written by a router that signs heads) and no row in it. */
  let headRemoved = false;
  if (hubName !== undefined && hasTable(db, 'audit_head')) {
    const heads = db.prepare('SELECT note FROM audit_head').all() as { note: string }[];
    headRemoved = heads.length === 0;
    for (const h of heads) headSize = take(h.note, headOrigin(hubName))?.size ?? headSize;
  }
  if (hubName !== undefined)
    for (const c of db.prepare('SELECT size, note FROM checkpoints ORDER BY size').all() as {
      size: number;
      note: string;
    }[])
      take(c.note, hubName, c.size);

  const range = new CompactRange();
  const target = 'checkpoint' in anchor ? anchor.checkpoint : undefined;
  let anchorRoot: Buffer | undefined;
  let lastGood = 0;
  let departed: number | undefined;
  let expected = 1;
  let entries = 0;
  let structural = false;
  const routes = routeReader(db);
  for (const r of iterateRecords(db)) {
    entries++;
    const p = checkRecord(r, expected);
    if (p) {
      bad(VerifyProblem.Entry, p.seq, p.problem);
      structural = true;
    }
    // A routing decision's recipients sit beside its entry; its hashed detail commits to them.
    // (Rows under an entry of another event are found by orphanRoute below.)
    const q = r.event === 'routed' ? checkRoutes(r, routes(r.seq)) : undefined;
    if (q) bad(VerifyProblem.Entry, q.seq, q.problem);
    expected = r.seq + 1;
    range.append(hashLeaf(entryBytes(r)));
    const s = stored.get(range.size);
    if (s && departed === undefined) {
      if (range.root().equals(s)) lastGood = range.size;
      else departed = range.size;
    }
    if (target && range.size === target.size) anchorRoot = range.root();
  }
  // An entry numbered 0 or below sits outside every range read above, yet trace and query show it.
  const before = entryBeforeFirst(db);
  if (before !== undefined) {
    bad(VerifyProblem.Entry, before, BEFORE_FIRST);
    structural = true;
  }
  const orphan = orphanRoute(db);
  // Past the last entry: what is left of entries removed from the end, unless the head the hub
  // signed with its last append ends where the log does, when the row was inserted.
  const endsAtHead = headSize !== undefined && headSize === range.size;
  if (orphan && (!orphan.pastEnd || endsAtHead))
    bad(VerifyProblem.Entry, orphan.seq, ORPHAN_ROUTES);
  const truncatedRoutes =
    orphan?.pastEnd === true && !endsAtHead && !(target && range.size < target.size);
  if (truncatedRoutes) bad(VerifyProblem.Truncated, orphan.seq, ROUTES_PAST_END);
  if (target) {
    if (range.size < target.size)
      problems.push({
        code: VerifyProblem.Truncated,
        message: `the log holds ${range.size} entries but ${target.size} were witnessed: entries were removed (from the end, or anywhere before it with the rest renumbered and re-hashed) or the log was rolled back`,
      });
    if (target.size === 0) anchorRoot = EMPTY_ROOT;
    if (anchorRoot && !anchorRoot.equals(target.root) && !structural) {
      const end = departed !== undefined && departed <= target.size ? departed : target.size;
      // Stored checkpoints only narrow the range when they do (whoever holds the hub key can
      // store some that match a rewritten log): past the end, the whole witnessed range.
      const from = lastGood < end ? lastGood + 1 : 1;
      bad(
        VerifyProblem.Rewritten,
        from,
        `entries ${from}..${end} do not hash to the witnessed checkpoint ${target.size}: an entry among them was edited, inserted, deleted or reordered and the hashes recomputed`,
      );
    }
    if (range.size < target.size && firstBad === undefined)
      firstBad = {
        seq: range.size + 1,
        problem:
          'missing: the log ends before the witnessed checkpoint (the entries removed may be anywhere before it)',
      };
  }
  // What the hub signed beyond the anchor binds the entries too: the log cannot end before the
  // largest size it signed, nor differ from a root it signed there (the anchor's own part is
  // judged above, against the witnesses).
  const signedSizes = [...stored.keys()];
  const signedEnd = signedSizes.length ? Math.max(...signedSizes) : 0;
  if (signedEnd > range.size && signedEnd > (target?.size ?? 0))
    problems.push({
      code: VerifyProblem.Truncated,
      message: `the hub signed ${signedEnd} entries (stored in the file) but the log holds ${range.size}: entries were removed from the end`,
    });
  if (departed !== undefined && departed > (target?.size ?? 0) && !structural)
    bad(
      VerifyProblem.Rewritten,
      lastGood + 1,
      `entries ${lastGood + 1}..${departed} do not hash to the checkpoint of ${departed} entries the hub signed (stored in the file): an entry among them was edited, inserted, deleted or reordered and the hashes recomputed`,
    );
  // The router signs the head in the transaction of every append: entries after it were
  // appended by someone without the hub key.
  // The router writes a head with every append, so a log that has the table has a row: entries
  // past the anchor with the row gone are vouched for by nothing (appended, or changed, without
  // the hub key). A log from before heads has no table at all.
  if (headRemoved && range.size > (target?.size ?? 0) && !structural)
    bad(
      VerifyProblem.Entry,
      (target?.size ?? 0) + 1,
      `the audit_head table is empty though the log holds ${range.size - (target?.size ?? 0)} entries past the anchor: the head the router signs with every append was removed, and nothing vouches for them`,
    );
  if (headSize !== undefined && range.size > headSize && !structural)
    bad(
      VerifyProblem.Entry,
      headSize + 1,
      `follows the head the hub signed with its last append (${headSize} entries): appended without the hub key`,
    );
  if (forked !== undefined)
    problems.push({
      code: VerifyProblem.Rewritten,
      message: `the file holds two checkpoints of ${forked} entries signed by the hub with different roots: the log forked`,
    });
  const unwitnessed = Math.max(0, entries - (target?.size ?? 0));
  // However many entries follow it: an old anchor with a copy of its own time (a backup put
  // back, the log cut there) would verify otherwise. A running router has its witnesses cosign
  // its latest checkpoint anew when idle (auditAnchorRefreshMs), so a current anchor is recent.
  const age = 'cosignedAt' in anchor ? anchorTooOld(o, anchor) : undefined;
  if (age !== undefined)
    problems.push({
      code: VerifyProblem.AnchorStale,
      message: `the anchor's witnesses cosigned it ${Math.round(age)} s ago (at most ${o.maxAnchorAgeSeconds} s allowed; ${unwitnessed} entries follow it): a running router's witnesses cosign its latest checkpoint anew at least every auditAnchorRefreshMs (5 minutes by default), so take a current one; for a copy verified later, or the log of a router that no longer publishes checkpoints (stopped, failed closed), --max-anchor-age any with an anchor of its time, its size at least that of the checkpoint an agency's gateway serves`,
    });
  const witnessed = target && problems.length === 0 ? target.size : 0;
  return {
    ok: problems.length === 0,
    entries,
    ...('witnesses' in anchor ? { anchor: describeAnchor(anchor) } : {}),
    witnessed,
    unwitnessed,
    ...(firstBad ? { firstBad } : {}),
    problems,
  };
}
