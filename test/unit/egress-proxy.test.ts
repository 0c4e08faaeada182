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

describe('the egress proxy is never a destination (egress-self.ts)', () => {
  it('its tunnel refuses the proxy itself on the address it would CONNECT to, before the proxy is dialled', async () => {
    // The name answers the proxy's own address at tunnel time (a check made earlier may have seen another).
    const proxy = new EgressProxy({
      url: new URL(`http://keyway:${PASSWORD}@192.0.2.7:3128`),
      noProxy: [],
      secureContext: createSecureContext(),
      resolve: async () => ({ address: '192.0.2.7', family: 4 }),
    });
    for (const host of ['rebind.example', '192.0.2.7', '::ffff:c000:207']) {
      const err = await proxy.tunnel(host, 3128).then(
        () => undefined,
        (e: unknown) => e as { code?: string; proxyError?: { code: string; message: string } },
      );
      expect(err?.code, host).toBe('EKEYWAYREFUSED');
      expect(err?.proxyError?.code).toBe('host_not_allowed');
      expect(err?.proxyError?.message).toMatch(/egress proxy's own address/);
      expect(err?.proxyError?.message).not.toContain(PASSWORD);
    }
  });

  it('by name, by any address its name has, and on this host any local address on its port', async () => {
    const { EgressProxySelf } = await import('../../src/egress/egress-self.ts');
    const named = new EgressProxySelf(new URL('http://proxy.corp.example:3128'), async () => ['10.0.0.5', '10.0.0.6']);
    expect(await named.is('PROXY.corp.example', undefined, 3128)).toBe(true);
    expect(await named.is('other.example', '10.0.0.6', 3128)).toBe(true);
    expect(await named.is('other.example', '::ffff:10.0.0.5', 3128)).toBe(true);
    expect(await named.is('other.example', '10.0.0.5', 3129)).toBe(false);
    expect(await named.is('other.example', '10.0.0.7', 3128)).toBe(false);
    const local = new EgressProxySelf(new URL('https://127.0.0.1'));
    expect(local.onPort(443)).toBe(true);
    expect(await local.is('x.example', '127.0.0.2', 443)).toBe(true);
    expect(await local.is('x.example', '203.0.113.9', 443)).toBe(false);
  });
});
