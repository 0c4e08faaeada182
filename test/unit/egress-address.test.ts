import { describe, expect, it } from 'vitest';
import { canonicalAddress, embeddedIpv4, formatIp, parseIp } from '../../src/policy/address.ts';
import { EgressPolicy } from '../../src/policy/egress.ts';
import { compileAddressSet } from '../../src/policy/cidr.ts';
import { isLocalAddress } from '../../src/egress/local-addresses.ts';
import { parseAuthority, parseAbsoluteUrl } from '../../src/proxy/target.ts';

// The one canonical form (issue 8, defect 3): pure functions, no packet leaves this machine.

describe('canonicalAddress', () => {
  it.each([
    ['::ffff:127.0.0.1', '127.0.0.1', 'mapped'],
    ['::ffff:7f00:1', '127.0.0.1', 'mapped'],
    ['::FFFF:7F00:0001', '127.0.0.1', 'mapped'],
    ['0:0:0:0:0:ffff:7f00:1', '127.0.0.1', 'mapped'],
    ['0000:0000:0000:0000:0000:ffff:7f00:0001', '127.0.0.1', 'mapped'],
    ['[::ffff:127.0.0.1]', '127.0.0.1', 'mapped'],
    ['::127.0.0.1', '127.0.0.1', 'compatible'],
    ['::7f00:1', '127.0.0.1', 'compatible'],
    ['::0.0.0.2', '0.0.0.2', 'compatible'],
    ['::ffff:0:127.0.0.1', '127.0.0.1', 'translated'],
    ['0:0:0:0:ffff:0:7f00:1', '127.0.0.1', 'translated'],
    ['::ffff:169.254.169.254', '169.254.169.254', 'mapped'],
  ])('folds %s to %s (%s)', (text, v4, form) => {
    const c = canonicalAddress(text);
    expect(c?.text).toBe(v4);
    expect(c?.address.version).toBe(4);
    expect(c?.folded?.form).toBe(form);
  });

  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['FE80::1%eth0', 'fe80::1'],
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
    ['64:ff9b::10.0.0.1', '64:ff9b::a00:1'],
    ['127.0.0.1', '127.0.0.1'],
  ])('keeps %s as %s', (text, expected) => {
    const c = canonicalAddress(text);
    expect(c?.text).toBe(expected);
    expect(c?.folded).toBeUndefined();
  });

  it.each(['2130706433', '0x7f.1', '0177.0.0.1', '127.1', 'localhost', '', '1.2.3.4.5', '::ffff:127.1', '[::1'])(
    'is not an address: %s (a lookup decides those)',
    (text) => {
      expect(canonicalAddress(text)).toBeUndefined();
    },
  );

  it('reads the IPv4 address inside NAT64, local-use NAT64, 6to4 and Teredo addresses', () => {
    const inside = (text: string) => {
      const e = embeddedIpv4(parseIp(text)!);
      return e && `${e.form} ${formatIp(e.ipv4)}`;
    };
    expect(inside('64:ff9b::a9fe:a9fe')).toBe('NAT64 169.254.169.254');
    expect(inside('64:ff9b:1::a9fe:a9fe')).toBe('local-use NAT64 169.254.169.254');
    expect(inside('2002:a9fe:a9fe::1')).toBe('6to4 169.254.169.254');
    // Teredo: client address inverted in the last 32 bits (RFC 4380 section 4).
    expect(inside('2001:0:4136:e378:8000:63bf:5601:5601')).toBe('Teredo 169.254.169.254');
    expect(inside('2606:4700::1111')).toBeUndefined();
  });
});

describe('one canonical form in every check', () => {
  it('allow_networks 127.0.0.0/8 allows ::ffff:127.0.0.1 (the same address) but not the deprecated forms', () => {
    const policy = new EgressPolicy(['127.0.0.0/8']);
    for (const a of ['127.0.0.1', '::ffff:127.0.0.1', '::ffff:7f00:1', '0000:0000:0000:0000:0000:ffff:7f00:0001'])
      expect(policy.check(a), a).toEqual({ allowed: true });
    for (const a of ['::127.0.0.1', '::ffff:0:127.0.0.1', '64:ff9b:1::7f00:1']) expect(policy.check(a).allowed, a).toBe(false);
  });

  it('a deprecated form passes only when its own range and the IPv4 address inside are both allowed', () => {
    expect(new EgressPolicy(['::/96']).check('::127.0.0.1').allowed).toBe(false);
    expect(new EgressPolicy(['::/96', '127.0.0.0/8']).check('::127.0.0.1').allowed).toBe(true);
    expect(new EgressPolicy(['::ffff:0:0:0/96', '10.0.0.0/8']).check('::ffff:0:10.1.2.3').allowed).toBe(true);
    expect(new EgressPolicy(['64:ff9b:1::/48']).check('64:ff9b:1::8.8.8.8').allowed).toBe(true);
    expect(new EgressPolicy(['64:ff9b:1::/48']).check('64:ff9b:1::a9fe:a9fe').allowed).toBe(false);
    expect(new EgressPolicy(['2001::/32']).check('2001:0:4136:e378:8000:63bf:5601:5601').allowed).toBe(false);
    // Through a translator: the IPv4 address inside is on the far side, so both must be allowed.
    expect(new EgressPolicy(['127.0.0.0/8']).check('64:ff9b::7f00:1').allowed).toBe(false);
    expect(new EgressPolicy(['10.0.0.0/8']).check('2002:a00:1::1').allowed).toBe(false);
    expect(new EgressPolicy(['10.0.0.0/8', '2002::/16']).check('2002:a00:1::1').allowed).toBe(true);
    expect(new EgressPolicy(['64:ff9b::/96']).check('64:ff9b::a00:1').allowed).toBe(false);
  });

  it('a range written in mapped form is the IPv4 range, and ::/0 covers IPv4 too', () => {
    expect(new EgressPolicy(['::ffff:10.0.0.0/104']).check('10.9.9.9').allowed).toBe(true);
    expect(new EgressPolicy(['::ffff:10.0.0.0/104']).check('11.0.0.1').allowed).toBe(true); // public anyway
    expect(new EgressPolicy(['::ffff:10.0.0.0/104']).check('172.16.0.1').allowed).toBe(false);
    expect(new EgressPolicy(['::/0']).check('10.0.0.1').allowed).toBe(true);
    expect(new EgressPolicy(['fc00::/7']).check('10.0.0.1').allowed).toBe(false);
  });

  it('isLocalAddress sees loopback in every spelling, and this host by its interface addresses', () => {
    for (const a of [
      '127.0.0.1',
      '127.255.255.254',
      '::1',
      '::',
      '0.0.0.0',
      '::ffff:7f00:1',
      '0000:0000:0000:0000:0000:ffff:7f00:0001',
      '::127.0.0.1',
      '::ffff:0:7f00:1',
      '0:0:0:0:0:0:0:1',
      '64:ff9b::7f00:1',
    ]) {
      expect(isLocalAddress(a), a).toBe(true);
    }
    for (const a of ['8.8.8.8', '2606:4700::1111', 'not-an-address']) expect(isLocalAddress(a), a).toBe(false);
  });

  it("rules' source ranges fold a mapped client address and a mapped range", () => {
    const set = compileAddressSet(['10.1.0.0/16', '::ffff:192.168.0.0/112']);
    if (typeof set === 'string') throw new Error(set);
    expect(set.has('::ffff:10.1.2.3')).toBe(true);
    expect(set.has('0:0:0:0:0:ffff:a01:203')).toBe(true);
    expect(set.has('192.168.4.4')).toBe(true);
    expect(set.has('10.2.0.1')).toBe(false);
    expect(set.has('fe80::1%eth0')).toBe(false);
  });

  it('targets spell an IPv6 literal one way, so a Host header in another spelling is the same target', () => {
    const expanded = parseAuthority('[0000:0000:0000:0000:0000:ffff:7f00:0001]:8788');
    expect(expanded).toEqual({ host: '::ffff:7f00:1', port: 8788 });
    expect(parseAuthority('[::ffff:127.0.0.1]:8788')).toEqual(expanded);
    expect(parseAbsoluteUrl('http://[::FFFF:127.0.0.1]:8788/').target).toEqual(expanded);
    expect(parseAuthority('api.example.test:443').host).toBe('api.example.test');
  });
});
