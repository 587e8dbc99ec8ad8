#!/usr/bin/env node
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  AGENCIES,
  AGREEMENTS,
  DEFAULT_SCHEMAS_DIR,
  loadSchemaRegistry,
  loadTrustStore,
  openDatabase,
  startLocalHub,
  verifyAuditLog,
  trustStoreWitnesses,
  type AuditVerification,
  type LocalHub,
} from './deps.js';
import { describeRefusal, refusedNames, type AuditRecord } from '@alert-hub/audit';
import { Scenario, type StepOutcome } from './scenario.js';
import { runFederated } from './federated.js';

/**
 * npm run demo [-- --keep] [-- --summary <file>]
 * npm run demo -- --federated
 *
 * Starts a whole hub on this machine (nats-server with mutual TLS and least-privilege users, the
 * router, a gateway per agency, each its own process), plays a scenario along real 2019 routes,
 * prints the routing table and a coordinator's audit trace, and stops everything. With --keep
 * the hub stays up until Ctrl-C. With --federated: a three-node hub and two agencies' leaf nodes,
 * one agency's line cut and restored mid-scenario, lost and duplicated alerts counted from the
 * partners' inboxes (see federated.ts).
 */
const { values } = parseArgs({
  options: {
    keep: { type: 'boolean', default: false },
    summary: { type: 'string' },
    dir: { type: 'string' },
    federated: { type: 'boolean', default: false },
  },
  strict: true,
});
const say = (line = '') => process.stdout.write(`${line}\n`);
const started = Date.now();
let hub: LocalHub | undefined;
let stopping = false;

async function shutdown(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    if (hub) {
      say(`stopping ${2 + Object.keys(hub.gateways).length} processes...`);
      await hub.stop({ keepDir: values.dir !== undefined });
      say(
        values.dir
          ? `stopped; the hub's files stay in ${hub.dir}`
          : 'stopped; temporary files removed',
      );
    }
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(0));
process.on('SIGTERM', () => void shutdown(0));

function table(outcomes: readonly StepOutcome[]): void {
  say('Routing table');
  const rows = outcomes.map((o) => ({
    step: String(o.step),
    from: o.from,
    type: o.type,
    receivedBy:
      o.forwarded.map((f) => `${f.recipient} (${f.agreement})`).join(', ') ||
      (o.rejected
        ? `nobody: ${o.rejected.code}`
        : o.refusedByNats
          ? 'nobody: NATS permissions'
          : 'nobody'),
    refusedTo: o.denied
      .map((d) => `${d.recipient} (${d.reason.replace('DENY_', '').toLowerCase()})`)
      .join(', '),
  }));
  const cols = ['step', 'from', 'type', 'receivedBy', 'refusedTo'] as const;
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => r[c].length)));
  const line = (vals: readonly string[]) =>
    `  ${vals
      .map((v, i) => v.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()}`;
  say(line(cols));
  for (const r of rows) say(line(cols.map((c) => r[c])));
}

/**
 * What a coordinator does: takes the router's latest checkpoint with the witnesses'
 * cosignatures as the anchor and verifies the database against it, until every entry is
 * witnessed (a checkpoint is signed every few seconds).
 */
async function verifyWitnessed(h: LocalHub): Promise<AuditVerification> {
  const trust = loadTrustStore(join(h.certsDir, 'trust'), loadSchemaRegistry(DEFAULT_SCHEMAS_DIR));
  const hubKey = Buffer.from(trust.keysOf('HUB', 'router')[0]!.jwk.x, 'base64url');
  // Cosignatures are Ed25519: an agency with only an ES256 key witnesses nothing.
  const witnesses = trustStoreWitnesses(trust);
  const witnessing = new Set(witnesses.map((w) => w.agency));
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${h.router.url}/v1/audit/checkpoint`, {
      headers: { authorization: `Bearer ${h.coordinatorToken}` },
    });
    const anchor = res.ok ? await res.text() : '';
    const db = openDatabase(h.auditDb, { readonly: true });
    // More than half of the agencies, as `hubctl audit verify` asks by default.
    const minWitnesses = Math.floor(witnessing.size / 2) + 1;
    const v = verifyAuditLog(db, { anchor, hubKey, witnesses, minWitnesses });
    db.close();
    if ((v.ok && v.unwitnessed === 0) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function trace(h: LocalHub, alertId: string): Promise<void> {
  const res = await fetch(`${h.router.url}/v1/audit/trace/${alertId}`, {
    headers: { authorization: `Bearer ${h.coordinatorToken}` },
  });
  const body = (await res.json()) as { records: AuditRecord[] };
  say(`A coordinator's audit trace of the Singapore seizure (GET /v1/audit/trace/${alertId})`);
  for (const r of body.records) {
    const what =
      r.event === 'routed'
        ? `received from ${r.origin}, routed to ${(r.routes ?? []).map((x) => `${x.recipient} under ${x.agreementId}@${x.agreementVersion}`).join(', ') || 'nobody'}`
        : r.event === 'received'
          ? `received from ${r.origin}`
          : r.event === 'forwarded'
            ? `forwarded to ${r.recipient} under ${r.agreementId}@${r.agreementVersion}`
            : r.event === 'denied'
              ? // Named as `hubctl audit trace` names them: every agency of a summary.
                `refused to ${describeRefusal(r, r.recipient ?? (refusedNames(r).join(', ') || '(others)'))}`
              : `${r.event} ${r.recipient ?? ''} ${r.reasonCode ?? ''} ${r.reason ?? ''}`.replace(
                  /\s+/g,
                  ' ',
                );
    say(
      `  #${String(r.seq).padStart(3)}  ${r.at}  ${what.trim()}  (hash ${r.hash.slice(0, 12)}...)`,
    );
  }
}

if (values.federated) {
  try {
    const code = await runFederated(say, {
      ...(values.dir ? { dir: values.dir } : {}),
      onHub: (h) => (hub = h),
    });
    say(`Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
    await shutdown(code);
  } catch (err) {
    process.stderr.write(`demo failed: ${(err as Error).message}\n`);
    await shutdown(1);
  }
}

/** The coordinator's report at the end of the operation (as `hubctl operation report` prints it). */
async function operationReport(h: LocalHub, id: string): Promise<void> {
  const res = await fetch(`${h.router.url}/v1/operations/${id}/report`, {
    headers: { authorization: `Bearer ${h.coordinatorToken}` },
  });
  const r = (await res.json()) as {
    operation: { name: string };
    countries: string[];
    alertsByType: Record<string, number>;
    deliveries: {
      forwarded: number;
      delivered: number;
      pending: number;
      latencyMs: { p50: number; p95: number; max: number } | null;
    };
    outcomes: Record<string, number>;
    seizures: { country: string; commodity: string; unit: string; quantity: number }[];
  };
  const list = (o: Record<string, number>) =>
    Object.entries(o)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ') || '(none)';
  say(`Operation report (GET /v1/operations/${id}/report; with --keep, hubctl's is under "Try:")`);
  say(`  ${r.operation.name}`);
  say(`  countries taking part: ${r.countries.join(', ')}`);
  say(`  alerts by type: ${list(r.alertsByType)}`);
  const d = r.deliveries;
  say(
    `  deliveries: ${d.forwarded} forwarded, ${d.delivered} delivered with a verified receipt, ${d.pending} pending${d.latencyMs ? `; latency p50 ${d.latencyMs.p50} ms, max ${d.latencyMs.max} ms` : ''}`,
  );
  say(`  outcomes: ${list(r.outcomes)}`);
  for (const x of r.seizures)
    say(`  seized: ${x.country}  ${x.commodity}  ${x.quantity} ${x.unit}`);
}

try {
  say(
    'alert-hub demo: a hub on this machine with seven agencies along the 2019 pangolin and ivory routes',
  );
  hub = await startLocalHub({
    agencies: AGENCIES,
    agreements: AGREEMENTS,

    env: process.env,
    // Checkpoints every second, so the witnesses vouch for the whole scenario soon after it ends.
    routerConfig: { checkpointIntervalMs: 1000 },
    ...(values.dir ? { dir: values.dir } : {}),
    onProgress: (m) => say(`  ok  ${m}`),
  });
  say(`  ok  agreements: ${AGREEMENTS.agreements.map((a) => `${a.id}@${a.version}`).join(', ')}`);
  const scenario = new Scenario(hub, say);
  const outcomes = await scenario.run();
  say('');
  table(outcomes);
  say('');
  await trace(hub, scenario.ids['singaporeSeizure']!);
  say('');
  const v = await verifyWitnessed(hub);
  say(
    `Audit log: ${v.ok ? 'verified' : 'BROKEN'}, ${v.entries} entries, ${v.witnessed} witnessed by ${v.anchor?.witnesses.length ?? 0} agencies, ${v.unwitnessed} not yet witnessed`,
  );
  say('');
  await operationReport(hub, 'THUNDERBALL-DEMO');
  say(`Demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  if (values.summary)
    writeFileSync(
      values.summary,
      `${JSON.stringify({ outcomes, ids: scenario.ids, audit: { ok: v.ok, records: v.entries } }, null, 2)}\n`,
    );
  if (!v.ok) await shutdown(1);
  if (values.keep) {
    const g = Object.entries(hub.gateways);
    say('');
    say('The hub keeps running; Ctrl-C stops every process.');
    say(
      `  NATS        ${hub.nats.url}  (mutual TLS; certificates in ${join(hub.certsDir, 'dev')})`,
    );
    say(`  router      ${hub.router.url}  coordinator token: ${hub.coordinatorToken}`);
    for (const [id, s] of g) say(`  ${id.padEnd(11)} ${s.url}`);
    say(`  gateway token (submit and read-feed on every gateway): ${hub.token}`);
    say('');
    say('Web consoles (sign in with the tokens above):');
    say(`  coordinator dashboard  ${hub.router.url}/dashboard/`);
    for (const [id, s] of g) say(`  ${id.padEnd(11)} console  ${s.url}/console/`);
    say('');
    say('Try:');
    say(`  export AHUB_TOKEN=${hub.token}`);
    say(`  npx hubctl feed --gateway ${hub.gateways['VN-CUSTOMS']!.url}`);
    say(`  npx hubctl feed --follow --gateway ${hub.gateways['US-FWS']!.url}`);
    say(
      `  curl -s -H "Authorization: Bearer ${hub.coordinatorToken}" ${hub.router.url}/v1/stats/flows`,
    );
    say(`  npx hubctl audit trace ${scenario.ids['hongKongFlag']} --db ${hub.auditDb}`);
    say(
      `  AHUB_COORDINATOR_TOKEN=${hub.coordinatorToken} npx hubctl operation report THUNDERBALL-DEMO --router ${hub.router.url}`,
    );
    say(
      `  npx hubctl route --dry-run <alert.json> --from SG-NPARKS --agreements ${hub.agreementsFile} --trust ${join(hub.certsDir, 'trust')}`,
    );
    say(`  logs: ${join(hub.dir, 'logs')}`);
    await new Promise(() => undefined);
  }
  await shutdown(0);
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  await shutdown(1);
}
