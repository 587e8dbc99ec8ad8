import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig as gatewayConfig } from '@alert-hub/gateway';
import { loadConfig as routerConfig } from '@alert-hub/router';
import { ROOT, findNatsServer } from '@alert-hub/testkit';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command: string[];
  volumes: string[];
  ports?: string[];
  depends_on?: string[];
}
const compose = parseYaml(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), {
  merge: true,
}) as { services: Record<string, Service>; volumes: Record<string, unknown> } & Record<
  string,
  unknown
>;
const NATS_NODES = ['nats-1', 'nats-2', 'nats-3'];
const out = mkdtempSync(join(tmpdir(), 'ahub-compose-'));
afterAll(() => rmSync(out, { recursive: true, force: true }));

// The same generator as `npm run compose:prepare`, with the in-container paths pointing here.
const prepare = () =>
  execFileSync(
    process.execPath,
    [join(ROOT, 'demo/dist/compose-prepare.js'), '--out', out, '--root', out],
    { cwd: ROOT, encoding: 'utf8' },
  );
beforeAll(() => {
  prepare();
});

/** Every generated file under `out` with its content (the JetStream store aside). */
function snapshot(): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const f of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, f.name);
      if (f.isDirectory()) walk(p);
      else files[p.slice(out.length + 1)] = readFileSync(p, 'utf8');
    }
  };
  walk(out);
  return files;
}

describe('docker-compose.yml', () => {
  it('runs a three-node nats-server 2.9 hub and an agency leaf node with the generated configuration, and the router and gateways from their Dockerfiles', () => {
    const { router, ...rest } = compose.services;
    for (const name of [...NATS_NODES, 'nats-leaf-ng']) {
      const nats = compose.services[name]!;
      expect(nats.image, name).toMatch(/^nats:2\.9/);
      expect(nats.command).toEqual(['-c', `/etc/alert-hub/${name}.conf`]);
      expect(nats.volumes).toContain('./deploy:/etc/alert-hub:ro');
      expect(nats.volumes).toContain(`${name}-data:/data`);
    }
    expect(router!.build?.dockerfile).toBe('services/router/Dockerfile');
    expect(router!.depends_on).toEqual(NATS_NODES);
    expect(rest['gateway-ng']!.depends_on).toContain('nats-leaf-ng');
    const gateways = Object.entries(rest).filter(([name]) => name.startsWith('gateway-'));
    expect(gateways.length).toBe(3);
    for (const [name, g] of gateways) {
      expect(g.build?.dockerfile, name).toBe('services/gateway/Dockerfile');
      expect(g.command[0]).toBe('--config');
      expect(g.volumes.some((v) => v.endsWith(':/var/lib/alert-hub'))).toBe(true);
    }
    for (const s of Object.values(compose.services))
      for (const v of s.volumes)
        if (!v.startsWith('./')) expect(compose.volumes).toHaveProperty(v.split(':')[0]!);
  });

  it("publishes the router's and gateways' HTTP ports on the host's loopback only (a gateway's /metrics needs no token)", () => {
    const http = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(http.map(([name]) => name).sort()).toEqual([
      'gateway-ng',
      'gateway-sg',
      'gateway-vn',
      'router',
    ]);
    for (const [name, s] of http) {
      expect(s.ports?.length, name).toBeGreaterThan(0);
      for (const p of s.ports ?? []) expect(p, name).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    }
  });
  it('every Dockerfile builds from the repository root and starts its service', () => {
    for (const svc of ['gateway', 'router']) {
      const df = readFileSync(join(ROOT, `services/${svc}/Dockerfile`), 'utf8');
      expect(df).toMatch(/^FROM node:24/m);
      expect(df).toContain(`ENTRYPOINT ["node", "services/${svc}/dist/main.js"]`);
      expect(df).toMatch(/^USER node$/m);
      expect(existsSync(join(ROOT, `services/${svc}/dist/main.js`))).toBe(true);
    }
  });

  it('every configuration file the services are started with is generated, and valid', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      const file = s.command[
        s.command.indexOf(name.startsWith('nats') ? '-c' : '--config') + 1
      ]!.replace('/etc/alert-hub', out);
      expect(existsSync(file), `${name}: ${file}`).toBe(true);
      if (name === 'router') {
        const c = routerConfig({}, file);
        expect(c.nats.tls?.certFile).toBe(join(out, 'certs/dev/HUB.pem'));
        expect(c.nats.servers).toEqual(NATS_NODES.map((n) => `tls://${n}:4222`));
        expect(c.streams).toMatchObject({ replicas: 3, leaves: ['NG-NCS'] });
      }
      if (name.startsWith('gateway-')) expect(gatewayConfig({}, file).clients).toHaveLength(1);
      // Behind its leaf: the leaf for the outbox, the hub for everything else.
      if (name === 'gateway-ng') {
        const c = gatewayConfig({}, file);
        expect(c.outbox.servers).toEqual(['tls://nats-leaf-ng:4222']);
        expect(c.nats.servers).toEqual(NATS_NODES.map((n) => `tls://${n}:4222`));
      }
    }
    const natsServer = findNatsServer(process.env);
    for (const name of [...NATS_NODES, 'nats-leaf-ng']) {
      const test = spawnSync(natsServer, ['-t', '-c', join(out, `${name}.conf`)], {
        encoding: 'utf8',
      });
      expect(test.stdout + test.stderr, name).toContain('is valid');
    }
    expect(readFileSync(join(out, 'nats-leaf-ng.conf'), 'utf8')).toContain('domain: "NG-NCS"');
    const conf = readFileSync(join(out, 'nats-1.conf'), 'utf8');
    expect(conf).toMatch(/cluster \{[^]*verify_and_map: true/);
    expect(conf).toContain('verify_and_map: true');
    // Monitoring answers without authentication: never on all interfaces.
    expect(conf.match(/^http: .*$/m)?.[0]).toBe('http: "127.0.0.1:8222"');
  });

  it('has only top-level members that docker-compose 1.29 (Debian) accepts: no `name:`', () => {
    for (const key of Object.keys(compose))
      expect(['version', 'services', 'volumes', 'networks', 'configs', 'secrets']).toContain(
        key.startsWith('x-') ? 'services' : key,
      );
  });

  it('compose:prepare is idempotent: a second run keeps every key, certificate, token and configuration', () => {
    const before = snapshot();
    expect(prepare()).toMatch(/kept the keys and API tokens/);
    expect(snapshot()).toEqual(before);
    expect(readdirSync(join(out, 'certs/private/SG-NPARKS'))).toHaveLength(1);
  });

  it('compose:prepare run as root hands the files to the containers user (uid 1000), keys still 0600', () => {
    if (process.getuid?.() !== 0) {
      console.log("compose:prepare ownership: not root here, the files are already the caller's");
      return;
    }
    for (const f of [
      'certs/trust/SG-NPARKS.jwks.json',
      'certs/dev/SG-NPARKS-key.pem',
      'router.yaml',
    ])
      expect(statSync(join(out, f)).uid, f).toBe(1000);
    const key = readdirSync(join(out, 'certs/private/SG-NPARKS'))[0]!;
    const st = statSync(join(out, 'certs/private/SG-NPARKS', key));
    expect(st.uid).toBe(1000);
    expect(st.mode & 0o777).toBe(0o600);
    expect(statSync(join(out, 'certs/trust')).mode & 0o005).toBe(0o005);
  });

  it('docker compose config accepts it, where a Docker CLI with compose is installed', () => {
    const candidates: [string, string[]][] = [
      ['docker', ['compose', 'config', '-q']],
      ['docker-compose', ['config', '-q']],
    ];
    const usable = candidates.find(
      ([bin, args]) =>
        spawnSync(bin, [...args.slice(0, -2), 'version'], { encoding: 'utf8' }).status === 0,
    );
    if (!usable) {
      console.log(
        'docker-compose.yml: no `docker compose` or `docker-compose` here; checked by parsing only',
      );
      return;
    }
    const r = spawnSync(usable[0], usable[1], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});
