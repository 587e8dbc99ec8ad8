import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { normaliseAlert } from '@alert-hub/core';
import { registry, seizureReport, seizureReportV2, suspiciousAirV2 } from './helpers.js';

/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment --
   the cases edit alerts as untyped JSON, as an officer's client would: that is what is under test */

describe('normalise - common spellings become machine form, and every change is reported', () => {
  it('a v2 seizure report as an officer types it is valid once normalised', () => {
    const typed: any = seizureReportV2();
    const sh = typed.seizure.shipment;
    sh.containers[0].number = 'CSQU 305438 3';
    sh.containers[0].seals = ['ml-1234567'];
    sh.vessel.imo = 'IMO 9074729';
    sh.vessel.mmsi = '563 012 345';
    sh.vessel.callSign = '9v ab7';
    sh.route.portOfLoading = 'NG APP';
    sh.route.transit = ['sg sin'];
    typed.seizure.location.locode = 'SG SIN';
    typed.seizure.commodities[0].hsCode = '0507.90 ';
    expect(registry.checkAlert(typed).ok).toBe(false);

    const { value, changes } = normaliseAlert(typed);
    expect(registry.checkAlert(value).ok).toBe(true);
    expect(changes).toEqual(
      expect.arrayContaining([
        {
          pointer: '/seizure/shipment/containers/0/number',
          from: 'CSQU 305438 3',
          to: 'CSQU3054383',
          rule: 'container',
        },
        {
          pointer: '/seizure/shipment/containers/0/seals/0',
          from: 'ml-1234567',
          to: 'ML-1234567',
          rule: 'seal',
        },
        {
          pointer: '/seizure/shipment/vessel/imo',
          from: 'IMO 9074729',
          to: '9074729',
          rule: 'imo',
        },
        {
          pointer: '/seizure/shipment/vessel/mmsi',
          from: '563 012 345',
          to: '563012345',
          rule: 'mmsi',
        },
        {
          pointer: '/seizure/shipment/vessel/callSign',
          from: '9v ab7',
          to: '9VAB7',
          rule: 'call-sign',
        },
        {
          pointer: '/seizure/shipment/route/portOfLoading',
          from: 'NG APP',
          to: 'NGAPP',
          rule: 'un-locode',
        },
        {
          pointer: '/seizure/shipment/route/transit/0',
          from: 'sg sin',
          to: 'SGSIN',
          rule: 'un-locode',
        },
        { pointer: '/seizure/location/locode', from: 'SG SIN', to: 'SGSIN', rule: 'un-locode' },
        {
          pointer: '/seizure/commodities/0/hsCode',
          from: '0507.90 ',
          to: '0507.90',
          rule: 'hs-code',
        },
      ]),
    );
    expect(changes).toHaveLength(9);
    // the input is not changed
    expect(typed.seizure.shipment.containers[0].number).toBe('CSQU 305438 3');
  });

  it('air waybill, flight number and postal items', () => {
    const typed: any = suspiciousAirV2();
    typed.shipment.masterAirWaybill = '618-1234 5675';
    typed.shipment.flightNumber = 'et 3608';
    const { value, changes } = normaliseAlert(typed);
    expect(registry.checkAlert(value).ok).toBe(true);
    expect(changes.map((c) => [c.pointer, c.to])).toEqual([
      ['/shipment/masterAirWaybill', '618-12345675'],
      ['/shipment/flightNumber', 'ET3608'],
    ]);
    const post = normaliseAlert({ shipment: { mode: 'post', postalItems: ['rr 473 124 829 gb'] } });
    expect(post.value.shipment.postalItems).toEqual(['RR473124829GB']);
    expect(normaliseAlert({ airWaybill: '61812345675' }).value.airWaybill).toBe('618-12345675');
  });

  it('v1 alerts are normalised too: container strings and v1 route places', () => {
    const typed: any = seizureReport();
    typed.seizure.shipment.containers = ['csqu-305438-3'];
    typed.seizure.shipment.route.origin = 'ng app';
    const { value, changes } = normaliseAlert(typed);
    expect(registry.checkAlert(value).ok).toBe(true);
    expect(changes.map((c) => c.pointer)).toEqual([
      '/seizure/shipment/containers/0',
      '/seizure/shipment/route/origin',
    ]);
  });

  it('never corrects a check digit or guesses: a wrong value stays as typed and is refused', () => {
    const typed: any = seizureReportV2();
    typed.seizure.shipment.containers[0].number = 'CSQU 305438 4';
    typed.seizure.shipment.vessel.imo = 'IMO 907472';
    typed.seizure.shipment.masterBillOfLading = 'medu ng 123';
    const { value, changes } = normaliseAlert(typed);
    // the container loses its spaces (machine form) but keeps its wrong check digit
    expect(changes.map((c) => c.pointer)).toEqual(['/seizure/shipment/containers/0/number']);
    const r = registry.checkAlert(value);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.issues.map((i) => i.pointer)).toEqual([
        '/seizure/shipment/containers/0/number',
        '/seizure/shipment/vessel/imo',
      ]);
  });

  it('never guesses a letter: only a-z change case, only space, tab and U+00A0 are spacing', () => {
    const typed: any = seizureReportV2();
    const sh = typed.seizure.shipment;
    sh.containers[0].number = 'C\u017fqu 305438 3'; // long s: toUpperCase would make it S
    sh.containers[0].seals = ['\ufb01-1234567']; // the ligature fi: toUpperCase gives FI
    sh.vessel.imo = '\u0131mo 9074729'; // dotless i
    sh.route.portOfLoading = 'NG\u3000APP'; // ideographic space
    typed.seizure.location.locode = 'SG\ufeffSIN'; // zero-width no-break space
    typed.seizure.commodities[0].hsCode = '0507\u2028.90';
    const { value, changes } = normaliseAlert(typed);
    // nothing reached machine form by a guess: each value stays as typed and is refused
    expect(changes).toEqual([]);
    const r = registry.checkAlert(value);
    expect(r.ok).toBe(false);
    if (!r.ok)
      expect(r.error.issues.map((i) => i.pointer)).toEqual(
        expect.arrayContaining([
          '/seizure/shipment/containers/0/number',
          '/seizure/shipment/containers/0/seals/0',
          '/seizure/shipment/vessel/imo',
          '/seizure/shipment/route/portOfLoading',
          '/seizure/location/locode',
          '/seizure/commodities/0/hsCode',
        ]),
      );
    // the no-break space a word processor leaves is spacing, like the tab
    sh.containers[0].number = 'CSQU\u00a0305438\t3';
    expect(normaliseAlert(typed).value.seizure.shipment.containers[0].number).toBe('CSQU3054383');
  });

  it('leaves the top-level origin (an agency id) and values already in machine form alone', () => {
    const a = seizureReportV2();
    const r = normaliseAlert(a);
    expect(r.changes).toEqual([]);
    expect(r.value).toBe(a);
  });

  it('property: never throws, never changes its input, and is idempotent', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const before = JSON.stringify(v);
        const once = normaliseAlert(v);
        expect(JSON.stringify(v)).toBe(before);
        const twice = normaliseAlert(once.value);
        expect(twice.changes).toEqual([]);
      }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('containers', 'imo', 'hsCode', 'postalItems', 'seals'),
        fc.string(),
        (k, s) => {
          const once = normaliseAlert({ [k]: [s], route: { origin: s } });
          expect(normaliseAlert(once.value).changes).toEqual([]);
        },
      ),
    );
  });
});
