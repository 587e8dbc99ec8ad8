import { createHash, sign, verify, type KeyObject } from 'node:crypto';

/**
 * C2SP signed notes (c2sp.org/signed-note), checkpoints (c2sp.org/tlog-checkpoint) and Ed25519
 * cosignatures (c2sp.org/tlog-cosignature, type 0x04), strictly parsed: a note another parser
 * could read differently (control characters, a stray carriage return, extension lines, a size
 * with a leading zero, a root that is not exactly 32 bytes in canonical base64) is refused.
 */

/** Signature type bytes of signed-note. */
export const SignatureType = { Ed25519: 0x01, Cosignature: 0x04 } as const;

/** A checkpoint: the log's origin, its size and its root hash. */
export interface Checkpoint {
  readonly origin: string;
  readonly size: number;
  readonly root: Buffer;
}

/** A note or checkpoint that does not parse or does not verify. */
export class NoteError extends Error {
  constructor(
    readonly code:
      'ERR_NOTE_MALFORMED' | 'ERR_CHECKPOINT_MALFORMED' | 'ERR_NOTE_SIGNATURE' | 'ERR_NOTE_KEY',
    message: string,
  ) {
    super(message);
    this.name = 'NoteError';
  }
}

/** A key of the note world: a name and a raw 32-byte Ed25519 public key. */
export interface NoteVerifier {
  readonly name: string;
  readonly publicKey: Buffer;
}

/** A key that signs notes: a name, the private key and its raw public key. */
export interface NoteSigner extends NoteVerifier {
  readonly privateKey: KeyObject;
}

/**
 * A key name: printable ASCII without `+` (c2sp.org/signed-note forbids spaces and `+`; "space"
 * differs between regex engines outside ASCII, so nothing outside ASCII is read at all).
 */
const KEY_NAME = /^[\x21-\x2a\x2c-\x7e]+$/;

/** The largest note read, in UTF-8 bytes. */
export const MAX_NOTE_BYTES = 64 * 1024;

/** The raw 32-byte Ed25519 public key of a KeyObject; throws for any other algorithm. */
export function rawEd25519PublicKey(key: KeyObject): Buffer {
  if (key.asymmetricKeyType !== 'ed25519')
    throw new NoteError('ERR_NOTE_KEY', 'notes are signed with Ed25519 keys only');
  const jwk = key.export({ format: 'jwk' }) as { x?: string };
  return Buffer.from(jwk.x ?? '', 'base64url');
}

/** SHA-256(name || 0x0A || type || public key)[:4], the key ID of signed-note. */
export function noteKeyId(name: string, type: number, publicKey: Buffer): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, type]))
    .update(publicKey)
    .digest()
    .subarray(0, 4);
}

/** The text of a checkpoint: origin, decimal size, standard base64 of the root, each + "\n". */
export function formatCheckpoint(c: Checkpoint): string {
  if (!/^[\x21-\x7e]{1,255}$/.test(c.origin))
    throw new NoteError('ERR_CHECKPOINT_MALFORMED', 'the origin must be one printable line');
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

/** Parses a checkpoint text; refuses extension lines and every non-canonical spelling. */
export function parseCheckpoint(body: string): Checkpoint {
  const lines = body.split('\n');
  if (lines.length !== 4 || lines[3] !== '')
    throw new NoteError(
      'ERR_CHECKPOINT_MALFORMED',
      'a checkpoint is exactly three lines (origin, size, root), each ending in a newline',
    );
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!/^[\x21-\x7e]{1,255}$/.test(origin))
    throw new NoteError('ERR_CHECKPOINT_MALFORMED', 'the origin is not one printable ASCII word');
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
    throw new NoteError(
      'ERR_CHECKPOINT_MALFORMED',
      'the size is not a decimal without leading zero',
    );
  const root = Buffer.from(rootText, 'base64');
  if (root.length !== 32 || root.toString('base64') !== rootText)
    throw new NoteError('ERR_CHECKPOINT_MALFORMED', 'the root is not 32 bytes in standard base64');
  return { origin, size: Number(sizeText), root };
}

/** One signature line of a note. */
export interface NoteSignatureLine {
  readonly name: string;
  readonly keyId: Buffer;
  /** The signature bytes after the key ID. */
  readonly signature: Buffer;
  /** The line as it appears, without the newline. */
  readonly line: string;
}

/** A parsed note: its text (with the final newline) and its signature lines. */
export interface Note {
  readonly text: string;
  readonly signatures: readonly NoteSignatureLine[];
}

/** At most this many signature lines are read (the spec asks for at least 16). */
export const MAX_NOTE_SIGNATURES = 100;

/** Parses a signed note strictly (UTF-8 text, no control characters but newline). */
export function parseNote(note: string): Note {
  if (note.length > MAX_NOTE_BYTES || Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES)
    throw new NoteError('ERR_NOTE_MALFORMED', 'the note is too large');
  // eslint-disable-next-line no-control-regex -- the point is to refuse control characters
  if (/[\x00-\x09\x0b-\x1f\x7f]/.test(note) || /[\ud800-\udfff]/u.test(note))
    throw new NoteError('ERR_NOTE_MALFORMED', 'a note holds no control character but newline');
  if (!note.endsWith('\n')) throw new NoteError('ERR_NOTE_MALFORMED', 'a note ends in a newline');
  const split = note.lastIndexOf('\n\n');
  if (split < 0)
    throw new NoteError('ERR_NOTE_MALFORMED', 'a note has a blank line before its signatures');
  const text = note.slice(0, split + 1);
  const sigLines = note.slice(split + 2, -1).split('\n');
  if (sigLines.length > MAX_NOTE_SIGNATURES)
    throw new NoteError('ERR_NOTE_MALFORMED', 'too many signatures');
  const signatures = sigLines.map((line) => {
    const m = /^\u2014 ([^ ]+) ([A-Za-z0-9+/]+={0,2})$/u.exec(line);
    if (!m || !KEY_NAME.test(m[1]!))
      throw new NoteError('ERR_NOTE_MALFORMED', 'a signature line is "— <name> <base64>"');
    const raw = Buffer.from(m[2]!, 'base64');
    if (raw.length < 5 || raw.toString('base64') !== m[2])
      throw new NoteError('ERR_NOTE_MALFORMED', 'a signature is not canonical base64');
    return { name: m[1]!, keyId: raw.subarray(0, 4), signature: raw.subarray(4), line };
  });
  return { text, signatures };
}

/**
 * Reads a checkpoint note signed by the hub, in the order of protocol.md §8.3, the first failure
 * deciding the code: the note (`ERR_NOTE_MALFORMED`), its text as a checkpoint
 * (`ERR_CHECKPOINT_MALFORMED`), then the hub's signature (`ERR_NOTE_SIGNATURE`): some key of
 * `hubKeys` (raw Ed25519) verifies it, under the key name of the checkpoint's origin.
 */
export function openCheckpoint(
  text: string,
  hubKeys: readonly Buffer[],
): { readonly note: Note; readonly checkpoint: Checkpoint } {
  const note = parseNote(text);
  const checkpoint = parseCheckpoint(note.text);
  const signed = hubKeys.some((publicKey) => {
    try {
      verifyNote(note, { name: checkpoint.origin, publicKey });
      return true;
    } catch (err) {
      if (err instanceof NoteError && err.code === 'ERR_NOTE_SIGNATURE') return false;
      throw err;
    }
  });
  if (!signed)
    throw new NoteError('ERR_NOTE_SIGNATURE', `the checkpoint is not signed by a key of the hub`);
  return { note, checkpoint };
}

function signatureLine(name: string, keyId: Buffer, signature: Buffer): string {
  return `\u2014 ${name} ${Buffer.concat([keyId, signature]).toString('base64')}`;
}

/** Signs a note text (ending in a newline) with an Ed25519 note key (type 0x01). */
export function signNote(text: string, signer: NoteSigner): string {
  if (!text.endsWith('\n')) throw new NoteError('ERR_NOTE_MALFORMED', 'a note ends in a newline');
  const sig = sign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  const id = noteKeyId(signer.name, SignatureType.Ed25519, signer.publicKey);
  return `${text}\n${signatureLine(signer.name, id, sig)}\n`;
}

/**
 * Verifies the note signature of `verifier` (type 0x01). Lines of other keys are ignored; a line
 * with the verifier's name and key ID that does not verify throws, and so does no line at all.
 */
export function verifyNote(note: Note, verifier: NoteVerifier): void {
  const id = noteKeyId(verifier.name, SignatureType.Ed25519, verifier.publicKey);
  const mine = note.signatures.filter((s) => s.name === verifier.name && s.keyId.equals(id));
  if (mine.length === 0)
    throw new NoteError('ERR_NOTE_SIGNATURE', `the note is not signed by ${verifier.name}`);
  const key = {
    key: Buffer.concat([ED25519_SPKI_PREFIX, verifier.publicKey]),
    format: 'der',
    type: 'spki',
  } as const;
  for (const s of mine) {
    if (
      s.signature.length !== 64 ||
      !verify(null, Buffer.from(note.text, 'utf8'), key, s.signature)
    )
      throw new NoteError(
        'ERR_NOTE_SIGNATURE',
        `the signature of ${verifier.name} does not verify`,
      );
  }
}

/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410), followed by the 32 raw bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function cosignedMessage(text: string, timestamp: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${timestamp}\n${text}`, 'utf8');
}

/**
 * A cosignature line (c2sp.org/tlog-cosignature, Ed25519, type 0x04) over a checkpoint text:
 * key ID || u64 big-endian timestamp || Ed25519 signature of
 * "cosignature/v1\ntime <timestamp>\n" + the checkpoint text.
 */
export function cosignCheckpoint(text: string, signer: NoteSigner, timestamp: number): string {
  const id = noteKeyId(signer.name, SignatureType.Cosignature, signer.publicKey);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestamp));
  const sig = sign(null, cosignedMessage(text, timestamp), signer.privateKey);
  return signatureLine(signer.name, id, Buffer.concat([ts, sig]));
}

/**
 * Verifies the cosignature of `verifier` on the note's text; returns its timestamp (seconds) or
 * undefined when the note carries none from that key. A matching line that fails throws.
 */
export function verifyCosignature(note: Note, verifier: NoteVerifier): number | undefined {
  const id = noteKeyId(verifier.name, SignatureType.Cosignature, verifier.publicKey);
  const mine = note.signatures.filter((s) => s.name === verifier.name && s.keyId.equals(id));
  if (mine.length === 0) return undefined;
  const key = {
    key: Buffer.concat([ED25519_SPKI_PREFIX, verifier.publicKey]),
    format: 'der',
    type: 'spki',
  } as const;
  let ts: number | undefined;
  for (const s of mine) {
    if (s.signature.length !== 72)
      throw new NoteError('ERR_NOTE_SIGNATURE', `the cosignature of ${verifier.name} is malformed`);
    const t = s.signature.readBigUInt64BE(0);
    if (t > BigInt(Number.MAX_SAFE_INTEGER))
      throw new NoteError('ERR_NOTE_SIGNATURE', `the cosignature of ${verifier.name} is malformed`);
    if (!verify(null, cosignedMessage(note.text, Number(t)), key, s.signature.subarray(8)))
      throw new NoteError(
        'ERR_NOTE_SIGNATURE',
        `the cosignature of ${verifier.name} does not verify`,
      );
    ts = Math.max(ts ?? 0, Number(t));
  }
  return ts;
}

/** A note with further signature lines appended (duplicates dropped). */
export function addSignatureLines(note: string, lines: readonly string[]): string {
  const parsed = parseNote(note);
  const have = new Set(parsed.signatures.map((s) => s.line));
  const extra = lines.filter((l) => !have.has(l) && (have.add(l), true));
  return extra.length === 0 ? note : `${note}${extra.map((l) => `${l}\n`).join('')}`;
}

/**
 * The most signature lines a witness's cosignature message carries: the checkpoint as the hub
 * published it (one line per hub key that signed it) and the witness's own line. A note with
 * more is dropped unread: nothing legitimate needs them.
 */
export const MAX_COSIGNATURE_MESSAGE_SIGNATURES = 4;

/** A verified cosignature line and its timestamp (seconds). */
export interface CosignatureLine {
  readonly line: string;
  readonly timestamp: number;
}

/**
 * The newest valid cosignature of witness `name` on the note, at bounded cost: for each key in
 * `publicKeys`, only the first line carrying that key's name and ID is verified, and at most
 * `budget` lines in all, so a note costs at most one Ed25519 verification per key whatever it
 * carries. Returns the line found (undefined when none verifies) and the verifications spent.
 */
export function findCosignature(
  note: Note,
  name: string,
  publicKeys: readonly Buffer[],
  budget = publicKeys.length,
): { readonly found: CosignatureLine | undefined; readonly verified: number } {
  let found: CosignatureLine | undefined;
  let verified = 0;
  for (const publicKey of publicKeys) {
    const id = noteKeyId(name, SignatureType.Cosignature, publicKey);
    const s = note.signatures.find((x) => x.name === name && x.keyId.equals(id));
    if (!s) continue;
    if (verified >= budget) break;
    verified++;
    let timestamp: number | undefined;
    try {
      timestamp = verifyCosignature({ text: note.text, signatures: [s] }, { name, publicKey });
    } catch {
      continue;
    }
    if (timestamp !== undefined && (found === undefined || timestamp > found.timestamp))
      found = { line: s.line, timestamp };
  }
  return { found, verified };
}

/**
 * The note with every signature line of key name `name` replaced by `line`: one line per
 * witness, so that nobody can make a gathered note carry more lines than there are witnesses.
 */
export function setSignatureLine(note: string, name: string, line: string): string {
  const parsed = parseNote(note);
  const others = parsed.signatures.filter((s) => s.name !== name).map((s) => s.line);
  return `${parsed.text}\n${[...others, line].map((l) => `${l}\n`).join('')}`;
}

/** The largest cosignature message read: a signed note (64 KiB). */
export const MAX_COSIGNATURE_MESSAGE_BYTES = 64 * 1024;

/**
 * True when a cosignature message is larger, or has more lines, than one can legitimately be: at
 * most {@link MAX_COSIGNATURE_MESSAGE_BYTES}, and the checkpoint's three lines, the blank line and
 * {@link MAX_COSIGNATURE_MESSAGE_SIGNATURES} signature lines. Counts bytes only, before any
 * decoding or parsing.
 */
export function isOversizedCosignatureMessage(data: Uint8Array): boolean {
  if (data.length > MAX_COSIGNATURE_MESSAGE_BYTES) return true;
  let lines = 0;
  for (const b of data)
    if (b === 0x0a && ++lines > 4 + MAX_COSIGNATURE_MESSAGE_SIGNATURES) return true;
  return false;
}
