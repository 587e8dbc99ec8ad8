import { existsSync } from 'node:fs';
import { Option, type Command } from 'commander';
import {
  AUDIT_COLUMNS,
  AuditEvent,
  mergeRecords,
  queryAudit,
  toCsvLine,
  traceAlert,
  verifyAuditChain,
  type AuditQuery,
  type AuditRecord,
} from '@alert-hub/audit';
import {
  DEFAULT_SCHEMAS_DIR,
  DEFAULT_TRUST_DIR,
  loadSchemaRegistry,
  loadTrustStore,
  openDatabase,
  type SqliteDatabase,
} from '@alert-hub/runtime/files';
import { print, printTable } from '../output.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

function dbOption() {
  return new Option('--db <file>', 'audit database (repeat to merge several routers into one view)')
    .env('AHUB_AUDIT_DB')
    .argParser(collect);
}

function openAll(files: string[] | string | undefined): SqliteDatabase[] {
  const list = Array.isArray(files) ? files : files ? [files] : [];
  if (list.length === 0)
    throw new Error('no audit database: pass --db <file> or set AHUB_AUDIT_DB');
  return list.map((f) => {
    if (!existsSync(f)) throw new Error(`no audit database at ${f}`);
    return openDatabase(f, { readonly: true });
  });
}

function describe(r: AuditRecord): string {
  const what =
    r.event === 'forwarded'
      ? `-> ${r.recipient} under ${r.agreementId}@${r.agreementVersion} (feed #${r.feedSeq})${r.reason ? `, ${r.reason}` : ''}`
      : r.event === 'denied'
        ? `x  ${r.recipient ?? '(others)'}: ${r.reasonCode} ${r.reason ?? ''}`
        : r.event === 'rejected'
          ? `!  ${r.reasonCode}: ${r.reason ?? ''}`
          : r.event === 'dead-lettered'
            ? `!  dead-lettered (#${r.feedSeq})`
            : r.event === 'received'
              ? `<- from ${r.origin ?? '?'} ${r.type ?? ''} ${r.handling ?? ''} (inbound #${r.streamSeq})`
              : `${r.event} ${r.reason ?? ''}`;
  return `${r.at}  ${r.instance.padEnd(14)} ${String(r.seq).padStart(7)}  ${what.trimEnd()}`;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('coordinators: verify, query, trace and export the router audit log');

  audit
    .command('verify')
    .description(
      'check the hash chain and its signed checkpoints; names the first edited, inserted or deleted record (exit 1)',
    )
    .addOption(dbOption())
    .option(
      '--trust <dir>',
      'trust store holding the router key that signs checkpoints',
      DEFAULT_TRUST_DIR,
    )
    .option(
      '--head <seq:hash>',
      'a head recorded earlier (router log "audit checkpoint signed"): detects records removed from the end',
    )
    .option('--json', 'print JSON')
    .action((o: { db?: string[]; trust: string; head?: string; json?: boolean }) => {
      const trust = loadTrustStore(o.trust, loadSchemaRegistry(DEFAULT_SCHEMAS_DIR));
      const head = o.head
        ? { seq: Number(o.head.split(':')[0]), hash: o.head.split(':')[1] ?? '' }
        : undefined;
      const files = o.db ?? [];
      const results = openAll(files).map((db, i) => ({
        db: files[i],
        ...verifyAuditChain(db, trust, head),
      }));
      print(
        o.json,
        results,
        results.flatMap((r) =>
          r.ok
            ? [
                `${r.db}: OK, ${r.records} records, head ${r.head.seq}:${r.head.hash}`,
                `  ${r.checkpoints.verified} signed checkpoints; ${r.unsignedTail} records after the last one`,
              ]
            : [
                `${r.db}: TAMPERED: first bad record ${r.firstBad?.seq}: ${r.firstBad?.problem}`,
                ...r.problems.slice(0, 20).map((p) => `  ${p}`),
              ],
        ),
      );
      if (results.some((r) => !r.ok)) process.exitCode = 1;
    });

  const filters = (c: Command) =>
    c
      .option('--agency <id>', 'sending agency')
      .option('--partner <id>', 'receiving (or refused) partner')
      .option('--type <type>', 'alert type')
      .addOption(new Option('--outcome <event>', 'event').choices(Object.values(AuditEvent)))
      .option('--since <time>', 'from this RFC 3339 time (inclusive)')
      .option('--until <time>', 'to this RFC 3339 time (exclusive)')
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
      if (o.json) process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      else
        printTable(
          records.map((r) => ({
            ...r,
            agreement: r.agreementId ? `${r.agreementId}@${r.agreementVersion}` : '',
          })),
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
            `${AUDIT_COLUMNS.join(',')}\n${records.map((r) => `${toCsvLine(r)}\n`).join('')}`,
          );
        else process.stdout.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
      },
    );
}
