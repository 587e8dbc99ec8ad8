import { Option, type Command } from 'commander';
import type { AlertStatus, OperationReport, RecipientStatus } from '@alert-hub/core';
import { HubctlError, HubctlErrorCode } from '../errors.js';
import { print } from '../output.js';
import { authHeaders, gatewayOptions, requestJson, type GatewayTarget } from './http-client.js';

/** GET as JSON: an unreachable service names its URL and the cause (ERR_NETWORK), a refusal its code. */
function getJson(url: string, headers: Record<string, string>): Promise<unknown> {
  return requestJson(url, { headers });
}

function recipientLine(r: RecipientStatus): string {
  const who = r.recipient.padEnd(14);
  if (r.state === 'delivered')
    return `  ${who} delivered  ${r.deliveredAt ?? ''}${r.receiptVerified ? '  receipt verified' : ''}`;
  if (r.state === 'refused') return `  ${who} refused    ${r.code ?? ''}  ${r.reason ?? ''}`;
  return `  ${who} pending    since ${r.since ?? ''}${r.overdue ? '  OVERDUE' : ''}`;
}

/** `hubctl status <id>` (sender's gateway) and `hubctl operation report <id>` (router). */
export function registerStatus(program: Command): void {
  const status = program
    .command('status <id>')
    .description(
      'what became of an alert you sent: accepted, routed or refused, and per recipient delivered (receipt verified), refused or pending',
    )
    .option('--json', 'print JSON');
  for (const o of gatewayOptions()) status.addOption(o);
  status.action(async (id: string, opts: GatewayTarget & { json?: boolean }) => {
    const s = (await getJson(
      `${opts.gateway}/v1/alerts/${encodeURIComponent(id)}/status`,
      authHeaders(opts),
    )) as AlertStatus;
    const lines = [
      `${s.id}  ${s.type}  ${s.state}${s.operation ? `  operation ${s.operation}` : ''}`,
      `  accepted ${s.acceptedAt}${s.routedAt ? `, routed ${s.routedAt}` : ''}`,
      ...(s.refused ? [`  refused by the hub: ${s.refused.code}  ${s.refused.reason}`] : []),
      ...s.recipients.map(recipientLine),
      ...s.outcomes.map((o) => `  outcome from ${o.from}: ${o.result} (${o.issuedAt}) ${o.id}`),
    ];
    print(opts.json, s, lines);
    if (s.state === 'refused') process.exitCode = 1;
  });

  const operation = program
    .command('operation')
    .description('coordinators: time-boxed multi-country operations');
  operation
    .command('report <id>')
    .description(
      "an operation's report from the router: countries, alerts by type, deliveries and latency, outcomes, each agency's counts, seizures by country and commodity",
    )
    .addOption(
      new Option('--router <url>', 'router base URL')
        .env('AHUB_ROUTER_URL')
        .default('http://127.0.0.1:8090'),
    )
    .addOption(
      new Option('--token <token>', 'coordinator token (prefer AHUB_COORDINATOR_TOKEN)').env(
        'AHUB_COORDINATOR_TOKEN',
      ),
    )
    .option('--json', 'print JSON')
    .action(async (id: string, opts: { router: string; token?: string; json?: boolean }) => {
      if (!opts.token)
        throw new HubctlError(
          HubctlErrorCode.Prerequisite,
          'no coordinator token: set AHUB_COORDINATOR_TOKEN or pass --token',
        );
      const router = opts.router.replace(/\/$/, '');
      const r = (await getJson(`${router}/v1/operations/${encodeURIComponent(id)}/report`, {
        authorization: `Bearer ${opts.token}`,
      })) as OperationReport;
      const d = r.deliveries;
      const lines = [
        `Operation ${r.operation.id}: ${r.operation.name}`,
        `  period ${r.operation.period.from} to ${r.operation.period.until}`,
        `  countries taking part: ${r.countries.join(', ') || '(none)'}`,
        `  alerts by type: ${
          Object.entries(r.alertsByType)
            .map(([t, n]) => `${t} ${n}`)
            .join(', ') || '(none)'
        }`,
        // Refused to everyone (DENY_OPERATION_PERIOD): apart, counted in nothing else.
        ...refusedOutsidePeriodLine(r),
        `  deliveries: ${d.forwarded} forwarded, ${d.delivered} delivered (receipt verified), ${d.pending} pending` +
          (d.latencyMs
            ? `; latency p50 ${d.latencyMs.p50} ms, p95 ${d.latencyMs.p95} ms, max ${d.latencyMs.max} ms`
            : ''),
        `  outcomes: ${
          Object.entries(r.outcomes)
            .map(([t, n]) => `${t} ${n}`)
            .join(', ') || '(none)'
        }`,
        '  agencies (operation alerts sent; copies received, delivered; outcomes reported):',
        ...(r.agencies.length === 0
          ? ['    (none)']
          : r.agencies.map(
              (a) =>
                `    ${a.agency}  sent ${a.sent}  received ${a.received}  delivered ${a.delivered}  outcomes ${a.outcomes}`,
            )),
        '  seizures:',
        ...(r.seizures.length === 0
          ? ['    (none)']
          : r.seizures.map(
              (s) =>
                `    ${s.country}  ${s.commodity}  ${s.quantity} ${s.unit}  (${s.reports} report${s.reports === 1 ? '' : 's'})`,
            )),
      ];
      print(opts.json, r, lines);
    });
}

/** The line for the alerts refused because the operation was not in its period, if any. */
function refusedOutsidePeriodLine(r: OperationReport): string[] {
  // A router older than this list does not send it: nothing to print, rather than a crash.
  const refused = (r as Partial<OperationReport>).refusedOutsidePeriod ?? [];
  if (refused.length === 0) return [];
  const total = refused.reduce((n, x) => n + x.alerts, 0);
  const from =
    refused.length === 1
      ? refused[0]!.agency
      : refused.map((x) => `${x.agency} ${x.alerts}`).join(', ');
  return [`  refused outside the operation's period: ${total}, from ${from}`];
}
