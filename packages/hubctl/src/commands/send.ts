import type { Command } from 'commander';
import { parseJsonText } from '@alert-hub/core';
import { print } from '../output.js';
import { readInput } from './validate.js';
import { authHeaders, describeError, gatewayOptions, type GatewayTarget } from './http-client.js';

/** Alerts in a file: one JSON object, a JSON array, or NDJSON (one alert per line). */
function parseAlerts(text: string): { items: unknown[]; single: boolean } {
  const trimmed = text.trim();
  try {
    const v = parseJsonText(trimmed);
    return Array.isArray(v) ? { items: v, single: false } : { items: [v], single: true };
  } catch (err) {
    const lines = trimmed.split('\n').filter((l) => l.trim() !== '');
    if (lines.length < 2) throw err;
    return { items: lines.map((l) => parseJsonText(l)), single: false };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function registerSend(program: Command): void {
  const cmd = program
    .command('send')
    .description(
      'send alerts to your gateway (one JSON object, a JSON array or NDJSON); prints each receipt or error',
    )
    .argument('<file>', 'alert file, or - for standard input')
    .option(
      '--retries <n>',
      'retries while the hub answers 503 (Retry-After is honoured)',
      (v) => Number.parseInt(v, 10),
      3,
    )
    .option('--json', 'print the gateway responses as JSON');
  for (const o of gatewayOptions()) cmd.addOption(o);
  cmd.action(async (file: string, o: GatewayTarget & { retries: number; json?: boolean }) => {
    const { items, single } = parseAlerts(readInput(file));
    const url = `${o.gateway.replace(/\/$/, '')}${single ? '/v1/alerts' : '/v1/alerts:batch'}`;
    let res: Response;
    let attempt = 0;
    for (;;) {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...authHeaders(o) },
        body: JSON.stringify(single ? items[0] : items),
      });
      if (res.status !== 503 || attempt >= o.retries) break;
      attempt++;
      const wait = Number(res.headers.get('retry-after') ?? '2');
      process.stderr.write(`hub unavailable; retrying in ${wait}s (${attempt}/${o.retries})\n`);
      await sleep(wait * 1000);
    }
    const body = (await res.json()) as Record<string, unknown>;
    if (single) {
      if (res.status === 202) {
        const r = body as { id: string; sequence: number; duplicate: boolean };
        print(o.json, body, [
          `accepted ${r.id} (sequence ${r.sequence}${r.duplicate ? ', already accepted before' : ''})`,
          ...describeNormalised(body),
        ]);
      } else {
        print(o.json, body, describeError(body, res.status));
        process.exitCode = 1;
      }
      return;
    }
    if (res.status !== 200) {
      print(o.json, body, describeError(body, res.status));
      process.exitCode = 1;
      return;
    }
    const b = body as {
      accepted: number;
      rejected: number;
      results: ({
        index: number;
        status: number;
        id?: string;
        sequence?: number;
        duplicate?: boolean;
      } & Record<string, unknown>)[];
    };
    print(o.json, body, [
      ...b.results.flatMap((r) =>
        r.status === 202
          ? [
              `#${r.index} accepted ${r.id} (sequence ${r.sequence}${r.duplicate ? ', already accepted before' : ''})`,
              ...describeNormalised(r),
            ]
          : describeError(r, r.status).map((l, i) => (i === 0 ? `#${r.index} ${l}` : l)),
      ),
      `${b.accepted} accepted, ${b.rejected} refused`,
    ]);
    if (b.rejected > 0) process.exitCode = 1;
  });
}

/** One line per identifier the gateway rewrote into machine form. */
function describeNormalised(receipt: Record<string, unknown>): string[] {
  const changes = receipt['normalised'];
  if (!Array.isArray(changes)) return [];
  return (changes as { pointer: string; from: string; to: string }[]).map(
    (c) => `  normalised ${c.pointer}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`,
  );
}
