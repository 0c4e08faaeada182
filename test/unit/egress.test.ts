import { describe, expect, it } from 'vitest';
import { EgressPolicy } from '../../src/policy/egress.ts';
import { guardResolver, lookupFunction, type ResolvedAddress } from '../../src/egress/resolve.ts';
import type { ProxyError } from '../../src/errors/index.ts';

// The address check as a pure function: no packet leaves this machine in these tests.

describe('egress policy', () => {
  const policy = new EgressPolicy();

  it.each([
    ['10.0.0.1', 'private'],
    ['172.16.5.4', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['127.0.0.2', 'loopback'],
    ['169.254.169.254', 'metadata'],
    ['169.254.10.10', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['0.0.0.0', 'this network'],
    ['224.0.0.1', 'multicast'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fd00:ec2::254', 'metadata'],
    ['fd12:3456::1', 'unique-local'],
    ['fe80::1', 'link-local'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['64:ff9b::10.0.0.1', 'NAT64 address for 10.0.0.1, a private'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:7f00:1::1', 'loopback'],
  ])('refuses %s (%s)', (address, why) => {
    const verdict = policy.check(address);
    expect(verdict.allowed).toBe(false);
    expect(verdict.allowed === false && verdict.reason).toContain(why);
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '64:ff9b::808:808', '2002:808:808::1'])('allows public %s', (address) => {
    expect(policy.check(address)).toEqual({ allowed: true });
  });

  it('lets chosen ranges through, and only those', () => {
    const local = new EgressPolicy(['127.0.0.1/32', '10.1.0.0/16']);
    expect(local.check('127.0.0.1').allowed).toBe(true);
    expect(local.check('127.0.0.2').allowed).toBe(false);
    expect(local.check('10.1.200.3').allowed).toBe(true);
    expect(local.check('10.2.0.1').allowed).toBe(false);
    expect(local.check('::ffff:10.1.0.9').allowed).toBe(true);
    expect(() => new EgressPolicy(['10.0.0.0/33'])).toThrow();
  });
});

describe('the guard in front of every connection', () => {
  it('asks the resolver once per connection and hands out only the address it checked', async () => {
    // A name that answers 127.0.0.1 first and 127.0.0.2 next: a rebinding attempt.
    const answers = ['127.0.0.1', '127.0.0.2'];
    let calls = 0;
    const scripted = async (): Promise<ResolvedAddress> => ({ address: answers[Math.min(calls++, 1)]!, family: 4 });
    const guarded = guardResolver(scripted, new EgressPolicy(['127.0.0.1/32']));
    const lookup = lookupFunction(guarded);
    // The connect function records instead of connecting.
    const connectTo = (host: string) =>
      new Promise<string>((resolve, reject) =>
        lookup(host, { all: true }, (err, result) => (err ? reject(err) : resolve((result as unknown as ResolvedAddress[])[0]!.address))),
      );
    expect(await connectTo('rebind.example.test')).toBe('127.0.0.1');
    expect(calls).toBe(1);
    const refused = await connectTo('rebind.example.test').catch((err: unknown) => err);
    expect(calls).toBe(2);
    expect((refused as { proxyError?: ProxyError }).proxyError?.code).toBe('host_not_allowed');
    expect((refused as { proxyError?: ProxyError }).proxyError?.message).toContain('127.0.0.2 is a loopback address');
  });

  it('checks IP literals too', async () => {
    const guarded = guardResolver(async (host) => ({ address: host, family: 4 }), new EgressPolicy());
    await expect(guarded('169.254.169.254')).rejects.toThrow(/metadata/);
  });
});
