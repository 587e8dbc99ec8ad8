import { describe, expect, it } from 'vitest';
import { serverUrl } from '@alert-hub/runtime';

describe('service shell - listen URL', () => {
  it('puts an IPv6 address in brackets (the gateway and the router alike)', () => {
    expect(serverUrl({ family: 'IPv6', address: '::1', port: 8080 })).toBe('http://[::1]:8080');
    expect(serverUrl({ family: 'IPv4', address: '127.0.0.1', port: 80 })).toBe(
      'http://127.0.0.1:80',
    );
  });

  it('says https:// for a server with http.tls', () => {
    expect(serverUrl({ family: 'IPv4', address: '127.0.0.1', port: 8443 }, true)).toBe(
      'https://127.0.0.1:8443',
    );
    expect(serverUrl({ family: 'IPv6', address: '::1', port: 8443 }, true)).toBe(
      'https://[::1]:8443',
    );
  });
});
