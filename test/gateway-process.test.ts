import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { databaseFile, loadConfig as gatewayConfig } from '@alert-hub/gateway';
import { createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  makeHubFixture,
  provision,
  publishToFeed,
  seizureReport,
  writeConfig,
  OPEN_JS_API,
} from '@alert-hub/testkit';
import { HUBCTL, hubctl } from '@alert-hub/testkit';
import { SERVICE_NODE_ARGS, startService, type ServiceProcess } from '@alert-hub/testkit';

const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
const token = createToken();
let sg: ServiceProcess;
let vn: ServiceProcess;

function config(agency: string) {
  return writeConfig(fx.dir, agency, {
    agency,
    signingKey: fx.keyFiles[agency],
    trustDir: fx.trustDir,
    dataDir: join(fx.dir, `data-${agency}`),
    // Short, so the slow-body test ends quickly.
    http: { port: 0, requestTimeoutMs: 1500 },
    nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
    clients: [{ name: 'officers', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
  });
}

beforeAll(async () => {
  await provision(await nats.connect(), ['SG-NPARKS', 'VN-CUSTOMS']);
  [sg, vn] = await Promise.all([
    startService('gateway', config('SG-NPARKS')),
    startService('gateway', config('VN-CUSTOMS')),
  ]);
});
afterAll(async () => {
  await Promise.all([sg?.stop(), vn?.stop()]);
  fx.cleanup();
});

const env = () => ({ AHUB_TOKEN: token.token });

describe('gateway process with hubctl', () => {
  it('hubctl send: a valid alert is accepted (exit 0), an invalid one explained (exit 1)', async () => {
    const good = join(fx.dir, 'good.json');
    writeFileSync(good, JSON.stringify(seizureReport('SG-NPARKS')));
    const ok = await hubctl(['send', good, '--gateway', sg.url], { env: env() });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^accepted [0-9a-f-]{36} \(sequence \d+\)/);

    const bad = { ...seizureReport('SG-NPARKS'), handling: 'TLP:PINK' };
    const r = await hubctl(['send', '-', '--gateway', sg.url], {
      env: env(),
      input: JSON.stringify(bad),
    });
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('[ERR_SCHEMA_INVALID]');
    expect(r.stdout).toContain('  /handling: must be one of:');
  });

  it('hubctl send: NDJSON goes through the batch endpoint, one line per result', async () => {
    const nd = [seizureReport('SG-NPARKS'), { ...seizureReport('SG-NPARKS'), origin: 'VN-CUSTOMS' }]
      .map((a) => JSON.stringify(a))
      .join('\n');
    const r = await hubctl(['send', '-', '--gateway', sg.url], { env: env(), input: nd });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/#1 accepted/);
    expect(r.stdout).toMatch(/#2 .*\[ERR_ORIGIN_MISMATCH\]/);
    expect(r.stdout).toMatch(/1 accepted, 1 refused/);
  });

  it('hubctl send without a token says how to give one', async () => {
    const r = await hubctl(['send', '-', '--gateway', sg.url], {
      input: '{}',
      env: { AHUB_TOKEN: '' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/AHUB_TOKEN/);
  });

  it('hubctl feed lists the feed and the next cursor; --since continues; --follow streams', async () => {
    const nc = await nats.connect();
    const a = seizureReport('SG-NPARKS');
    await publishToFeed(nc, a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    let r: Awaited<ReturnType<typeof hubctl>> | undefined;
    for (let i = 0; i < 50; i++) {
      r = await hubctl(['feed', '--gateway', vn.url, '--json'], { env: env() });
      if (r.stdout.includes(a.id)) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    const items = r!.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; cursor: string });
    expect(items.map((i) => i.id)).toContain(a.id);
    const cursor = /next cursor: (\d+)/.exec(r!.stderr)?.[1];
    expect(cursor).toBe(items[items.length - 1]!.cursor);

    const follow = spawn(HUBCTL, ['feed', '--follow', '--since', cursor!, '--gateway', vn.url], {
      env: { ...process.env, ...env() },
    });
    let out = '';
    follow.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    const b = seizureReport('SG-NPARKS');
    await new Promise((res) => setTimeout(res, 300));
    await publishToFeed(nc, b, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    for (let i = 0; i < 100 && !out.includes(b.id); i++)
      await new Promise((res) => setTimeout(res, 50));
    follow.kill();
    expect(out).toContain(b.id);
    expect(out).not.toContain(a.id);
    // The text view names the agreement it came under and whether it may be shared onward.
    expect(out).toMatch(/SG-NPARKS\s+seizure-report\s+TLP:AMBER\s+TEST@1\s+onward:no\s/);
  });

  it('hubctl feed --since past the end: says so and hands out the last real cursor, never one past it', async () => {
    const nc = await nats.connect();
    const a = seizureReport('SG-NPARKS');
    await publishToFeed(nc, a, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    let last: string | undefined;
    for (let i = 0; i < 50 && last === undefined; i++) {
      const r = await hubctl(['feed', '--gateway', vn.url, '--json'], { env: env() });
      const items = r.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; cursor: string });
      last = items.find((x) => x.id === a.id) ? items[items.length - 1]!.cursor : undefined;
      if (last === undefined) await new Promise((res) => setTimeout(res, 100));
    }
    expect(last).toBeDefined();
    const beyond = String(Number(last) + 1000);
    const r = await hubctl(['feed', '--since', beyond, '--gateway', vn.url], { env: env() });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`the last cursor is ${last}`);
    // Resuming from 1000 past the end would skip the next 1000 items: the cursor to continue
    // from is the last real one.
    expect(/next cursor: (\d+)/.exec(r.stderr)?.[1]).toBe(last);
    // The gateway's own answer, for clients other than hubctl.
    const res = await fetch(`${vn.url}/v1/feed?after=${beyond}`, {
      headers: { authorization: `Bearer ${token.token}` },
    });
    expect(await res.json()).toEqual({ items: [], next: last, hasMore: false, last });
    // The next item is found from there, none skipped.
    const b = seizureReport('SG-NPARKS');
    await publishToFeed(nc, b, fx.keys['SG-NPARKS']!, fx.hubKey, 'VN-CUSTOMS');
    let ids: string[] = [];
    for (let i = 0; i < 50 && !ids.includes(b.id); i++) {
      const more = await hubctl(['feed', '--since', last!, '--gateway', vn.url, '--json'], {
        env: env(),
      });
      ids = more.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { id: string }).id);
      if (!ids.includes(b.id)) await new Promise((res) => setTimeout(res, 100));
    }
    expect(ids).toEqual([b.id]);
  });

  it('stops cleanly on SIGTERM', async () => {
    const extra = await startService('gateway', config('SG-NPARKS'), {
      env: { AHUB_HTTP_PORT: '0', AHUB_DATA_DIR: join(fx.dir, 'data-extra') },
    });
    expect(await extra.stop()).toBe(0);
    expect(extra.logs.some((l) => l['msg'] === 'shutting down')).toBe(true);
  });

  it('refuses a private key file that group or others can read', async () => {
    const { copyFileSync, chmodSync } = await import('node:fs');
    const loose = join(fx.dir, 'loose.jwk');
    copyFileSync(fx.keyFiles['SG-NPARKS']!, loose);
    chmodSync(loose, 0o644);
    const file = writeConfig(fx.dir, 'loose', {
      agency: 'SG-NPARKS',
      signingKey: loose,
      trustDir: fx.trustDir,
      dataDir: join(fx.dir, 'loose'),
      nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
    });
    const proc = spawn(process.execPath, ['services/gateway/dist/main.js', '--config', file], {
      cwd: process.cwd(),
    });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise((res) => proc.on('exit', res));
    expect(code).toBe(1);
    expect(err).toContain('[ERR_KEY_FILE_PERMISSIONS]');
    expect(err).toContain('chmod 600');
    expect(err).not.toContain('"d"');
  });

  it('intelligence at rest is private: the inbox database is 0600 in a 0700 directory, and looser permissions are refused at start', async () => {
    const { chmodSync, mkdirSync, statSync } = await import('node:fs');
    const mode = (p: string) => statSync(p).mode & 0o777;
    const dataDir = join(fx.dir, 'data-SG-NPARKS');
    const db = databaseFile(gatewayConfig({}, config('SG-NPARKS')));
    expect([mode(dataDir), mode(db), mode(`${db}-wal`)]).toEqual([0o700, 0o600, 0o600]);

    const run = async (dir: string) => {
      const file = writeConfig(fx.dir, `perm-${dir}`, {
        agency: 'SG-NPARKS',
        signingKey: fx.keyFiles['SG-NPARKS'],
        trustDir: fx.trustDir,
        dataDir: join(fx.dir, dir),
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
      });
      const proc = spawn(process.execPath, ['services/gateway/dist/main.js', '--config', file], {
        cwd: process.cwd(),
      });
      let err = '';
      proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      const code = await new Promise((res) => proc.on('exit', res));
      return { code, err };
    };
    mkdirSync(join(fx.dir, 'open-dir'), { mode: 0o755 });
    chmodSync(join(fx.dir, 'open-dir'), 0o755);
    expect(await run('open-dir')).toMatchObject({
      code: 1,
      err: expect.stringContaining('[ERR_DATA_PERMISSIONS]') as string,
    });
    mkdirSync(join(fx.dir, 'open-file'), { mode: 0o700 });
    const looseDb = databaseFile({
      ...gatewayConfig({}, config('SG-NPARKS')),
      dataDir: join(fx.dir, 'open-file'),
    });
    writeFileSync(looseDb, '', { mode: 0o644 });
    chmodSync(looseDb, 0o644);
    expect(await run('open-file')).toMatchObject({
      code: 1,
      err: expect.stringContaining('[ERR_DATA_PERMISSIONS]') as string,
    });
  });

  it('a body trickled byte by byte is timed out: the connection is closed, the gateway serves others', async () => {
    const { connect } = await import('node:net');
    const url = new URL(sg.url);
    const started = Date.now();
    const sockets = Array.from({ length: 5 }, () =>
      connect({ host: url.hostname, port: Number(url.port) }),
    );
    const closed = sockets.map(
      (sock) =>
        new Promise<string>((resolve) => {
          let got = '';
          sock.setEncoding('utf8').on('data', (d: string) => (got += d));
          sock.on('close', () => resolve(got));
          sock.on('error', () => undefined);
        }),
    );
    for (const sock of sockets)
      sock.write(
        `POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${token.token}\r\nContent-Length: 100000\r\n\r\n{`,
      );
    const timer = setInterval(() => {
      for (const sock of sockets) if (!sock.destroyed) sock.write(' ');
    }, 200);
    try {
      const answers = await Promise.all(closed);
      for (const a of answers) expect(a).toMatch(/^HTTP\/1\.1 408|^$/);
      // Well before the trickle would have ended (100,000 bytes at 5 per second).
      expect(Date.now() - started).toBeLessThan(20_000);
    } finally {
      clearInterval(timer);
      for (const sock of sockets) sock.destroy();
    }
    expect((await fetch(`${sg.url}/healthz`)).status).toBe(200);
  });

  it('bodies of millions of items, on the heap services run with: without a token refused before they are read, a batch of too many refused before it is parsed; the gateway lives', async () => {
    const gw = await startService(
      'gateway',
      writeConfig(fx.dir, 'SG-NPARKS-heap', {
        agency: 'SG-NPARKS',
        signingKey: fx.keyFiles['SG-NPARKS'],
        trustDir: fx.trustDir,
        dataDir: join(fx.dir, 'data-SG-NPARKS-heap'),
        http: { port: 0 },
        nats: { servers: [nats.url], jsApiPrefix: OPEN_JS_API },
        feed: { enabled: false },
        clients: [{ name: 'officers', tokenSha256: token.sha256, roles: ['submit', 'read-feed'] }],
      }),
      { nodeArgs: [...SERVICE_NODE_ARGS] },
    );
    try {
      // Just under the batch body limit (16 MiB): 5.5 million empty objects.
      const lines = Buffer.from('{}\n'.repeat(5_500_000));
      const array = Buffer.from(`[${'{},'.repeat(5_500_000)}{}]`);
      // node:http, not fetch: a refusal may come (and the connection close) before the whole
      // body is written, which fetch reports as a failed write, not as the answer.
      const post = (path: string, type: string, body: Buffer, auth: boolean) =>
        new Promise<{ status: number; code: string | undefined }>((resolve, reject) => {
          const req = request(
            `${gw.url}${path}`,
            {
              method: 'POST',
              headers: {
                'content-type': type,
                'content-length': body.length,
                ...(auth ? { authorization: `Bearer ${token.token}` } : {}),
              },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8').on('data', (d: string) => (text += d));
              res.on('end', () =>
                resolve({
                  status: res.statusCode ?? 0,
                  code: (JSON.parse(text) as { error?: { code: string } }).error?.code,
                }),
              );
            },
          );
          req.on('error', (err) => setTimeout(() => reject(err), 1000));
          req.end(body);
        });
      expect(await post('/v1/alerts', 'application/x-ndjson', lines, false)).toEqual({
        status: 401,
        code: 'ERR_UNAUTHENTICATED',
      });
      expect(await post('/v1/alerts:batch', 'application/json', array, false)).toEqual({
        status: 401,
        code: 'ERR_UNAUTHENTICATED',
      });
      // The single-alert route takes no more than http.bodyLimitBytes, whatever the type.
      expect((await post('/v1/alerts', 'application/x-ndjson', lines, true)).status).toBe(413);
      // The same millions nested, in one NDJSON line, or as blank lines: counted wherever they are.
      const nested = Buffer.from(`[[${'{},'.repeat(5_500_000)}{}]]`);
      const inMember = Buffer.from(`{"a":[${'{},'.repeat(5_500_000)}{}]}`);
      const oneLine = Buffer.from(`[${'{},'.repeat(5_500_000)}{}]\n`);
      const blankLines = Buffer.from('\n'.repeat(16 * 1024 * 1024 - 1024));
      for (const [type, body] of [
        ['application/x-ndjson', lines],
        ['application/json', array],
        ['application/json', nested],
        ['application/json', inMember],
        ['application/x-ndjson', oneLine],
        ['application/x-ndjson', blankLines],
      ] as const)
        expect(await post('/v1/alerts:batch', type, body, true)).toEqual({
          status: 413,
          code: 'ERR_BATCH_TOO_LARGE',
        });
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    } finally {
      // Alive to the end: a clean stop, not a process the heap limit ended.
      expect(await gw.stop()).toBe(0);
    }
  });
  it('refuses to start with an invalid configuration and lists every problem', async () => {
    const file = writeConfig(fx.dir, 'broken', {
      agency: 'sg',
      http: { port: 'eighty' },
      clients: [{ name: 'x' }],
    });
    const proc = spawn(process.execPath, ['services/gateway/dist/main.js', '--config', file], {
      cwd: process.cwd(),
    });
    let err = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const code = await new Promise((res) => proc.on('exit', res));
    expect(code).toBe(2);
    for (const p of [
      '/agency',
      '/signingKey',
      '/dataDir',
      '/http/port',
      '/clients/0/tokenSha256',
      '/clients/0/roles',
    ])
      expect(err).toContain(`${p}:`);
  });
});
