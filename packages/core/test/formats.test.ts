import { describe, expect, it } from 'vitest';
import {
  awbCheckDigit,
  createFormatChecks,
  imoCheckDigit,
  iso6346CheckDigit,
  s10CheckDigit,
} from '@alert-hub/core';
import { registry } from './helpers.js';

const checks = createFormatChecks(registry.countries);

describe('formats - check digits', () => {
  it('ISO 6346: the standard example CSQU3054383 has check digit 3', () => {
    expect(iso6346CheckDigit('CSQU305438')).toBe(3);
    expect(checks['iso6346']!('CSQU3054383')).toBeUndefined();
    expect(checks['iso6346']!('MSKU9070323')).toBeUndefined(); // a Maersk box number
    expect(checks['iso6346']!('CSQU3054384')).toBe('ISO 6346 check digit is 4, expected 3');
    expect(checks['iso6346']!('CSQX3054383')).toMatch(/U, J or Z/);
    expect(checks['iso6346']!('csqu3054383')).toBeDefined();
  });
  it('IMO: 9074729 is valid, a changed digit is not', () => {
    expect(imoCheckDigit('907472')).toBe(9);
    expect(checks['imo-number']!('9074729')).toBeUndefined();
    expect(checks['imo-number']!('9074728')).toBe('IMO check digit is 8, expected 9');
    expect(checks['imo-number']!('IMO9074729')).toBeDefined();
  });
  it('IATA air waybill: serial modulo 7', () => {
    expect(awbCheckDigit('1234567')).toBe(5);
    expect(checks['iata-awb']!('176-12345675')).toBeUndefined();
    expect(checks['iata-awb']!('176-12345676')).toMatch(/expected 5/);
    expect(checks['iata-awb']!('17612345675')).toBeDefined();
  });
  it('HS codes: heading to national line, no chapter 00 or 77', () => {
    for (const ok of ['0507', '050790', '0507.90', '0507.90.00', '9705100000'])
      expect(checks['hs-code']!(ok)).toBeUndefined();
    for (const bad of ['507', '0507.9', '0007', '7701', '05079', '0507-90'])
      expect(checks['hs-code']!(bad)).toBeDefined();
  });
  it('UN/LOCODE and agency ids: the country must exist', () => {
    expect(checks['un-locode']!('SGSIN')).toBeUndefined();
    expect(checks['un-locode']!('VNHPH')).toBeUndefined();
    expect(checks['un-locode']!('XXSIN')).toMatch(/not an ISO 3166-1/);
    expect(checks['un-locode']!('SG SIN')).toBeDefined();
    expect(checks['agency-id']!('VN-CUSTOMS')).toBeUndefined();
    expect(checks['agency-id']!('UK-HMRC')).toMatch(/"UK" is not an ISO 3166-1/);
    expect(checks['agency-id']!('GB-HMRC')).toBeUndefined();
  });
  it('alert ids: UUIDv7 or ULID only', () => {
    expect(checks['alert-id']!('01890a5d-ac96-774b-bcce-b302099a8057')).toBeUndefined();
    expect(checks['alert-id']!('01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeUndefined();
    expect(checks['alert-id']!('f47ac10b-58cc-4372-a567-0e02b2c3d479')).toBeDefined(); // v4
    expect(checks['alert-id']!('01890A5D-AC96-774B-BCCE-B302099A8057')).toBeDefined(); // upper-case UUID
    expect(checks['alert-id']!('81ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeDefined(); // ULID overflow
  });
  it('the country list is the full ISO 3166-1 alpha-2 list', () => {
    expect(registry.countries.size).toBe(249);
    for (const c of ['SG', 'VN', 'CN', 'HK', 'NG', 'KE', 'US', 'GB', 'SS', 'BQ'])
      expect(registry.countries.has(c)).toBe(true);
    for (const c of ['UK', 'EU', 'XK', 'AN']) expect(registry.countries.has(c)).toBe(false);
  });
});

describe('formats - UPU S10 and MMSI', () => {
  it('UPU S10: RR473124829GB has check digit 9; 10 becomes 0 and 11 becomes 5', () => {
    expect(s10CheckDigit('47312482')).toBe(9);
    expect(checks['upu-s10']!('RR473124829GB')).toBeUndefined();
    expect(checks['upu-s10']!('RR473124828GB')).toBe('UPU S10 check digit is 8, expected 9');
    expect(checks['upu-s10']!('RR473124829XX')).toMatch(/"XX" is not an ISO 3166-1/);
    expect(checks['upu-s10']!('RR 473 124 829 GB')).toBeDefined();
    // weighted sums with remainder 1 (check 10 -> 0) and remainder 0 (check 11 -> 5)
    expect(s10CheckDigit('00000008')).toBe(0); // 8*7 = 56, 56 mod 11 = 1, 11 - 1 = 10 -> 0
    expect(s10CheckDigit('00000015')).toBe(5); // 1*9 + 5*7 = 44, 44 mod 11 = 0, 11 - 0 = 11 -> 5
    expect(checks['upu-s10']!('EE000000080CN')).toBeUndefined();
    expect(checks['upu-s10']!('CP000000155DE')).toBeUndefined();
  });
  it('MMSI: a ship station starts with Maritime Identification Digits 201-775', () => {
    expect(checks['mmsi']!('563012345')).toBeUndefined(); // Singapore
    expect(checks['mmsi']!('201000000')).toBeUndefined();
    expect(checks['mmsi']!('775999999')).toBeUndefined();
    expect(checks['mmsi']!('111563123')).toMatch(/Maritime Identification Digits/); // SAR aircraft
    expect(checks['mmsi']!('970123456')).toBeDefined(); // AIS-SART
    expect(checks['mmsi']!('056301234')).toBeDefined(); // group call
    expect(checks['mmsi']!('776000000')).toBeDefined();
    expect(checks['mmsi']!('56301234')).toBeDefined();
  });
});
