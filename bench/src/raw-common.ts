/** Names and sizes shared by the raw pipeline's processes. */
export const RAW = {
  inStream: 'RAW_IN',
  outStream: 'RAW_OUT',
  inSubject: 'raw.in.alerts',
  outSubject: (partner: string) => `raw.out.${partner}`,
  forwarder: 'forwarder',
  partners: ['p1', 'p2'],
} as const;

/** Message data: 8 bytes of send time (epoch ms, float64), 16 of id, padding to `size`. */
export function rawMessage(id: number, sentAt: number, size: number): Uint8Array {
  const b = Buffer.alloc(size);
  b.writeDoubleLE(sentAt, 0);
  b.writeUInt32LE(id, 8);
  return b;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
