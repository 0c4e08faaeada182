import { describe, expect, it } from 'vitest';
import { excludedByNoProxy, LOOPBACK_NO_PROXY, urlsIn } from '../../src/cli/no-proxy.ts';

describe('NO_PROXY as clients read it', () => {
  it("keyway env's loopback list sends localhost and the loopback literals around the proxy, and nothing else", () => {
    for (const host of ['localhost', 'LOCALHOST', 'api.localhost', '127.0.0.1', '::1', '[::1]', 'localhost.'])
      expect(excludedByNoProxy(host, LOOPBACK_NO_PROXY), host).toBe(true);
    for (const host of ['api.local.test', '127.0.0.2', 'notlocalhost', 'localhost.example.test', '::2'])
      expect(excludedByNoProxy(host, LOOPBACK_NO_PROXY), host).toBe(false);
  });

  it('reads suffixes with or without a leading dot, ports, spaces and *', () => {
    expect(excludedByNoProxy('a.corp.test', ' .corp.test ')).toBe(true);
    expect(excludedByNoProxy('a.corp.test', '*.corp.test')).toBe(true);
    expect(excludedByNoProxy('corp.test', 'corp.test:8443')).toBe(true);
    expect(excludedByNoProxy('anything', '*')).toBe(true);
    expect(excludedByNoProxy('xcorp.test', 'corp.test')).toBe(false);
    expect(excludedByNoProxy('host', '')).toBe(false);
  });

  it("finds the URLs among a command's arguments", () => {
    expect(urlsIn(['-sS', 'https://localhost:8443/x', '-H', 'a: b', 'HTTP://Example.test', 'https://[bad']).map((u) => u.host)).toEqual([
      'localhost:8443',
      'example.test',
    ]);
  });
});
