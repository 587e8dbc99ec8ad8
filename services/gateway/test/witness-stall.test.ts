import { readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NatsConnection } from '@nats-io/transport-node';
import {
  auditCheckpointSubject,
  auditCosignatureSubject,
  auditOrigin,
  generateSigningJwk,
  importSigningKey,
  newKeyPair,
  type SigningKey,
} from '@alert-hub/core';
import {
  MerkleTree,
  SignatureType,
  cosignCheckpoint,
  formatCheckpoint,
  parseCheckpoint,
  parseNote,
  noteKeyId,
  signNote,
  witnessName,
} from '@alert-hub/audit';
import { useNatsServer } from '@alert-hub/testkit/harness';
import { answeringProofs } from './support/proof-replies.js';
import {
  eventually,
  loadTrustStore,
  makeHubFixture,
  memoryLogger,
  registry,
} from '@alert-hub/testkit';
import { createGatewayMetrics } from '../src/metrics.js';
import {
  GatewayWitness,
  REMEMBERED_COSIGNED,
  REMEMBERED_LOGS,
  WITNESS_STALL_CHECKPOINTS,
} from '../src/witness.js';

// The witness class of one gateway, fed hub-signed checkpoints over a real nats-server: the
// stalled alarm is raised after WITNESS_STALL_CHECKPOINTS checkpoints in a row that do not extend
// what it cosigned, and cleared by the next one it cosigns (audit-transparency.test.ts raises it
// through whole gateways; clearing it needs no router).
const AGENCY = 'SG-NPARKS';
const nats = useNatsServer();
const fx = makeHubFixture([AGENCY]);
const { log, lines } = memoryLogger('witness-stall-test');
const tree = new MerkleTree((start, end) =>
  Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, (start + i) % 256)),
);
let nc: NatsConnection;
let metrics: ReturnType<typeof createGatewayMetrics>;
let witness: GatewayWitness;
/** Checkpoints published since the current witness started. */
let published = 0;

/** The agency's signing key now (a reload after a rotation changes it). */
let agencyKey: SigningKey = fx.keys[AGENCY]!;

/** Starts the witness as a gateway does, on the same state directory each time. */
function startWitness(): void {
  metrics = createGatewayMetrics(AGENCY);
  published = 0;
  const trust = loadTrustStore(fx.trustDir, registry);
  witness = new GatewayWitness({
    agency: AGENCY,
    hubPrincipal: 'HUB',
    signingKey: () => agencyKey,
    trust: () => trust,
    dir: join(fx.dir, 'witness'),
    metrics,
    log,
    requestTimeoutMs: 2_000,
  });
  witness.start(nc);
}

beforeAll(async () => {
  nc = await nats.connect();
  startWitness();
});
afterAll(() => {
  witness.close();
  fx.cleanup();
});

/** The hub's signed checkpoint note of `log` at `size` (of `of`'s tree, by default the log's). */
function hubNote(log: string, size: number, of: MerkleTree = tree): string {
  return signNote(formatCheckpoint({ origin: auditOrigin(log), size, root: of.root(size) }), {
    name: auditOrigin(log),
    privateKey: fx.hubKey.privateKey,
    publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
  });
}

/** Publishes the hub's checkpoint of `log` at `size`, with a consistency proof from each of `from`. */
async function checkpoint(log: string, size: number, from: number[] = []): Promise<void> {
  const note = hubNote(log, size);
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
    const note = hubNote('zeta', 4);
    const answer = await answering('zeta', withCheckpoint(note), () =>
      witness.inclusionProof('zeta', '0169fb6c-1a80-7000-8000-000000000001', 0),
    );
    expect(answer).toMatchObject({ ok: false, checkpoint: note, entries: [] });
  });
});

/** Plays the router: answers this agency's proof requests of `log` with `reply`. */
const answering = <T>(log: string, reply: string, ask: () => Promise<T>): Promise<T> =>
  answeringProofs(nc, log, AGENCY, reply, ask);
const withCheckpoint = (note: string) => JSON.stringify({ checkpoint: note, entries: [] });
/**
 * The witness's standing of a proof whose checkpoint is `note` (its `witness`, or the error's
 * code), the router played by {@link answering}; it waits up to `waitMs` for a newer checkpoint.
 */
async function standing(log: string, note: string, waitMs = 200): Promise<string> {
  const a = await answering(log, withCheckpoint(note), () =>
    witness.inclusionProof(log, '0169fb6c-1a80-7000-8000-000000000002', waitMs),
  );
  return 'witness' in a ? a.witness : a.error.code;
}

describe('gateway witness - a proof of delivery is bound to the checkpoints this witness cosigned', () => {
  const ID = '0169fb6c-1a80-7000-8000-000000000002';

  it('cosigned, not yet, cosigned after a wait, older: by size and root, remembered in memory and the last one across a restart', async () => {
    await checkpoint('eta', 3);
    // The checkpoint this witness cosigned, as the router serves it: with the lines of the
    // witnesses it gathered (another agency's here).
    const kws = newKeyPair('EdDSA');
    const gathered = `${hubNote('eta', 3)}${cosignCheckpoint(
      parseNote(hubNote('eta', 3)).text,
      {
        name: witnessName('KE-KWS'),
        privateKey: kws.privateKey,
        publicKey: kws.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
      },
      1_764_374_400,
    )}\n`;
    expect(parseNote(gathered).signatures).toHaveLength(2);
    expect(await standing('eta', gathered)).toBe('cosigned');
    // Newer than anything cosigned, never published: not yet, after the wait.
    const t0 = Date.now();
    expect(await standing('eta', hubNote('eta', 9), 300)).toBe('not-yet');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    // Newer, and published while the proof waits: cosigned once the witness has verified it.
    const pending = standing('eta', hubNote('eta', 5), 10_000);
    await new Promise((r) => setTimeout(r, 100));
    await checkpoint('eta', 5, [3]);
    expect(await pending).toBe('cosigned');
    // An earlier checkpoint it cosigned is still bound (remembered since the start).
    expect(await standing('eta', hubNote('eta', 3))).toBe('cosigned');
    // After a restart only the last one cosigned is known (it is on disk): 3 is older.
    witness.close();
    startWitness();
    expect(await standing('eta', hubNote('eta', 5))).toBe('cosigned');
    expect(await standing('eta', hubNote('eta', 3))).toBe('older');
    expect(witness.inconsistency).toBeUndefined();
  });

  it('a reply that is not one of the protocol is ERR_HUB_REPLY_INVALID; a checkpoint of another log or not signed by the hub, ERR_NOTE_SIGNATURE', async () => {
    const note = hubNote('theta', 2);
    const code = async (reply: string) => {
      const a = await answering('theta', reply, () => witness.inclusionProof('theta', ID, 0));
      return 'error' in a ? a.error.code : `answered ${JSON.stringify(a)}`;
    };
    for (const bad of [
      'not json',
      '[]',
      `{"checkpoint": ${JSON.stringify(note)}, "checkpoint": ${JSON.stringify(note)}, "entries": []}`,
      `{"checkpoint": ${JSON.stringify(note)}, "entries": {}}`,
      `{"checkpoint": 5, "entries": []}`,
      `{"checkpoint": ${JSON.stringify(note)}, "entries": [{"record": {}, "index": -1, "proof": []}]}`,
      `{"checkpoint": ${JSON.stringify(note)}, "entries": [{"record": {}, "index": 0, "proof": [1]}]}`,
      `{"checkpoint": ${JSON.stringify(note)}, "entries": [{"record": {}, "index": 0, "proof": [], "route": {"leaf": 1, "index": 0, "path": []}}]}`,
      '{"error": {"code": 5, "message": "x"}}',
      '{"checkpoint": "not a note", "entries": []}',
    ])
      expect(await code(bad), bad).toBe('ERR_HUB_REPLY_INVALID');
    // The router's own refusals pass through as they are.
    expect(await code('{"error": {"code": "ERR_NOT_FOUND", "message": "none"}}')).toBe(
      'ERR_NOT_FOUND',
    );
    // A checkpoint of another log, though the hub signed it, does not answer for this one.
    expect(await code(withCheckpoint(hubNote('iota', 2)))).toBe('ERR_NOTE_SIGNATURE');
    const forged = signNote(
      formatCheckpoint({ origin: auditOrigin('theta'), size: 2, root: tree.root(2) }),
      {
        name: auditOrigin('theta'),
        privateKey: fx.keys[AGENCY]!.privateKey,
        publicKey: Buffer.from(fx.keys[AGENCY]!.publicJwk.x, 'base64url'),
      },
    );
    expect(await code(withCheckpoint(forged))).toBe('ERR_NOTE_SIGNATURE');
  });

  it('the last checkpoint cosigned before a restart stays bound after the restarted witness cosigns a newer one', async () => {
    await checkpoint('mu', 2);
    witness.close();
    startWitness();
    // The first thing the restarted witness does for this log is cosign a newer checkpoint.
    await checkpoint('mu', 6, [2]);
    expect(await standing('mu', hubNote('mu', 6), 5_000)).toBe('cosigned');
    expect(await standing('mu', hubNote('mu', 2))).toBe('cosigned');
  });

  // Last in the file: the inconsistency alarm stays until the witness restarts (each restarts it).
  it('a conflict: the hub signed another root for a size this witness cosigned; evidence kept, the alarm raised, not ok', async () => {
    await checkpoint('kappa', 4);
    const other = new MerkleTree((start, end) =>
      Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, 200 + ((start + i) % 50))),
    );
    const evidence = join(fx.dir, 'witness', 'evidence');
    const before = readdirSync(evidence).length;
    const a = await answering('kappa', withCheckpoint(hubNote('kappa', 4, other)), () =>
      witness.inclusionProof('kappa', ID, 0),
    );
    expect(a).toMatchObject({ ok: false, witness: 'conflict' });
    expect(witness.inconsistency).toMatch(/two different roots signed for tree size 4/);
    expect((await metrics.witnessInconsistent.get()).values[0]?.value).toBe(1);
    expect(readdirSync(evidence).length).toBe(before + 1);
    // Asked again: the same answer, no second evidence file; nor when the router adds a
    // signature line to the note (it is the root that conflicts, not the note's bytes).
    expect(await standing('kappa', hubNote('kappa', 4, other))).toBe('conflict');
    expect(readdirSync(evidence).length).toBe(before + 1);
    const anyone = newKeyPair('EdDSA');
    const line = (i: number) =>
      cosignCheckpoint(
        parseNote(hubNote('kappa', 4, other)).text,
        {
          name: witnessName(`X-${i}`),
          privateKey: anyone.privateKey,
          publicKey: anyone.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32),
        },
        1_764_374_400,
      );
    for (let i = 0; i < 3; i++)
      expect(await standing('kappa', `${hubNote('kappa', 4, other)}${line(i)}\n`, 0)).toBe(
        'conflict',
      );
    expect(readdirSync(evidence).length).toBe(before + 1);
    // However many roots the hub signs for that size, at most REMEMBERED_COSIGNED files.
    for (let i = 0; i < REMEMBERED_COSIGNED + 8; i++) {
      const root = Buffer.alloc(32);
      root.writeUInt32BE(i + 1);
      const forged = signNote(formatCheckpoint({ origin: auditOrigin('kappa'), size: 4, root }), {
        name: auditOrigin('kappa'),
        privateKey: fx.hubKey.privateKey,
        publicKey: Buffer.from(fx.hubKey.publicJwk.x, 'base64url'),
      });
      expect(await standing('kappa', forged, 0)).toBe('conflict');
    }
    expect(readdirSync(evidence).length - before).toBe(REMEMBERED_COSIGNED);
    witness.close();
    startWitness();
  });

  it('a conflict whose evidence cannot be written (the disk full, the directory gone) still raises the alarm and answers conflict', async () => {
    await checkpoint('nu', 3);
    expect(witness.inconsistency).toBeUndefined();
    const other = new MerkleTree((start, end) =>
      Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, 100 + start + i)),
    );
    // The evidence directory replaced by a file: every write in it fails (for root too).
    const evidence = join(fx.dir, 'witness', 'evidence');
    renameSync(evidence, `${evidence}.kept`);
    writeFileSync(evidence, '');
    try {
      expect(await standing('nu', hubNote('nu', 3, other))).toBe('conflict');
      expect(witness.inconsistency).toMatch(/two different roots signed for tree size 3/);
      expect((await metrics.witnessInconsistent.get()).values[0]?.value).toBe(1);
    } finally {
      rmSync(evidence);
      renameSync(`${evidence}.kept`, evidence);
      witness.close();
      startWitness();
    }
  });
});

describe('gateway witness - what it remembers of what it cosigned is bounded', () => {
  it(`the checkpoints of at most ${REMEMBERED_LOGS} logs, the most recently used: a hub signing many logs costs no more`, async () => {
    await checkpoint('rho', 2);
    await checkpoint('rho', 3, [2]);
    expect(await standing('rho', hubNote('rho', 2), 0)).toBe('cosigned');
    for (let i = 0; i < REMEMBERED_LOGS; i++) await checkpoint(`many${i}`, 2);
    // rho, least recently used, is forgotten: only its last (on disk) still binds.
    expect(await standing('rho', hubNote('rho', 2), 0)).toBe('older');
    expect(await standing('rho', hubNote('rho', 3), 0)).toBe('cosigned');
  });

  it('a note the hub padded with signature lines is remembered as its text, the hub’s line and the witness’s own (what the evidence of a conflict keeps)', async () => {
    const padding = Array.from(
      { length: 60 },
      (_, i) => `— alert-hub/witness/XX-PAD${i} ${Buffer.alloc(76, i).toString('base64')}\n`,
    ).join('');
    // An empty evidence directory (the conflicts above filled it to the store's limit).
    witness.close();
    rmSync(join(fx.dir, 'witness', 'evidence'), { recursive: true });
    startWitness();
    const padded = `${hubNote('sigma', 4)}${padding}`;
    nc.publish(auditCheckpointSubject('sigma'), JSON.stringify({ checkpoint: padded, proofs: [] }));
    published++;
    await eventually(
      async () =>
        (await metrics.witnessed.get()).values.reduce((n, v) => n + v.value, 0) === published,
      10_000,
      'the witness to handle the padded checkpoint',
    );
    // Forget the note on disk: what is compared and kept as evidence is what is in memory.
    await checkpoint('sigma', 5, [4]);
    const other = new MerkleTree((start, end) =>
      Array.from({ length: end - start }, (_, i) => Buffer.alloc(32, 100 + start + i)),
    );
    const evidence = join(fx.dir, 'witness', 'evidence');
    const before = new Set(readdirSync(evidence));
    expect(await standing('sigma', hubNote('sigma', 4, other), 0)).toBe('conflict');
    const added = readdirSync(evidence).filter((f) => !before.has(f));
    expect(added).toHaveLength(1);
    const kept = JSON.parse(readFileSync(join(evidence, added[0]!), 'utf8')) as {
      cosigned: { size: number; note: string };
    };
    expect(kept.cosigned.size).toBe(4);
    expect(parseNote(kept.cosigned.note).signatures.map((x) => x.name)).toEqual([
      auditOrigin('sigma'),
      witnessName(AGENCY),
    ]);
    witness.close();
    startWitness();
  });
});

describe('gateway witness - a rotated key', () => {
  it('after a key rotation and a reload the next checkpoint is cosigned with the new key, not the one the gateway started with', async () => {
    const keyId = (k: SigningKey) =>
      noteKeyId(
        witnessName(AGENCY),
        SignatureType.Cosignature,
        Buffer.from(k.publicJwk.x, 'base64url'),
      );
    const seen: string[] = [];
    const sub = nc.subscribe(auditCosignatureSubject('omicron', AGENCY), {
      callback: (_err, m) => {
        seen.push(m.string());
      },
    });
    await nc.flush();
    const ownLine = async (n: number) => {
      await eventually(() => seen.length >= n, 5_000, `${n} cosignatures`);
      return parseNote(seen[n - 1]!).signatures.find((x) => x.name === witnessName(AGENCY))!;
    };
    const before = agencyKey;
    await checkpoint('omicron', 2);
    expect((await ownLine(1)).keyId).toEqual(keyId(before));
    const { privateJwk } = generateSigningJwk('EdDSA');
    agencyKey = importSigningKey(privateJwk, AGENCY);
    try {
      await checkpoint('omicron', 3, [2]);
      const line = await ownLine(2);
      expect(line.keyId).toEqual(keyId(agencyKey));
      expect(line.keyId).not.toEqual(keyId(before));
    } finally {
      agencyKey = before;
      sub.unsubscribe();
    }
  });
});

describe('gateway witness - a log it has never seen', () => {
  const newLogs = async () => (await metrics.witnessNewLogs.get()).values[0]?.value ?? 0;
  const warnings = (name: string) =>
    lines
      .map((l) => JSON.parse(l) as { msg: string; log?: string; auditSize?: number })
      .filter((l) => l.msg.startsWith('AUDIT LOG NEW TO THIS WITNESS') && l.log === name);

  it('its first checkpoint is cosigned on trust, counted and logged once with its size; neither again, nor after a restart', async () => {
    await checkpoint('original', 3);
    const start = await newLogs();
    expect(warnings('original')).toHaveLength(1);
    await checkpoint('renamed', 6);
    expect(await outcomes('cosigned')).toBeGreaterThan(0);
    expect(await newLogs()).toBe(start + 1);
    expect(warnings('renamed')).toEqual([expect.objectContaining({ auditSize: 6 })]);
    // The same log again, and a log it already cosigned: nothing new.
    await checkpoint('renamed', 7, [6]);
    await checkpoint('original', 4, [3]);
    expect(await newLogs()).toBe(start + 1);
    // Restarted on the same state directory, it knows the log from disk.
    witness.close();
    startWitness();
    await checkpoint('renamed', 8, [7]);
    expect(await outcomes('cosigned')).toBe(1);
    expect(await newLogs()).toBe(0);
    expect(warnings('renamed')).toHaveLength(1);
  });

  it(`a log forgotten in memory (more than ${REMEMBERED_LOGS} others since) is known from disk: not new again`, async () => {
    const start = await newLogs();
    const logs = Array.from({ length: REMEMBERED_LOGS + 1 }, (_, i) => `evicted-${i}`);
    for (const l of logs) await checkpoint(l, 2);
    expect(await newLogs()).toBe(start + logs.length);
    await checkpoint(logs[0]!, 3, [2]);
    expect(await newLogs()).toBe(start + logs.length);
    expect(warnings(logs[0]!)).toHaveLength(1);
  });

  it('asked for a proof of delivery first, a log it has never cosigned is still new at its first checkpoint; the rule reads its time', async () => {
    const start = await newLogs();
    // The hub answers a proof request with a checkpoint of a log this witness has no state of.
    expect(await standing('proof-first', hubNote('proof-first', 4))).toBe('not-yet');
    const before = Date.now() / 1000;
    await checkpoint('proof-first', 4);
    expect(await newLogs()).toBe(start + 1);
    expect(warnings('proof-first')).toEqual([expect.objectContaining({ auditSize: 4 })]);
    const at = (await metrics.witnessNewLogAt.get()).values[0]!.value;
    expect(at).toBeGreaterThanOrEqual(Math.floor(before));
    expect(at).toBeLessThanOrEqual(Date.now() / 1000);
  });
});

describe('gateway witness - state it cannot read', () => {
  it('a damaged state file: the checkpoint is not cosigned, counted failed and reported; the hub connection lives on (other logs cosigned), and the log recovers', async () => {
    const dir = join(fx.dir, 'witness');
    const files = () => new Set(readdirSync(dir).filter((f) => f.startsWith('log-')));
    const had = files();
    await checkpoint('damaged', 2);
    const [state] = [...files()].filter((f) => !had.has(f));
    expect(state).toBeDefined();
    writeFileSync(join(dir, state!), '{"origin": "cut short');
    const cosigned = await outcomes('cosigned');
    await checkpoint('damaged', 3);
    expect(await outcomes('failed')).toBe(1);
    expect(witness.failure).toMatch(/^log damaged: /);
    expect(lines.some((l) => l.includes('AUDIT CHECKPOINT NOT HANDLED'))).toBe(true);
    // Thrown from the subscription, it would have ended the connection's reader: nothing more
    // handled. Another log's checkpoint is cosigned on the same connection.
    await checkpoint('intact', 2);
    expect(await outcomes('cosigned')).toBe(cosigned + 1);
    expect(witness.failure).toMatch(/^log damaged: /);
    // The file put right (here: removed, so the log starts again), the failure clears.
    rmSync(join(dir, state!));
    await checkpoint('damaged', 4);
    expect(witness.failure).toBeUndefined();
    expect(await outcomes('cosigned')).toBe(cosigned + 2);
  });
});
