import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import {
  LEAF_OUTBOX_CONSUMER,
  Streams,
  outboxStreamName,
  inboundStreamName,
  inboundSubjects,
} from '@alert-hub/core';
import { provisionLeaf } from '@alert-hub/runtime';
import {
  eventually,
  hubctl,
  spawnService,
  startChaosHub,
  SERVICE_NODE_ARGS,
  type ServiceProcess,
  type ChaosHub,
  type LocalHub,
  KEEP_READ_COPIES,
} from '@alert-hub/testkit';

/**
 * Store and forward across an agency's leaf node: the origin (Singapore) and one partner (Viet
 * Nam) each run their own nats-server as a leaf node of the hub, in their own JetStream domain,
 * bound to their own account; the other partner (China) connects to the hub directly. The test
 * cuts both leaf links with TCP proxies it controls, as a line that goes down.
 */
const ORIGIN = 'SG-NPARKS';
const LEAF_PARTNER = 'VN-CUSTOMS';
const RECIPIENTS = [LEAF_PARTNER, 'CN-GACC'] as const;
const CUT_MS = 20_000;

let chaos: ChaosHub;
let hub: LocalHub;
let jsm: JetStreamManager;
/** The origin's gateway started again by a case below (the hub's stop() knows the first only). */
let restarted: ServiceProcess | undefined;

beforeAll(async () => {
  chaos = await startChaosHub({
    origin: ORIGIN,
    recipients: RECIPIENTS,
    env: process.env,
    leaves: [ORIGIN, LEAF_PARTNER],
    // the copies are counted on the feed stream after the partners took them
    routerConfig: { consumer: { ackWaitMs: 3000, maxMessages: 64 }, streams: KEEP_READ_COPIES },
    gatewayConfig: { outbox: { checkIntervalMs: 1000 } },
  });
  hub = chaos.hub;
  jsm = chaos.jsm;
}, 120_000);
afterAll(async () => {
  await restarted?.stop();
  await chaos?.stop();
});

/** The origin's messages in its inbound stream at the hub, where the router takes its leaf's outbox. */
async function originAtHub(): Promise<number> {
  const info = await jsm.streams.info(inboundStreamName(ORIGIN), {
    subjects_filter: inboundSubjects(ORIGIN),
  });
  return Object.values(info.state.subjects ?? {}).reduce((n, c) => n + c, 0);
}

async function outboxCount(): Promise<number> {
  const leaf = await hub.leaves[ORIGIN]!.connectAsOperator();
  try {
    return (await (await jetstreamManager(leaf)).streams.info(outboxStreamName(ORIGIN))).state
      .messages;
  } finally {
    await leaf.close();
  }
}

describe('leaf node - store and forward', () => {
  const sent: string[] = [];

  it('alerts go through the leaf: stored in its outbox, taken by the router, delivered once', async () => {
    sent.push(...(await chaos.submit(20)));
    await chaos.checkDeliveredOnce(sent);
    expect(await outboxCount()).toBe(20);
    chaos.checkAuditComplete(sent);
  }, 120_000);

  it('link cut for 20 s: the gateway keeps answering 202, alerts queue on the leaf, the partner behind its cut link serves what it had received, then each is delivered once', async () => {
    const cutAt = Date.now();
    hub.leaves[ORIGIN]!.cut();
    hub.leaves[LEAF_PARTNER]!.cut();
    const during = await chaos.submit(40);
    sent.push(...during);
    // Stored at the agency, not at the hub.
    expect(await outboxCount()).toBe(sent.length);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(await originAtHub()).toBe(sent.length - during.length);
    // Officers behind the cut link still read what their agency had received: the partner's
    // inbox is at the agency, served by its gateway while the link is down.
    const before = sent.slice(0, sent.length - during.length);
    expect([...(await chaos.inboxIds(LEAF_PARTNER))].sort()).toEqual([...before].sort());
    // The router says whose leaf it cannot read, and stays ready: that agency's wait, not its own.
    const routerReady = async () =>
      (await (
        await fetch(`${hub.router.url}/readyz`, {
          headers: { authorization: `Bearer ${hub.coordinatorToken}` },
        })
      ).json()) as {
        status: string;
        checks: Record<string, string>;
      };
    const cut = await eventually(
      async () => {
        const r = await routerReady();
        return r.checks['leafOutboxes']?.includes(`${ORIGIN} unreachable`) ? r : undefined;
      },
      CUT_MS,
      "the router's readiness naming the cut leaf",
    );
    expect(cut.status).toBe('ready');
    await new Promise((r) => setTimeout(r, Math.max(0, CUT_MS - (Date.now() - cutAt))));
    hub.leaves[ORIGIN]!.restore();
    hub.leaves[LEAF_PARTNER]!.restore();
    await chaos.checkDeliveredOnce(sent);
    // Reading again, the router says so: a fetch that failed as the link came back (the leaf's
    // connection made anew) is tried again after RETRY_MS, so the readiness is polled, not read once.
    await eventually(
      async () => (await routerReady()).checks['leafOutboxes'] === 'ok',
      30_000,
      "the router's readiness back to ok once the leaf is read again",
    );
    expect(await originAtHub()).toBe(sent.length);
    chaos.checkAuditComplete(sent);
  }, 240_000);

  it('the agency deletes the router’s consumer on its leaf: the router makes it again after the last outbox message the hub holds, and takes nothing twice', async () => {
    const ops = await hub.leaves[ORIGIN]!.connectAsOperator();
    try {
      const leafJsm = await jetstreamManager(ops);
      const before = await leafJsm.consumers.info(outboxStreamName(ORIGIN), LEAF_OUTBOX_CONSUMER);
      expect(before.num_pending + before.num_ack_pending).toBe(0);
      await leafJsm.consumers.delete(outboxStreamName(ORIGIN), LEAF_OUTBOX_CONSUMER);
      const more = await chaos.submit(10);
      sent.push(...more);
      await chaos.checkDeliveredOnce(sent);
      expect(await originAtHub()).toBe(sent.length);
      const again = await leafJsm.consumers.info(outboxStreamName(ORIGIN), LEAF_OUTBOX_CONSUMER);
      // made anew, after the last outbox message the hub held: only the new alerts went through it
      expect(again.created).not.toBe(before.created);
      expect(again.delivered.stream_seq - again.config.opt_start_seq! + 1).toBe(more.length);
      const dead = await jsm.streams.info(Streams.DeadLetter, { subjects_filter: '>' });
      expect(dead.state.subjects?.[`ahub.dlq.${ORIGIN}`] ?? 0).toBe(0);
    } finally {
      await ops.close();
    }
  }, 240_000);

  it("hubctl leaf provision sets the outbox's retention on the agency's leaf, as its operators", async () => {
    const r = await hubctl([
      'leaf',
      'provision',
      '--agency',
      ORIGIN,
      '--server',
      hub.leaves[ORIGIN]!.nats.url,
      '--certs',
      hub.certsDir,
      '--max-age-ms',
      String(14 * 24 * 3600_000),
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      stream: outboxStreamName(ORIGIN),
      subjects: [`ahub.in.${ORIGIN}.>`],
      maxAgeMs: 14 * 24 * 3600_000,
    });
    // The alerts it held are still there.
    expect(await outboxCount()).toBe(sent.length);
  }, 60_000);

  it('restarted while the line is cut, the gateway starts on its leaf and answers 202; once the line is back it reaches the hub and each alert is delivered once', async () => {
    await hub.gateways[ORIGIN]!.stop();
    // The agency's line down: its leaf's link and its gateway's own connection to the hub.
    hub.leaves[ORIGIN]!.cut();
    try {
      restarted = await spawnService('gateway', join(hub.dir, `gateway-${ORIGIN}.yaml`), {
        env: process.env,
        // The same log file, appended to: the case below reads it.
        logFile: join(hub.dir, 'logs', `gateway-${ORIGIN}.log`),
        captureLogs: false,
        nodeArgs: [...SERVICE_NODE_ARGS],
        timeoutMs: 90_000,
      });
      // chaos.submit and inboxIds post to the origin's gateway by this record.
      (hub.gateways as Record<string, ServiceProcess>)[ORIGIN] = restarted;
      const readyz = async () => {
        const res = await fetch(`${restarted!.url}/readyz`);
        return {
          status: res.status,
          checks: ((await res.json()) as { checks: Record<string, string> }).checks,
        };
      };
      const [atHub, inOutbox] = [await originAtHub(), await outboxCount()];
      const during = await chaos.submit(10);
      sent.push(...during);
      expect(await outboxCount()).toBe(inOutbox + during.length);
      const down = await readyz();
      expect(down.status).toBe(503);
      expect(down.checks['nats']).toMatch(/^not connected yet, connecting in the background/);
      expect(down.checks['outboxNats']).toBe('connected');
      await new Promise((r) => setTimeout(r, 2_000));
      expect(await originAtHub()).toBe(atHub);
    } finally {
      hub.leaves[ORIGIN]!.restore();
    }
    await chaos.checkDeliveredOnce(sent);
    expect(await originAtHub()).toBe(sent.length);
    chaos.checkAuditComplete(sent);
    await eventually(
      async () => ((await fetch(`${restarted!.url}/readyz`)).status === 200 ? true : undefined),
      60_000,
      'the restarted gateway on the hub, its feed consumed',
    );
  }, 240_000);

  it("alerts that expire in the leaf's outbox before the hub has them are signalled: metric, readiness, log", async () => {
    const gateway = hub.gateways[ORIGIN]!;
    const expired = async () =>
      Number(
        /^ahub_gateway_outbox_expired\{[^}]*\} (\d+)/m.exec(
          await (await fetch(`${gateway.url}/metrics`)).text(),
        )?.[1],
      );
    const auth = { authorization: `Bearer ${hub.token}` };
    // Everything sent so far reached the hub, and the hub said so (routed): none of it counts.
    await eventually(
      async () => {
        for (const id of sent) {
          const res = await fetch(`${gateway.url}/v1/alerts/${id}/status`, { headers: auth });
          if (((await res.json()) as { state: string }).state !== 'routed') return false;
        }
        return true;
      },
      60_000,
      'every alert sent so far routed',
    );
    expect(await expired()).toBe(0);

    // An outbox that keeps alerts 4 s, and a link down for longer than that.
    const leafNc = await hub.leaves[ORIGIN]!.connectAsOperator();
    const leafJsm = await jetstreamManager(leafNc);
    try {
      await provisionLeaf(leafJsm, ORIGIN, {
        limits: { maxAgeMs: 4000, duplicateWindowMs: 4000 },
      });
      hub.leaves[ORIGIN]!.cut();
      const atHub = await originAtHub();
      const lost = await chaos.submit(3);
      await eventually(
        async () => (await outboxCount()) === 0,
        20_000,
        'the outbox to expire them',
      );
      hub.leaves[ORIGIN]!.restore();

      const ready = await eventually(
        async () => {
          const body = (await (await fetch(`${gateway.url}/readyz`)).json()) as {
            checks: Record<string, string>;
          };
          return body.checks['outbox']?.startsWith('ERR_OUTBOX_EXPIRED') ? body : undefined;
        },
        30_000,
        'the gateway to report the expired alerts',
      );
      for (const id of lost) expect(ready.checks['outbox']).toContain(id);
      expect(await expired()).toBe(3);
      const logged = readFileSync(join(hub.dir, 'logs', `gateway-${ORIGIN}.log`), 'utf8')
        .split('\n')
        .filter((l) => l.includes('"ERR_OUTBOX_EXPIRED"'));
      expect(logged.length).toBeGreaterThan(0);
      for (const id of lost) expect(logged.join('\n')).toContain(id);
      // They never reached the hub: nothing else would have said so.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await originAtHub()).toBe(atHub);
    } finally {
      hub.leaves[ORIGIN]!.restore();
      await provisionLeaf(leafJsm, ORIGIN);
      await leafNc.close();
    }
  }, 120_000);
});
