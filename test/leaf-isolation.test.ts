import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import {
  DEFAULT_MAX_ENVELOPE_BYTES,
  LEAF_OUTBOX_CONSUMER,
  inboundStreamName,
  inboundSubject,
  leafJsApiPrefix,
  outboxStreamName,
} from '@alert-hub/core';
import { devPkiPaths } from '@alert-hub/operator';
import { STREAM_MAX_MESSAGE_BYTES } from '@alert-hub/runtime';
import {
  LOCAL_ROUTER,
  eventually,
  seizureReport,
  startLocalHub,
  type LocalHub,
  scrapeMetrics,
} from '@alert-hub/testkit';
import { fakeLeaf } from './support/fake-leaf.js';

/**
 * Singapore and Viet Nam both run a leaf node. What Singapore's leaf holds or sends, its
 * operators' messages or software of its own answering the routers' pull, must not end a router
 * nor keep the hub from reading Viet Nam's outbox. (Found by an attacker pass: a header nats.js
 * cannot parse, stored in the agency's own outbox, ended every router; sent straight to the pull's
 * inbox, it ended the reader of the one connection every leaf's outbox was read on.)
 */
const SG = 'SG-NPARKS';
const VN = 'VN-CUSTOMS';
let hub: LocalHub;

beforeAll(async () => {
  hub = await startLocalHub({
    env: process.env,
    agencies: [SG, VN].map((id) => ({ id, name: id })),
    agreements: {
      agreements: [
        {
          id: 'SG-VN',
          version: 1,
          title: 'Singapore and Viet Nam',
          parties: ['SG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    },
    leaves: [SG, VN],
  });
}, 180_000);
afterAll(async () => {
  await hub?.stop();
});

/** A header block nats.js refuses to parse: its name holds a space. */
const BAD_HEADER = 'NATS/1.0\r\nBad Key: x\r\n\r\n';

async function postAlert(agency: string): Promise<void> {
  const res = await fetch(`${hub.gateways[agency]!.url}/v1/alerts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${hub.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(seizureReport(agency)),
  });
  expect(res.status).toBe(202);
}

/** How many of `agency`'s alerts its inbound stream at the hub holds. */
async function alertsAtHub(agency: string): Promise<number> {
  const router = await hub.connectAs(LOCAL_ROUTER);
  try {
    const info = await (
      await jetstreamManager(router)
    ).streams.info(inboundStreamName(agency), {
      subjects_filter: '>',
    });
    return info.state.subjects?.[inboundSubject(agency, 'seizure-report')] ?? 0;
  } finally {
    await router.close();
  }
}

/** `agency` sends one alert through its leaf, and the hub has it within `withinMs`. */
async function reachesHub(agency: string, withinMs: number): Promise<void> {
  const before = await alertsAtHub(agency);
  await postAlert(agency);
  await eventually(
    async () => ((await alertsAtHub(agency)) > before ? true : undefined),
    withinMs,
    `${agency}'s alert at the hub`,
  );
}

/** The router's count of `agency`'s deliveries refused for `why`. */
async function refused(agency: string, why: 'headers' | 'size' | 'reply'): Promise<number> {
  const text = await scrapeMetrics(hub.router.url, hub.coordinatorToken);
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('ahub_router_leaf_outbox_refused_total{') &&
        l.includes(`agency="${agency}"`) &&
        l.includes(`why="${why}"`),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

/** The router's log lines of refused deliveries from Singapore's leaf (its log file). */
function refusalLines(): number {
  return readFileSync(join(hub.dir, 'logs', 'router.log'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('"ERR_LEAF_DELIVERY_REFUSED"') && l.includes(`"agency":"${SG}"`))
    .length;
}

/** Singapore's own leaf software, written by hand, on its leaf certificate. */
async function singaporesSoftware(): Promise<Awaited<ReturnType<typeof fakeLeaf>>> {
  const cert = devPkiPaths(join(hub.certsDir, 'dev'), `${SG}.leaf`);
  return fakeLeaf({
    port: hub.leaves[SG]!.links[0]!.port,
    caFile: cert.caFile,
    certFile: cert.certFile,
    keyFile: cert.keyFile,
    account: SG,
  });
}

const NEXT = `${leafJsApiPrefix(SG)}.CONSUMER.MSG.NEXT.${outboxStreamName(SG)}.${LEAF_OUTBOX_CONSUMER}`;

describe('one leaf against the others', () => {
  it('a message whose header nats.js cannot parse, stored in Singapore’s own outbox by its operators, is refused (headers) and counted; the router goes on, and both agencies’ later alerts reach the hub', async () => {
    await reachesHub(SG, 30_000);
    const ops = await hub.leaves[SG]!.connectAsOperator();
    try {
      // nats.js checks the headers it builds: an object that only encodes bytes passes them raw.
      const raw = new TextEncoder().encode(BAD_HEADER);
      ops.publish(inboundSubject(SG, 'seizure-report'), new TextEncoder().encode('{}'), {
        headers: { encode: () => raw } as never,
      });
      await ops.flush();
    } finally {
      await ops.close();
    }
    await eventually(
      async () => ((await refused(SG, 'headers')) === 1 ? true : undefined),
      30_000,
      'the stored message refused for its headers',
    );
    expect((await fetch(`${hub.router.url}/healthz`)).status).toBe(200);
    await reachesHub(VN, 30_000);
    await reachesHub(SG, 30_000);
    expect(await refused(SG, 'headers')).toBe(1);
  }, 150_000);

  it('what Singapore’s operators store in their own outbox larger than its inbound stream at the hub stores is refused (size), terminated and counted, not offered again every few seconds; what that stream does store, even over the envelope limit, reaches the hub (where the router refuses it, audited, as anyone’s)', async () => {
    const ops = await hub.leaves[SG]!.connectAsOperator();
    const outbox = outboxStreamName(SG);
    try {
      const jsm = await jetstreamManager(ops);
      let terminated = 0;
      const advisories = ops.subscribe(
        `$JS.EVENT.ADVISORY.CONSUMER.MSG_TERMINATED.${outbox}.${LEAF_OUTBOX_CONSUMER}`,
        { callback: () => void terminated++ },
      );
      const atHub = await alertsAtHub(SG);
      const { config } = await jsm.streams.info(outbox);
      await jsm.streams.update(outbox, { ...config, max_msg_size: 1024 * 1024 - 4096 });
      try {
        const js = jetstream(ops);
        const subject = inboundSubject(SG, 'seizure-report');
        // larger than the inbound stream's max_msg_size
        await js.publish(subject, new Uint8Array(2 * STREAM_MAX_MESSAGE_BYTES));
        // within it, but not with the headers the router stores it with at the hub
        await js.publish(subject, new Uint8Array(STREAM_MAX_MESSAGE_BYTES - 8));
        // over the envelope limit, within the stream's: the default outbox takes it too
        await js.publish(subject, new Uint8Array(DEFAULT_MAX_ENVELOPE_BYTES + 1024));
        await eventually(
          async () => ((await refused(SG, 'size')) === 2 ? true : undefined),
          30_000,
          'the two messages the hub cannot store refused for their size',
        );
        await eventually(
          async () => ((await alertsAtHub(SG)) === atHub + 1 ? true : undefined),
          30_000,
          'the one it can store at the hub',
        );
        // terminated, not acked (as if taken) nor nak'ed (it would come back every five seconds)
        await eventually(
          async () =>
            terminated === 2 &&
            (await jsm.consumers.info(outbox, LEAF_OUTBOX_CONSUMER)).num_ack_pending === 0
              ? true
              : undefined,
          30_000,
          'both terminated, nothing pending on the outbox consumer',
        );
      } finally {
        advisories.unsubscribe();
        await jsm.streams.update(outbox, config);
      }
    } finally {
      await ops.close();
    }
    await reachesHub(VN, 30_000);
    await reachesHub(SG, 30_000);
    expect(await refused(SG, 'size')).toBe(2);
    expect((await fetch(`${hub.router.url}/healthz`)).status).toBe(200);
  }, 150_000);

  it('Singapore’s own software sending a message over the hub’s max_payload straight to the pull’s inbox (nats-server 2.9.10 forwards what a leaf sends, whatever its size) does not end the router: refused (reply), and Viet Nam’s alerts go on', async () => {
    const leaf = await singaporesSoftware();
    leaf.subscribe(`${leafJsApiPrefix(SG)}.>`);
    const before = await refused(SG, 'reply');
    const sent = new Set<string>();
    const flood = setInterval(() => {
      for (const r of leaf.requests())
        if (r.subject === NEXT && !sent.has(r.reply)) {
          sent.add(r.reply);
          // as JetStream delivers across a leaf connection: the stream's subject after "@" in
          // the reply, here with an ack that is not its own outbox's
          leaf.publish(
            r.reply,
            `$JS.ACK.${outboxStreamName(VN)}.${LEAF_OUTBOX_CONSUMER}.1.9.9.${Date.now()}000000.0@${inboundSubject(SG, 'seizure-report')}`,
            {},
            new Uint8Array(2 * 1024 * 1024),
          );
        }
    }, 100);
    try {
      await eventually(
        async () => ((await refused(SG, 'reply')) > before ? true : undefined),
        30_000,
        'the 2 MiB message refused',
      );
      expect((await fetch(`${hub.router.url}/healthz`)).status).toBe(200);
      await reachesHub(VN, 10_000);
    } finally {
      clearInterval(flood);
      leaf.close();
    }
  }, 150_000);

  it('Singapore’s own software answering every pull at once with 256 deliveries the router refuses: each counted, the routers pull again only after a pause and log one line, and Viet Nam’s alerts go on', async () => {
    const leaf = await singaporesSoftware();
    leaf.subscribe(`${leafJsApiPrefix(SG)}.>`);
    const before = await refused(SG, 'reply');
    const linesBefore = refusalLines();
    const answered = new Set<string>();
    const flood = setInterval(() => {
      for (const r of leaf.requests())
        if (r.subject === NEXT && !answered.has(r.reply)) {
          answered.add(r.reply);
          for (let i = 0; i < 256; i++)
            leaf.publish(
              r.reply,
              `$JS.ACK.${outboxStreamName(VN)}.${LEAF_OUTBOX_CONSUMER}.1.${i + 1}.${i + 1}.${Date.now()}000000.0@${inboundSubject(SG, 'seizure-report')}`,
              {},
              new TextEncoder().encode('junk'),
            );
        }
    }, 20);
    try {
      await eventually(() => (answered.size > 0 ? true : undefined), 30_000, 'a pull answered');
      const from = answered.size;
      await new Promise((r) => setTimeout(r, 5_000));
      // One pull a second at most while everything is refused (without the pause: 49 in 5 s,
      // measured on this machine).
      expect(answered.size - from).toBeLessThanOrEqual(8);
      expect(await refused(SG, 'reply')).toBeGreaterThanOrEqual(before + 256);
      // Every refusal counted, one line in 10 s logged.
      expect(refusalLines() - linesBefore).toBeLessThanOrEqual(2);
      await reachesHub(VN, 10_000);
    } finally {
      clearInterval(flood);
      leaf.close();
    }
  }, 150_000);

  it('Singapore’s own software answering every pull of its outbox with such a header, straight to the pull’s inbox, does not keep the hub from reading Viet Nam’s outbox', async () => {
    const leaf = await singaporesSoftware();
    leaf.subscribe(`${leafJsApiPrefix(SG)}.>`);
    const poisoned = new Set<string>();
    const poison = setInterval(() => {
      for (const r of leaf.requests())
        if (r.subject === NEXT && !poisoned.has(r.reply)) {
          poisoned.add(r.reply);
          leaf.publish(r.reply, '', { 'Bad Key': 'x' }, new Uint8Array());
        }
    }, 100);
    try {
      await eventually(() => (poisoned.size > 0 ? true : undefined), 30_000, 'a pull poisoned');
      // Viet Nam's fetch is waiting on its leaf: its alert comes within a second or two, where
      // one shared connection left it unread for as long as the poison went on.
      await reachesHub(VN, 10_000);
      await reachesHub(VN, 10_000);
    } finally {
      clearInterval(poison);
      leaf.close();
    }
    // Singapore's own reading comes back once its software stops: its connection found stale by
    // its pings and made again (about 30 s on this machine).
    await reachesHub(SG, 90_000);
  }, 180_000);
});
