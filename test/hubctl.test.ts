import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hubctl } from '@alert-hub/testkit';

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
      valid: false,
      code: 'ERR_SCHEMA_INVALID',
      errors: [
        {
          pointer: '/consignee/country',
          message: '"UK" is not an ISO 3166-1 alpha-2 country code',
        },
      ],
    });
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
