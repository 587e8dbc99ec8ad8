import { Option, type Command } from 'commander';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import {
  authHeaders,
  describeError,
  gatewayOptions,
  jsonBody,
  request,
  type GatewayTarget,
} from './http-client.js';

interface Item {
  cursor: string;
  id: string;
  type: string;
  origin: string;
  handling: string;
  issuedAt: string;
  status: string;
  agreement?: { id: string; version: number };
  onwardSharing?: boolean;
}

/** One item in the text view: who sent what, under which agreement, and may it go further. */
function line(i: Item): string {
  const agreement = i.agreement ? `${i.agreement.id}@${i.agreement.version}` : '-';
  const onward = i.onwardSharing ? 'onward:yes' : 'onward:no';
  return `${i.cursor.padStart(6)}  ${i.issuedAt}  ${i.origin.padEnd(12)} ${i.type.padEnd(20)} ${i.handling.padEnd(16)} ${agreement.padEnd(24)} ${onward.padEnd(10)} ${i.id}${i.status === 'active' ? '' : `  [${i.status}]`}`;
}

async function* sse(
  url: string,
  headers: Record<string, string>,
  lastEventId: string | undefined,
): AsyncGenerator<{ id: string; data: string }> {
  const res = await request(url, {
    headers: {
      ...headers,
      accept: 'text/event-stream',
      ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
    },
  });
  if (!res.ok || !res.body)
    throw new HubctlError(
      HubctlErrorCode.RequestRefused,
      describeError(await res.json().catch(() => undefined), res.status).join('\n'),
      { status: res.status },
    );
  const decoder = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += decoder.decode(chunk, { stream: true });
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, at);
      buf = buf.slice(at + 2);
      const id = /^id: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (id !== undefined && data !== undefined) yield { id, data };
    }
  }
}

export function registerFeed(program: Command): void {
  const cmd = program
    .command('feed')
    .description("read your agency's verified feed: the alerts partners shared with you")
    .option('--since <cursor>', 'start after this cursor (printed by an earlier run)', '0')
    .addOption(
      new Option('--type <type>', 'only this alert type').choices([
        'suspicious-shipment',
        'consignee-flag',
        'seizure-report',
        'retraction',
        'outcome',
      ]),
    )
    .option(
      '--follow',
      'keep the connection open and print alerts as they arrive (resumes after disconnects)',
    )
    .option('--json', 'print each item as one JSON line (NDJSON)');
  for (const o of gatewayOptions()) cmd.addOption(o);
  cmd.action(
    async (
      o: GatewayTarget & { since: string; type?: string; follow?: boolean; json?: boolean },
    ) => {
      const base = o.gateway.replace(/\/$/, '');
      const headers = authHeaders(o);
      const out = (i: Item) => process.stdout.write(`${o.json ? JSON.stringify(i) : line(i)}\n`);
      const typeParam = o.type ? `&type=${o.type}` : '';
      if (!o.follow) {
        let cursor = o.since;
        let last: string | undefined;
        let printed = 0;
        for (;;) {
          const url = `${base}/v1/feed?after=${cursor}&limit=500${typeParam}`;
          const res = await request(url, { headers });
          const body = (await jsonBody(res, url)) as {
            items: Item[];
            next: string;
            hasMore: boolean;
            last?: string;
          };
          if (!res.ok)
            throw new HubctlError(
              HubctlErrorCode.RequestRefused,
              describeError(body, res.status).join('\n'),
              { status: res.status },
            );
          body.items.forEach(out);
          printed += body.items.length;
          cursor = body.next;
          last = body.last;
          if (!body.hasMore) break;
        }
        if (printed === 0 && last !== undefined && Number(o.since) > Number(last)) {
          process.stderr.write(
            `cursor ${o.since} is past the end of this feed: the last cursor is ${last}\n`,
          );
          // Items that arrive later get the cursors in between: continue from the last real one.
          cursor = last;
        }
        process.stderr.write(`next cursor: ${cursor}\n`);
        return;
      }
      let last = o.since === '0' ? undefined : o.since;
      for (;;) {
        try {
          for await (const ev of sse(
            `${base}/v1/feed/stream?after=${o.since}${typeParam}`,
            headers,
            last,
          )) {
            out(JSON.parse(ev.data) as Item);
            last = ev.id;
          }
        } catch (err) {
          const status = (err as { status?: number }).status;
          if (status !== undefined && status < 500) throw err;
          process.stderr.write(
            `feed disconnected (${(err as Error).message}); resuming after ${last ?? 'the start'}\n`,
          );
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
    },
  );
}
