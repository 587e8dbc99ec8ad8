import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigDocument, type ConfigInvalidError } from '@alert-hub/runtime';

const schema = {
  type: 'object',
  properties: {
    agency: { type: 'string', pattern: '^[A-Z]{2}-[A-Z0-9]{2,16}$' },
    http: {
      type: 'object',
      properties: { port: { type: 'integer', minimum: 1, maximum: 65535, default: 8080 } },
      default: {},
      additionalProperties: false,
    },
    keyFile: { type: 'string' },
    servers: { type: 'array', items: { type: 'string' }, default: ['nats://127.0.0.1:4222'] },
  },
  required: ['agency', 'keyFile'],
  additionalProperties: false,
};
const bindings = [
  { env: 'AHUB_AGENCY', path: 'agency', type: 'string' },
  { env: 'AHUB_HTTP_PORT', path: 'http.port', type: 'integer' },
  { env: 'AHUB_NATS_SERVERS', path: 'servers', type: 'list' },
] as const;
const dir = mkdtempSync(join(tmpdir(), 'ahub-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('config - loading', () => {
  it('reads YAML, resolves paths against the file, fills defaults, freezes', () => {
    const file = join(dir, 'a.yaml');
    writeFileSync(file, 'agency: SG-NPARKS\nkeyFile: keys/sg.jwk\n');
    const c = loadConfigDocument<{
      agency: string;
      keyFile: string;
      http: { port: number };
      servers: string[];
    }>({ schema, file, env: {}, bindings, paths: ['keyFile'] });
    expect(c).toEqual({
      agency: 'SG-NPARKS',
      keyFile: join(dir, 'keys/sg.jwk'),
      http: { port: 8080 },
      servers: ['nats://127.0.0.1:4222'],
    });
    expect(Object.isFrozen(c.http)).toBe(true);
  });
  it('environment variables override the file', () => {
    const file = join(dir, 'b.yaml');
    writeFileSync(file, 'agency: SG-NPARKS\nkeyFile: /k\nhttp: { port: 1 }\n');
    const c = loadConfigDocument<{ agency: string; http: { port: number }; servers: string[] }>({
      schema,
      file,
      env: { AHUB_HTTP_PORT: '9443', AHUB_NATS_SERVERS: 'nats://a:1, nats://b:2' },
      bindings,
    });
    expect(c.http.port).toBe(9443);
    expect(c.servers).toEqual(['nats://a:1', 'nats://b:2']);
  });
  it('reports every problem at once, before anything starts', () => {
    const file = join(dir, 'c.yaml');
    writeFileSync(file, 'agency: sg\nhttp: { port: 70000, host: x }\nkeyfile: /k\n');
    let err: ConfigInvalidError | undefined;
    try {
      loadConfigDocument({ schema, file, env: { AHUB_HTTP_PORT: 'eighty' }, bindings });
    } catch (e) {
      err = e as ConfigInvalidError;
    }
    expect(err?.code).toBe('ERR_CONFIG_INVALID');
    expect(err?.issues.map((i) => i.pointer)).toEqual([
      '/agency',
      '/http/host',
      '/http/port',
      '/keyFile',
      '/keyfile',
    ]);
    expect(err?.issues.find((i) => i.pointer === '/keyfile')?.message).toBe(
      'is not a known member; did you mean "keyFile"?',
    );
    expect(err?.issues.find((i) => i.pointer === '/http/port')?.message).toMatch(/AHUB_HTTP_PORT/);
  });
});
