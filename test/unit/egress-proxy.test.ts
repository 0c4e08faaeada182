// egress.proxy: the config's checks, and which hosts go through the proxy (src/egress/egress-proxy.ts).
import { createSecureContext } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { EgressProxy } from '../../src/egress/egress-proxy.ts';
import { egressSettings } from '../../src/egress/egress-settings.ts';
import { thrownMessage } from '../helpers/thrown.ts';

const load = (egress: unknown) => parseConfig({ egress }, '/home/test');
const PASSWORD = 'corp-secret-4411';

describe('egress in the config', () => {
  it('takes a URL without credentials, or a reference; refuses credentials written out, other schemes, paths', () => {
    expect(load({ proxy: 'http://proxy.corp.example:3128' }).egress).toEqual({ proxy: 'http://proxy.corp.example:3128', no_proxy: [], connect_to: 'address' });
    expect(load({ proxy: 'env:CORP_PROXY', no_proxy: ['.corp.example', '10.0.0.0/8', '::1'] }).egress.proxy).toEqual({ kind: 'env', name: 'CORP_PROXY' });
    const written = thrownMessage(() => load({ proxy: `http://svc:${PASSWORD}@proxy:3128` }));
    expect(written).toMatch(/egress\.proxy: a URL with credentials goes by reference/);
    expect(written).not.toContain(PASSWORD);
    expect(thrownMessage(() => load({ proxy: 'socks5://proxy:1080' }))).toMatch(/expected http:\/\/ or https:\/\//);
    expect(thrownMessage(() => load({ proxy: 'http://proxy:3128/pac' }))).toMatch(/no path or query/);
    expect(thrownMessage(() => load({ no_proxy: ['not a host'] }))).toMatch(/egress\.no_proxy\.0/);
    expect(load({}).egress).toEqual({ no_proxy: [], connect_to: 'address' });
    expect(thrownMessage(() => load({ connect_to: 'proxy' }))).toMatch(/egress\.connect_to/);
  });

  it('reads the URL behind a reference at start, credentials allowed there, and never quotes it', () => {
    const config = load({ proxy: 'env:CORP_PROXY' });
    expect(egressSettings(config, { CORP_PROXY: `http://svc:${PASSWORD}@proxy:3128\n` })?.url.password).toBe(PASSWORD);
    const bad = thrownMessage(() => egressSettings(config, { CORP_PROXY: `ftp://svc:${PASSWORD}@proxy` }));
    expect(bad).toMatch(/egress\.proxy: expected http/);
    expect(bad).not.toContain(PASSWORD);
    expect(thrownMessage(() => egressSettings(config, {}))).toMatch(/egress\.proxy/);
    expect(egressSettings(load({}), {})).toBeUndefined();
  });
});

describe('which hosts go through the proxy', () => {
  const proxy = new EgressProxy({
    url: new URL('http://proxy:3128'),
    noProxy: ['internal.example', '.corp.example', '*.lab.example', '10.0.0.0/8', '::1'],
    secureContext: createSecureContext(),
    resolve: async () => ({ address: '203.0.113.1', family: 4 }),
  });

  it('no_proxy names cover themselves and their subdomains (not look-alikes); addresses by range', () => {
    for (const direct of [
      'internal.example',
      'internal.example.',
      'api.internal.example',
      'corp.example',
      'x.corp.example',
      'lab.example',
      'a.b.lab.example',
      '10.1.2.3',
      '::1',
      '[::1]',
      'INTERNAL.example',
    ]) {
      expect(proxy.covers(direct), direct).toBe(false);
    }
    for (const proxied of ['api.github.com', 'notinternal.example', 'internal.example.evil.com', '11.0.0.1', '::2'])
      expect(proxy.covers(proxied), proxied).toBe(true);
    expect(proxy.label).toBe('http://proxy:3128');
  });

  it('the label never carries the credentials', () => {
    const signed = new EgressProxy({
      url: new URL(`http://svc:${PASSWORD}@proxy:3128`),
      noProxy: [],
      secureContext: createSecureContext(),
      resolve: async () => ({ address: '203.0.113.1', family: 4 }),
    });
    expect(signed.label).toBe('http://proxy:3128');
  });
});
