import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '@alert-hub/runtime/files';
import { hubctl, seizureReport } from '@alert-hub/testkit';

/**
 * packages/hubctl/README.md: every failure is printed as `hubctl: <what happened> [<ERR_CODE>]`,
 * those of the file system too: a file that cannot be read (or is not what it must be) is
 * `ERR_INPUT_INVALID`, one that cannot be written `ERR_OUTPUT_FAILED`. The paths go through a
 * regular file (`<file>/...`, ENOTDIR) or a directory that is not there, which fail for root too.
 */
const dir = mkdtempSync(join(tmpdir(), 'ahub-hubctl-codes-'));
const certs = join(dir, 'certs');
/** A regular file: nothing can be made under it. */
const file = join(dir, 'a-file');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(async () => {
  writeFileSync(file, 'not a directory, not JSON, not a database\n');
  for (const args of [
    ['--agency', 'HUB', '--role', 'router'],
    ['--agency', 'SG-NPARKS'],
  ])
    expect((await hubctl(['keys', 'generate', ...args, '--certs', certs])).code).toBe(0);
});

/** One line, `hubctl: ... [code]`, exit 1, nothing on stdout. */
async function failsWith(args: readonly string[], code: string) {
  const r = await hubctl(args);
  expect(r.code, r.stderr).toBe(1);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(new RegExp(`^hubctl: [^\\n]+ \\[${code}\\]\\n$`));
  return r.stderr;
}

describe('hubctl - a file that cannot be written or read is a failure with its code', () => {
  it('a write: nats-config --out, --out-dir, keys generate, backup --out are ERR_OUTPUT_FAILED', async () => {
    const missing = join(dir, 'no', 'such', 'dir', 'nats.conf');
    const out = await failsWith(
      ['nats-config', '--certs', certs, '--out', missing],
      'ERR_OUTPUT_FAILED',
    );
    expect(out).toContain(`ENOENT: no such file or directory, open '${missing}'`);
    expect(existsSync(missing)).toBe(false);
    await failsWith(
      ['nats-config', '--certs', certs, '--out', join(file, 'nats.conf')],
      'ERR_OUTPUT_FAILED',
    );
    await failsWith(
      ['nats-config', '--certs', certs, '--cluster', '3', '--out-dir', join(file, 'cluster')],
      'ERR_OUTPUT_FAILED',
    );
    // A new agency's key where no directory can be made: its private key's.
    const keys = await failsWith(
      ['keys', 'generate', '--agency', 'KE-KWS', '--certs', join(file, 'certs')],
      'ERR_OUTPUT_FAILED',
    );
    expect(keys).toContain('ENOTDIR');
    const db = openDatabase(join(dir, 'live.db'));
    db.exec('CREATE TABLE t (x)');
    db.close();
    await failsWith(
      ['backup', '--db', join(dir, 'live.db'), '--out', join(file, 'copy.db')],
      'ERR_OUTPUT_FAILED',
    );
  });

  it('a read: a trust file not JSON, an --identities file not there, a --db not a database are ERR_INPUT_INVALID, naming the file', async () => {
    const broken = join(dir, 'broken-certs');
    expect(
      (await hubctl(['keys', 'generate', '--agency', 'HUB', '--role', 'router', '--certs', broken]))
        .code,
    ).toBe(0);
    const bad = join(broken, 'trust', 'VN-CUSTOMS.jwks.json');
    writeFileSync(bad, '{"keys": [');
    expect(await failsWith(['keys', 'list', '--certs', broken], 'ERR_INPUT_INVALID')).toContain(
      bad,
    );
    expect(
      await failsWith(['keys', 'revoke', '--kid', 'x', '--certs', broken], 'ERR_INPUT_INVALID'),
    ).toMatch(new RegExp(`^hubctl: ${broken}: .*JSON`));
    const identities = join(dir, 'no-identities.yaml');
    expect(
      await failsWith(
        ['nats-config', '--certs', certs, '--identities', identities],
        'ERR_INPUT_INVALID',
      ),
    ).toContain(`ENOENT: no such file or directory, open '${identities}'`);
    expect(
      await failsWith(['backup', '--db', file, '--out', join(dir, 'copy.db')], 'ERR_INPUT_INVALID'),
    ).toBe(`hubctl: ${file}: file is not a database [ERR_INPUT_INVALID]\n`);
    expect(existsSync(join(dir, 'copy.db'))).toBe(false);
    expect(await failsWith(['audit', 'query', '--db', file], 'ERR_INPUT_INVALID')).toContain(
      `${file}: file is not a database`,
    );
  });

  it('leaf provision: a TLS file not there is ERR_INPUT_INVALID, a leaf node that cannot be reached ERR_NETWORK', async () => {
    const leaf = ['leaf', 'provision', '--agency', 'SG-NPARKS', '--server', 'tls://127.0.0.1:1'];
    expect(await failsWith([...leaf, '--certs', certs], 'ERR_INPUT_INVALID')).toContain(
      `ENOENT: no such file or directory, access '${join(certs, 'dev', 'ca.pem')}'`,
    );
    expect((await hubctl(['certs', 'dev', '--certs', certs])).code).toBe(0);
    expect(await failsWith([...leaf, '--certs', certs], 'ERR_NETWORK')).toContain(
      'the leaf node at tls://127.0.0.1:1 cannot be reached',
    );
  });

  it('send and feed: an answer that is not JSON (a proxy’s error page, another server) is ERR_REQUEST_REFUSED, naming the URL and status', async () => {
    const server = createServer((req, res) => {
      // A proxy in front of a gateway that is down: 502 with a page; elsewhere a page with 200.
      res.writeHead(req.url === '/v1/alerts' ? 502 : 200, { 'content-type': 'text/html' });
      res.end('<html><body>Bad Gateway</body></html>');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const alert = join(dir, 'alert.json');
      writeFileSync(alert, JSON.stringify(seizureReport('SG-NPARKS')));
      const env = { AHUB_TOKEN: 'not-used', AHUB_GATEWAY_URL: base };
      const sent = await hubctl(['send', alert], { env });
      expect(sent.code).toBe(1);
      expect(sent.stderr).toBe(
        `hubctl: ${base}/v1/alerts answered HTTP 502 with a body that is not JSON [ERR_REQUEST_REFUSED]\n`,
      );
      const feed = await hubctl(['feed'], { env });
      expect(feed.code).toBe(1);
      expect(feed.stderr).toMatch(
        /^hubctl: http:\/\/[^ ]+\/v1\/feed\?[^ ]+ answered HTTP 200 with a body that is not JSON \[ERR_REQUEST_REFUSED\]\n$/,
      );
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
