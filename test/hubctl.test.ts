import { createServer, type AddressInfo } from 'node:net';
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AuditAppender,
  AuditEvent,
  NEAR_MISSES,
  hashLeaf,
  rootOf,
  type AuditEntry,
} from '@alert-hub/audit';
import { openDatabase } from '@alert-hub/runtime/files';
import { hubctl, seizureReport } from '@alert-hub/testkit';

const dir = mkdtempSync(join(tmpdir(), 'ahub-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const flag = {
  id: '0169fb6c-1a80-7000-8000-0000000000aa',
  type: 'consignee-flag',
  version: 1,
  origin: 'SG-NPARKS',
  issuedAt: '2019-04-08T00:00:00Z',
  handling: 'TLP:GREEN',
  consignee: { name: 'Example Trading Co', country: 'VN' },
  reason: 'prior-seizure',
};

/** A trust directory with SG-NPARKS's and VN-CUSTOMS's keys, made with hubctl under `name`. */
async function twoAgencies(name: string): Promise<string> {
  const certs = join(dir, name);
  for (const a of ['SG-NPARKS', 'VN-CUSTOMS'])
    expect((await hubctl(['keys', 'generate', '--agency', a, '--certs', certs])).code).toBe(0);
  return join(certs, 'trust');
}

/** `hubctl route --dry-run` of the consignee flag from SG-NPARKS. */
function dryRun(agreements: string, trustDir: string, ...more: string[]) {
  return hubctl(
    ['route', '--dry-run', '-', '--from', 'SG-NPARKS', '--agreements', agreements, ...more],
    { input: JSON.stringify(flag), env: { AHUB_TRUST_DIR: trustDir } },
  );
}

describe('hubctl - command line', () => {
  it('--help lists the commands and exits 0', async () => {
    const r = await hubctl(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/keys/);
    expect(r.stdout).toMatch(/validate/);
  });
  it('every command has --help', async () => {
    for (const cmd of [
      ['keys', 'generate'],
      ['keys', 'rotate'],
      ['keys', 'revoke'],
      ['keys', 'list'],
      ['validate'],
    ]) {
      const r = await hubctl([...cmd, '--help']);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^Usage: hubctl /);
    }
  });
  it('validate: exit 0 for a valid alert, 1 with pointers for an invalid one, from a file or stdin', async () => {
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(flag));
    expect(await hubctl(['validate', good])).toMatchObject({
      code: 0,
      stdout: expect.stringContaining('valid consignee-flag v1') as string,
    });
    const r = await hubctl(['validate', '-', '--json'], {
      input: JSON.stringify({ ...flag, consignee: { name: 'X', country: 'UK' } }),
    });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({
      item: 1,
      valid: false,
      filled: [],
      code: 'ERR_SCHEMA_INVALID',
      errors: [
        {
          pointer: '/consignee/country',
          message: '"UK" is not an ISO 3166-1 alpha-2 country code',
        },
      ],
    });
    // A file that is not there is a failure with its code, as every failure is.
    const missing = await hubctl(['validate', join(dir, 'no-such-alert.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^hubctl: ENOENT: .*no-such-alert\.json.* \[ERR_INPUT_INVALID\]\n$/,
    );
  });
  it('validate: id, origin and issuedAt may be left out, as the README tells senders', async () => {
    const { id: _id, origin: _o, issuedAt: _i, ...bare } = flag;
    const r = await hubctl(['validate', '-', '--json'], { input: JSON.stringify(bare) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      valid: true,
      filled: ['id', 'origin', 'issuedAt'],
    });
  });
  it('validate: identifiers as officers type them are normalised first, as the gateway does', async () => {
    const typed = seizureReport('SG-NPARKS') as unknown as {
      seizure: { shipment: { containers: string[] } };
    };
    typed.seizure.shipment.containers[0] = 'CSQU 305438 3';
    const r = await hubctl(['validate', '-', '--json'], { input: JSON.stringify(typed) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      valid: true,
      normalised: [
        {
          pointer: '/seizure/shipment/containers/0',
          from: 'CSQU 305438 3',
          to: 'CSQU3054383',
          rule: 'container',
        },
      ],
    });
    // a letter the gateway would not guess is refused offline too
    typed.seizure.shipment.containers[0] = 'C\u017fQU 305438 3';
    const bad = await hubctl(['validate', '-'], { input: JSON.stringify(typed) });
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/\/seizure\/shipment\/containers\/0: /);
  });
  it('validate: NDJSON, each alert numbered from 1; a broken line is named by its number', async () => {
    const lines = [JSON.stringify(flag), JSON.stringify({ ...flag, handling: 'TLP:PINK' })];
    const r = await hubctl(['validate', '-'], { input: lines.join('\n') });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^#1 valid consignee-flag/m);
    expect(r.stdout).toMatch(/^#2 invalid: .*\[ERR_SCHEMA_INVALID\]/m);
    expect(r.stdout).toMatch(/1 valid, 1 invalid/);
    const broken = await hubctl(['validate', '-'], {
      input: [lines[0], lines[0], '{"type": '].join('\n'),
    });
    expect(broken.code).toBe(1);
    expect(broken.stderr).toMatch(/line 3: .*\[ERR_INPUT_INVALID\]/);
  });
  it("agency remove never deletes the router's keys: only an agency id, and only a file of role agency", async () => {
    const certs = join(dir, 'remove-certs');
    const agreementsFile = join(dir, 'remove-agreements.yaml');
    writeFileSync(agreementsFile, 'agreements: []\n');
    for (const principal of ['HUB', 'SG-HUB'])
      expect(
        (
          await hubctl([
            'keys',
            'generate',
            '--agency',
            principal,
            '--role',
            'router',
            '--certs',
            certs,
          ])
        ).code,
      ).toBe(0);
    const remove = (id: string) =>
      hubctl(['agency', 'remove', id, '--certs', certs, '--agreements', agreementsFile]);
    const notAnId = await remove('HUB');
    expect(notAnId.code).not.toBe(0);
    expect(notAnId.stderr).toContain('agency id');
    const router = await remove('SG-HUB');
    expect(router.code).toBe(1);
    expect(router.stderr).toContain('[ERR_INPUT_INVALID]');
    expect(readdirSync(join(certs, 'trust')).sort()).toEqual(['HUB.jwks.json', 'SG-HUB.jwks.json']);
  });
  it('send: a gateway that cannot be reached is named with the cause, not "fetch failed"', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const r = await hubctl(['send', '-', '--gateway', `http://127.0.0.1:${port}`], {
      input: JSON.stringify(flag),
      env: { AHUB_TOKEN: 'ahub_x' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach http://127.0.0.1:${port}/v1/alerts`);
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.stderr).toContain('[ERR_NETWORK]');
  });
  it('operation report: no token is a missing prerequisite; a router that cannot be reached is named with the cause', async () => {
    const noToken = await hubctl(['operation', 'report', 'THUNDERBALL-DEMO'], {
      env: { AHUB_COORDINATOR_TOKEN: '' },
    });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toContain('[ERR_PREREQUISITE_MISSING]');
    const port = await new Promise<number>((resolve) => {
      const srv = createServer().listen(0, '127.0.0.1', () => {
        const p = (srv.address() as AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const r = await hubctl(
      ['operation', 'report', 'THUNDERBALL-DEMO', '--router', `http://127.0.0.1:${port}`],
      { env: { AHUB_COORDINATOR_TOKEN: 'ahub_x' } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `cannot reach http://127.0.0.1:${port}/v1/operations/THUNDERBALL-DEMO/report`,
    );
    expect(r.stderr).toContain('ECONNREFUSED');
    expect(r.stderr).toContain('[ERR_NETWORK]');
  });
  it('backup: the copy is one private file, no -wal or -shm beside it, and checks ok', async () => {
    const live = join(dir, 'live.db');
    const db = openDatabase(live);
    db.exec('CREATE TABLE t (x TEXT)');
    db.prepare('INSERT INTO t VALUES (?)').run('kept');
    const out = join(dir, 'backups', 'copy.db');
    // While the live database is open, as a service keeps it.
    const r = await hubctl(['backup', '--db', live, '--out', out, '--json']);
    db.close();
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ integrity: 'ok', rows: { t: 1 } });
    expect(readdirSync(join(dir, 'backups'))).toEqual(['copy.db']);
    expect(statSync(out).mode & 0o777).toBe(0o600);
  });
  it('tokens create: a coordinator token comes with its entry for the router configuration', async () => {
    const r = await hubctl([
      'tokens',
      'create',
      '--name',
      'wco',
      '--roles',
      'coordinator',
      '--json',
    ]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      roles: ['coordinator'],
      configuration: 'router: coordinators',
      tokenSha256: expect.stringMatching(/^[0-9a-f]{64}$/) as string,
    });
    const text = await hubctl(['tokens', 'create', '--name', 'wco', '--roles', 'coordinator']);
    expect(text.stdout).toContain('add to the router configuration under coordinators:');
    expect(
      (await hubctl(['tokens', 'create', '--name', 'x', '--roles', 'coordinator,submit'])).code,
    ).toBe(1);
  });
  it("tokens create: a metrics token (a Prometheus server's) goes under the router's metricsReaders, on its own", async () => {
    const r = await hubctl(['tokens', 'create', '--name', 'prom', '--roles', 'metrics', '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      roles: ['metrics'],
      configuration: 'router: metricsReaders',
    });
    const text = await hubctl(['tokens', 'create', '--name', 'prom', '--roles', 'metrics']);
    expect(text.stdout).toContain('add to the router configuration under metricsReaders:');
    const mixed = await hubctl(['tokens', 'create', '--name', 'x', '--roles', 'metrics,operator']);
    expect(mixed.code).toBe(1);
    expect(mixed.stderr).toContain('a router token: create it on its own');
  });
  it('certs dev: the count it prints is the number of files it wrote', async () => {
    const certs = join(dir, 'certs-dev');
    expect((await hubctl(['keys', 'generate', '--agency', 'KE-KWS', '--certs', certs])).code).toBe(
      0,
    );
    expect(
      (await hubctl(['keys', 'generate', '--agency', 'HUB', '--role', 'router', '--certs', certs]))
        .code,
    ).toBe(0);
    const r = await hubctl(['certs', 'dev', '--certs', certs]);
    expect(r.code).toBe(0);
    const said = Number(/(\d+) new file\(s\)/.exec(r.stdout)![1]);
    expect(said).toBe(readdirSync(join(certs, 'dev')).length);
    // CA, server, cluster route, HUB, KE-KWS and the operators: certificate and key each.
    expect(said).toBe(12);
    expect(readdirSync(join(certs, 'dev'))).toEqual(
      expect.arrayContaining(['route.pem', 'route-key.pem']),
    );
  });
  it('certs dev --leaf and leaf provision --agency: only an agency id, never a path the files would be written to nor a stream outside the grammar', async () => {
    const certs = join(dir, 'certs-leaf-path');
    expect((await hubctl(['keys', 'generate', '--agency', 'KE-KWS', '--certs', certs])).code).toBe(
      0,
    );
    const r = await hubctl(['certs', 'dev', '--certs', certs, '--leaf', '../../escaped']);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('an agency id');
    expect(existsSync(join(certs, '..', 'escaped.leaf.pem'))).toBe(false);
    expect(existsSync(join(dir, 'escaped.leaf.pem'))).toBe(false);
    // leaf provision too: refused before it connects anywhere (its id names the agency's stream).
    const leaf = await hubctl([
      'leaf',
      'provision',
      '--agency',
      'sg-nparks',
      '--server',
      'tls://127.0.0.1:1',
      '--certs',
      certs,
    ]);
    expect(leaf.code).not.toBe(0);
    expect(leaf.stderr).toContain('an agency id');
  });
  it('route --dry-run: an agreement naming an agency that does not exist is refused', async () => {
    const trust = await twoAgencies('certs-route');
    const agreements = join(dir, 'typo.yaml');
    writeFileSync(
      agreements,
      [
        'agreements:',
        '  - id: SG-VN',
        '    version: 1',
        '    title: typo',
        '    parties: [SG-NPARKS, VN-CUSTOM]',
        '    alertTypes: [consignee-flag]',
        '    maxHandling: TLP:AMBER',
        '    validFrom: 2019-01-01T00:00:00Z',
      ].join('\n'),
    );
    const r = await dryRun(agreements, trust);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[ERR_AGREEMENTS_INVALID]');
    expect(r.stderr).toMatch(/VN-CUSTOM.*not an agency of this hub/);
  });
  it('route --dry-run: a typo in an operation member or a reader is refused like one in parties; --at takes RFC 3339 only', async () => {
    const trust = await twoAgencies('certs-route-operations');
    const agreements = join(dir, 'typo-operation.yaml');
    writeFileSync(
      agreements,
      [
        'agreements:',
        '  - id: SG-VN',
        '    version: 1',
        '    title: both agencies exist',
        '    parties: [SG-NPARKS, VN-CUSTOMS]',
        '    alertTypes: [consignee-flag]',
        '    maxHandling: TLP:AMBER',
        '    validFrom: 2019-01-01T00:00:00Z',
        'operations:',
        '  - id: THUNDERBALL',
        '    version: 1',
        '    name: typo in a member',
        '    period: { from: 2019-06-01T00:00:00Z, until: 2019-07-01T00:00:00Z }',
        '    members: [SG-NPARKS, VN-CUSTOM]',
        '    alertTypes: [seizure-report]',
        '    maxHandling: TLP:AMBER',
        'readers:',
        '  - party: SG-NPARK',
        '    schemaVersions: [1]',
      ].join('\n'),
    );
    const r = await dryRun(agreements, trust);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[ERR_AGREEMENTS_INVALID]');
    expect(r.stderr).toMatch(/\/operations\/0\/members\/1.*VN-CUSTOM.*not an agency of this hub/);
    expect(r.stderr).toMatch(/\/readers\/0\/party.*SG-NPARK.*not an agency of this hub/);

    const good = join(dir, 'good-agreements.yaml');
    writeFileSync(good, readFileSync(agreements, 'utf8').split('operations:')[0]!);
    for (const at of ['garbage', '2019-04-08', 'April 8, 2019', '2019-04-08T03:15:00']) {
      const bad = await dryRun(good, trust, '--at', at);
      expect(bad.code, at).not.toBe(0);
      expect(bad.stderr, at).toContain('RFC 3339');
    }
    const ok = await dryRun(good, trust, '--at', '2019-04-08T03:15:00Z');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('VN-CUSTOMS');
  });
  it('route --dry-run: normalises and fills the alert in as validate and the gateway do, and says so', async () => {
    const trust = await twoAgencies('certs-route-normalise');
    const agreements = join(dir, 'shipments.yaml');
    writeFileSync(
      agreements,
      [
        'agreements:',
        '  - id: SG-VN-2019',
        '    version: 1',
        '    title: shipments',
        '    parties: [SG-NPARKS, VN-CUSTOMS]',
        '    alertTypes: [suspicious-shipment]',
        '    maxHandling: TLP:AMBER',
        '    validFrom: 2019-01-01T00:00:00Z',
      ].join('\n'),
    );
    // As an officer types it: no id, origin or issuedAt; the container number with spaces.
    const typed = JSON.stringify({
      type: 'suspicious-shipment',
      version: 1,
      handling: 'TLP:AMBER',
      summary: 'pangolin scales declared as fish scales',
      shipment: {
        mode: 'sea',
        containers: ['CSQU 305438 3'],
        route: { origin: 'SGSIN', destination: 'VNHPH' },
      },
      suspectedCommodities: [{ taxon: { scientificName: 'Manis spp.' }, product: 'scales' }],
    });
    const validate = await hubctl(['validate', '-'], { input: typed });
    expect(validate.code, validate.stdout).toBe(0);
    // It says that it filled them in as the gateway will, not that it left them out.
    expect(validate.stdout).toContain(
      'valid suspicious-shipment v1 (checked with id, origin, issuedAt filled in, as the gateway fills them)',
    );
    expect(validate.stdout).toContain(
      'normalised /shipment/containers/0: CSQU 305438 3 -> CSQU3054383',
    );
    const route = (...more: string[]) =>
      hubctl(
        ['route', '--dry-run', '-', '--from', 'SG-NPARKS', '--agreements', agreements, ...more],
        { input: typed, env: { AHUB_TRUST_DIR: trust } },
      );
    const text = await route();
    expect(text.code, text.stdout + text.stderr).toBe(0);
    expect(text.stdout).toContain(
      'normalised /shipment/containers/0: CSQU 305438 3 -> CSQU3054383',
    );
    expect(text.stdout).toMatch(/VN-CUSTOMS\s+receives\s+SG-VN-2019@1/);
    const json = await route('--json');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: 'route',
      origin: 'SG-NPARKS',
      normalised: [expect.objectContaining({ pointer: '/shipment/containers/0' })],
    });
    // What no normalisation rescues is the gateway's refusal, with its code.
    const bad = await hubctl(
      ['route', '--dry-run', '-', '--from', 'SG-NPARKS', '--agreements', agreements, '--json'],
      { input: typed.replace('CSQU 305438 3', 'NOT A CONTAINER'), env: { AHUB_TRUST_DIR: trust } },
    );
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ valid: false, code: 'ERR_SCHEMA_INVALID' });
  });
  it('validate and send read a file exactly as the gateway reads a body: invalid UTF-8, a byte-order mark and a member named twice are refused', async () => {
    const text = JSON.stringify(flag);
    const files: [string, Buffer][] = [
      [
        'bad-utf8.json',
        Buffer.from(text.replace('Example', 'Ex\u0000ample')).map((b) =>
          b === 0x00 ? 0xff : b,
        ) as Buffer,
      ],
      ['bom.json', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)])],
      ['twice.json', Buffer.from(text.replace('{', '{"handling":"TLP:RED",'))],
    ];
    for (const [name, bytes] of files) {
      const f = join(dir, name);
      writeFileSync(f, bytes);
      // send reads files with the same function; one file is enough to show it.
      const cmds = [['validate', f]];
      if (name === 'bom.json')
        cmds.push(['send', f, '--gateway', 'http://127.0.0.1:9', '--token', 'x']);
      for (const cmd of cmds) {
        const r = await hubctl(cmd);
        expect([name, cmd[0], r.code]).toEqual([name, cmd[0], 1]);
        expect(r.stderr).toContain('[ERR_PAYLOAD_MALFORMED]');
      }
    }
  }, 90_000);
  it('usage errors exit 2', async () => {
    expect((await hubctl(['keys', 'generate', '--agency', 'sg-x'])).code).toBe(2);
    expect((await hubctl(['no-such-command'])).code).toBe(2);
  });
  it('keys generate and list', async () => {
    const certs = join(dir, 'certs');
    const g = await hubctl(['keys', 'generate', '--agency', 'KE-KWS', '--certs', certs, '--json']);
    expect(g.code).toBe(0);
    const { kid } = JSON.parse(g.stdout) as { kid: string };
    const l = await hubctl(['keys', 'list', '--certs', certs, '--json']);
    expect(JSON.parse(l.stdout)).toEqual([
      expect.objectContaining({ principal: 'KE-KWS', kid, status: 'valid', privateKeyHere: true }),
    ]);
  });
});

describe('hubctl - audit trace and query name whom an alert reached and who was refused', () => {
  const ALERT = '0169fb6c-1a80-7000-8000-0000000000bb';
  const who = {
    alertId: ALERT,
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: 'TLP:AMBER',
  };
  const near = {
    'CN-GACC': 'DENY_HANDLING',
    'HK-CED': 'DENY_ALERT_TYPE',
    'KE-KWS': 'DENY_CONDITION',
  };
  /** A router's log of one alert: routed to VN-CUSTOMS, four near misses, then its receipt. */
  function auditLog(file: string) {
    const db = openDatabase(file);
    const appender = new AuditAppender(db, 'router-a');
    const leaves = ['NG-NCS', 'VN-CUSTOMS'].map((recipient, index) =>
      JSON.stringify({
        agreement: { id: 'SG-VN-2019', version: 1 },
        copy: Buffer.alloc(16, index + 1).toString('base64url'),
        index,
        onward: false,
        recipient,
      }),
    );
    const root = rootOf(leaves.map((l) => hashLeaf(Buffer.from(l, 'utf8'))));
    const entries: AuditEntry[] = [
      {
        event: AuditEvent.Routed,
        ...who,
        streamSeq: 3,
        routeTree: {
          root,
          leaves: leaves.map((text, i) => ({
            recipient: i === 0 ? 'NG-NCS' : 'VN-CUSTOMS',
            text,
            feedSeq: 7 + i,
          })),
        },
      },
      {
        event: AuditEvent.Denied,
        ...who,
        reasonCode: NEAR_MISSES,
        reason: 'party to an agreement with SG-NPARKS that does not allow this alert',
        detail: { codes: { ...near, 'US-FWS': 'DENY_HANDLING' }, counts: {} },
      },
      {
        event: AuditEvent.Delivered,
        ...who,
        recipient: 'VN-CUSTOMS',
        streamSeq: 4,
        reason: 'receipt r-1',
        detail: { receipt: 'r-1', committedAt: '2026-11-29T00:00:01.000Z' },
      },
    ];
    db.transaction(() => appender.append(entries, '2026-11-29T00:00:00.000Z')).immediate();
    return db;
  }

  it('trace: each refused agency by name with its own code, and the recipient of each delivery', async () => {
    const file = join(dir, 'audit-named.db');
    auditLog(file).close();
    const r = await hubctl(['audit', 'trace', ALERT, '--db', file]);
    expect(r.code, r.stderr).toBe(0);
    for (const [agency, code] of Object.entries({ ...near, 'US-FWS': 'DENY_HANDLING' }))
      expect(r.stdout).toContain(`${agency} ${code}`);
    expect(r.stdout).toMatch(/delivered to VN-CUSTOMS, in its inbox at 2026-11-29T00:00:01.000Z/);
    expect(r.stdout).toMatch(/-> VN-CUSTOMS under SG-VN-2019@1 \(feed #8\)/);

    const q = await hubctl(['audit', 'query', '--db', file, '--outcome', 'denied']);
    expect(q.code).toBe(0);
    const row = q.stdout.split('\n').find((l) => l.includes(NEAR_MISSES));
    expect(row).toContain('CN-GACC HK-CED KE-KWS US-FWS');
  });

  it('trace: a refusal to everyone (an operation outside its period) says so; a near miss reads apart from the summary code; not-party agencies by name', async () => {
    const file = join(dir, 'audit-period.db');
    const db = openDatabase(file);
    const entries: AuditEntry[] = [
      {
        event: AuditEvent.Denied,
        ...who,
        reasonCode: 'DENY_OPERATION_PERIOD',
        reason: 'operation OLD-OP@1 is not in its period: the alert goes to nobody',
      },
      {
        event: AuditEvent.Denied,
        ...who,
        reasonCode: NEAR_MISSES,
        reason: '1 agency refused under an agreement',
        detail: {
          codes: { 'VN-CUSTOMS': 'DENY_OPERATION_PERIOD' },
          counts: { DENY_OPERATION_PERIOD: 1 },
        },
      },
      {
        event: AuditEvent.Denied,
        ...who,
        reasonCode: 'DENY_NOT_PARTY',
        reason:
          'no agreement (or operation membership) includes SG-NPARKS and any of 2 other agencies',
        detail: { recipients: ['HK-CED', 'US-FWS'] },
      },
    ];
    db.transaction(() =>
      new AuditAppender(db, 'router-a').append(entries, '2026-11-29T00:00:00.000Z'),
    ).immediate();
    db.close();
    const r = await hubctl(['audit', 'trace', ALERT, '--db', file]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      'x  everyone: DENY_OPERATION_PERIOD operation OLD-OP@1 is not in its period',
    );
    expect(r.stdout).toContain(
      `x  VN-CUSTOMS DENY_OPERATION_PERIOD (${NEAR_MISSES}: 1 agency refused under an agreement)`,
    );
    expect(r.stdout).toContain('x  HK-CED, US-FWS: DENY_NOT_PARTY no agreement');
    expect(r.stdout).not.toMatch(/DENY_OPERATION_PERIOD: DENY_NEAR_MISSES|\(others\)/);
  });

  it('trace and query: routes that were tampered with are said to be unreadable, exit 1, never "0 recipients"', async () => {
    const file = join(dir, 'audit-tampered.db');
    const db = auditLog(file);
    db.prepare("DELETE FROM audit_routes WHERE recipient = 'VN-CUSTOMS'").run();
    db.close();
    const r = await hubctl(['audit', 'trace', ALERT, '--db', file]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('ROUTES UNREADABLE');
    expect(r.stdout).not.toMatch(/routed to 0 recipient/);
    const json = await hubctl(['audit', 'trace', ALERT, '--db', file, '--json']);
    expect(json.code).toBe(1);
    const routed = (JSON.parse(json.stdout) as { event: string; routesError?: string }[]).find(
      (x) => x.event === 'routed',
    );
    expect(routed?.routesError).toBeDefined();
    const q = await hubctl(['audit', 'query', '--db', file, '--outcome', 'routed']);
    expect(q.code).toBe(1);
    expect(q.stdout).toContain('ROUTES UNREADABLE');
  });
});
