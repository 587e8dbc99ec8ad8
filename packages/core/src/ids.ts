import { randomFillSync } from 'node:crypto';

/**
 * A new UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits. Alert ids
 * sort by creation time, which keeps SQLite indexes and JetStream dedup tables append-mostly.
 */
export function newAlertId(now: number = Date.now()): string {
  const b = new Uint8Array(16);
  randomFillSync(b);
  let ms = now;
  for (let i = 5; i >= 0; i--) {
    b[i] = ms & 0xff;
    ms = Math.floor(ms / 256);
  }
  b[6] = 0x70 | (b[6]! & 0x0f);
  b[8] = 0x80 | (b[8]! & 0x3f);
  const hex = Buffer.from(b).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
