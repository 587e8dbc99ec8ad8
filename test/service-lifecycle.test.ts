import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { Streams, inboundStreamName } from '@alert-hub/core';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  makeHubFixture,
  OPEN_JS_API,
  provision,
  routerDrained,
  seizureAgreement,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';
import { HUBCTL, ROOT, hubctl } from '@alert-hub/testkit';
import { scrapeMetrics, startService, type ServiceProcess } from '@alert-hub/testkit';

// Start, readiness, shutdown and the 503-then-resend contract, on real processes
// (issue #15, bugs 1, 2, 3 and 5).
const AGENCIES = ['SG-NPARKS', 'VN-CUSTOMS', 'CN-GACC'];
const PARTNERS = ['VN-CUSTOMS', 'CN-GACC'];
const nats = useNatsServer();
const fx = makeHubFixture(AGENCIES);
const token = createToken();
const coordinator = createToken();
const prometheus = createToken();
const running: ServiceProcess[] = [];
let sender: ServiceProcess;
const partners: Record<string, ServiceProcess> = {};
let router: ServiceProcess;
let sentId = '';

function gatewayConfig(agency: string, extra: Record<string, unknown> = {}) {
  return writeConfig(fx.dir, `gw-${agency}`, {
    agency,
    signingKey: fx.keyFiles[agency],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, `data-${agency}`),
    http: { port: 0 },
    // A plain nats-server (no per-agency accounts): the JetStream API under its own name.
    nats: { servers: [nats.url], publishTimeoutMs: 1000, jsApiPrefix: OPEN_JS_API },
    retryAfterSeconds: 1,
    clients: [{ name: 'officers', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
    ...extra,
  });
}

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [seizureAgreement('WEN-ASIA', 'Asia', AGENCIES)],
    }),
  );
  await provision(await nats.connect(), AGENCIES);
  router = await startService(
    'router',
    writeConfig(fx.dir, 'router', {
      signingKey: fx.hubKeyFile,
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router'),
      nats: { servers: [nats.url] },
      http: { port: 0 },
      coordinators: [{ name: 'wco', tokenSha256: coordinator.sha256 }],
      metricsReaders: [{ name: 'prometheus', tokenSha256: prometheus.sha256 }],
    }),
  );
  sender = await startService('gateway', gatewayConfig('SG-NPARKS'));
  for (const p of PARTNERS) partners[p] = await startService('gateway', gatewayConfig(p));
  running.push(router, sender, ...Object.values(partners));
});
afterAll(async () => {
  await Promise.all(running.map((s) => s.stop()));
  fx.cleanup();
});

const auth = { authorization: `Bearer ${token.token}` };

async function feedIds(gw: ServiceProcess): Promise<string[]> {
  const res = await fetch(`${gw.url}/v1/feed?limit=1000`, { headers: auth });
  return ((await res.json()) as { items: { id: string }[] }).items.map((i) => i.id);
}

/** Opens `GET /v1/feed/stream` like `curl -N` and resolves once the stream has begun. */
function openStream(url: string): Promise<{ ended: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}/v1/feed/stream`, { headers: auth }, (res) => {
      const ended = new Promise<void>((r) => {
        res.on('end', r);
        res.on('close', r);
        res.on('error', () => r());
      });
      res.once('data', () => resolve({ ended }));
      res.resume();
    });
    req.on('error', reject);
    req.end();
  });
}

describe('services - shutdown, readiness, start-up and resending after a 503', () => {
  it('gateway - SIGTERM with an SSE client and hubctl feed --follow attached: streams end, exit 0 promptly', async () => {
    const gw = await startService(
      'gateway',
      gatewayConfig('VN-CUSTOMS', { dataDir: join(fx.dir, 'data-sigterm') }),
    );
    const stream = await openStream(gw.url);
    const follow = spawn(HUBCTL, ['feed', '--follow', '--gateway', gw.url], {
      env: { ...process.env, AHUB_TOKEN: token.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // hubctl is attached once the gateway counts two open feed streams.
    await eventually(async () => {
      const m = await (await fetch(`${gw.url}/metrics`)).text();
      return /ahub_gateway_feed_streams\S* 2\b/.test(m) || (await settle(follow, 300));
    }, 20_000);
    const started = Date.now();
    // stop() sends SIGTERM and would SIGKILL (exit code null) after 15 s.
    const code = await gw.stop(15_000);
    expect(code).toBe(0);
    await stream.ended;
    expect(Date.now() - started).toBeLessThan(15_000);
    follow.kill();
  }, 90_000);

  it('gateway - a 503 names the alert id; hubctl send resends under it; every partner gets one copy', async () => {
    const alert: Record<string, unknown> = { ...seizureReport('SG-NPARKS') };
    delete alert['id'];
    delete alert['issuedAt'];
    delete alert['origin'];
    const file = join(fx.dir, 'no-id.json');
    writeFileSync(file, JSON.stringify(alert));
    const pid = nats.server.pid!;
    const send = spawn(
      HUBCTL,
      ['send', file, '--gateway', sender.url, '--retries', '8', '--json'],
      {
        env: { ...process.env, AHUB_TOKEN: token.token },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    send.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    send.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    // Pause nats-server while the publish is in flight: the gateway's publish times out (503)
    // although the bytes are in the socket and JetStream stores them once it resumes.
    process.kill(pid, 'SIGSTOP');
    try {
      await eventually(() => err.includes('hub unavailable'), 20_000, 'a 503');
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const code = await new Promise<number | null>((r) => send.on('close', r));
    expect(code).toBe(0);
    const receipt = JSON.parse(out) as { id: string; duplicate: boolean };
    sentId = receipt.id;
    expect(receipt.duplicate, err).toBe(true);

    const nc = await nats.connect();
    await routerDrained(nc);
    for (const p of PARTNERS) {
      const ids = await eventually(async () => {
        const got = await feedIds(partners[p]!);
        return got.includes(receipt.id) ? got : undefined;
      }, 20_000);
      expect(ids.filter((id) => id === receipt.id)).toHaveLength(1);
      expect(ids).toHaveLength(1);
    }
  }, 120_000);

  it('backup - hubctl backup copies a live inbox and audit log; a gateway restored from the copy serves the alert', async () => {
    expect(sentId).not.toBe('');
    const backups = join(fx.dir, 'backups');
    const inbox = join(fx.dir, 'data-VN-CUSTOMS', 'gateway-VN-CUSTOMS.db');
    const restoredDir = join(backups, 'restored-VN');
    const r1 = await hubctl(
      ['backup', '--db', inbox, '--out', join(restoredDir, 'gateway-VN-CUSTOMS.db'), '--json'],
      {},
    );
    expect(r1.code, r1.stderr).toBe(0);
    expect(JSON.parse(r1.stdout)).toMatchObject({ integrity: 'ok' });
    const auditDb = readdirSync(join(fx.dir, 'router')).find((f) => f.endsWith('.db'))!;
    const auditCopy = join(backups, 'audit.db');
    const r2 = await hubctl([
      'backup',
      '--db',
      join(fx.dir, 'router', auditDb),
      '--out',
      auditCopy,
    ]);
    expect(r2.code, r2.stderr).toBe(0);
    expect(statSync(auditCopy).mode & 0o777).toBe(0o600);
    expect((await hubctl(['backup', '--db', inbox, '--out', auditCopy])).code).toBe(1);
    // The alert's journey is in the copy of the audit log.
    const trace = await hubctl(['audit', 'trace', sentId, '--db', auditCopy, '--json']);
    expect(trace.code, trace.stderr).toBe(0);
    expect(trace.stdout).toContain('VN-CUSTOMS');
    // A gateway started on the restored inbox (feed off: nothing new comes in) serves the alert.
    const restored = await startService(
      'gateway',
      gatewayConfig('VN-CUSTOMS', { dataDir: restoredDir, feed: { enabled: false } }),
    );
    try {
      const res = await fetch(`${restored.url}/v1/alerts/${sentId}`, { headers: auth });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ direction: 'received', id: sentId });
    } finally {
      await restored.stop();
    }
  }, 120_000);

  it('monitoring - every metric the shipped Prometheus rules name is exported by a running router or gateway', async () => {
    const rules = parseYaml(
      readFileSync(join(ROOT, 'deploy/prometheus/alert-hub.rules.yml'), 'utf8'),
    ) as { groups: { rules: { alert: string; expr: string }[] }[] };
    const alerts = rules.groups.flatMap((g) => g.rules);
    expect(alerts.map((r) => r.alert).sort()).toEqual([
      'AlertHubAuditCheckpointsNotPublished',
      'AlertHubAuditLogNew',
      'AlertHubAuditVerificationFailing',
      'AlertHubDeadLetters',
      'AlertHubFeedFull',
      'AlertHubFeedStreamFilling',
      'AlertHubInboundStreamFilling',
      'AlertHubLeafDeliveryRefused',
      'AlertHubLeafOutboxExpired',
      'AlertHubLeafOutboxUnread',
      'AlertHubNatsDown',
      'AlertHubOriginBudgetSpent',
      'AlertHubRouterBacklogGrowing',
      'AlertHubRouterBacklogLarge',
      'AlertHubUndeliveredAlerts',
      'AlertHubWitnessFailing',
    ]);
    const exported = new Set<string>();
    for (const [s, reader] of [
      [router, prometheus.token],
      [sender, undefined],
    ] as const) {
      const text = await scrapeMetrics(s.url, reader);
      for (const m of text.matchAll(/^# TYPE (\S+) /gm)) exported.add(m[1]!);
      // The backlog gauges are read from JetStream at each scrape: present means it answered.
      expect(text).toMatch(/^ahub_(router_consumer|gateway_feed)_pending\{[^}]*\} \d+$/m);
    }
    // So is how full each stream is: present for every agency's inbound stream, a ratio; the
    // rule on it watches each agency's stream and not an older hub's shared one.
    const routerText = await scrapeMetrics(router.url, prometheus.token);
    const fill = (stream: string) =>
      new RegExp(
        `^ahub_router_stream_fill_ratio\\{[^}]*stream="${stream}"[^}]*\\} (\\S+)$`,
        'm',
      ).exec(routerText);
    for (const a of AGENCIES) expect(fill(inboundStreamName(a)), a).not.toBeNull();
    const sent = fill(inboundStreamName('SG-NPARKS'));
    expect(Number(sent![1])).toBeGreaterThan(0);
    expect(Number(sent![1])).toBeLessThan(1);
    const filling = alerts.find((r) => r.alert === 'AlertHubInboundStreamFilling')!;
    const selector = new RegExp(`^(?:${/stream=~"([^"]+)"/.exec(filling.expr)![1]})$`);
    for (const a of AGENCIES) expect(selector.test(inboundStreamName(a)), a).toBe(true);
    expect(selector.test(Streams.Inbound)).toBe(false);
    // The shared feed stream has its own rule, on its own series.
    const feeds = alerts.find((r) => r.alert === 'AlertHubFeedStreamFilling')!;
    expect(feeds.expr).toContain(`stream="${Streams.Feeds}"`);
    expect(fill(Streams.Feeds)).not.toBeNull();
    // Exported by a gateway behind a leaf node alone (its leaf connection), which
    // services/gateway/test/leaf-outbox.test.ts reads.
    const leafOnly = ['ahub_gateway_outbox_nats_connected'];
    for (const r of alerts) {
      const named = [...r.expr.matchAll(/\bahub_[a-z_]+/g)].map((m) => m[0]);
      expect(named.length, r.alert).toBeGreaterThan(0);
      for (const metric of named)
        if (!leafOnly.includes(metric)) expect(exported, `${r.alert}: ${metric}`).toContain(metric);
    }
    expect(exported).not.toContain(leafOnly[0]);
  });

  it("monitoring - the router's /metrics answers only a metrics reader's, operator's or coordinator's token; its probes and a gateway's /metrics answer anyone", async () => {
    const get = (url: string, authorization?: string) =>
      fetch(url, authorization ? { headers: { authorization } } : {});
    // Its series name agencies (who sends how much): nothing of them without a token.
    for (const authorization of [undefined, `Bearer ${token.token}`, 'Bearer', prometheus.sha256]) {
      const res = await get(`${router.url}/metrics`, authorization);
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
      const body = await res.text();
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'ERR_UNAUTHENTICATED' } });
      expect(body).not.toContain('ahub_');
    }
    for (const reader of [prometheus.token, coordinator.token])
      expect(await scrapeMetrics(router.url, reader)).toMatch(/^ahub_router_consumer_pending\{/m);
    // Liveness and readiness stay open (a supervisor's probe has no token), and a gateway's
    // series are its own agency's.
    expect((await get(`${router.url}/healthz`)).status).toBe(200);
    expect((await get(`${router.url}/readyz`)).status).toBe(200);
    expect(await scrapeMetrics(sender.url)).toMatch(/^ahub_gateway_/m);
  });

  it('router and gateway - /readyz follows the NATS connection; disconnect and reconnect are logged', async () => {
    const ready = async (s: ServiceProcess) => {
      const res = await fetch(`${s.url}/readyz`);
      return {
        status: res.status,
        nats: ((await res.json()) as { checks: { nats: string } }).checks.nats,
      };
    };
    expect(await ready(router)).toEqual({ status: 200, nats: 'connected' });
    await nats.server.kill();
    for (const s of [router, sender]) {
      expect(
        await eventually(async () => {
          const r = await ready(s);
          return r.status === 503 && r.nats === 'reconnecting' ? r : undefined;
        }, 20_000),
      ).toBeTruthy();
      // The log line travels through a pipe: it may arrive a moment after the state changed.
      await eventually(
        () => s.logs.some((l) => l['msg'] === 'NATS disconnected; reconnecting'),
        10_000,
        `${s.kind} logs the disconnect`,
      );
    }
    await nats.server.restart();
    for (const s of [router, sender]) {
      await eventually(async () => (await ready(s)).status === 200, 30_000, 'ready again');
      await eventually(
        () => s.logs.some((l) => l['msg'] === 'NATS reconnected'),
        10_000,
        `${s.kind} logs the reconnect`,
      );
    }
  }, 120_000);

  it('start-up - an unreachable NATS is logged with its address, retried, then exit 1', async () => {
    const file = gatewayConfig('SG-NPARKS', {
      dataDir: join(fx.dir, 'data-unreachable'),
      nats: { servers: ['tls://127.0.0.1:1'], connectAttempts: 2, connectRetryMs: 100 },
    });
    const r = await runMain('gateway', file);
    expect(r.code).toBe(1);
    const lines = r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const tries = lines.filter((l) => String(l['msg']).startsWith('NATS unreachable'));
    expect(tries).toHaveLength(2);
    expect(tries[0]!['servers']).toEqual(['tls://127.0.0.1:1']);
    expect(r.stderr).toContain('[ERR_NATS_UNREACHABLE]');
  });

  it('start-up - schema errors, missing files and the agreements file are reported at once, exit 2', async () => {
    const agreementsFile = join(fx.dir, 'backwards.yaml');
    writeFileSync(
      agreementsFile,
      toYaml({
        agreements: [
          {
            id: 'BACKWARDS',
            version: 1,
            title: 'ends before it starts',
            parties: ['SG', 'VN'],
            alertTypes: ['seizure-report'],
            maxHandling: 'TLP:AMBER',
            validFrom: '2020-01-01T00:00:00Z',
            validUntil: '2019-01-01T00:00:00Z',
          },
        ],
      }),
    );
    const file = writeConfig(fx.dir, 'router-broken', {
      signingKey: join(fx.dir, 'no-such-key.jwk'),
      trustDir: fx.trustDir,
      agreementsFile,
      dataDir: join(fx.dir, 'router-broken'),
      http: { port: 'eighty' },
    });
    const r = await runMain('router', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('[ERR_CONFIG_INVALID]');
    expect(r.stderr).toMatch(/^\s+\/http\/port:/m);
    expect(r.stderr).toMatch(/^\s+\/signingKey: no such file/m);
    expect(r.stderr).toMatch(
      /^\s+\/agreementsFile: .*\/agreements\/0\/validUntil: .*must be after validFrom/m,
    );
  });

  it('start-up - a TLS section with certFile but no keyFile is a configuration error (exit 2)', async () => {
    const file = gatewayConfig('SG-NPARKS', {
      nats: { servers: [nats.url], tls: { caFile: fx.hubKeyFile, certFile: fx.hubKeyFile } },
    });
    const r = await runMain('gateway', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('/nats/tls:');
    expect(r.stderr).toContain('keyFile');
  });
});

/** Resolves true if the child has exited within `ms` (it should not have). */
async function settle(child: ReturnType<typeof spawn>, ms: number): Promise<boolean> {
  await new Promise((r) => setTimeout(r, ms));
  if (child.exitCode !== null) throw new Error('hubctl feed --follow exited');
  return false;
}

function runMain(kind: 'gateway' | 'router', file: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const proc = spawn(process.execPath, [`services/${kind}/dist/main.js`, '--config', file], {
      cwd: process.cwd(),
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    proc.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
