import { describe, expect, it } from 'vitest';
import {
  INBOUND_STREAM_PREFIX,
  Streams,
  inboundStreamAgency,
  inboundStreamName,
  inboundSubjects,
  parseInboundSubject,
} from '../src/index.js';

describe('inbound stream names', () => {
  it('gives each agency its own stream, and reads the agency back from it', () => {
    expect(inboundStreamName('SG-CUSTOMS')).toBe('AHUB_IN_SG-CUSTOMS');
    expect(inboundStreamAgency(inboundStreamName('VN-GDC'))).toBe('VN-GDC');
    expect(inboundSubjects('VN-GDC')).toBe('ahub.in.VN-GDC.>');
    expect(parseInboundSubject('ahub.in.VN-GDC.seizure')).toEqual({
      origin: 'VN-GDC',
      type: 'seizure',
    });
  });

  it('refuses an agency that cannot be a stream name, and names that are not inbound streams', () => {
    expect(() => inboundStreamName('SG.CUSTOMS')).toThrow();
    expect(() => inboundStreamName('SG-*')).toThrow();
    expect(() => inboundStreamName('')).toThrow();
    // The shared stream of older hubs is not an agency's stream.
    expect(Streams.Inbound.startsWith(INBOUND_STREAM_PREFIX)).toBe(false);
    expect(inboundStreamAgency(Streams.Inbound)).toBeUndefined();
    expect(inboundStreamAgency('AHUB_FEEDS')).toBeUndefined();
    expect(inboundStreamAgency(`${INBOUND_STREAM_PREFIX}A.B`)).toBeUndefined();
  });
});
