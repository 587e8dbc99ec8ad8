import { jetstreamManager } from '@nats-io/jetstream';
import {
  AGENCIES,
  AGREEMENTS,
  DEMO_ALERTS,
  newAlertId,
  inboundStreamName,
  inboundSubjects,
  outboxStreamName,
  startLocalHub,
  type LocalHub,
} from './deps.js';

/** The agency whose line to the hub goes down in the middle of the scenario. */
const CUT = 'NG-NCS';
/** Agencies with a leaf node of their own: the one cut, and one of its partners. */
const LEAVES = [CUT, 'VN-CUSTOMS'] as const;
/** Who receives Nigeria's suspicious-shipment flags under the demo's agreements. */
const PARTNERS = ['SG-NPARKS', 'VN-CUSTOMS'] as const;
const BEFORE = 5;
const DURING = 5;

/**
 * Files one flag through `agency`'s gateway as its systems would: with its own alert id, retried
 * with the same id while the gateway answers 503 (a retry cannot store it twice).
 */
async function send(hub: LocalHub, agency: string): Promise<{ id: string; status: number }> {
  const body = JSON.stringify({
    ...DEMO_ALERTS.nigeriaFlag.submission(),
    id: newAlertId(),
    origin: agency,
    issuedAt: new Date().toISOString(),
  });
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`${hub.gateways[agency]!.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${hub.token}` },
      body,
    });
    const answer = (await res.json()) as { id?: string };
    if (res.status === 202 && answer.id) return { id: answer.id, status: res.status };
    if (res.status !== 503 || attempt >= 10)
      throw new Error(`${agency}'s gateway answered ${res.status}: ${JSON.stringify(answer)}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Every alert id in `agency`'s inbox, read from its gateway's feed (duplicates kept). */
async function inbox(hub: LocalHub, agency: string): Promise<string[]> {
  const ids: string[] = [];
  let after = '0';
  for (;;) {
    const res = await fetch(`${hub.gateways[agency]!.url}/v1/feed?after=${after}&limit=1000`, {
      headers: { authorization: `Bearer ${hub.token}` },
    });
    const page = (await res.json()) as { items: { id: string }[]; next: string; hasMore: boolean };
    ids.push(...page.items.map((i) => i.id));
    after = page.next;
    if (!page.hasMore) return ids;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * `npm run demo -- --federated`: a three-node hub (routes with mutual TLS, streams at R3), leaf
 * nodes for Nigeria and Viet Nam, Nigeria's line cut in the middle of the scenario. Returns the
 * process exit code: 0 when every partner's inbox holds every alert exactly once.
 */
export async function runFederated(
  say: (line?: string) => void,
  options: { dir?: string; onHub?: (hub: LocalHub) => void } = {},
): Promise<number> {
  say(
    `alert-hub federated demo: a three-node hub, leaf nodes at ${LEAVES.join(' and ')}, ${CUT}'s line cut mid-scenario`,
  );
  const hub = await startLocalHub({
    agencies: AGENCIES,
    agreements: AGREEMENTS,
    env: process.env,
    clusterSize: 3,
    leaves: LEAVES,
    ...(options.dir ? { dir: options.dir } : {}),
    onProgress: (m) => say(`  ok  ${m}`),
  });
  options.onHub?.(hub);
  const leafOps = await hub.leaves[CUT]!.connectAsOperator();
  const hubNc = await hub.connectAs('HUB');
  try {
    const outbox = async () =>
      (await (await jetstreamManager(leafOps)).streams.info(outboxStreamName(CUT))).state.messages;
    // The cut agency's own inbound stream at the hub, which sources its leaf's outbox.
    const atHub = async () => {
      const info = await (
        await jetstreamManager(hubNc)
      ).streams.info(inboundStreamName(CUT), { subjects_filter: inboundSubjects(CUT) });
      return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0);
    };
    const sent: string[] = [];
    const delivered = async (n: number) => {
      for (const p of PARTNERS) if (new Set(await inbox(hub, p)).size < n) return false;
      return true;
    };

    say('');
    say(`1. Line up: ${CUT} flags ${BEFORE} suspicious shipments`);
    for (let i = 0; i < BEFORE; i++) sent.push((await send(hub, CUT)).id);
    const ok1 = await waitFor(() => delivered(sent.length), 120_000);
    say(`   202 for each; delivered to ${PARTNERS.join(' and ')}: ${ok1 ? 'yes' : 'NO'}`);

    say('');
    say(`2. ${CUT}'s line to all three hub nodes is cut`);
    hub.leaves[CUT]!.cut();
    const hubBefore = await atHub();
    for (let i = 0; i < DURING; i++) {
      const r = await send(hub, CUT);
      sent.push(r.id);
      say(`   ${CUT} officer files flag ${i + 1}: HTTP ${r.status} (stored at the agency)`);
    }
    await new Promise((r) => setTimeout(r, 3_000));
    say(
      `   queued on ${CUT}'s leaf node: ${(await outbox()) - BEFORE} alert(s) not yet at the hub; the hub's inbound stream gained ${(await atHub()) - hubBefore}`,
    );
    const partnersDuring = await inbox(hub, PARTNERS[0]);
    say(
      `   ${PARTNERS[0]}'s inbox meanwhile: ${new Set(partnersDuring).size} alert(s) from before the cut`,
    );

    say('');
    say(`3. The line returns`);
    const restoredAt = Date.now();
    hub.leaves[CUT]!.restore();
    const ok3 = await waitFor(() => delivered(sent.length), 180_000);
    say(
      `   the hub sourced ${CUT}'s outbox again; every queued alert delivered ${ok3 ? `within ${((Date.now() - restoredAt) / 1000).toFixed(1)} s` : 'NOT within 180 s'}`,
    );

    say('');
    say("Counted from the partners' inboxes:");
    let lost = 0;
    let duplicated = 0;
    for (const p of PARTNERS) {
      const got = await inbox(hub, p);
      const mine = got.filter((id) => sent.includes(id));
      const unique = new Set(mine);
      const l = sent.filter((id) => !unique.has(id)).length;
      const d = mine.length - unique.size;
      lost += l;
      duplicated += d;
      say(
        `  ${p.padEnd(11)} ${unique.size} of ${sent.length} received, ${l} lost, ${d} duplicated`,
      );
    }
    say(`lost ${lost}, duplicated ${duplicated}`);
    return lost === 0 && duplicated === 0 ? 0 : 1;
  } finally {
    await leafOps.close();
    await hubNc.close();
  }
}
