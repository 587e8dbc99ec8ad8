import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  LEAF_OUTBOX_CONSUMER,
  inboundStreamName,
  inboundSubject,
  leafJsApiPrefix,
  outboxStreamName,
} from '@alert-hub/core';
import { devPkiPaths } from '@alert-hub/operator';
import {
  LOCAL_ROUTER,
  eventually,
  seizureReport,
  startLocalHub,
  type LocalHub,
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

async function refusedHeaders(agency: string): Promise<number> {
  const text = await (await fetch(`${hub.router.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('ahub_router_leaf_outbox_refused_total{') &&
        l.includes(`agency="${agency}"`) &&
        l.includes('why="headers"'),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

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
      async () => ((await refusedHeaders(SG)) === 1 ? true : undefined),
      30_000,
      'the stored message refused for its headers',
    );
    expect((await fetch(`${hub.router.url}/healthz`)).status).toBe(200);
    await reachesHub(VN, 30_000);
    await reachesHub(SG, 30_000);
    expect(await refusedHeaders(SG)).toBe(1);
  }, 150_000);

  it('Singapore’s own software answering every pull of its outbox with such a header, straight to the pull’s inbox, does not keep the hub from reading Viet Nam’s outbox', async () => {
    const cert = devPkiPaths(join(hub.certsDir, 'dev'), `${SG}.leaf`);
    const leaf = await fakeLeaf({
      port: hub.leaves[SG]!.links[0]!.port,
      caFile: cert.caFile,
      certFile: cert.certFile,
      keyFile: cert.keyFile,
      account: SG,
    });
    leaf.subscribe(`${leafJsApiPrefix(SG)}.>`);
    const next = `${leafJsApiPrefix(SG)}.CONSUMER.MSG.NEXT.${outboxStreamName(SG)}.${LEAF_OUTBOX_CONSUMER}`;
    const poisoned = new Set<string>();
    const poison = setInterval(() => {
      for (const r of leaf.requests())
        if (r.subject === next && !poisoned.has(r.reply)) {
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
      expect(poisoned.size).toBeGreaterThan(0);
    } finally {
      clearInterval(poison);
      leaf.close();
    }
  }, 150_000);
});
