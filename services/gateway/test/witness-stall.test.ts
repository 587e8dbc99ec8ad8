import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  auditCheckpointSubject,
  auditCosignatureSubject,
  auditOrigin,
  auditProofSubject,
} from '@alert-hub/core';
import {
  MerkleTree,
  formatCheckpoint,
  parseCheckpoint,
  parseNote,
  signNote,
} from '@alert-hub/audit';
import { useNatsServer } from '@alert-hub/testkit/harness';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  registry,
} from '@alert-hub/testkit';
import { createGatewayMetrics } from '../src/metrics.js';
import { GatewayWitness, WITNESS_STALL_CHECKPOINTS } from '../src/witness.js';

// The witness class of one gateway, fed hub-signed checkpoints over a real nats-server: the
// stalled alarm is raised after WITNESS_STALL_CHECKPOINTS checkpoints in a row that do not extend
// what it cosigned, and cleared by the next one it cosigns (audit-transparency.test.ts raises it
// through whole gateways; clearing it needs no router).
const AGENCY = 'SG-NPARKS';
const nats = useNatsServer();
const fx = makeHubFixture([AGENCY]);
const { log } = memoryLogger('witness-stall-test');
const tree = new MerkleTree((start, end) =>
  Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, (start + i) % 256)),
);
let nc: NatsConnection;
let metrics: ReturnType<typeof createGatewayMetrics>;
let witness: GatewayWitness;
/** Checkpoints published since the current witness started. */
let published = 0;

/** Starts the witness as a gateway does, on the same state directory each time. */
function startWitness(): void {
  metrics = createGatewayMetrics(AGENCY);
  published = 0;
  const trust = loadTrustStore(fx.trustDir, registry);
  witness = new GatewayWitness({
    nc,
    agency: AGENCY,
    hubPrincipal: 'HUB',
    signingKey: () => fx.keys[AGENCY]!,
    trust: () => trust,
    dir: join(fx.dir, 'witness'),
    metrics,
    log,
    requestTimeoutMs: 2_000,
  });
  witness.start();
}

beforeAll(async () => {
  nc = await nats.connect();
  startWitness();
});
afterAll(() => {
  witness.close();
  fx.cleanup();
});

/** Publishes the hub's checkpoint of `log` at `size`, with a consistency proof from each of `from`. */
async function checkpoint(log: string, size: number, from: number[] = []): Promise<void> {
  const note = signNote(
    formatCheckpoint({ origin: auditOrigin(log), size, root: tree.root(size) }),
    {
      name: auditOrigin(log),
      privateKey: fx.hubKey.privateKey,
      publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
    },
  );
  const proofs = from.map((m) => ({
    from: m,
    proof: tree.consistencyProof(m, size).map((h) => h.toString('base64')),
  }));
  nc.publish(auditCheckpointSubject(log), JSON.stringify({ checkpoint: note, proofs }));
  published++;
  // The witness handles them in order; wait until it has handled this one.
  await eventually(
    async () =>
      (await metrics.witnessed.get()).values.reduce((n, v) => n + v.value, 0) === published,
    10_000,
    `the witness to handle checkpoint ${size} of ${log}`,
  );
}

async function outcomes(kind: string): Promise<number> {
  return (await metrics.witnessed.get()).values.find((v) => v.labels.outcome === kind)?.value ?? 0;
}

async function stalledMetric(): Promise<number> {
  return (await metrics.witnessStalled.get()).values[0]?.value ?? 0;
}

/** Checkpoints of `log` older than `cosigned` (stale): never extend what the witness cosigned. */
async function stall(log: string, cosigned: number, n = WITNESS_STALL_CHECKPOINTS): Promise<void> {
  for (let i = 0; i < n; i++) await checkpoint(log, 1 + (i % (cosigned - 1)));
}

describe('gateway witness - the stalled alarm clears when the log extends again', () => {
  it('raised after the 5th checkpoint in a row that does not extend, cleared (metric 0) by the next one it cosigns', async () => {
    await checkpoint('alpha', 4);
    expect(await outcomes('cosigned')).toBe(1);
    await stall('alpha', 4, WITNESS_STALL_CHECKPOINTS - 1);
    expect(witness.stalled).toBeUndefined();
    expect(await stalledMetric()).toBe(0);
    // A newer checkpoint without a proof from 4 does not extend it either: the 5th in a row.
    await checkpoint('alpha', 6);
    expect(await outcomes('unverifiable')).toBe(1);
    expect(witness.stalled).toMatch(/^log alpha: 5 /);
    expect(await stalledMetric()).toBe(1);

    await checkpoint('alpha', 7, [4]);
    expect(await outcomes('cosigned')).toBe(2);
    expect(witness.stalled).toBeUndefined();
    expect(await stalledMetric()).toBe(0);

    // The count starts again from zero: four more in a row do not raise it again.
    await stall('alpha', 7, WITNESS_STALL_CHECKPOINTS - 1);
    expect(witness.stalled).toBeUndefined();
    expect(await stalledMetric()).toBe(0);
    await checkpoint('alpha', 8, [7]);
  });

  it('with several logs, a log that extends again leaves the alarm naming a log still stalled', async () => {
    await checkpoint('beta', 3);
    await checkpoint('gamma', 3);
    await stall('beta', 3);
    expect(witness.stalled).toMatch(/^log beta: /);
    await stall('gamma', 3);
    expect(witness.stalled).toMatch(/^log gamma: /);
    expect(await stalledMetric()).toBe(1);

    // gamma extends again: beta is still stalled, and the alarm now names it.
    await checkpoint('gamma', 5, [3]);
    expect(witness.stalled).toMatch(/^log beta: /);
    expect(await stalledMetric()).toBe(1);
    // A log that never stalled cosigning does not clear it either.
    await checkpoint('alpha', 9, [8]);
    expect(witness.stalled).toMatch(/^log beta: /);
    expect(await stalledMetric()).toBe(1);

    await checkpoint('beta', 4, [3]);
    expect(witness.stalled).toBeUndefined();
    expect(await stalledMetric()).toBe(0);
  });

  it('the count lives in memory: a restarted witness starts it again from zero', async () => {
    await checkpoint('delta', 3);
    await stall('delta', 3);
    expect(witness.stalled).toMatch(/^log delta: /);
    // What the gateway does when it restarts: a new witness on the same state directory.
    witness.close();
    startWitness();
    expect(witness.stalled).toBeUndefined();
    await stall('delta', 3, WITNESS_STALL_CHECKPOINTS - 1);
    expect(witness.stalled).toBeUndefined();
    expect(await stalledMetric()).toBe(0);
    await checkpoint('delta', 2);
    expect(witness.stalled).toMatch(/^log delta: 5 /);
    expect(await stalledMetric()).toBe(1);
    // What it cosigned before the restart is what a newer checkpoint must extend.
    await checkpoint('delta', 4, [3]);
    expect(await outcomes('cosigned')).toBe(1);
    expect(witness.stalled).toBeUndefined();
  });

  it('a checkpoint without a proof from the size it cosigned: the witness publishes its last cosignature again, once per checkpoint', async () => {
    const seen: string[] = [];
    const sub = nc.subscribe(auditCosignatureSubject('epsilon', AGENCY), {
      callback: (_err, m) => {
        seen.push(m.string());
      },
    });
    await nc.flush();
    const size = (note: string) => parseCheckpoint(parseNote(note).text).size;
    const received = (n: number) => eventually(() => seen.length >= n, 5_000, `${n} cosignatures`);
    await checkpoint('epsilon', 3);
    await received(1);
    // The router does not know 3: the witness says it again (its note as it cosigned it).
    await checkpoint('epsilon', 5);
    await received(2);
    expect(seen[1]).toBe(seen[0]);
    // The same checkpoint again: no second reminder; an older one (stale): none either.
    await checkpoint('epsilon', 5);
    await checkpoint('epsilon', 2);
    await checkpoint('epsilon', 6);
    await received(3);
    expect(seen[2]).toBe(seen[0]);
    await checkpoint('epsilon', 7, [3]);
    await received(4);
    await nc.flush();
    expect(seen.map(size)).toEqual([3, 3, 3, 7]);
    sub.unsubscribe();
  });
});

describe('gateway witness - a proof of delivery', () => {
  it('a reply with no entries proves nothing: not ok, though every entry (none) verifies (docs/protocol.md §8.5)', async () => {
    const note = signNote(
      formatCheckpoint({ origin: auditOrigin('zeta'), size: 4, root: tree.root(4) }),
      {
        name: auditOrigin('zeta'),
        privateKey: fx.hubKey.privateKey,
        publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
      },
    );
    const sub = nc.subscribe(auditProofSubject('zeta', AGENCY), {
      callback: (_err, m) => {
        m.respond(JSON.stringify({ checkpoint: note, entries: [] }));
      },
    });
    await nc.flush();
    const answer = await witness.inclusionProof('zeta', '0169fb6c-1a80-7000-8000-000000000001');
    expect(answer).toMatchObject({ ok: false, checkpoint: note, entries: [] });
    sub.unsubscribe();
  });
});
