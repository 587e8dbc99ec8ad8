import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as tcpConnect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findNatsServer } from '@alert-hub/testkit';
import { eventually, seizureReport } from '@alert-hub/testkit';
import { HUBCTL, ROOT } from '@alert-hub/testkit';

/**
 * Every command README.md shows, run as written from an empty working directory: the operator's
 * walk-through first (keys, certificates, nats-server with the generated configuration, tokens,
 * router, gateway over HTTPS), then the sender's, the partner's and the coordinator's commands
 * against that hub, then key rotation. What the test changes, and only that: free ports for
 * 4222/8222/8090/8080, `npx hubctl` and `services/…` pointed at this repository, placeholders
 * (`<kid>`, `<alertId>`, tokens) filled with real values, and the example host name resolved to
 * 127.0.0.1. Lines that build or test the repository itself are run by CI, not here.
 */
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'ahub-readme-'));
const background: ChildProcess[] = [];
afterAll(async () => {
  for (const p of background.reverse()) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      await new Promise((r) => {
        const t = setTimeout(() => {
          p.kill('SIGKILL');
          r(undefined);
        }, 10_000);
        p.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Fenced blocks of a language under each `##`/`###` heading, in order. */
function blocks(lang: string): { section: string; text: string }[] {
  const out: { section: string; text: string }[] = [];
  let section = '';
  const re = /^(#{2,3}) (.*)$|^```(\w*)\n([\s\S]*?)^```$/gm;
  for (let m; (m = re.exec(readme));) {
    if (m[1]) section = m[2]!;
    else if (m[3] === lang) out.push({ section, text: m[4]! });
  }
  return out;
}

/** The command lines of a section's `sh` blocks (comments after `#` kept: bash ignores them). */
function commands(section: RegExp): string[] {
  return blocks('sh')
    .filter((b) => section.test(b.section))
    .flatMap((b) => b.text.split('\n'))
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });

const ports: Record<string, number> = {};
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env['PATH'] ?? ''}:/usr/sbin`,
  NATS_SERVER_BIN: findNatsServer(process.env),
};
const values: Record<string, string> = {};

function rewrite(line: string): string {
  let l = line
    .replace(/\bnpx hubctl\b/g, HUBCTL)
    .replace(/\bnode services\//g, `node ${ROOT}services/`)
    .replace(/\bnats-server -c/g, `${env['NATS_SERVER_BIN']} -c`)
    .replace(/https:\/\/gateway\.example\.org:8080/g, `https://127.0.0.1:${ports['8080']}`);
  for (const [k, v] of Object.entries(values)) l = l.split(k).join(v);
  return l;
}

function run(line: string, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('bash', ['-c', rewrite(line)], { cwd: dir, env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts a `… &` line and waits until it serves. */
async function startBackground(line: string, ready: (out: string) => boolean | Promise<boolean>) {
  const child = spawn('bash', ['-c', `exec ${rewrite(line.replace(/&\s*(#.*)?$/, ''))}`], {
    cwd: dir,
    env,
  });
  background.push(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`${line} exited: ${out}`);
      return ready(out);
    },
    // Generous: on a loaded two-core machine a service can take a minute to start.
    180_000,
    line,
  );
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = tcpConnect(port, '127.0.0.1')
      .on('connect', () => {
        s.destroy();
        resolve(true);
      })
      .on('error', () => resolve(false));
  });

async function expectOk(line: string) {
  const r = await run(line);
  expect(r.code, `${line}\n${r.stdout}\n${r.stderr}`).toBe(0);
  return r;
}

describe('README - every command works as written', () => {
  it('the sh blocks hold only commands this test runs, or that CI runs (npm ci, npm test, npm run …, docker compose)', () => {
    const all = blocks('sh')
      .flatMap((b) => b.text.split('\n'))
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    const here = [
      ...commands(/^For the operators$|^A hub by hand/),
      ...commands(/^For a customs authority/),
      ...commands(/^For a partner agency/),
      ...commands(/^For a coordinator/),
    ];
    const byCi = all.filter((l) => /^(npm (ci|test|run \S+)|docker compose)/.test(l));
    expect([...here, ...byCi].sort()).toEqual([...all].sort());
  });

  it('operators, senders, partners and coordinators: each command exits 0 and does what it says', async () => {
    for (const p of ['4222', '8222', '8090', '8080', '8081']) ports[p] = await freePort();
    for (const b of blocks('yaml')) {
      const name = /^# (\S+\.yaml)\n/.exec(b.text)?.[1];
      if (name) writeFileSync(join(dir, name), b.text);
    }
    const portify = (line: string) =>
      line
        .replace(/\b(4222|8222)\b/g, (p) => String(ports[p]))
        .replace(/\b8090\b/, String(ports['8090']));

    // The operator's walk-through, in the README's order.
    for (const raw of commands(/^A hub by hand/)) {
      const line = portify(raw);
      if (/^nats-server /.test(line)) {
        await startBackground(line, () => portOpen(ports['4222']!));
      } else if (/services\/router\/dist\/main\.js/.test(line)) {
        fill('router.yaml');
        await startBackground(line, (out) => out.includes('"router listening"'));
      } else if (/services\/gateway\/dist\/main\.js/.test(line)) {
        fill(/--config (\S+)/.exec(line)![1]!);
        await startBackground(line, (out) => out.includes('"gateway listening"'));
      } else if (/tokens create/.test(line)) {
        const r = await expectOk(line);
        const name = /--name (\S+)/.exec(line)![1]!;
        if (name === 'vn-analysts') env['T'] = /(ahub_[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
        values[name === 'wco-analyst' ? '<coordinator tokenSha256>' : `<${name} tokenSha256>`] =
          /tokenSha256: ([0-9a-f]{64})/.exec(r.stdout)![1]!;
        if (name === 'risk-engine')
          values['ahub_...'] = /(ahub_[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
      } else if (/keys (rotate|revoke)/.test(line)) {
        continue; // after the others, below
      } else {
        await expectOk(line);
      }
    }

    // The sender: an alert without id, origin and issuedAt, as the README tells them.
    const { id: _id, origin: _o, issuedAt: _i, ...bare } = seizureReport('SG-NPARKS');
    writeFileSync(join(dir, 'alert.json'), JSON.stringify(bare));
    writeFileSync(
      join(dir, 'alerts.ndjson'),
      [bare, { ...bare, handling: 'TLP:GREEN' }].map((a) => JSON.stringify(a)).join('\n'),
    );
    const sender = commands(/^For a customs authority/);
    const exportLine = sender.find((l) => l.startsWith('export '))!;
    for (const [, k, v] of rewrite(exportLine).matchAll(/(\w+)=(\S+)/g)) env[k!] = v!;
    env['NODE_EXTRA_CA_CERTS'] = join(dir, 'certs/dev/ca.pem');
    expect(env['AHUB_GATEWAY_URL']).toMatch(/^https:\/\//);
    for (const line of sender.filter((l) => !l.startsWith('export '))) {
      const r = await expectOk(line);
      if (/send alert\.json/.test(line)) values['<alertId>'] = /accepted (\S+)/.exec(r.stdout)![1]!;
      if (/send alerts\.ndjson/.test(line)) expect(r.stdout).toMatch(/^#1 accepted/m);
    }

    // The partner's commands (against the same gateway: its feed is its own).
    for (const line of commands(/^For a partner agency/)) {
      if (/--follow/.test(line)) {
        const r = await run(line, 3000);
        expect(r.stderr).not.toMatch(/hubctl:/);
        continue;
      }
      const r = await expectOk(line);
      if (/--since 120/.test(line)) expect(r.stderr).toMatch(/past the end of this feed/);
    }

    // The coordinator's, once the router has written the alert's journey.
    await eventually(
      async () => (await run(`npx hubctl audit trace <alertId> --db audit.db`)).code === 0,
      30_000,
      'the audit trace of the sent alert',
    );
    // The anchor: Viet Nam's gateway (plain HTTP here) serves the checkpoint it witnessed; the
    // hub key is the router's kid in the trust store.
    values['<gateway>'] = `http://127.0.0.1:${ports['8081']}`;
    const hubKeys = await expectOk('npx hubctl keys list --agency HUB --json');
    values['<kid>'] = (JSON.parse(hubKeys.stdout) as { kid: string }[])[0]!.kid;
    for (const line of commands(/^For a coordinator/)) {
      if (/audit verify/.test(line)) {
        // Witnesses cosign checkpoints as they come: wait until two have.
        await eventually(async () => (await run(line)).code === 0, 60_000, line);
      }
      await expectOk(line);
    }
    expect(readFileSync(join(dir, 'audit.csv'), 'utf8').split('\n').length).toBeGreaterThan(2);

    // Key rotation, then revoking the key it replaced.
    const rotate = await expectOk(commands(/^A hub by hand/).find((l) => / keys rotate /.test(l))!);
    void rotate;
    const list = await expectOk('npx hubctl keys list --agency SG-NPARKS --json');
    const keys = JSON.parse(list.stdout) as { kid: string; notBefore: string }[];
    values['<old kid>'] = [...keys].sort((a, b) => a.notBefore.localeCompare(b.notBefore))[0]!.kid;
    await expectOk(commands(/^A hub by hand/).find((l) => / keys revoke /.test(l))!);
  }, 900_000);
});

/** Writes a configuration with the placeholders the README names filled in. */
function fill(file: string) {
  const path = join(dir, file);
  let text = readFileSync(path, 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.split(k).join(v);
  text = text
    .replace(/127\.0\.0\.1:4222/g, `127.0.0.1:${ports['4222']}`)
    .replace(/port: 8090/, `port: ${ports['8090']}`)
    .replace(/port: 8080/, `port: ${ports['8080']}`)
    .replace(/port: 8081/, `port: ${ports['8081']}`);
  writeFileSync(path, text);
}
