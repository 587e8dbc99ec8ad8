import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  AGENCY_ACCESS_BEGIN,
  AGENCY_ACCESS_END,
  DEFAULT_AGENCY_LIMITS,
  readAgencyAccess,
  renderAgencyAccessDoc,
  renderNatsSecurityConfig,
} from '@alert-hub/operator';
import { AGENCY_JS_API_PREFIX } from '@alert-hub/core';
import { ROOT } from '@alert-hub/testkit';

// Prettier re-aligns markdown tables; compare the content, not the padding.
const normalise = (text: string) =>
  text
    .split('\n')
    .map((l) => l.replace(/-{3,}/g, '---').replace(/\s+/g, ' ').trim())
    .filter((l) => l !== '')
    .join('\n');

describe('security doc - generated from the rendered configuration', () => {
  it('lists exactly what an agency’s connection can reach', () => {
    const doc = readFileSync(`${ROOT}docs/security.md`, 'utf8');
    const start = doc.indexOf(AGENCY_ACCESS_BEGIN);
    const end = doc.indexOf(AGENCY_ACCESS_END);
    expect(start).toBeGreaterThan(0);
    expect(normalise(doc.slice(start, end + AGENCY_ACCESS_END.length))).toBe(
      normalise(renderAgencyAccessDoc()),
    );
  });
  it('the rendered configuration grants an agency its own subjects and nothing of another agency', () => {
    const text = renderNatsSecurityConfig({
      agencies: ['SG-NPARKS', 'VN-CUSTOMS'],
      routers: ['HUB'],
      tls: { caFile: 'ca.pem', certFile: 'server.pem', keyFile: 'server-key.pem' },
    });
    const sg = readAgencyAccess(text, 'SG-NPARKS');
    expect(sg.jetstream).toBe(false);
    expect(sg.publish).toEqual(sg.imports.map((i) => i.local));
    expect(sg.imports.map((i) => i.hub)).toEqual(sg.exports.map((e) => e.subject));
    expect(sg.exports.map((e) => e.subject)).toEqual([
      'ahub.in.SG-NPARKS.>',
      '$JS.API.CONSUMER.INFO.AHUB_FEEDS.feed-SG-NPARKS',
      '$JS.API.CONSUMER.MSG.NEXT.AHUB_FEEDS.feed-SG-NPARKS',
      '$JS.ACK.AHUB_FEEDS.feed-SG-NPARKS.>',
      'ahub.audit.cosig.hub.SG-NPARKS',
      'ahub.audit.proof.*.SG-NPARKS',
    ]);
    expect(sg.streams).toEqual(['ahub.audit.checkpoint.>', 'ahub.audit.cosig.>']);
    expect(sg.exports.find((e) => e.subject.includes('MSG.NEXT'))?.responseType).toBe('stream');
    expect(sg.publish.filter((p) => p.startsWith('$JS.') && !p.startsWith('$JS.ACK.'))).toEqual(
      sg.publish.filter((p) => p.startsWith(AGENCY_JS_API_PREFIX)),
    );
    expect(sg.subscribe).toEqual(['_INBOX.SG-NPARKS.>', ...sg.streams]);
    expect(sg.limits).toEqual({
      max_connections: DEFAULT_AGENCY_LIMITS.maxConnections,
      max_subscriptions: DEFAULT_AGENCY_LIMITS.maxSubscriptions,
      max_payload: DEFAULT_AGENCY_LIMITS.maxPayload,
    });
    expect(JSON.stringify(sg)).not.toContain('VN-CUSTOMS');
  });
});
