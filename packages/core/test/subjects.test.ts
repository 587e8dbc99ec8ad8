import { describe, expect, it } from 'vitest';
import {
  INBOUND_STREAM_PREFIX,
  INBOUND_ALL,
  Streams,
  inboundStreamAgency,
  inboundStreamName,
  inboundSubjects,
  parseInboundSubject,
  subjectsOverlap,
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

describe('subjects overlap', () => {
  it('tells whether a stream still receives inbound subjects, wildcards on either side', () => {
    expect(subjectsOverlap(INBOUND_ALL, INBOUND_ALL)).toBe(true);
    expect(subjectsOverlap('ahub.in.KE-KWS.>', INBOUND_ALL)).toBe(true);
    expect(subjectsOverlap('ahub.*.KE-KWS.alert', INBOUND_ALL)).toBe(true);
    expect(subjectsOverlap('>', INBOUND_ALL)).toBe(true);
    expect(subjectsOverlap('ahub.>', 'ahub.in.KE-KWS.alert')).toBe(true);
    // A migrated legacy stream's subjects, and subjects too short or too long.
    expect(subjectsOverlap('ahub.legacy-in.>', INBOUND_ALL)).toBe(false);
    expect(subjectsOverlap('ahub.in', INBOUND_ALL)).toBe(false);
    expect(subjectsOverlap('ahub.in.*', 'ahub.in.KE-KWS.alert')).toBe(false);
    expect(subjectsOverlap('ahub.in.KE-KWS.alert.x', 'ahub.in.*.alert')).toBe(false);
  });
});
