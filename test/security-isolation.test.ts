import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { Streams, agencyPermissions, inboxPrefix } from '@alert-hub/core';
import { loadConfig as gatewayConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { loadConfig as routerConfig, startRouter, type Router } from '@alert-hub/router';
import { createDevPki, devPkiPaths, renderNatsSecurityConfig } from '@alert-hub/operator';
import { connectNats, createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'KE-KWS'];
const fx = makeHubFixture(AGENCIES);
const pkiDir = join(fx.dir, 'certs', 'dev');
const tls = (who: string) => {
  const p = devPkiPaths(pkiDir, who);
  return { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile };
};
const securityConfig = async (
  overrides?: Parameters<typeof renderNatsSecurityConfig>[0]['permissionOverrides'],
) => {
  await createDevPki({ dir: pkiDir, principals: ['HUB', ...AGENCIES, 'XX-ROGUE'] });
  const p = devPkiPaths(pkiDir);
  return renderNatsSecurityConfig({
    agencies: AGENCIES,
    routers: ['HUB'],
    tls: { caFile: p.caFile, certFile: p.serverCertFile, keyFile: p.serverKeyFile },
    ...(overrides ? { permissionOverrides: overrides } : {}),
  });
};
const nats = useNatsServer({ config: () => securityConfig() });
// A second server whose permissions were (deliberately) set wrong: SG-NPARKS may publish on every inbound subject.
const lax = useNatsServer({
  config: () =>
    securityConfig({
      'SG-NPARKS': {
        ...agencyPermissions('SG-NPARKS'),
        publish: ['ahub.in.>', ...agencyPermissions('SG-NPARKS').publish.slice(1)],
      },
    }),
});
const token = createToken();
const { log } = memoryLogger('security');
const running: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const r of running.reverse()) await r.close();
  fx.cleanup();
});

async function as(who: string, url = nats.url): Promise<NatsConnection & { violations: string[] }> {
  const nc = await connectNats({
    servers: url,
    name: who,
    inboxPrefix: inboxPrefix(who),
    tls: tls(who),
  });
  const violations: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') violations.push(String(s.error));
  })();
  running.push({ close: () => nc.close() });
  return Object.assign(nc, { violations });
}

async function startHub(
  url: string,
  tag: string,
): Promise<{ router: Router; sg: Gateway; vn: Gateway }> {
  const agreementsFile = join(fx.dir, `agreements-${tag}.yaml`);
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'SG-VN',
          version: 1,
          title: 't',
          parties: ['SG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  const router = await startRouter(
    routerConfig(
      {},
      writeConfig(fx.dir, `router-${tag}`, {
        instance: tag,
        signingKey: fx.hubKeyFile,
        trustDir: fx.trustDir,
        agreementsFile,
        dataDir: join(fx.dir, `router-${tag}`),
        nats: { servers: [url], tls: tls('HUB') },
        http: { enabled: false },
      }),
    ),
    { log },
  );
  running.push(router);
  const gw = async (agency: string) => {
    const g = await startGateway(
      gatewayConfig(
        {},
        writeConfig(fx.dir, `gw-${agency}-${tag}`, {
          agency,
          signingKey: fx.keyFiles[agency],
          trustDir: fx.trustDir,
          dataDir: join(fx.dir, `gw-${agency}-${tag}`),
          http: { port: 0 },
          nats: { servers: [url], tls: tls(agency) },
          clients: [{ name: 'c', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
        }),
      ),
      { log },
    );
    running.push(g);
    return g;
  };
  return { router, sg: await gw('SG-NPARKS'), vn: await gw('VN-CUSTOMS') };
}

describe('isolation - least privilege is enough for the hub to work', () => {
  it('a gateway publishes its own alerts and consumes its own feed with only its own permissions', async () => {
    const { sg, vn } = await startHub(nats.url, 'main');
    const a = seizureReport('SG-NPARKS');
    const res = await fetch(`${sg.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token.token}` },
      body: JSON.stringify(a),
    });
    expect(res.status).toBe(202);
    await eventually(() => vn.store.receivedById(a.id), 10_000, 'the alert in the partner feed');
    expect((await fetch(`${vn.url}/readyz`)).status).toBe(200);
  });
});

describe('isolation - what agency X cannot do to agency Y', () => {
  it('cannot publish into Y’s inbound subjects', async () => {
    const x = await as('SG-NPARKS');
    await expect(
      jetstream(x).publish('ahub.in.VN-CUSTOMS.seizure-report', 'forged', { timeout: 2000 }),
    ).rejects.toThrow(/Permissions Violation for Publish to "ahub.in.VN-CUSTOMS.seizure-report"/);
    x.publish('ahub.in.VN-CUSTOMS.seizure-report', 'forged, fire and forget');
    await x.flush();
    const jsm = await jetstreamManager(await as('HUB'), { checkAPI: false });
    expect(
      // Viet Nam's own gateway publishes its delivery receipts there; nothing else may appear.
      (
        await jsm.streams.info(Streams.Inbound, {
          subjects_filter: 'ahub.in.VN-CUSTOMS.seizure-report',
        })
      ).state.subjects ?? {},
    ).toEqual({});
  });
  it('cannot subscribe to Y’s feed subjects, nor to the whole feed', async () => {
    const x = await as('KE-KWS');
    const got: string[] = [];
    for (const subject of ['ahub.feed.VN-CUSTOMS.>', 'ahub.feed.>', 'ahub.in.>']) {
      const sub = x.subscribe(subject);
      void (async () => {
        for await (const m of sub) got.push(m.subject);
      })().catch(() => undefined);
    }
    await x.flush();
    await eventually(() => x.violations.length >= 3, 5000, 'three subscription violations');
    expect(x.violations.join('\n')).toMatch(
      /Permissions Violation for Subscription to "ahub.feed.VN-CUSTOMS.>"/,
    );
    // Traffic flows meanwhile: none of it reaches X.
    await publishInbound(await as('SG-NPARKS'), seizureReport('SG-NPARKS'), fx.keys['SG-NPARKS']!);
    await new Promise((r) => setTimeout(r, 500));
    expect(got).toEqual([]);
  });
  it('cannot consume, inspect or ack Y’s feed consumer', async () => {
    const x = await as('KE-KWS');
    await expect(jetstream(x).consumers.get(Streams.Feeds, 'feed-VN-CUSTOMS')).rejects.toThrow(
      /Permissions Violation/,
    );
    const jsm = await jetstreamManager(x, { checkAPI: false, timeout: 2000 });
    await expect(jsm.consumers.info(Streams.Feeds, 'feed-VN-CUSTOMS')).rejects.toThrow(
      /Permissions Violation/,
    );
    x.publish('$JS.ACK.AHUB_FEEDS.feed-VN-CUSTOMS.1.1.1.0.0');
    await x.flush();
    await eventually(
      () => x.violations.some((v) => v.includes('$JS.ACK.AHUB_FEEDS.feed-VN-CUSTOMS')),
      5000,
      'ack violation',
    );
  });
  it('cannot read Y’s replies or anyone’s (the shared _INBOX.> is closed)', async () => {
    const x = await as('KE-KWS');
    x.subscribe('_INBOX.VN-CUSTOMS.>');
    x.subscribe('_INBOX.>');
    await x.flush();
    await eventually(
      () => x.violations.filter((v) => v.includes('_INBOX')).length >= 2,
      5000,
      'inbox violations',
    );
  });
  it('cannot manage streams or consumers', async () => {
    const x = await as('VN-CUSTOMS');
    const jsm = await jetstreamManager(x, { checkAPI: false, timeout: 2000 });
    await expect(jsm.streams.delete(Streams.Feeds)).rejects.toThrow(/Permissions Violation/);
    await expect(
      jsm.consumers.add(Streams.Feeds, { durable_name: 'spy', filter_subject: 'ahub.feed.>' }),
    ).rejects.toThrow(/Permissions Violation/);
    await expect(jsm.streams.info(Streams.Inbound)).rejects.toThrow(/Permissions Violation/);
  });
  it('cannot connect without a valid certificate', async () => {
    const p = devPkiPaths(pkiDir);
    await expect(
      connectNats(
        { servers: nats.url, name: 'no-cert', tls: { caFile: p.caFile } },
        { timeoutMs: 2000 },
      ),
    ).rejects.toThrow();
    const otherCa = join(fx.dir, 'other-pki');
    await createDevPki({ dir: otherCa, principals: ['SG-NPARKS'] });
    const o = devPkiPaths(otherCa, 'SG-NPARKS');
    await expect(
      connectNats(
        {
          servers: nats.url,
          name: 'foreign-ca',
          tls: { caFile: p.caFile, certFile: o.certFile, keyFile: o.keyFile },
        },
        { timeoutMs: 2000 },
      ),
    ).rejects.toThrow();
    // Issued by the hub's CA, but to nobody the configuration knows.
    await expect(
      connectNats({ servers: nats.url, name: 'rogue', tls: tls('XX-ROGUE') }, { timeoutMs: 2000 }),
    ).rejects.toThrow(/Authorization Violation/i);
  });
});

describe('isolation - the router is the second line of defence', () => {
  it('with permissions set wrong, an X-signed alert on Y’s subject is still refused and never forwarded', async () => {
    const { router } = await startHub(lax.url, 'lax');
    const x = await as('SG-NPARKS', lax.url);
    const a = seizureReport('SG-NPARKS');
    const ack = await publishInbound(x, a, fx.keys['SG-NPARKS']!, { subjectOrigin: 'VN-CUSTOMS' }); // NATS let it through
    expect(ack.seq).toBeGreaterThan(0);
    await eventually(
      () => router.store.routed(a.id) === undefined && auditHas(router, ack.seq),
      10_000,
      'the refusal in the audit log',
    );
    expect(
      (await feedMessages(await as('HUB', lax.url))).some((m) => m.msgId.startsWith(a.id)),
    ).toBe(false);
  });
});

function auditHas(router: Router, streamSeq: number): boolean {
  return (
    router.store.audit.db
      .prepare(
        "SELECT 1 FROM audit WHERE stream_seq = ? AND event = 'rejected' AND reason_code = 'ERR_SUBJECT_MISMATCH'",
      )
      .get(streamSeq) !== undefined
  );
}
