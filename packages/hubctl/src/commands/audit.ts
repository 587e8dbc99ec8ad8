import { existsSync } from 'node:fs';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import {
  AGENCY_ID_FORM,
  auditOrigin,
  isJsonObject,
  jwkThumbprint,
  parseJsonText,
  type TrustStore,
} from '@alert-hub/core';
import { HubctlError, HubctlErrorCode, UsageError } from '../errors.js';
import { reading, readingDatabase } from '../files.js';
import {
  ANCHOR_PROBLEMS,
  CSV_HEADER,
  AuditEvent,
  deniedRecipients,
  describeRefusal,
  mergeRecords,
  queryAudit,
  toCsvLine,
  parseCheckpoint,
  parseInstant,
  parseNote,
  refusedNames,
  traceAlert,
  VerifyProblem,
  verifyAuditLog,
  verifyNote,
  trustStoreWitnesses,
  witnessName,
  type AuditQuery,
  type AuditRecord,
} from '@alert-hub/audit';
import {
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  openDatabase,
  type SqliteDatabase,
} from '@alert-hub/runtime/files';
import { print, printTable } from '../output.js';
import { openTrustStore, trustOption } from './trust-option.js';
import { NetworkError, request } from './http-client.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function dbOption() {
  return new Option('--db <file>', 'audit database (repeat to merge several routers into one view)')
    .env('AHUB_AUDIT_DB')
    .argParser(collect);
}

/**
 * The audit databases named, each read once: a file that is not a database is the input's fault
 * (`ERR_INPUT_INVALID`), except for `verify` (`probe` false), for which nothing in it verifies.
 */
function openAll(files: string[] | string | undefined, probe = true): SqliteDatabase[] {
  const list = Array.isArray(files) ? files : files ? [files] : [];
  if (list.length === 0)
    throw new HubctlError(
      HubctlErrorCode.Prerequisite,
      'no audit database: pass --db <file> or set AHUB_AUDIT_DB',
    );
  return list.map((f) => {
    if (!existsSync(f))
      throw new HubctlError(HubctlErrorCode.Prerequisite, `no audit database at ${f}`);
    const open = () => openDatabase(f, { readonly: true });
    return probe ? readingDatabase(open, f) : reading(open, f);
  });
}

/**
 * The anchor from a file or a URL. A URL that answers with an error (401 without a coordinator
 * token) or cannot be reached is not wrong usage: `ERR_REQUEST_REFUSED` or `ERR_NETWORK`, exit 1.
 */
async function readAnchor(source: string, token: string | undefined): Promise<string> {
  if (/^https?:\/\//.test(source)) {
    const res = await request(
      source,
      token ? { headers: { authorization: `Bearer ${token}` } } : {},
    );
    if (!res.ok)
      throw new HubctlError(
        HubctlErrorCode.RequestRefused,
        `the anchor at ${source}: HTTP ${res.status}${
          res.status === 401 || res.status === 403
            ? token
              ? ' (the token is not valid there)'
              : ' (set AHUB_COORDINATOR_TOKEN, or pass --token)'
            : ''
        }`,
        { status: res.status },
      );
    return res.text();
  }
  if (!existsSync(source))
    throw new HubctlError(HubctlErrorCode.InputInvalid, `no anchor file at ${source}`);
  return reading(() => readFileSync(source, 'utf8'), source);
}

/** The raw key of an Ed25519 public JWK, or why it is not one. */
function rawPublicKey(spec: string, jwk: { crv?: unknown; x?: unknown }): Buffer {
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string')
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: not an Ed25519 public JWK`,
    );
  if ('d' in jwk)
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: give the public key, not the private one`,
    );
  const raw = Buffer.from(jwk.x, 'base64url');
  if (raw.length !== 32)
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: not an Ed25519 public JWK`,
    );
  return raw;
}

/** One witness key a coordinator counts: the agency, its key's RFC 7638 thumbprint, the key. */
interface PinnedWitness {
  readonly agency: string;
  readonly kid: string;
  readonly x: string;
}

/** The witness keys of a trust store's agencies, as a witness set holds them. */
function trustWitnesses(trust: TrustStore): PinnedWitness[] {
  return trustStoreWitnesses(trust).map(({ agency, kid, x }) => ({ agency, kid, x }));
}

/**
 * A coordinator's witness set (`hubctl audit witnesses` writes one): exactly
 * `{"witnesses": [{"agency", "kid", "x"}, ...]}`, each kid the thumbprint of its Ed25519 key, so
 * a key changed by hand is refused rather than counted.
 */
function readWitnessSet(file: string): PinnedWitness[] {
  const bad = (why: string) =>
    new HubctlError(HubctlErrorCode.InputInvalid, `--witness-set ${file}: ${why}`);
  let v: unknown;
  try {
    v = parseJsonText(reading(() => readFileSync(file, 'utf8'), file));
  } catch (err) {
    if (err instanceof HubctlError) throw err;
    throw bad(`not strict JSON: ${(err as Error).message}`);
  }
  if (!isJsonObject(v) || Object.keys(v).join() !== 'witnesses' || !Array.isArray(v['witnesses']))
    throw bad('must be exactly {"witnesses": [{"agency", "kid", "x"}, ...]}');
  if (v['witnesses'].length === 0) throw bad('names no witness');
  return (v['witnesses'] as unknown[]).map((w, i) => {
    if (!isJsonObject(w) || Object.keys(w).sort().join() !== 'agency,kid,x')
      throw bad(`witness ${i} must be exactly {"agency", "kid", "x"}`);
    const { agency, kid, x } = w;
    if (typeof agency !== 'string' || !AGENCY_ID_FORM.test(agency))
      throw bad(`witness ${i}: "agency" must be an agency id`);
    if (typeof x !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(x))
      throw bad(`witness ${i} (${agency}): "x" must be an Ed25519 public key (base64url)`);
    if (typeof kid !== 'string' || kid !== jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x }))
      throw bad(`witness ${i} (${agency}): "kid" is not the thumbprint of its key`);
    return { agency, kid, x };
  });
}

/** More than half of the agencies: two disjoint groups cannot both reach it (no split view). */
export function majorityOf(witnesses: readonly PinnedWitness[]): number {
  return Math.floor(new Set(witnesses.map((w) => w.agency)).size / 2) + 1;
}

/** Whether `publicKey` signed the anchor as its log (the checkpoint's origin). */
function signedAnchor(anchor: string, publicKey: Buffer): boolean {
  try {
    const note = parseNote(anchor);
    verifyNote(note, { name: parseCheckpoint(note.text).origin, publicKey });
    return true;
  } catch {
    return false;
  }
}

/**
 * The raw Ed25519 key named by a kid (role router in the trust store), a public JWK file, or a
 * JWKS file (the router's `certs/trust/HUB.jwks.json`): of several keys, the one that signed the
 * anchor; none or more than one is refused, naming the kids.
 */
function readHubKey(spec: string, trust: TrustStore, anchor: string): Buffer {
  const fromTrust = trust.get(spec);
  if (fromTrust) {
    if (fromTrust.role !== 'router')
      throw new HubctlError(HubctlErrorCode.InputInvalid, `key ${spec} is not a router key`);
    if (fromTrust.alg !== 'EdDSA')
      throw new HubctlError(HubctlErrorCode.InputInvalid, `key ${spec} is not an Ed25519 key`);
    return Buffer.from(fromTrust.jwk.x, 'base64url');
  }
  if (!existsSync(spec))
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: neither a kid in the trust store nor a file`,
    );
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(spec, 'utf8'));
  } catch {
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: not JSON (a public JWK or a JWKS)`,
    );
  }
  const keys = (doc as { keys?: unknown }).keys;
  if (!Array.isArray(keys)) return rawPublicKey(spec, doc as { crv?: unknown; x?: unknown });
  if ((doc as { role?: unknown }).role === 'agency')
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: an agency's key set, not the router's`,
    );
  const candidates = (keys as { kid?: unknown; crv?: unknown; x?: unknown }[]).map((k) => ({
    kid: String(k.kid),
    raw: rawPublicKey(`${spec} (kid ${String(k.kid)})`, k),
  }));
  if (candidates.length === 1) return candidates[0]!.raw;
  const kids = candidates.map((c) => c.kid).join(', ');
  if (candidates.length === 0)
    throw new HubctlError(HubctlErrorCode.InputInvalid, `--hub-key ${spec}: holds no key`);
  const signers = candidates.filter((c) => signedAnchor(anchor, c.raw));
  if (signers.length !== 1)
    throw new HubctlError(
      HubctlErrorCode.InputInvalid,
      `--hub-key ${spec}: holds ${candidates.length} keys (${kids}) and ${signers.length === 0 ? 'none' : 'more than one'} of them signed the anchor: pass the kid of the key that signed it`,
    );
  return signers[0]!.raw;
}

function instant(v: string): string {
  try {
    parseInstant(v);
    return v;
  } catch {
    throw new InvalidArgumentError(
      'an RFC 3339 date-time with a time zone, e.g. 2026-11-28T09:00:00Z',
    );
  }
}

/** The recipients a `denied` summary names, inline (a few) or one per line under it (more). */
function summaryOf(r: AuditRecord): { who: string; lines: string } {
  const listed = refusedNames(r);
  // The decision's own refusal (an operation outside its period) names no one: it is everyone.
  if (listed.length === 0)
    return {
      who: r.reasonCode === 'DENY_OPERATION_PERIOD' && r.detail === null ? 'everyone' : '(others)',
      lines: '',
    };
  if (listed.length <= 3) return { who: listed.join(', '), lines: '' };
  return {
    who: `${listed.length} agencies`,
    lines: listed.map((x) => `\n${' '.repeat(50)}x  ${x}`).join(''),
  };
}

/** The code a `denied` record gives `partner`: its own within a summary of several recipients. */
function codeFor(r: AuditRecord, partner: string | undefined): string | null {
  if (partner === undefined || r.event !== 'denied' || r.recipient !== null) return r.reasonCode;
  return deniedRecipients(r).find((d) => d.recipient === partner)?.reasonCode ?? r.reasonCode;
}

/** What a routing decision's routes say when their rows are not what the entry commits to. */
const ROUTES_UNREADABLE = 'ROUTES UNREADABLE (the log was tampered with)';

/** A routing decision's recipients, one line each, under its entry. */
function routeLines(r: AuditRecord): string {
  return (r.routes ?? [])
    .map(
      (x) =>
        `\n${' '.repeat(50)}-> ${x.recipient} under ${x.agreementId}@${x.agreementVersion} (${x.feedSeq === null ? 'held' : `feed #${x.feedSeq}`})`,
    )
    .join('');
}

/** When the recipient's inbox committed the copy, from a `delivered` entry's detail. */
function committedAt(r: AuditRecord): string | undefined {
  try {
    const at = (JSON.parse(r.detail ?? 'null') as { committedAt?: unknown } | null)?.committedAt;
    return typeof at === 'string' ? at : undefined;
  } catch {
    return undefined;
  }
}

function describe(r: AuditRecord): string {
  const denied = r.event === 'denied' && r.recipient === null ? summaryOf(r) : undefined;
  const committed = r.event === 'delivered' ? committedAt(r) : undefined;
  const what =
    r.event === 'routed'
      ? r.routesError !== undefined
        ? `<- from ${r.origin ?? '?'} ${r.type ?? ''} ${r.handling ?? ''} (inbound #${r.streamSeq}), routed to: ${ROUTES_UNREADABLE}: ${r.routesError}`
        : `<- from ${r.origin ?? '?'} ${r.type ?? ''} ${r.handling ?? ''} (inbound #${r.streamSeq}), routed to ${r.routes?.length ?? 0} recipient(s)${r.reason ? `, ${r.reason}` : ''}${routeLines(r)}`
      : r.event === 'forwarded'
        ? `-> ${r.recipient} under ${r.agreementId}@${r.agreementVersion} (feed #${r.feedSeq})${r.reason ? `, ${r.reason}` : ''}`
        : r.event === 'denied'
          ? `x  ${describeRefusal(r, r.recipient ?? denied!.who)}` + (denied?.lines ?? '')
          : r.event === 'rejected'
            ? `!  ${r.reasonCode}: ${r.reason ?? ''}`
            : r.event === 'dead-lettered'
              ? `!  dead-lettered (#${r.feedSeq})`
              : r.event === 'received'
                ? `<- from ${r.origin ?? '?'} ${r.type ?? ''} ${r.handling ?? ''} (inbound #${r.streamSeq})`
                : r.event === 'delivered'
                  ? `ok delivered to ${r.recipient ?? '?'}${committed ? `, in its inbox at ${committed}` : ''}${r.reason ? `, ${r.reason}` : ''}`
                  : r.event === 'held'
                    ? `.. held for ${r.recipient ?? '?'} under ${r.agreementId}@${r.agreementVersion}${r.reason ? `, ${r.reason}` : ''}`
                    : `${r.event}${r.recipient ? ` ${r.recipient}` : ''} ${r.reason ?? ''}`;
  return `${r.at}  ${r.instance.padEnd(14)} ${String(r.seq).padStart(7)}  ${what.trimEnd()}`;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('coordinators: verify, query, trace and export the router audit log');

  audit
    .command('verify')
    .description(
      'prove the log consistent with a checkpoint cosigned by k witnesses; names the first bad entry (exit 1)',
    )
    .addOption(dbOption())
    .requiredOption(
      '--anchor <file|url>',
      "a cosigned checkpoint: a file, or a GET /v1/audit/checkpoint URL: the router's (it gathers every witness's cosignature) or a gateway's (its own cosignature only)",
    )
    .requiredOption(
      '--hub-key <kid|file>',
      "the hub's checkpoint key: a kid in the trust store (role router: `hubctl keys list --agency HUB` lists it; the key that signed the anchor, the newest after a rotation) or a public JWK or JWKS file (of several keys, the one that signed the anchor)",
    )
    .addOption(
      trustOption(
        "trust store: the hub's key by kid, and the witnesses' (agencies') keys unless --witness-set",
      ),
    )
    .option(
      '--witness-set <file>',
      "the witnesses (agencies and keys) you count, as `hubctl audit witnesses` wrote them and you checked with the agencies: without it, every agency of the trust store, which the hub's operators keep",
    )
    .option(
      '--witnesses <k>',
      'distinct witnesses that must have cosigned the anchor (default: more than half of the witness set, or of the trust store agencies)',
      (v) => {
        if (!/^[1-9][0-9]{0,3}$/.test(v)) throw new InvalidArgumentError('a positive integer');
        return Number(v);
      },
    )
    .option(
      '--log <name>',
      "the audit log the anchor must be a checkpoint of (the router's auditLog): a log under another name is witnessed from scratch",
      (v) => {
        try {
          auditOrigin(v);
        } catch (err) {
          throw new InvalidArgumentError((err as Error).message);
        }
        return v;
      },
      'hub',
    )
    .option(
      '--max-anchor-age <age>',
      "how long ago the anchor's witnesses may have cosigned it (30s, 15m, 2h, 7d; 'any' for a copy verified later): whoever serves the anchor chooses which, and an old one leaves a history rewritten after it merely unwitnessed, or verifies an old copy; a running router has it cosigned anew every auditAnchorRefreshMs",
      anchorAge,
      15 * 60,
    )
    .addOption(
      new Option(
        '--token <token>',
        'coordinator token for an anchor URL (prefer AHUB_COORDINATOR_TOKEN: flags show in process lists)',
      ).env('AHUB_COORDINATOR_TOKEN'),
    )
    .option('--json', 'print JSON')
    .action(
      async (o: {
        db?: string[];
        anchor: string;
        hubKey: string;
        trust: string;
        witnessSet?: string;
        log: string;
        maxAnchorAge: number;
        witnesses?: number;
        token?: string;
        json?: boolean;
      }) => {
        // Exit 2 for wrong usage (a missing anchor, key, trust store or database, two databases),
        // 1 for a log that does not verify, 0 for one that does (docs/protocol.md §8.7).
        let inputs;
        try {
          const trust = openTrustStore(o.trust, loadSchemaRegistry(DEFAULT_SCHEMAS_DIR));
          const anchor = await readAnchor(o.anchor, o.token);
          const hubKey = readHubKey(o.hubKey, trust, anchor);
          const counted = o.witnessSet ? readWitnessSet(o.witnessSet) : trustWitnesses(trust);
          const witnesses = counted.map((w) => ({
            name: witnessName(w.agency),
            publicKey: Buffer.from(w.x, 'base64url'),
          }));
          const minWitnesses = o.witnesses ?? majorityOf(counted);
          const agencies = [...new Set(counted.map((w) => w.agency))];
          const files = o.db ?? [];
          if (files.length !== 1)
            throw new HubctlError(
              HubctlErrorCode.InputInvalid,
              'verify one database at a time: an anchor belongs to one log',
            );
          const [db] = openAll(files, false);
          inputs = { file: files[0]!, db: db!, anchor, hubKey, witnesses, minWitnesses, agencies };
        } catch (err) {
          // The anchor's service refused or could not be reached: a failure, not wrong usage.
          if (
            err instanceof NetworkError ||
            (err instanceof HubctlError && err.code === HubctlErrorCode.RequestRefused)
          )
            throw err;
          throw new UsageError(err);
        }
        const { file, db, anchor, hubKey, witnesses, minWitnesses, agencies } = inputs;
        let verified;
        try {
          verified = verifyAuditLog(db, {
            anchor,
            hubKey,
            witnesses,
            minWitnesses,
            origin: auditOrigin(o.log),
            maxAnchorAgeSeconds: o.maxAnchorAge,
          });
        } catch (err) {
          // Not an SQLite database at all (or one SQLite cannot read): nothing in it verifies.
          if (!/^SQLITE_(NOTADB|CORRUPT)/.test(String((err as { code?: unknown }).code))) throw err;
          verified = {
            ok: false as const,
            entries: 0,
            witnessed: 0,
            unwitnessed: 0,
            problems: [
              {
                code: VerifyProblem.IntegrityCheck,
                message: `${file} is not a readable SQLite database: ${(err as Error).message}`,
              },
            ],
          };
        }
        const a = verified.anchor;
        // Who of the counted witnesses did not cosign: the split view a coordinator looks for.
        const missing = a
          ? agencies.filter((x) => !a.witnesses.includes(witnessName(x)))
          : undefined;
        const r = {
          db: file,
          ...verified,
          minWitnesses,
          witnessSet: o.witnessSet ?? null,
          ...(missing ? { notCosignedBy: missing } : {}),
        };
        // Only the anchor fell short (too few witnesses, another key, another log, too old): not
        // verified, not tampered.
        const anchorOnly = r.problems.every((p) => ANCHOR_PROBLEMS.has(p.code));
        print(
          o.json,
          r,
          r.ok
            ? [
                `${r.db}: VERIFIED ${r.witnessed} entries against checkpoint ${a?.size} of ${a?.origin}, cosigned by ${a?.witnesses.join(', ')} (by ${a?.cosignedAt}); ${minWitnesses} of ${agencies.length} required (${o.witnessSet ? `witness set ${o.witnessSet}` : "the trust store's agencies: pin them with --witness-set"})`,
                ...(missing && missing.length > 0
                  ? [`  NOT COSIGNED BY: ${missing.join(', ')}`]
                  : []),
                `  PRAGMA integrity_check ok; schema exactly the router's`,
                ...(r.unwitnessed > 0
                  ? [
                      `  UNWITNESSED: ${r.unwitnessed} entries after the anchor (${(a?.size ?? 0) + 1}..${r.entries}); not yet vouched for by any witness`,
                    ]
                  : []),
              ]
            : [
                `${r.db}: ${anchorOnly ? 'NOT VERIFIED (the anchor)' : 'TAMPERED'}${r.firstBad ? `: first bad entry ${r.firstBad.seq}: ${r.firstBad.problem}` : ''}`,
                ...r.problems.slice(0, 20).map((p) => `  [${p.code}] ${p.message}`),
              ],
        );
        if (!r.ok) process.exitCode = 1;
      },
    );

  audit
    .command('witnesses')
    .description(
      "print the witness set (agency, kid, key) of a trust store's agencies as JSON: check each kid with its agency, keep the file, and pass it to verify --witness-set",
    )
    .addOption(trustOption('trust store whose agencies witness the log'))
    .action((o: { trust: string }) => {
      let trust;
      try {
        trust = openTrustStore(o.trust, loadSchemaRegistry(DEFAULT_SCHEMAS_DIR));
      } catch (err) {
        throw new UsageError(err);
      }
      process.stdout.write(`${JSON.stringify({ witnesses: trustWitnesses(trust) }, null, 2)}\n`);
    });

  const filters = (c: Command) =>
    c
      .option('--agency <id>', 'sending agency')
      .option('--partner <id>', 'receiving (or refused) partner')
      .option('--type <type>', 'alert type')
      .addOption(new Option('--outcome <event>', 'event').choices(Object.values(AuditEvent)))
      .option('--since <time>', 'from this RFC 3339 date-time (inclusive)', instant)
      .option('--until <time>', 'to this RFC 3339 date-time (exclusive)', instant)
      .option('--limit <n>', 'at most this many records', (v) => Number.parseInt(v, 10), 1000)
      .addOption(dbOption());
  const toQuery = (o: Record<string, unknown>): AuditQuery => ({
    ...(o['agency'] ? { agency: o['agency'] as string } : {}),
    ...(o['partner'] ? { partner: o['partner'] as string } : {}),
    ...(o['type'] ? { type: o['type'] as string } : {}),
    ...(o['outcome'] ? { outcome: o['outcome'] as string } : {}),
    ...(o['since'] ? { since: o['since'] as string } : {}),
    ...(o['until'] ? { until: o['until'] as string } : {}),
    limit: o['limit'] as number,
  });

  filters(
    audit.command('query').description('records by agency, partner, type, outcome and time range'),
  )
    .option('--json', 'print NDJSON')
    .action((o: Record<string, unknown> & { db?: string[]; json?: boolean; limit: number }) => {
      const q = toQuery(o);
      const records = mergeRecords(
        openAll(o.db).map((db) => queryAudit(db, q)),
        o.limit,
      );
      if (records.some((r) => r.routesError !== undefined)) process.exitCode = 1;
      if (o.json) process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      else
        printTable(
          records.map((r) => {
            // A summary of refusals, or a routing decision, found for --partner X: show X's part.
            const route = r.routes?.find((x) => x.recipient === q.partner);
            const agreement = route
              ? `${route.agreementId}@${route.agreementVersion}`
              : r.agreementId
                ? `${r.agreementId}@${r.agreementVersion}`
                : '';
            return {
              ...r,
              recipient:
                r.recipient ??
                (q.partner && (r.event === 'denied' || route) ? q.partner : null) ??
                (r.routesError !== undefined ? ROUTES_UNREADABLE : null) ??
                (r.routes ? r.routes.map((x) => x.recipient).join(' ') : null) ??
                (r.event === 'denied'
                  ? deniedRecipients(r)
                      .flatMap((d) => (d.recipient === null ? [] : [d.recipient]))
                      .join(' ')
                  : null),
              reasonCode: codeFor(r, q.partner),
              agreement,
            };
          }),
          [
            'at',
            'instance',
            'seq',
            'event',
            'alertId',
            'origin',
            'recipient',
            'type',
            'agreement',
            'reasonCode',
          ],
        );
    });

  audit
    .command('trace')
    .description(
      "an alert's whole journey: received, forwarded to whom under which agreement, refused to whom and why",
    )
    .argument('<alertId>', 'the alert id')
    .addOption(dbOption())
    .option('--json', 'print JSON')
    .action((alertId: string, o: { db?: string[]; json?: boolean }) => {
      const records = mergeRecords(
        openAll(o.db).map((db) => traceAlert(db, alertId)),
        100_000,
      );
      if (records.length === 0) {
        process.stderr.write(`no audit record mentions ${alertId}\n`);
        process.exitCode = 1;
        return;
      }
      print(o.json, records, [`alert ${alertId}`, ...records.map(describe)]);
      // Routes that do not read as the decision committed to are a tampered log, not "nobody".
      if (records.some((r) => r.routesError !== undefined)) process.exitCode = 1;
    });

  filters(
    audit.command('export').description('the records as JSON lines or CSV, for analysis elsewhere'),
  )
    .addOption(
      new Option('--format <format>', 'output format').choices(['jsonl', 'csv']).default('jsonl'),
    )
    .action(
      (o: Record<string, unknown> & { db?: string[]; format: 'jsonl' | 'csv'; limit: number }) => {
        const q = { ...toQuery(o), limit: o.limit === 1000 ? 10_000_000 : o.limit };
        const records = mergeRecords(
          openAll(o.db).map((db) => queryAudit(db, q)),
          q.limit,
        );
        if (o.format === 'csv')
          process.stdout.write(
            `${CSV_HEADER}\n${records.map((r) => `${toCsvLine(r)}\n`).join('')}`,
          );
        else process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      },
    );
}

/** `--max-anchor-age`: seconds (`any`: Infinity). */
function anchorAge(v: string): number {
  if (v === 'any') return Infinity;
  const m = /^([1-9][0-9]{0,6})(s|m|h|d)$/.exec(v);
  if (!m) throw new InvalidArgumentError("a duration such as 30s, 15m, 2h or 7d, or 'any'");
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}
