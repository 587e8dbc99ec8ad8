import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type AuditRecord,
  type NoteError,
  checkRoutes,
  cosignCheckpoint,
  MAX_COSIGNATURE_MESSAGE_BYTES,
  MAX_COSIGNATURE_MESSAGE_SIGNATURES,
  findCosignature,
  formatCheckpoint,
  isOversizedCosignatureMessage,
  openCheckpoint,
  parseCheckpoint,
  Witness,
  parseNote,
  rawEd25519PublicKey,
  setSignatureLine,
  signNote,
  verifyConsistency,
  verifyCosignature,
  verifyInclusion,
  verifyNote,
  verifyRouteInclusion,
} from '@alert-hub/audit';
import { newKeyPair } from '@alert-hub/core';
import {
  COSIGNED_AT,
  HUB_SEED,
  ORIGIN,
  WITNESS,
  WITNESS_SEED,
  buildAuditVectors,
  keyFromSeed,
} from './vectors.js';

const published = JSON.parse(
  readFileSync(new URL('./audit-vectors.json', import.meta.url), 'utf8'),
) as ReturnType<typeof buildAuditVectors>;
const hub = { name: ORIGIN, ...keyFromSeed(HUB_SEED) };
const witness = { name: WITNESS, ...keyFromSeed(WITNESS_SEED) };

function code(f: () => unknown): string {
  try {
    f();
    return 'accepted';
  } catch (err) {
    return (err as NoteError).code;
  }
}

describe('audit vectors - a routing decision in one entry', () => {
  const { routed } = published;
  const record = { ...routed.record, hash: routed.leafHash } as AuditRecord;
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  it('its rows in audit_routes are exactly the leaves of the route tree its detail commits to', () => {
    expect(sha(Buffer.from([0]), Buffer.from(routed.bytes, 'utf8')).toString('hex')).toBe(
      routed.leafHash,
    );
    expect(checkRoutes(record, routed.routes)).toBeUndefined();
    // Written out by hand: MTH of three leaves = H(1 || H(1 || l0 || l1) || l2).
    const [l0, l1, l2] = routed.routes.map((r) => sha(Buffer.from([0]), Buffer.from(r.leaf)));
    const root = sha(Buffer.from([1]), sha(Buffer.from([1]), l0!, l1!), l2!);
    expect(root.toString('hex')).toBe(routed.routeRoot);
    expect(JSON.parse(routed.record.detail!)).toEqual({
      feeds: [7, 8, 9],
      root: root.toString('base64url'),
      size: 3,
    });
    // A row edited, removed or moved is found.
    const rows = routed.routes;
    expect(checkRoutes(record, rows.slice(0, 2))).toBeDefined();
    expect(checkRoutes(record, [rows[0]!, rows[1]!, { ...rows[2]!, feed_seq: 10 }])).toBeDefined();
    expect(checkRoutes(record, [rows[1]!, rows[0]!, rows[2]!])).toBeDefined();
    expect(
      checkRoutes(record, [{ ...rows[0]!, recipient: 'US-FWS' }, rows[1]!, rows[2]!]),
    ).toBeDefined();
  });
  it("a recipient's route proof leads to the entry's root, for that recipient only", () => {
    const proof = routed.proofForKE;
    expect(verifyRouteInclusion(record, proof, 'KE-KWS')).toBeUndefined();
    expect(verifyRouteInclusion(record, proof, 'VN-CUSTOMS')).toBeDefined();
    expect(
      verifyRouteInclusion(record, { ...proof, path: [...proof.path].reverse() }, 'KE-KWS'),
    ).toBeDefined();
  });
});

describe('audit vectors - the published test vectors are what the code computes', () => {
  it('entry bytes, leaf hashes, roots, proofs, checkpoint and cosignature', () => {
    expect(buildAuditVectors()).toEqual(published);
  });
  it('they verify the way a partner in another language would', () => {
    const note = parseNote(`${published.checkpoint}${published.cosignature}\n`);
    const cp = parseCheckpoint(note.text);
    verifyNote(note, { name: ORIGIN, publicKey: Buffer.from(published.hubPublicKey, 'hex') });
    expect(
      verifyCosignature(note, {
        name: WITNESS,
        publicKey: Buffer.from(published.witnessPublicKey, 'hex'),
      }),
    ).toBe(published.cosignedAt);
    expect(cp.root.toString('hex')).toBe(published.rootsBySize.at(-1));
    const { index, size, proof } = published.inclusion;
    verifyInclusion(
      index,
      size,
      Buffer.from(published.entries[index]!.leafHash, 'hex'),
      proof.map((h) => Buffer.from(h, 'hex')),
      cp.root,
    );
    const c = published.consistency;
    verifyConsistency(
      c.from,
      c.to,
      Buffer.from(published.rootsBySize[c.from - 1]!, 'hex'),
      cp.root,
      c.proof.map((h) => Buffer.from(h, 'hex')),
    );
  });
});

describe('audit vectors - the checks of a signed note (protocol.md §8.3), one note per check', () => {
  const hubKey = Buffer.from(published.hubPublicKey, 'hex');
  const witnessKey = Buffer.from(published.witnessPublicKey, 'hex');
  const read = (f: () => unknown) => {
    try {
      return f() === undefined ? 'none' : 'ok';
    } catch (err) {
      return (err as NoteError).code;
    }
  };
  it('every code of the table has a note, and each note reads as the vector says', () => {
    expect(new Set(published.notes.map((n) => n.expected))).toEqual(
      new Set(['ok', 'ERR_NOTE_MALFORMED', 'ERR_CHECKPOINT_MALFORMED', 'ERR_NOTE_SIGNATURE']),
    );
    for (const n of published.notes)
      expect([n.name, read(() => openCheckpoint(n.note, [hubKey]))]).toEqual([n.name, n.expected]);
    for (const c of published.cosignatures)
      expect([
        c.name,
        read(() => verifyCosignature(parseNote(c.note), { name: WITNESS, publicKey: witnessKey })),
      ]).toEqual([c.name, c.expected]);
  });
  it('a witness refuses each with the same code, and cosigns the valid ones', () => {
    for (const n of published.notes) {
      const w = new Witness({
        signer: witness,
        hubKeys: () => [hubKey],
        store: { load: () => undefined, save: () => undefined, keepEvidence: () => undefined },
      });
      const out = w.observe(Buffer.from(JSON.stringify({ checkpoint: n.note, proofs: [] })));
      expect([n.name, out.kind === 'refused' ? out.code : out.kind]).toEqual([
        n.name,
        n.expected === 'ok' ? 'cosigned' : n.expected,
      ]);
    }
  });
  it('a witness refuses a checkpoint message two parsers could read differently', () => {
    const w = new Witness({
      signer: witness,
      hubKeys: () => [hubKey],
      store: { load: () => undefined, save: () => undefined, keepEvidence: () => undefined },
    });
    const note = JSON.stringify(published.checkpoint);
    const hash = Buffer.alloc(32, 0xfb).toString('base64');
    for (const message of [
      `{"checkpoint":${note},"proofs":[],"proofs":[]}`, // a member named twice
      `{"checkpoint":${note},"proofs":[{"from":1,"proof":["${hash.replace(/\+/g, '-').replace(/\//g, '_')}"]}]}`,
      `{"checkpoint":${note},"proofs":[{"from":1,"proof":["${hash.slice(0, -2)}d="]}]}`, // unused bits
      `{"checkpoint":${note},"proofs":[{"from":1,"proof":["${hash.slice(0, -1)}A"]}]}`,
    ]) {
      const out = w.observe(Buffer.from(message));
      expect([message, out.kind === 'refused' && out.code]).toEqual([
        message,
        'ERR_CHECKPOINT_MALFORMED',
      ]);
    }
    const ok = `{"checkpoint":${note},"proofs":[{"from":1,"proof":["${hash}"]}]}`;
    // Read from the subject of another log, the checkpoint is refused.
    const other = w.observe(Buffer.from(ok), 'alert-hub/audit/other');
    expect(other.kind === 'refused' && other.code).toBe('ERR_CHECKPOINT_MALFORMED');
    expect(w.observe(Buffer.from(ok), ORIGIN).kind).toBe('cosigned');
  });
});

describe('signed notes - strict parsing and verification', () => {
  const body = formatCheckpoint({ origin: ORIGIN, size: 5, root: Buffer.alloc(32, 7) });
  const note = signNote(body, hub);
  it('a checkpoint signed by the hub verifies; by another key, or altered, it does not', () => {
    expect(code(() => verifyNote(parseNote(note), hub))).toBe('accepted');
    expect(code(() => verifyNote(parseNote(note), { ...witness, name: ORIGIN }))).toBe(
      'ERR_NOTE_SIGNATURE',
    );
    const altered = note.replace('\n5\n', '\n6\n');
    expect(code(() => verifyNote(parseNote(altered), hub))).toBe('ERR_NOTE_SIGNATURE');
  });
  it('a cosignature covers the checkpoint and its time', () => {
    const line = cosignCheckpoint(body, witness, COSIGNED_AT);
    const n = parseNote(`${note}${line}\n`);
    expect(verifyCosignature(n, witness)).toBe(COSIGNED_AT);
    const otherTime = line.replace(/ (\S+)$/, (_m, b64: string) => {
      const raw = Buffer.from(b64, 'base64');
      raw.writeBigUInt64BE(BigInt(COSIGNED_AT + 1), 4);
      return ` ${raw.toString('base64')}`;
    });
    expect(code(() => verifyCosignature(parseNote(`${note}${otherTime}\n`), witness))).toBe(
      'ERR_NOTE_SIGNATURE',
    );
  });
  it('refuses what two parsers could read differently', () => {
    expect(code(() => parseNote(note.replace('\n', '\r\n')))).toBe('ERR_NOTE_MALFORMED');
    expect(code(() => parseNote(note.slice(0, -1)))).toBe('ERR_NOTE_MALFORMED');
    expect(code(() => parseNote(note.replace('\u2014', '-')))).toBe('ERR_NOTE_MALFORMED');
    expect(code(() => parseCheckpoint(`${body}extension\n`))).toBe('ERR_CHECKPOINT_MALFORMED');
    expect(code(() => parseCheckpoint(body.replace('\n5\n', '\n05\n')))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
    expect(code(() => parseCheckpoint(body.replace('\n5\n', '\n+5\n')))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
    const root = Buffer.alloc(32, 7).toString('base64');
    expect(code(() => parseCheckpoint(body.replace(root, root.replace(/=$/, ''))))).toBe(
      'ERR_CHECKPOINT_MALFORMED',
    );
    expect(
      code(() => parseCheckpoint(body.replace(root, Buffer.alloc(31).toString('base64')))),
    ).toBe('ERR_CHECKPOINT_MALFORMED');
  });
  it('refuses an oversized note, a note without the blank line before its signatures, a key that is not Ed25519', () => {
    expect(code(() => parseNote(`${'x'.repeat(64 * 1024)}\n\n${note}`))).toBe('ERR_NOTE_MALFORMED');
    expect(code(() => parseNote(body))).toBe('ERR_NOTE_MALFORMED');
    const { publicKey } = newKeyPair('ES256');
    expect(code(() => rawEd25519PublicKey(publicKey))).toBe('ERR_NOTE_KEY');
  });
});

describe('signed notes - gathering cosignatures at bounded cost', () => {
  const body = formatCheckpoint({ origin: ORIGIN, size: 5, root: Buffer.alloc(32, 7) });
  const note = signNote(body, hub);
  const other = { name: WITNESS, ...keyFromSeed(Buffer.alloc(32, 9).toString('hex')) };
  it('findCosignature verifies only the first line of each key, within its budget', () => {
    const bad = cosignCheckpoint(body.replace('\n5\n', '\n6\n'), witness, COSIGNED_AT);
    const good = cosignCheckpoint(body, witness, COSIGNED_AT + 1);
    // A bad line first: the good one after it is never read.
    const n = parseNote(`${note}${bad}\n${good}\n`);
    expect(findCosignature(n, WITNESS, [witness.publicKey])).toEqual({
      found: undefined,
      verified: 1,
    });
    const ok = parseNote(`${note}${good}\n${bad}\n`);
    expect(findCosignature(ok, WITNESS, [witness.publicKey])).toEqual({
      found: { line: good, timestamp: COSIGNED_AT + 1 },
      verified: 1,
    });
    // Two keys (a rotation): one verification each, the newest valid wins; no budget, none.
    const second = cosignCheckpoint(body, other, COSIGNED_AT + 5);
    const both = parseNote(`${note}${good}\n${second}\n`);
    expect(findCosignature(both, WITNESS, [witness.publicKey, other.publicKey])).toEqual({
      found: { line: second, timestamp: COSIGNED_AT + 5 },
      verified: 2,
    });
    expect(findCosignature(both, WITNESS, [witness.publicKey, other.publicKey], 0)).toEqual({
      found: undefined,
      verified: 0,
    });
    // Lines of another name cost nothing.
    expect(findCosignature(both, 'alert-hub/witness/XX', [witness.publicKey]).verified).toBe(0);
  });
  it('a cosignature message with more lines, or bytes, than one carries is found oversized before parsing', () => {
    const line = cosignCheckpoint(body, witness, COSIGNED_AT);
    const enc = (t: string) => new TextEncoder().encode(t);
    const lines = (n: number) => `${note}${`${line}\n`.repeat(n)}`;
    // the hub's line and 3 more: 4 signature lines
    expect(isOversizedCosignatureMessage(enc(lines(MAX_COSIGNATURE_MESSAGE_SIGNATURES - 1)))).toBe(
      false,
    );
    expect(isOversizedCosignatureMessage(enc(lines(MAX_COSIGNATURE_MESSAGE_SIGNATURES)))).toBe(
      true,
    );
    expect(
      isOversizedCosignatureMessage(new Uint8Array(MAX_COSIGNATURE_MESSAGE_BYTES + 1).fill(0x41)),
    ).toBe(true);
  });
  it('setSignatureLine keeps one line per key name', () => {
    const a = cosignCheckpoint(body, witness, COSIGNED_AT);
    const b = cosignCheckpoint(body, witness, COSIGNED_AT + 1);
    const once = setSignatureLine(`${note}${a}\n`, WITNESS, b);
    expect(parseNote(once).signatures.map((s) => s.line)).toEqual([
      parseNote(note).signatures[0]!.line,
      b,
    ]);
    expect(setSignatureLine(once, WITNESS, b)).toBe(once);
  });
});
