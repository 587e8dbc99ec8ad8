import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { MAX_INBOUND_ENVELOPE_BYTES, inboundStreamName } from '@alert-hub/core';
import { loadConfig, startGateway, type Gateway } from '@alert-hub/gateway';
import { DEFAULT_SCHEMAS_DIR, createToken } from '@alert-hub/runtime';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  OPEN_JS_API,
  makeHubFixture,
  memoryLogger,
  provision,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

// The schemas of this release bound every member, so that a valid alert stays far below the
// 253,952 bytes an inbound envelope may have (docs/protocol.md §4). The gateway's check guards a
// schema that allows more: here a copy of the schemas whose seizure-report lets `concealment`
// run to 400,000 characters, and a body limit that lets such an alert in.
const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', 'VN-CUSTOMS']);
const submitter = createToken();
const { log } = memoryLogger('alert-too-large-test');
let sg: Gateway;

beforeAll(async () => {
  const schemasDir = join(fx.dir, 'schemas');
  cpSync(DEFAULT_SCHEMAS_DIR, schemasDir, { recursive: true });
  const file = join(schemasDir, 'seizure-report.v1.schema.json');
  const schema = JSON.parse(readFileSync(file, 'utf8')) as {
    properties: { seizure: { properties: { concealment: { maxLength: number } } } };
  };
  schema.properties.seizure.properties.concealment.maxLength = 400_000;
  writeFileSync(file, JSON.stringify(schema));
  await provision(await nats.connect(), ['SG-NPARKS', 'VN-CUSTOMS']);
  const config = writeConfig(fx.dir, 'SG-NPARKS', {
    agency: 'SG-NPARKS',
    signingKey: fx.keyFiles['SG-NPARKS'],
    trustDir: fx.trustDir,
    schemasDir,
    dataDir: join(fx.dir, 'data-SG-NPARKS'),
    http: { port: 0, bodyLimitBytes: 1024 * 1024 },
    nats: { servers: [nats.url], publishTimeoutMs: 1500, jsApiPrefix: OPEN_JS_API },
    clients: [{ name: 'risk-engine', tokenSha256: submitter.sha256, roles: ['submit'] }],
  });
  sg = await startGateway(loadConfig({}, config), { log });
});
afterAll(async () => {
  await sg?.close();
  fx.cleanup();
});

function submit(concealment: string) {
  const alert = seizureReport('SG-NPARKS');
  const seizure = (alert as unknown as { seizure: Record<string, unknown> }).seizure;
  return fetch(`${sg.url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${submitter.token}` },
    body: JSON.stringify({ ...alert, seizure: { ...seizure, concealment } }),
  });
}

async function inboundMessages(): Promise<number> {
  const jsm = await jetstreamManager(await nats.connect());
  return (await jsm.streams.info(inboundStreamName('SG-NPARKS'))).state.messages;
}

describe('gateway - an alert too large once signed', () => {
  it('is refused with 413 ERR_ALERT_TOO_LARGE before anything is published; a smaller one is accepted', async () => {
    const before = await inboundMessages();
    // Base64url makes the payload 4/3 of the JSON: this one is well over the inbound limit.
    const tooLarge = await submit('x'.repeat(MAX_INBOUND_ENVELOPE_BYTES));
    expect(tooLarge.status).toBe(413);
    const body = (await tooLarge.json()) as { error: { code: string } };
    expect(body.error.code).toBe('ERR_ALERT_TOO_LARGE');
    expect(await inboundMessages()).toBe(before);

    // Half of it fits once signed: the same schema, the same gateway, accepted.
    const fits = await submit('x'.repeat(MAX_INBOUND_ENVELOPE_BYTES / 2));
    expect(fits.status).toBe(202);
    expect(await inboundMessages()).toBe(before + 1);
  });
});
