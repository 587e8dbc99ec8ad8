import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findNatsServer, freePort } from '@alert-hub/testkit';
import { eventually } from '@alert-hub/testkit';
import { ROOT } from '@alert-hub/testkit';

/**
 * Every command README.md shows, run as written, as a newcomer runs them: in a fresh clone after
 * `npm ci`, from a shell that has none of npm's, the test runner's or alert-hub's variables. The
 * clone is stood in for by a new directory of mode 0755 (what `git clone` makes) holding a link
 * to each top-level entry of this repository (its node_modules and built `dist/` included), so
 * that `npx hubctl` has to find the CLI by itself and `../services/…` has to be where the README
 * says. The operator's walk-through comes first (its own private directory, keys, certificates,
 * nats-server with the generated configuration, tokens, router, gateways over HTTPS), then the
 * sender's, the partner's and the coordinator's commands against that hub from the same
 * directory, then key rotation and revocation with the reloads the README gives. What the test
 * changes, and only that: free ports for 4222/8222/8090/8080/8081, `nats-server` pointed at the
 * binary the harness found, placeholders (`<kid>`, `<alertId>`, `<router>`, `<old kid>`,
 * `<… pid>`, `ahub_...`, `$C`) filled with real values, and the example host name resolved to
 * 127.0.0.1. Lines that build or test the repository itself are run by CI, not here.
 */
const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
const clone = mkdtempSync(join(tmpdir(), 'ahub-readme-'));
chmodSync(clone, 0o755);
for (const entry of readdirSync(ROOT))
  if (entry !== '.git' && entry !== 'hub') symlinkSync(join(ROOT, entry), join(clone, entry));
/** The working directory: a `cd` in a command line moves it, as in the reader's shell. */
let cwd = clone;

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
  rmSync(clone, { recursive: true, force: true });
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

// Below the kernel's ephemeral range: a port from listen(0) stays free only until the kernel
// hands it to someone else's outgoing connection, and the services bind theirs a minute later.

const ports: Record<string, number> = {};
const NATS_SERVER = findNatsServer(process.env);
/**
 * A newcomer's shell: no npm_* variables (`npm test` sets them, and npm_config_local_prefix would
 * let `npx` find the repository from anywhere), no node_modules/.bin in PATH, no
 * NODE_EXTRA_CA_CERTS and no AHUB_* unless the README's commands set them.
 */
const env: Record<string, string> = Object.fromEntries(
  Object.entries(process.env as Record<string, string>)
    .filter(
      ([k]) =>
        !/^npm_/i.test(k) &&
        !k.startsWith('AHUB_') &&
        !['INIT_CWD', 'NODE_EXTRA_CA_CERTS', 'NATS_SERVER_BIN'].includes(k),
    )
    .map(([k, v]) =>
      k === 'PATH'
        ? [
            k,
            v
              .split(':')
              .filter((d) => !d.includes('node_modules'))
              .join(':'),
          ]
        : [k, v],
    ),
);
const values: Record<string, string> = {};

function rewrite(line: string): string {
  let l = line
    .replace(/^nats-server -c/g, `${NATS_SERVER} -c`)
    .replace(/https:\/\/gateway\.example\.org:8080/g, `https://127.0.0.1:${ports['8080']}`);
  for (const [k, v] of Object.entries(values)) l = l.split(k).join(v);
  return l;
}

/** The directory a line leaves its shell in, when it ends with `cd <dir>`. */
function cdOf(line: string): string | undefined {
  return /(?:^|&&|;)\s*cd\s+([^\s#;&]+)\s*(?:#.*)?$/.exec(line)?.[1];
}

function run(line: string, timeoutMs = 60_000) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
    // Its own process group: a timeout stops npx and the hubctl it started, not only bash.
    const child = spawn('bash', ['-c', rewrite(line)], { cwd, env, detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      const to = cdOf(line);
      if (code === 0 && to !== undefined) cwd = resolve(cwd, to);
      done({ code, stdout, stderr });
    });
  });
}

/** The output of each service started in the background, by the placeholder of its pid. */
const logs: Record<string, () => string> = {};

/** Starts a `… &` line and waits until it serves; `<name pid>` then stands for its process id. */
async function startBackground(
  line: string,
  name: string,
  ready: (out: string) => boolean | Promise<boolean>,
) {
  const child = spawn('bash', ['-c', `exec ${rewrite(line.replace(/&\s*(#.*)?$/, ''))}`], {
    cwd,
    env,
  });
  background.push(child);
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  values[`<${name} pid>`] = String(child.pid);
  logs[`<${name} pid>`] = () => out;
  // A service that stops at start fails the test at once, with what it said.
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`${line} exited (${code}): ${out}`))),
  );
  exited.catch(() => undefined);
  await Promise.race([
    // Generous: on a loaded two-core machine a service can take a minute to start.
    eventually(async () => ready(out), 180_000, line),
    exited,
  ]);
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

/** Runs an `export …` line in bash and takes the variables it sets into the shell's environment. */
async function runExport(line: string) {
  const r = await expectOk(`${line}\nenv -0`);
  for (const kv of r.stdout.split('\0').filter(Boolean)) {
    const at = kv.indexOf('=');
    const k = kv.slice(0, at);
    if (/\bexport\b/.test(line) && new RegExp(`\\b${k}=`).test(line)) env[k] = kv.slice(at + 1);
  }
}

/** Writes the README's YAML files into the working directory, placeholders filled in. */
function writeConfigs() {
  for (const b of blocks('yaml')) {
    const name = /^# (\S+\.yaml)\n/.exec(b.text)?.[1];
    if (!name) continue;
    let text = b.text;
    for (const [k, v] of Object.entries(values)) text = text.split(k).join(v);
    text = text
      .replace(/127\.0\.0\.1:4222/g, `127.0.0.1:${ports['4222']}`)
      .replace(/port: 8090/, `port: ${ports['8090']}`)
      .replace(/port: 8080/, `port: ${ports['8080']}`)
      .replace(/port: 8081/, `port: ${ports['8081']}`);
    writeFileSync(join(cwd, name), text);
  }
}

const reloads = (pid: string) =>
  logs[pid]!()
    .split('\n')
    .filter((l) => l.includes('"trust store and signing key reloaded"')).length;

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

  it("the walk-through's URLs and tokens the role sections are given are those its configurations make; the containers' extra step is deploy/README's", () => {
    const yaml = Object.fromEntries(
      blocks('yaml').map((b) => [/^# (\S+\.yaml)\n/.exec(b.text)?.[1] ?? '', b.text]),
    );
    // Singapore's gateway serves HTTPS on 8080, Viet Nam's plain HTTP on 8081, the router 8090.
    expect(yaml['gateway.yaml']).toMatch(/^ {2}port: 8080\n {2}tls: /m);
    expect(yaml['gateway-vn.yaml']).toMatch(/^http: \{ port: 8081 \}$/m);
    expect(yaml['router.yaml']).toMatch(/^http: \{ port: 8090 \}$/m);
    const intro = readme.slice(0, readme.indexOf('## For a customs authority'));
    for (const url of ['https://127.0.0.1:8080', 'http://127.0.0.1:8081', 'http://127.0.0.1:8090'])
      expect(intro).toContain(`\`${url}\``);
    // Each token the intro gives a service is one that service's configuration lists.
    expect(intro).toMatch(/`risk-engine`'s is for Singapore's gateway/);
    expect(yaml['gateway.yaml']).toContain('name: risk-engine');
    expect(intro).toMatch(/`vn-analysts`'s for Viet Nam's/);
    expect(yaml['gateway-vn.yaml']).toContain('name: vn-analysts');
    expect(intro).toMatch(/`wco-analyst`'s for the router/);
    expect(yaml['router.yaml']).toContain('name: wco-analyst');
    const provision = /^npx hubctl leaf provision .*$/m.exec(
      readFileSync(join(ROOT, 'deploy', 'README.md'), 'utf8'),
    )?.[0];
    expect(provision).toBeDefined();
    expect(readme).toContain(`\`${provision}\``);
  });

  it('operators, senders, partners and coordinators: each command exits 0 and does what it says', async () => {
    for (const p of ['4222', '8222', '8090', '8080', '8081']) ports[p] = await freePort();
    const portify = (line: string) =>
      line
        .replace(/\b(4222|8222)\b/g, (p) => String(ports[p]))
        .replace(/\b8090\b/, String(ports['8090']));

    // The operator's walk-through, in the README's order; key rotation comes after the others.
    const walk = commands(/^A hub by hand/);
    const rotation = walk.findIndex((l) => / keys rotate /.test(l));
    expect(rotation).toBeGreaterThan(0);
    for (const raw of walk.slice(0, rotation)) {
      const line = portify(raw);
      if (/^nats-server /.test(line)) {
        await startBackground(line, 'nats-server', () => portOpen(ports['4222']!));
      } else if (/services\/router\/dist\/main\.js/.test(line)) {
        writeConfigs();
        await startBackground(line, 'router', (out) => out.includes('"router listening"'));
        // The walk-through's router.yaml states its load: the start-up sizing check holds, no
        // warning for the newcomer to wonder about.
        expect(logs['<router pid>']!()).toContain('"stream sizing holds the configured load"');
        expect(logs['<router pid>']!()).not.toContain('"msg":"stream sizing:');
      } else if (/services\/gateway\/dist\/main\.js/.test(line)) {
        const config = /--config (\S+)\.yaml/.exec(line)![1]!;
        await startBackground(line, config, (out) => out.includes('"gateway listening"'));
      } else if (/tokens create/.test(line)) {
        const r = await expectOk(line);
        const name = /--name (\S+)/.exec(line)![1]!;
        if (name === 'vn-analysts') env['T'] = /(ahub_[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
        if (name === 'wco-analyst') env['C'] = /(ahub_[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
        values[name === 'wco-analyst' ? '<coordinator tokenSha256>' : `<${name} tokenSha256>`] =
          /tokenSha256: ([0-9a-f]{64})/.exec(r.stdout)![1]!;
        if (name === 'risk-engine')
          values['ahub_...'] = /(ahub_[A-Za-z0-9_-]+)/.exec(r.stdout)![1]!;
      } else {
        await expectOk(line);
      }
      // The hub's directory is private, as the services require of where they keep their data.
      if (cdOf(line) !== undefined) {
        expect(cwd).not.toBe(clone);
        expect(statSync(cwd).mode & 0o777).toBe(0o700);
      }
    }

    // The sender, from the same directory, with the README's example alert (no id, origin or
    // issuedAt: the gateway fills them in).
    const sender = commands(/^For a customs authority/);
    for (const line of sender.filter((l) => l.startsWith('export '))) await runExport(line);
    expect(env['AHUB_GATEWAY_URL']).toMatch(/^https:\/\//);
    const send = sender.find((l) => /send alert\.json/.test(l))!;
    for (const line of sender.filter((l) => !l.startsWith('export '))) {
      const r = await expectOk(line);
      if (line === send) values['<alertId>'] = /accepted (\S+)/.exec(r.stdout)![1]!;
      if (/send \S*alerts\.ndjson/.test(line)) expect(r.stdout).toMatch(/^2 accepted, 0 refused$/m);
      if (/validate alert\.json/.test(line))
        expect(r.stdout).toContain(
          'normalised /shipment/containers/0: CSQU 305438 3 -> CSQU3054383',
        );
      if (/ status /.test(line))
        expect(r.stdout).toMatch(new RegExp(`^${values['<alertId>']}  suspicious-shipment  `));
    }

    // The partner's commands (against the same gateway: its feed is its own).
    for (const line of commands(/^For a partner agency/)) {
      if (/--follow/.test(line)) {
        const r = await run(line, 3000);
        expect(r.stderr).not.toMatch(/hubctl:/);
        continue;
      }
      const r = await expectOk(line);
      if (/--since 120/.test(line)) {
        // Past the end: the cursor to continue from is the last real one, never 120.
        const last = /the last cursor is (\d+)/.exec(r.stderr)?.[1];
        expect(last, r.stderr).toBeDefined();
        expect(/next cursor: (\d+)/.exec(r.stderr)?.[1]).toBe(last);
      }
    }

    // The coordinator's, once the router has written the alert's journey.
    await eventually(
      async () => (await run(`npx hubctl audit trace <alertId> --db audit.db`)).code === 0,
      30_000,
      'the audit trace of the sent alert',
    );
    // The router gathers every witness's cosignature (it cannot forge one): the coordinator's anchor.
    values['<router>'] = `http://127.0.0.1:${ports['8090']}`;
    // The hub key is the router's kid in the trust store.
    const hubKeys = await expectOk('npx hubctl keys list --agency HUB --json');
    values['<kid>'] = (JSON.parse(hubKeys.stdout) as { kid: string }[])[0]!.kid;
    for (const line of commands(/^For a coordinator/)) {
      if (/audit verify/.test(line)) {
        // Witnesses cosign checkpoints as they come: wait until two have.
        await eventually(
          async () => {
            const r = await run(line);
            if (r.code !== 0) throw new Error(`${r.stdout}${r.stderr}`);
            return true;
          },
          60_000,
          line,
        );
        // Or the hub's key set, the file the walk-through leaves: the key that signed the anchor.
        await expectOk(line.replace('--hub-key <kid>', '--hub-key certs/trust/HUB.jwks.json'));
      }
      const r = await expectOk(line);
      if (/operation report/.test(line)) expect(r.stdout).toMatch(/^Operation THUNDERBALL-2019: /);
    }
    expect(readFileSync(join(cwd, 'audit.csv'), 'utf8').split('\n').length).toBeGreaterThan(2);

    // Key rotation, then revoking the key it replaced, each step with the reloads it names.
    for (const line of walk.slice(rotation)) {
      if (/ keys revoke /.test(line)) {
        const list = await expectOk('npx hubctl keys list --agency SG-NPARKS --json');
        const keys = JSON.parse(list.stdout) as { kid: string; notBefore: string }[];
        values['<old kid>'] = [...keys].sort((a, b) =>
          a.notBefore.localeCompare(b.notBefore),
        )[0]!.kid;
      }
      const pids = line.startsWith('kill -HUP') ? (line.match(/<[^>]+ pid>/g) ?? []) : [];
      const before = pids.map(reloads);
      await expectOk(line);
      // Each service it signals says it reloaded.
      for (const [i, pid] of pids.entries())
        await eventually(() => reloads(pid) > before[i]!, 30_000, `${pid} reloaded`);
    }
    expect(Object.keys(logs).filter((p) => p !== '<nats-server pid>' && reloads(p) === 0)).toEqual(
      [],
    );
    // Singapore's gateway signs with the new key, which the router and Viet Nam now trust: the old
    // one is revoked, so an alert it signed would be refused, not routed.
    const after = await expectOk(send);
    const id = /accepted (\S+)/.exec(after.stdout)![1]!;
    await eventually(
      async () => {
        const r = await run(`npx hubctl audit trace ${id} --db audit.db`);
        return r.code === 0 && /-> VN-CUSTOMS under SG-VN-2019@1/.test(r.stdout);
      },
      30_000,
      'the alert signed with the new key routed to VN-CUSTOMS',
    );
  }, 900_000);
});
