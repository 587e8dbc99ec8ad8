import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import {
  ROUTE_TREE_TYP,
  decodeEnvelope,
  openDelivery,
  parseFeedSubject,
  sha256Hex,
} from '@alert-hub/core';
import { loadConfig, startRouter, type Router } from '@alert-hub/router';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  feedMessages,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  publishInbound,
  registry,
  seizureReport,
  writeConfig,
} from '@alert-hub/testkit';

// The router signs once per routing decision (docs/protocol.md §3.2): every copy of an alert
// carries the same countersignature, with its own leaf and path, and opens for its recipient only.
const RECIPIENTS = ['CN-GACC', 'NG-NCS', 'VN-CUSTOMS'];
const nats = useNatsServer();
const fx = makeHubFixture(['SG-NPARKS', ...RECIPIENTS]);
const { log } = memoryLogger('router-countersign-test');
let router: Router;

beforeAll(async () => {
  const agreementsFile = join(fx.dir, 'agreements.yaml');
  writeFileSync(
    agreementsFile,
    toYaml({
      agreements: [
        {
          id: 'WEN-WIDE',
          version: 4,
          title: 'every party',
          parties: ['SG', 'CN', 'NG', 'VN'],
          alertTypes: ['seizure-report'],
          maxHandling: 'TLP:AMBER',
          validFrom: '2019-01-01T00:00:00Z',
        },
      ],
    }),
  );
  const file = writeConfig(fx.dir, 'router', {
    instance: 'router-countersign-test',
    signingKey: fx.hubKeyFile,
    trustDir: fx.trustDir,
    agreementsFile,
    dataDir: join(fx.dir, 'router'),
    nats: { servers: [nats.url] },
    http: { port: 0 },
  });
  router = await startRouter(loadConfig({}, file), { log });
});
afterAll(async () => {
  await router?.close();
  fx.cleanup();
});

describe('router - one countersignature per routing decision', () => {
  it('every copy carries the one signature and its own leaf; each opens for its recipient only; the audit names each copy by its digest', async () => {
    const nc = await nats.connect();
    const alert = seizureReport('SG-NPARKS');
    await publishInbound(nc, alert, fx.keys['SG-NPARKS']!);
    const copies = await eventually(
      async () => {
        const m = (await feedMessages(nc)).filter((x) => x.msgId.startsWith(`${alert.id}:`));
        return m.length === RECIPIENTS.length ? m : undefined;
      },
      10_000,
      'three copies',
    );
    const sigs = copies.map((c) => decodeEnvelope(c.data).signatures[1]!);
    expect(new Set(sigs.map((s) => s.signature)).size).toBe(1);
    expect(new Set(sigs.map((s) => s.protected)).size).toBe(1);
    const header = JSON.parse(Buffer.from(sigs[0]!.protected, 'base64url').toString('utf8')) as {
      typ: string;
      tree_size: number;
    };
    expect(header).toMatchObject({ typ: ROUTE_TREE_TYP, tree_size: 3 });

    const trust = loadTrustStore(fx.trustDir, registry);
    for (const c of copies) {
      const recipient = parseFeedSubject(c.subject)!.recipient;
      const opened = await openDelivery(c.data, c.subject, { trust, registry, recipient });
      expect(opened.ok && opened.route).toMatchObject({
        recipient,
        agreement: { id: 'WEN-WIDE', version: 4 },
      });
      const other = RECIPIENTS.find((r) => r !== recipient)!;
      const refused = await openDelivery(c.data, c.subject.replace(recipient, other), {
        trust,
        registry,
        recipient: other,
      });
      expect(!refused.ok && refused.error.code).toBe('ERR_ENVELOPE_HEADER_MISMATCH');
    }
    expect(copies.map((c) => parseFeedSubject(c.subject)!.recipient).sort()).toEqual(RECIPIENTS);

    // The router records each copy by the SHA-256 of its bytes: receipts name a delivery by it.
    for (const c of copies) {
      const recipient = parseFeedSubject(c.subject)!.recipient;
      const known = await eventually(
        () => router.store.delivery('SG-NPARKS', alert.id, recipient),
        10_000,
        `delivery to ${recipient}`,
      );
      expect(known.envelopeSha256).toBe(sha256Hex(c.data));
    }
  });
});
