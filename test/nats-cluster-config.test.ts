import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDevPki, generateKey, leafCertName, readAgencyAccess } from '@alert-hub/operator';
import { findNatsServer, hubctl } from '@alert-hub/testkit';

/**
 * `hubctl nats-config --cluster` and `--leaf`: what an operator generates for a three-node hub
 * and an agency's leaf node, checked by nats-server itself (`-t`). The chaos tests run the same
 * route and leaf blocks (rendered by the same functions) as real processes.
 */
const dir = mkdtempSync(join(tmpdir(), 'ahub-cluster-cfg-'));
const certs = join(dir, 'certs');
const natsServer = findNatsServer(process.env);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  // Keys and certificates as \`hubctl keys generate\` and \`hubctl certs dev --leaf\` make them
  // (the same library functions; those commands have their own tests).
  for (const [principal, role] of [
    ['HUB', 'router'],
    ['SG-NPARKS', 'agency'],
    ['NG-NCS', 'agency'],
  ] as const)
    generateKey({ certsDir: certs, principal, role, name: principal });
  await createDevPki({
    dir: join(certs, 'dev'),
    principals: ['HUB', 'SG-NPARKS', 'NG-NCS', leafCertName('NG-NCS')],
    hosts: ['nats-1', 'nats-2', 'nats-3'],
  });
}, 60_000);

function natsTest(file: string): string {
  const t = spawnSync(natsServer, ['-t', '-c', file], { encoding: 'utf8' });
  return t.stdout + t.stderr;
}

describe('hubctl nats-config - cluster and leaf nodes', () => {
  it('--cluster 3 writes one valid configuration per node: routes with mutual TLS to the two others, the accounts on each', async () => {
    const out = join(dir, 'cluster');
    const r = await hubctl([
      'nats-config',
      '--certs',
      certs,
      '--cluster',
      '3',
      '--out-dir',
      out,
      '--leaf-agencies',
      'NG-NCS',
      '--store-dir',
      join(dir, 'js'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['nats-1.conf', 'nats-2.conf', 'nats-3.conf']);
    for (const n of [1, 2, 3]) {
      const file = join(out, `nats-${n}.conf`);
      expect(statSync(file).mode & 0o077).toBe(0);
      const text = readFileSync(file, 'utf8');
      expect(text).toContain(`server_name: "ahub-${n}"`);
      const routes = [...text.matchAll(/"nats-route:\/\/(nats-\d):6222"/g)].map((m) => m[1]);
      expect(routes.sort()).toEqual([1, 2, 3].filter((i) => i !== n).map((i) => `nats-${i}`));
      expect(text).toContain('authorization { user: "route@principals.alert-hub.example" }');
      expect(text).toMatch(/cluster \{[^]*verify_and_map: true[^]*\}/);
      // The leaf's certificate lands in an account of its own, which exports the leaf's API to
      // the hub and imports nothing.
      expect(text).toContain(
        '{ user: "ng-ncs.leaf@principals.alert-hub.example", account: "NG-NCS-LEAF" }',
      );
      expect(text).toContain(
        '{ service: { account: "NG-NCS-LEAF", subject: "$JS.NG-NCS.API.>" } }',
      );
      const start = text.indexOf('  "NG-NCS-LEAF" {\n');
      const leafAccount = text.slice(start, text.indexOf('\n  }\n', start));
      expect(leafAccount).toContain('exports: [');
      expect(leafAccount).not.toContain('imports: [');
      expect(leafAccount).not.toContain('users: [');
      expect(text).toContain('leafnodes {');
      expect(natsTest(file)).toContain('is valid');
    }
  });

  it("--max-file-store sets JetStream's max_file_store on the hub, every cluster node and a leaf node; refused unless a positive integer", async () => {
    const GiB = 1024 ** 3;
    const hub = join(dir, 'hub-store.conf');
    const out = join(dir, 'cluster-store');
    const leaf = join(dir, 'leaf-store.conf');
    const leafNode = ['--leaf', 'NG-NCS', '--hub-url', 'tls://nats-1:7422', '--out', leaf];
    for (const [args, bytes] of [
      [['--out', hub], 120 * GiB],
      [['--cluster', '3', '--out-dir', out], 120 * GiB],
      [leafNode, 2 * GiB],
    ] as const) {
      const r = await hubctl([
        'nats-config',
        '--certs',
        certs,
        ...args,
        '--max-file-store',
        `${bytes}`,
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const [file, bytes] of [
      [hub, 120 * GiB],
      ...[1, 2, 3].map((n) => [join(out, `nats-${n}.conf`), 120 * GiB] as const),
      [leaf, 2 * GiB],
    ] as const) {
      const text = readFileSync(file, 'utf8');
      expect(text).toMatch(
        new RegExp(`jetstream \\{[^}]*\\n  max_file_store: ${bytes}\\n[^}]*\\}`),
      );
      expect(natsTest(file)).toContain('is valid');
    }
    // Without the option nats-server picks its own (75% of the free disk): no line at all.
    const plain = join(dir, 'hub-plain.conf');
    expect((await hubctl(['nats-config', '--certs', certs, '--out', plain])).code).toBe(0);
    expect(readFileSync(plain, 'utf8')).not.toContain('max_file_store');
    // Private, as the cluster's files are.
    expect(statSync(plain).mode & 0o077).toBe(0);
    for (const bad of ['0', '-1', '1.5', 'lots']) {
      const r = await hubctl(['nats-config', '--certs', certs, '--max-file-store', bad]);
      expect(r.code, bad).not.toBe(0);
      expect(r.stdout).toBe('');
    }
  });

  it('--out, --out-dir and --leaf write private files, over a file readable to all too', async () => {
    // Written again over a file an older hubctl left readable to all (or made by hand), every
    // file is private too, the cluster's and the leaf's included: a mode given to writeFileSync
    // applies only to a file it creates.
    const older = join(dir, 'hub-older.conf');
    const olderDir = join(dir, 'older-cluster');
    mkdirSync(olderDir, { recursive: true });
    const olderNode = join(olderDir, 'nats-1.conf');
    const olderLeaf = join(dir, 'leaf-older.conf');
    for (const f of [older, olderNode, olderLeaf]) writeFileSync(f, '# older\n', { mode: 0o644 });
    for (const f of [older, olderNode, olderLeaf]) chmodSync(f, 0o644);
    for (const args of [
      ['--out', older],
      ['--cluster', '3', '--out-dir', olderDir],
      ['--leaf', 'NG-NCS', '--hub-url', 'tls://127.0.0.1:7422', '--out', olderLeaf],
    ]) {
      const r = await hubctl(['nats-config', '--certs', certs, ...args]);
      expect(r.code, r.stderr).toBe(0);
    }
    for (const f of [older, olderNode, olderLeaf]) {
      expect(readFileSync(f, 'utf8')).not.toContain('# older');
      expect(statSync(f).mode & 0o077, f).toBe(0);
    }
  });

  it('a cluster of 2 is refused: JetStream would stop when either node fails', async () => {
    const r = await hubctl([
      'nats-config',
      '--certs',
      certs,
      '--cluster',
      '2',
      '--out-dir',
      join(dir, 'two'),
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[ERR_INPUT_INVALID]');
    expect(existsSync(join(dir, 'two'))).toBe(false);
  });

  it("--leaf renders the agency's leaf node: its own JetStream domain, its account, a remote to every hub node", async () => {
    const file = join(dir, 'leaf-ng.conf');
    const r = await hubctl([
      'nats-config',
      '--certs',
      certs,
      '--leaf',
      'NG-NCS',
      '--out',
      file,
      '--hub-url',
      'tls://nats-1:7422',
      '--hub-url',
      'tls://nats-2:7422',
      '--hub-url',
      'tls://nats-3:7422',
      '--listen',
      '127.0.0.1:4222',
      '--store-dir',
      join(dir, 'leaf-js'),
    ]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('domain: "NG-NCS"');
    expect(text).toContain('account: "NG-NCS"');
    expect(text).toContain('deny_exports: ["ahub.in.NG-NCS.>"]');
    expect(text).toContain('NG-NCS.leaf.pem');
    expect(natsTest(file)).toContain('is valid');
  });

  it('--leaf for an agency not in the registry is refused', async () => {
    const r = await hubctl([
      'nats-config',
      '--certs',
      certs,
      '--leaf',
      'XX-NONE',
      '--hub-url',
      'tls://nats-1:7422',
    ]);
    expect(r.code).not.toBe(0);
  });

  it('--audit-logs: an agency may publish its cosignatures of those logs only', async () => {
    const file = join(dir, 'audit-logs.conf');
    const r = await hubctl([
      'nats-config',
      '--certs',
      certs,
      '--audit-logs',
      'hub,eu',
      '--store-dir',
      join(dir, 'js-audit'),
      '--out',
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const sg = readAgencyAccess(readFileSync(file, 'utf8'), 'SG-NPARKS');
    expect(sg.publish.filter((p) => p.startsWith('ahub.audit.cosig.'))).toEqual([
      'ahub.audit.cosig.hub.SG-NPARKS',
      'ahub.audit.cosig.eu.SG-NPARKS',
    ]);
    expect(natsTest(file)).toContain('is valid');
  });
});

describe('hubctl nats-config - the monitoring endpoint', () => {
  const render = (name: string, args: string[]) => {
    const out = join(dir, `monitor-${name}.conf`);
    return hubctl(['nats-config', '--certs', certs, '--out', out, ...args]).then((r) => ({
      ...r,
      out,
    }));
  };

  it('on loopback by default; any other address is refused (exit 1, ERR_INPUT_INVALID, nothing written) unless --monitor-any', async () => {
    const byDefault = await render('default', []);
    expect(byDefault.code, byDefault.stderr).toBe(0);
    expect(readFileSync(byDefault.out, 'utf8')).toContain('http: "127.0.0.1:8222"');
    for (const [name, address] of [
      ['any', '0.0.0.0:8222'],
      ['lan', '10.1.2.3:8222'],
      ['no-host', ':8222'],
      ['ipv6-any', '[::]:8222'],
      ['name-like-loopback', '127.0.0.1.example.org:8222'],
    ] as const) {
      const r = await render(name, ['--monitor', address]);
      expect(r.code, address).toBe(1);
      expect(r.stderr, address).toContain('[ERR_INPUT_INVALID]');
      expect(existsSync(r.out), address).toBe(false);
    }
    const insisted = await render('insisted', ['--monitor', '0.0.0.0:8222', '--monitor-any']);
    expect(insisted.code, insisted.stderr).toBe(0);
    expect(readFileSync(insisted.out, 'utf8')).toContain('http: "0.0.0.0:8222"');
    const none = await render('none', ['--no-monitor']);
    expect(none.code, none.stderr).toBe(0);
    expect(readFileSync(none.out, 'utf8')).not.toMatch(/^\s*http:/m);
  });
});
