import { createPrivateKey, createPublicKey } from 'node:crypto';
import {
  CompactRange,
  MerkleTree,
  cosignCheckpoint,
  entryBytes,
  formatCheckpoint,
  hashLeaf,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  NoteError,
  noteKeyId,
  openCheckpoint,
  parseNote,
  verifyCosignature,
  rawEd25519PublicKey,
  signNote,
  type AuditRecord,
} from '@alert-hub/audit';

/** An Ed25519 private key from its 32-byte seed (RFC 8032 test vectors use such seeds). */
export function keyFromSeed(seedHex: string) {
  const privateKey = createPrivateKey({
    key: Buffer.concat([
      Buffer.from('302e020100300506032b657004220420', 'hex'),
      Buffer.from(seedHex, 'hex'),
    ]),
    format: 'der',
    type: 'pkcs8',
  });
  return { privateKey, publicKey: rawEd25519PublicKey(createPublicKey(privateKey)) };
}

/** RFC 8032 section 7.1, TEST 1 and TEST 2 secret keys: the hub and one witness. */
export const HUB_SEED = '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60';
export const WITNESS_SEED = '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb';
export const ORIGIN = 'alert-hub/audit/hub';
export const WITNESS = 'alert-hub/witness/SG-NPARKS';
export const COSIGNED_AT = 1764374400;

/** An entry with every member null but its time and instance: what the vectors' entries start from. */
export const BLANK_ENTRY = {
  at: '2026-11-29T00:00:00.000Z',
  instance: 'router-a',
  claimedId: null,
  handling: null,
  agreementId: null,
  agreementVersion: null,
  reasonCode: null,
  reason: null,
  feedSeq: null,
  detail: null,
  alertId: null,
  origin: null,
  type: null,
  recipient: null,
  streamSeq: null,
} as const;

export const ENTRIES: Omit<AuditRecord, 'hash'>[] = [
  {
    ...BLANK_ENTRY,
    seq: 1,
    event: 'agreements-loaded',
    reason: 'agreements.yaml',
    detail: '{"agreements":["WEN-ASIA@1"],"sha256":"00"}',
  },
  {
    ...BLANK_ENTRY,
    seq: 2,
    event: 'received',
    alertId: '01JDZ7Q5X3M8W2E4R6T8Y0V2K4',
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: 'TLP:AMBER',
    streamSeq: 1,
  },
  {
    ...BLANK_ENTRY,
    seq: 3,
    event: 'forwarded',
    alertId: '01JDZ7Q5X3M8W2E4R6T8Y0V2K4',
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: 'TLP:AMBER',
    recipient: 'VN-CUSTOMS',
    agreementId: 'WEN-ASIA',
    agreementVersion: 1,
    streamSeq: 1,
    feedSeq: 1,
  },
  {
    ...BLANK_ENTRY,
    seq: 4,
    event: 'denied',
    alertId: '01JDZ7Q5X3M8W2E4R6T8Y0V2K4',
    origin: 'SG-NPARKS',
    type: 'seizure-report',
    handling: 'TLP:AMBER',
    reasonCode: 'DENY_NOT_PARTY',
    reason: 'no agreement includes SG-NPARKS and NG-NCS',
    streamSeq: 1,
    detail: '{"recipients":["NG-NCS"]}',
  },
  {
    ...BLANK_ENTRY,
    seq: 5,
    event: 'rejected',
    claimedId: 'forged-id-ü',
    origin: 'VN-CUSTOMS',
    reasonCode: 'ERR_SIGNATURE_INVALID',
    reason: 'bad "signature"',
    streamSeq: 2,
  },
];

/**
 * A routing decision's entry (docs/protocol.md §8.1): the decision of the route-tree vector of
 * §3.2 (test/vectors/route-tree.json: three recipients, their leaves below verbatim), its copies
 * stored at feed sequences 7, 8 and 9. Not part of the five-entry log above.
 */
export const ROUTE_LEAVES = [
  '{"agreement":{"id":"AFRICA-PANGOLIN","version":1},"copy":"mKqF43wl7UdVwQ6hGfp22g","index":0,"onward":true,"recipient":"KE-KWS"}',
  '{"agreement":{"id":"WEN-ASIA-AFRICA","version":3},"copy":"ISBlxB5g-SMS5NlQTxWDMA","index":1,"onward":false,"recipient":"NG-CUSTOMS"}',
  '{"agreement":{"id":"WEN-ASIA-AFRICA","version":3},"copy":"PgT3bBQnPlkpQY-ZCD-EhA","index":2,"onward":false,"recipient":"VN-CUSTOMS"}',
] as const;
export const ROUTE_ROOT_HEX = '263af3c1f9dc5b8555a48dce1deec5126d49a8a6a813d4e00c59ba95c3f866e4';

export const ROUTED: Omit<AuditRecord, 'hash'> = {
  ...BLANK_ENTRY,
  seq: 6,
  event: 'routed',
  alertId: '0169fb6c-1a80-7000-8000-000000000001',
  origin: 'SG-NPARKS',
  type: 'seizure-report',
  handling: 'TLP:AMBER',
  streamSeq: 3,
  detail: `{"feeds":[7,8,9],"root":"${Buffer.from(ROUTE_ROOT_HEX, 'hex').toString('base64url')}","size":3}`,
};

/** The routed entry, its rows in audit_routes, and KE-KWS's two-level proof's route half. */
function buildRoutedVector() {
  const leafHashes = ROUTE_LEAVES.map((l) => hashLeaf(Buffer.from(l, 'utf8')));
  const routeTree = new MerkleTree((s, e) => leafHashes.slice(s, e), 1);
  return {
    record: ROUTED,
    bytes: entryBytes(ROUTED).toString('utf8'),
    leafHash: hashLeaf(entryBytes(ROUTED)).toString('hex'),
    routes: ROUTE_LEAVES.map((leaf, idx) => ({
      seq: ROUTED.seq,
      idx,
      recipient: (JSON.parse(leaf) as { recipient: string }).recipient,
      feed_seq: 7 + idx,
      leaf,
    })),
    routeRoot: routeTree.root(3).toString('hex'),
    proofForKE: {
      leaf: ROUTE_LEAVES[0],
      index: 0,
      path: routeTree.inclusionProof(0, 3).map((h) => h.toString('base64')),
    },
  };
}

/** Everything a verifier in another language must reproduce, computed from the inputs above. */
export function buildAuditVectors() {
  const hub = keyFromSeed(HUB_SEED);
  const witness = keyFromSeed(WITNESS_SEED);
  const leaves = ENTRIES.map((e) => hashLeaf(entryBytes(e)));
  const tree = new MerkleTree((s, e) => leaves.slice(s, e), 1);
  const range = new CompactRange();
  const roots: string[] = [];
  for (const l of leaves) {
    range.append(l);
    roots.push(range.root().toString('hex'));
  }
  const size = leaves.length;
  const body = formatCheckpoint({ origin: ORIGIN, size, root: tree.root(size) });
  const note = signNote(body, { name: ORIGIN, ...hub });
  const cosignature = cosignCheckpoint(body, { name: WITNESS, ...witness }, COSIGNED_AT);
  return {
    hubPublicKey: hub.publicKey.toString('hex'),
    hubKeyId: noteKeyId(ORIGIN, 0x01, hub.publicKey).toString('hex'),
    witnessPublicKey: witness.publicKey.toString('hex'),
    witnessKeyId: noteKeyId(WITNESS, 0x04, witness.publicKey).toString('hex'),
    entries: ENTRIES.map((e, i) => ({
      record: e,
      bytes: entryBytes(e).toString('utf8'),
      leafHash: leaves[i]!.toString('hex'),
    })),
    rootsBySize: roots,
    inclusion: {
      index: 2,
      size,
      proof: tree.inclusionProof(2, size).map((h) => h.toString('hex')),
    },
    consistency: {
      from: 2,
      to: size,
      proof: tree.consistencyProof(2, size).map((h) => h.toString('hex')),
    },
    checkpoint: note,
    cosignedAt: COSIGNED_AT,
    cosignature,
    routed: buildRoutedVector(),
    ...buildNoteVectors(note, cosignature, hub.publicKey, witness.publicKey),
  };
}

/** What reading a note gave: `ok`, or the code of the first check of protocol.md §8.3 that failed. */
function outcome(f: () => unknown): string {
  try {
    const r = f();
    return r === undefined ? 'none' : 'ok';
  } catch (err) {
    if (err instanceof NoteError) return err.code;
    throw err;
  }
}

/**
 * The checks of protocol.md §8.3 on crafted notes, one case per check, each with the verdict the
 * section states; building fails if the code reads one otherwise. `notes` are read as a
 * checkpoint signed by the hub (`openCheckpoint` with the hub key); `cosignatures` as the
 * witness's cosignature on the published checkpoint (`verifyCosignature`: `ok`, `none` when the
 * note has no line of that key, or the code).
 */
function buildNoteVectors(note: string, cosignature: string, hubKey: Buffer, witnessKey: Buffer) {
  const [text, hubLine] = note.split('\n\n') as [string, string];
  const body = `${text}\n`;
  const line = hubLine.slice(0, -1);
  const b64 = line.split(' ')[2]!;
  const raw = Buffer.from(b64, 'base64');
  const withSig = (bytes: Buffer) => `\u2014 ${ORIGIN} ${bytes.toString('base64')}`;
  const signed = (lines: string[], t = body) => `${t}\n${lines.map((l) => `${l}\n`).join('')}`;
  const foreign = (name: string) => `\u2014 ${name} ${Buffer.alloc(68, 1).toString('base64')}`;
  // A foreign line padding the note to exactly `bytes` bytes (a longer key name).
  const padded = (bytes: number) => {
    const base = Buffer.byteLength(signed([line, foreign('x')]));
    return signed([line, foreign('x'.repeat(1 + bytes - base))]);
  };
  const flipLast = (t: string) => {
    const a = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const i = t.indexOf('=') - 1;
    return t.slice(0, i) + a[a.indexOf(t[i]!) ^ 1] + t.slice(i + 1);
  };
  const root = text.split('\n')[2]!;
  const notes: { name: string; note: string; expected: string }[] = [
    { name: 'valid', note, expected: 'ok' },
    {
      name: 'valid-with-other-lines',
      note: signed([foreign('someone-else'), line, cosignature]),
      expected: 'ok',
    },
    { name: 'at-size-limit', note: padded(MAX_NOTE_BYTES), expected: 'ok' },
    { name: 'over-size-limit', note: padded(MAX_NOTE_BYTES + 1), expected: 'ERR_NOTE_MALFORMED' },
    {
      name: 'carriage-return',
      note: note.replace('\n5\n', '\r\n5\n'),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'tab-in-signature-line',
      note: note.replace(`\u2014 ${ORIGIN} `, `\u2014 ${ORIGIN}\t`),
      expected: 'ERR_NOTE_MALFORMED',
    },
    { name: 'no-final-newline', note: note.slice(0, -1), expected: 'ERR_NOTE_MALFORMED' },
    { name: 'no-blank-line', note: `${body}${line}\n`, expected: 'ERR_NOTE_MALFORMED' },
    { name: 'no-signature-line', note: `${body}\n`, expected: 'ERR_NOTE_MALFORMED' },
    {
      name: `${MAX_NOTE_SIGNATURES}-signature-lines`,
      note: signed([
        line,
        ...Array.from({ length: MAX_NOTE_SIGNATURES - 1 }, (_, i) => foreign(`w${i}`)),
      ]),
      expected: 'ok',
    },
    {
      name: `${MAX_NOTE_SIGNATURES + 1}-signature-lines`,
      note: signed([
        line,
        ...Array.from({ length: MAX_NOTE_SIGNATURES }, (_, i) => foreign(`w${i}`)),
      ]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'key-name-with-plus',
      note: signed([line, foreign('a+b')]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'key-name-not-ascii',
      note: signed([line, foreign('t\u00e9moin')]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'key-name-no-break-space',
      note: signed([line, foreign('a\u00a0b')]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'two-spaces-after-name',
      note: note.replace(`${ORIGIN} `, `${ORIGIN}  `),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'signature-base64-unpadded',
      note: signed([line.replace(/=+$/, '')]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'signature-base64-unused-bits',
      note: signed([flipLast(line)]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'signature-base64url',
      note: signed([withSig(raw).replace(/\+/g, '-').replace(/\//g, '_')]),
      expected: raw.toString('base64').match(/[+/]/) ? 'ERR_NOTE_MALFORMED' : 'ok',
    },
    {
      name: 'signature-4-bytes',
      note: signed([line, `\u2014 x ${raw.subarray(0, 4).toString('base64')}`]),
      expected: 'ERR_NOTE_MALFORMED',
    },
    {
      name: 'blank-line-among-signatures',
      note: `${note}\n${foreign('x')}\n`,
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'extension-line',
      note: signed([line], `${body}extension\n`),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'size-leading-zero-and-bad-signature',
      note: note.replace('\n5\n', '\n05\n'),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'size-beyond-2^53-1',
      note: signed([line], body.replace('\n5\n', '\n9007199254740992\n')),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'root-unpadded',
      note: note.replace(root, root.replace(/=$/, '')),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'root-31-bytes',
      note: note.replace(root, Buffer.alloc(31).toString('base64')),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    {
      name: 'origin-with-space',
      note: note.replace(`${ORIGIN}\n`, `${ORIGIN} x\n`),
      expected: 'ERR_CHECKPOINT_MALFORMED',
    },
    { name: 'size-changed', note: note.replace('\n5\n', '\n6\n'), expected: 'ERR_NOTE_SIGNATURE' },
    {
      name: 'hub-line-of-another-key',
      note: signed([withSig(Buffer.concat([Buffer.from([0, 0, 0, 0]), raw.subarray(4)]))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: 'hub-line-63-bytes',
      note: signed([withSig(raw.subarray(0, 4 + 63))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: 'hub-line-twice-second-bad',
      note: signed([line, withSig(Buffer.concat([raw.subarray(0, 4), Buffer.alloc(64)]))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: 'only-foreign-lines',
      note: signed([foreign('alert-hub/witness/SG-NPARKS')]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
  ];
  for (const n of notes) {
    const got = outcome(() => openCheckpoint(n.note, [hubKey]));
    if (got !== n.expected)
      throw new Error(`note vector ${n.name}: the code reads ${got}, not ${n.expected}`);
  }
  const craw = Buffer.from(cosignature.split(' ')[2]!, 'base64');
  const cosign = (bytes: Buffer) => `\u2014 ${WITNESS} ${bytes.toString('base64')}`;
  const withTime = (t: bigint) => {
    const b = Buffer.from(craw);
    b.writeBigUInt64BE(t, 4);
    return b;
  };
  const cosignatures: { name: string; note: string; expected: string }[] = [
    { name: 'valid', note: signed([line, cosignature]), expected: 'ok' },
    { name: 'no-line-of-the-witness', note: note, expected: 'none' },
    {
      name: 'time-changed',
      note: signed([line, cosign(withTime(BigInt(COSIGNED_AT + 1)))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: 'time-beyond-2^53-1',
      note: signed([line, cosign(withTime(2n ** 53n))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: '71-bytes',
      note: signed([line, cosign(craw.subarray(0, 4 + 71))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: '73-bytes',
      note: signed([line, cosign(Buffer.concat([craw, Buffer.alloc(1)]))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
    {
      name: 'twice-second-bad',
      note: signed([line, cosignature, cosign(withTime(BigInt(COSIGNED_AT + 1)))]),
      expected: 'ERR_NOTE_SIGNATURE',
    },
  ];
  for (const c of cosignatures) {
    const got = outcome(() =>
      verifyCosignature(parseNote(c.note), { name: WITNESS, publicKey: witnessKey }),
    );
    if (got !== c.expected)
      throw new Error(`cosignature vector ${c.name}: the code reads ${got}, not ${c.expected}`);
  }
  return { notes, cosignatures };
}
