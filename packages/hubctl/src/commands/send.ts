import type { Command } from 'commander';
import { AlertHubError, parseJsonText } from '@alert-hub/core';
import { HubctlErrorCode } from '../errors.js';
import { print } from '../output.js';
import { readInput } from './validate.js';
import {
  authHeaders,
  describeError,
  gatewayOptions,
  jsonBody,
  request,
  type GatewayTarget,
} from './http-client.js';

/** A line of an NDJSON file is not JSON; the message names the line (from 1). */
export class NdjsonLineError extends AlertHubError {
  readonly line: number;
  constructor(line: number, message: string) {
    super(HubctlErrorCode.InputInvalid, `line ${line}: ${message}`);
    this.line = line;
  }
}

/**
 * Alerts in a file: one JSON object, a JSON array, or NDJSON (one alert per line). A broken
 * NDJSON line is reported by its line number, counted from 1.
 */
export function parseAlerts(text: string): { items: unknown[]; single: boolean } {
  const trimmed = text.trim();
  try {
    const v = parseJsonText(trimmed);
    return Array.isArray(v) ? { items: v, single: false } : { items: [v], single: true };
  } catch (err) {
    const lines = text.split('\n');
    if (lines.filter((l) => l.trim() !== '').length < 2) throw err;
    const items: unknown[] = [];
    lines.forEach((l, i) => {
      if (l.trim() === '') return;
      try {
        items.push(parseJsonText(l));
      } catch (e) {
        throw new NdjsonLineError(i + 1, (e as Error).message);
      }
    });
    return { items, single: false };
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Result = {
  index: number;
  status: number;
  id?: string;
  sequence?: number;
  duplicate?: boolean;
} & Record<string, unknown>;

/**
 * A 503 worth resending: the hub could not take the alert now. Not when the agency's own stream
 * at the hub is full (`ERR_INBOUND_STREAM_FULL`): room returns only as its oldest alerts age out
 * or its quota is raised, so resending within seconds only repeats the refusal.
 */
function resendable(status: number, body: unknown): boolean {
  const error = (body as { error?: { code?: unknown } } | null)?.error;
  return status === 503 && error?.code !== 'ERR_INBOUND_STREAM_FULL';
}

/** Gives an alert the id the gateway chose for it, so that a resend is never a second alert. */
function withId(item: unknown, id: unknown): unknown {
  if (typeof id !== 'string' || typeof item !== 'object' || item === null || Array.isArray(item))
    return item;
  return { ...(item as Record<string, unknown>), id };
}

export function registerSend(program: Command): void {
  const cmd = program
    .command('send')
    .description(
      'send alerts to your gateway (one JSON object, a JSON array or NDJSON); prints each receipt or error',
    )
    .argument('<file>', 'alert file, or - for standard input')
    .option(
      '--retries <n>',
      'resends while the hub answers 503, with the id the gateway gave (Retry-After is honoured)',
      (v) => Number.parseInt(v, 10),
      3,
    )
    .option('--json', 'print the gateway responses as JSON');
  for (const o of gatewayOptions()) cmd.addOption(o);
  cmd.action(async (file: string, o: GatewayTarget & { retries: number; json?: boolean }) => {
    const { items, single } = parseAlerts(readInput(file));
    const base = o.gateway.replace(/\/$/, '');
    const headers = { 'content-type': 'application/json', ...authHeaders(o) };
    const waitBeforeRetry = async (res: Response, attempt: number) => {
      const wait = Number(res.headers.get('retry-after') ?? '2');
      process.stderr.write(`hub unavailable; resending in ${wait}s (${attempt}/${o.retries})\n`);
      await sleep(wait * 1000);
    };

    if (single) {
      let alert = items[0];
      let res: Response;
      let body: Record<string, unknown>;
      for (let attempt = 0; ; attempt++) {
        res = await request(`${base}/v1/alerts`, {
          method: 'POST',
          headers,
          body: JSON.stringify(alert),
        });
        body = (await jsonBody(res, `${base}/v1/alerts`)) as Record<string, unknown>;
        if (!resendable(res.status, body) || attempt >= o.retries) break;
        // The 503 names the id the alert was given; a copy may already be on its way.
        alert = withId(alert, body['id']);
        await waitBeforeRetry(res, attempt + 1);
      }
      if (res.status === 202) {
        const r = body as { id: string; sequence: number; duplicate: boolean };
        print(o.json, body, [
          `accepted ${r.id} (sequence ${r.sequence}${r.duplicate ? ', already accepted before' : ''})`,
          ...describeNormalised(body),
        ]);
      } else {
        const id = typeof body['id'] === 'string' ? [`  alert id: ${body['id']}`] : [];
        print(o.json, body, [...describeError(body, res.status), ...id]);
        process.exitCode = 1;
      }
      return;
    }

    // A batch: resend only the alerts that got a 503, each with the id it was given.
    const results: Result[] = [];
    let pending = items.map((item, index) => ({ item, index }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      const res = await request(`${base}/v1/alerts:batch`, {
        method: 'POST',
        headers,
        body: JSON.stringify(pending.map((p) => p.item)),
      });
      const body = (await jsonBody(res, `${base}/v1/alerts:batch`)) as Record<string, unknown>;
      if (res.status !== 200) {
        if (resendable(res.status, body) && attempt < o.retries) {
          await waitBeforeRetry(res, attempt + 1);
          continue;
        }
        print(o.json, body, describeError(body, res.status));
        process.exitCode = 1;
        return;
      }
      const batch = (body as { results: Result[] }).results;
      const again: typeof pending = [];
      batch.forEach((r, i) => {
        const p = pending[i]!;
        if (resendable(r.status, r) && attempt < o.retries)
          again.push({ item: withId(p.item, r.id), index: p.index });
        else results[p.index] = { ...r, index: p.index };
      });
      pending = again;
      if (pending.length > 0) await waitBeforeRetry(res, attempt + 1);
    }
    const accepted = results.filter((r) => r.status < 300).length;
    const summary = { accepted, rejected: results.length - accepted, results };
    print(o.json, summary, [
      // Numbered from 1, like the lines of the file.
      ...results.flatMap((r) =>
        r.status === 202
          ? [
              `#${r.index + 1} accepted ${r.id} (sequence ${r.sequence}${r.duplicate ? ', already accepted before' : ''})`,
              ...describeNormalised(r),
            ]
          : describeError(r, r.status).map((l, i) =>
              i === 0 ? `#${r.index + 1} ${l}${r.id ? ` (alert id ${r.id})` : ''}` : l,
            ),
      ),
      `${summary.accepted} accepted, ${summary.rejected} refused`,
    ]);
    if (summary.rejected > 0) process.exitCode = 1;
  });
}

/** One line per identifier the gateway rewrote into machine form. */
function describeNormalised(receipt: Record<string, unknown>): string[] {
  const changes = receipt['normalised'];
  if (!Array.isArray(changes)) return [];
  return (changes as { pointer: string; from: string; to: string }[]).map(
    (c) => `  normalised ${c.pointer}: ${c.from} -> ${c.to}`,
  );
}
