import { InvalidArgumentError, Option, type Command } from 'commander';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { print, printTable } from '../output.js';
import { requestJson } from './http-client.js';

interface RouterTarget {
  router: string;
  token?: string;
  json?: boolean;
}

interface Summary {
  seq: number;
  at: string;
  origin: string;
  claimedAlertId?: string;
  code: string;
  reason: string;
  originalSubject: string;
  originalSeq: number | null;
  /** Absent from routers older than one inbound stream per agency. */
  originalStream?: string;
  bytes: number;
  truncated: boolean;
  requeued?: {
    at: string;
    by: string;
    inboundSeq: number | null;
    inboundStream?: string | null;
  };
}

interface Detail extends Summary {
  headers: Record<string, string>;
  sha256: string;
  envelope?: { signatures: Record<string, unknown>[]; payloadBytes: number };
  undecodable?: string;
  alert?: unknown;
  raw?: string;
}

function positive(v: string): number {
  if (!/^[1-9]\d{0,14}$/.test(v)) throw new InvalidArgumentError('a positive integer');
  return Number(v);
}

function routerOptions(): Option[] {
  return [
    new Option('--router <url>', 'router base URL')
      .env('AHUB_ROUTER_URL')
      .default('http://127.0.0.1:8090'),
    new Option(
      '--token <token>',
      'operator token (coordinators may list and show without content; prefer AHUB_OPERATOR_TOKEN)',
    ).env('AHUB_OPERATOR_TOKEN'),
    new Option('--json', 'print JSON'),
  ];
}

async function call(t: RouterTarget, path: string, method = 'GET'): Promise<unknown> {
  if (!t.token)
    throw new HubctlError(
      HubctlErrorCode.Prerequisite,
      'no operator token: set AHUB_OPERATOR_TOKEN or pass --token',
    );
  const url = `${t.router.replace(/\/+$/, '')}${path}`;
  return requestJson(url, { method, headers: { authorization: `Bearer ${t.token}` } });
}

function state(s: Summary): string {
  if (!s.requeued) return s.truncated ? 'truncated' : '';
  return `requeued ${s.requeued.at} by ${s.requeued.by}${s.requeued.inboundSeq ? ` (inbound #${s.requeued.inboundSeq}${s.requeued.inboundStream ? ` of ${s.requeued.inboundStream}` : ''})` : ' (not yet published)'}`;
}

/** `hubctl deadletters list|show|requeue`: the router's dead letters, for the hub's operators. */
export function registerDeadLetters(program: Command): void {
  const dl = program
    .command('deadletters')
    .description(
      'operators: the messages the router refused (AHUB_DEADLETTER): list, read, and requeue one once its cause is fixed',
    );

  const list = dl
    .command('list')
    .description(
      'dead letters, oldest first: sequence, time, claimed origin and alert id, reason code',
    )
    .addOption(new Option('--origin <agency>', 'only those on the subject of this agency'))
    .addOption(
      new Option(
        '--after <seq>',
        'only those after this sequence (the next page: what the last page printed)',
      ).argParser(positive),
    )
    .addOption(
      new Option('--limit <n>', 'at most this many (100 by default, 1000 at most)').argParser(
        positive,
      ),
    );
  for (const o of routerOptions()) list.addOption(o);
  list.action(async (o: RouterTarget & { origin?: string; after?: number; limit?: number }) => {
    const q = new URLSearchParams();
    if (o.origin) q.set('origin', o.origin);
    if (o.after) q.set('after', String(o.after));
    if (o.limit) q.set('limit', String(o.limit));
    const page = (await call(o, `/v1/deadletters${q.toString() ? `?${q.toString()}` : ''}`)) as {
      items: Summary[];
      next?: number;
    };
    if (o.json) return print(true, page, []);
    printTable(
      page.items.map((s) => ({
        seq: s.seq,
        at: s.at,
        origin: s.origin,
        alert: s.claimedAlertId ?? '-',
        code: s.code,
        state: state(s),
      })),
      ['seq', 'at', 'origin', 'alert', 'code', 'state'],
    );
    if (page.next !== undefined)
      process.stdout.write(`more: hubctl deadletters list --after ${page.next}\n`);
  });

  const show = dl
    .command('show')
    .argument('<seq>', "the dead letter's sequence in AHUB_DEADLETTER", positive)
    .description(
      "one dead letter: its headers, the envelope's protected headers and, with --body, the alert itself (operators only)",
    )
    .option('--body', "include the alert's content (operator token required)");
  for (const o of routerOptions()) show.addOption(o);
  show.action(async (seq: number, o: RouterTarget & { body?: boolean }) => {
    const d = (await call(o, `/v1/deadletters/${seq}${o.body ? '?body=true' : ''}`)) as Detail;
    const lines = [
      `dead letter #${d.seq}  ${d.at}`,
      `  refused:   ${d.code}  ${d.reason}`,
      `  subject:   ${d.originalSubject} (inbound #${d.originalSeq ?? '?'}${d.originalStream ? ` of ${d.originalStream}` : ''})`,
      `  claimed:   origin ${d.origin}, alert ${d.claimedAlertId ?? '(none)'} (unverified)`,
      `  bytes:     ${d.bytes}${d.truncated ? ' (only a prefix kept)' : ''}, sha256 ${d.sha256}`,
      ...(d.requeued ? [`  state:     ${state(d)}`] : []),
      ...(d.undecodable ? [`  envelope:  does not decode: ${d.undecodable}`] : []),
      ...(d.envelope?.signatures ?? []).map((h, i) => `  signature ${i}: ${JSON.stringify(h)}`),
      ...(d.alert !== undefined ? ['  alert:', JSON.stringify(d.alert, null, 2)] : []),
      ...(d.raw !== undefined ? [`  raw (base64): ${d.raw}`] : []),
    ];
    print(o.json, d, lines);
  });

  const requeue = dl
    .command('requeue')
    .argument('<seq>', "the dead letter's sequence in AHUB_DEADLETTER", positive)
    .description(
      'publish a dead letter again for routing, once its cause is fixed; audited, once per dead letter',
    );
  for (const o of routerOptions()) requeue.addOption(o);
  requeue.action(async (seq: number, o: RouterTarget) => {
    const r = (await call(o, `/v1/deadletters/${seq}/requeue`, 'POST')) as {
      deadLetterSeq: number;
      subject: string;
      msgId: string;
      inboundSeq: number;
      inboundStream?: string;
      auditSeq: number;
    };
    print(o.json, r, [
      `dead letter #${r.deadLetterSeq} requeued on ${r.subject} as inbound #${r.inboundSeq}${r.inboundStream ? ` of ${r.inboundStream}` : ''} (message id ${r.msgId}${r.auditSeq ? `, audit entry ${r.auditSeq}` : ''})`,
    ]);
  });
}
