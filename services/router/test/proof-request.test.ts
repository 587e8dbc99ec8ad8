import { describe, expect, it } from 'vitest';
import { parseProofRequest } from '../src/audit-checkpoints.js';

const id = '0169fb6c-1a80-7000-8000-000000000001';
const read = (text: string | Uint8Array) =>
  parseProofRequest(typeof text === 'string' ? Buffer.from(text) : text);

describe('audit proof requests (protocol.md §8.5) - exactly {"alertId": <alert id>}', () => {
  it('reads a UUIDv7 or a ULID, with any JSON whitespace', () => {
    expect(read(`{"alertId":"${id}"}`)).toBe(id);
    expect(read(` { "alertId" : "01JDZ7Q5X3M8W2E4R6T8Y0V2W4" } `)).toBe(
      '01JDZ7Q5X3M8W2E4R6T8Y0V2W4',
    );
  });
  it('refuses anything two parsers could read differently, or that is not an alert id', () => {
    for (const bad of [
      `{"alertId":"${id}","alertId":"0169fb6c-1a80-7000-8000-000000000002"}`, // named twice
      `{"alertId":"${id}","x":1}`, // another member
      `{"alertId":"${id.toUpperCase()}"}`, // not the alert-id format
      `{"alertId":""}`,
      `{"alertId":1}`,
      `{}`,
      `["${id}"]`,
      `"${id}"`,
      `{"alertId":"${id}"`, // not JSON
      `\ufeff{"alertId":"${id}"}`, // a byte-order mark
    ])
      expect([bad, read(bad)]).toEqual([bad, undefined]);
    const invalidUtf8 = Buffer.concat([
      Buffer.from(`{"alertId":"${id}","`),
      Buffer.from([0xff]),
      Buffer.from('":1}'),
    ]);
    expect(read(invalidUtf8)).toBeUndefined();
  });
});
