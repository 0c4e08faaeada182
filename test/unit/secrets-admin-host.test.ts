// The admin Host check as a pure function, for listeners the integration tests do not bind
// (every interface, IPv6 loopback, a LAN address).
import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { adminHostGuard, parseHostHeader } from '../../src/admin/host-guard.ts';

describe('admin Host check', () => {
  it('parses Host values and refuses malformed ones', () => {
    expect(parseHostHeader('LocalHost.:8788')).toEqual({ host: 'localhost', port: 8788 });
    expect(parseHostHeader('[::1]:8788')).toEqual({ host: '::1', port: 8788 });
    expect(parseHostHeader('example.test')).toEqual({ host: 'example.test', port: 80 });
    for (const bad of ['', ':8788', '[nothex]:1', 'a b:1', 'host:99999', 'user@host:1']) expect(parseHostHeader(bad), bad).toBeUndefined();
  });

  it("bound to every interface: loopback names and this machine's own addresses on its port", () => {
    const allowed = adminHostGuard({ address: '0.0.0.0', port: 8788, configuredHost: '0.0.0.0' });
    const own = Object.values(networkInterfaces())
      .flat()
      .map((i) => i?.address)
      .filter((a): a is string => a !== undefined && !a.includes(':'));
    for (const ok of ['localhost:8788', '127.0.0.1:8788', '127.1.2.3:8788', '[::1]:8788', '[::ffff:127.0.0.1]:8788', ...own.map((a) => `${a}:8788`)])
      expect(allowed(ok), ok).toBe(true);
    for (const no of ['0.0.0.0:8788', 'evil.example:8788', 'localhost:8789', '203.0.113.9:8788', '[::]:8788', undefined])
      expect(allowed(no), String(no)).toBe(false);
  });

  it('bound to a LAN address: that address only (no loopback names: they cannot reach it)', () => {
    const allowed = adminHostGuard({ address: '192.0.2.10', port: 8788, configuredHost: '192.0.2.10' });
    expect(allowed('192.0.2.10:8788')).toBe(true);
    expect(allowed('localhost:8788')).toBe(false);
    expect(allowed('rebind.evil.example:8788')).toBe(false);
  });

  it('bound to ::1 under the name localhost', () => {
    const allowed = adminHostGuard({ address: '::1', port: 8788, configuredHost: 'localhost' });
    expect(allowed('[::1]:8788')).toBe(true);
    expect(allowed('localhost:8788')).toBe(true);
    expect(allowed('127.0.0.1:8788')).toBe(true);
  });
});
