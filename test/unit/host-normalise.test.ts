import { describe, expect, it } from 'vitest';
import { normaliseHost, parseDomainPattern } from '../../src/config/index.ts';
import { formatAuthority, parseAuthority } from '../../src/proxy/target.ts';
import { classifyHost } from '../../src/tls/host.ts';

// One normaliseHost serves domain patterns, proxy targets and TLS leaves: a host written any of the
// ways below must come out as one spelling in all three, or a grant would miss the CONNECT it covers
// (or the leaf cache would mint twice for one host).

describe('normaliseHost', () => {
  it.each([
    ['API.GitHub.COM', 'api.github.com'],
    ['api.github.com.', 'api.github.com'],
    [' api.github.com ', 'api.github.com'],
    ['127.0.0.1', '127.0.0.1'],
    ['[::1]', '::1'],
    ['::1', '::1'],
    ['[FD00:0:0::1]', 'fd00::1'],
    ['fd00:0000:0000:0000:0000:0000:0000:0001', 'fd00::1'],
    ['[0:0:0:0:0:ffff:7f00:0001]', '::ffff:7f00:1'],
    ['[::FFFF:127.0.0.1]', '::ffff:7f00:1'],
    ['[2001:DB8::A]', '2001:db8::a'],
  ])('%s -> %s', (input, expected) => {
    expect(normaliseHost(input)).toBe(expected);
  });

  it('leaves a zone id in place for the callers to refuse (never silently drops it)', () => {
    expect(normaliseHost('[FE80::1%eth0]')).toBe('fe80::1%eth0');
  });
});

describe('one IPv6 spelling across patterns, targets and leaves', () => {
  const spellings = ['[fd00::1]', '[FD00:0::1]', '[fd00:0:0:0:0:0:0:1]', '[fd00::0:1]'];

  it.each(spellings)('%s: the pattern, the CONNECT target and the leaf name agree', (spelling) => {
    const pattern = parseDomainPattern(`${spelling}:443`);
    expect(typeof pattern).toBe('object');
    expect(typeof pattern === 'object' ? pattern.host : pattern).toBe('fd00::1');
    expect(parseAuthority(`${spelling}:443`).host).toBe('fd00::1');
    expect(classifyHost(normaliseHost(spelling))).toMatchObject({ kind: 'ip', address: 'fd00::1' });
  });

  it('a mixed-case DNS name is one host everywhere', () => {
    const pattern = parseDomainPattern('API.Example.COM');
    expect(typeof pattern === 'object' ? pattern.host : pattern).toBe('api.example.com');
    expect(parseAuthority('Api.Example.Com.:443').host).toBe('api.example.com');
    expect(classifyHost(normaliseHost('API.EXAMPLE.COM'))).toEqual({ kind: 'dns', name: 'api.example.com' });
  });
});

describe('formatAuthority writes back what parseAuthority read', () => {
  it.each([
    ['api.example.com:443', 'api.example.com:443'],
    ['127.0.0.1:8080', '127.0.0.1:8080'],
    ['[FD00:0::1]:443', '[fd00::1]:443'],
    ['[::ffff:127.0.0.1]:443', '[::ffff:7f00:1]:443'],
  ])('%s -> %s', (text, expected) => {
    const target = parseAuthority(text);
    expect(formatAuthority(target)).toBe(expected);
    expect(parseAuthority(formatAuthority(target))).toEqual(target);
  });
});

describe('IPv6 zone ids are refused', () => {
  it.each(['[fe80::1%eth0]', '[fe80::1%25eth0]', 'fe80::1%eth0'])('%s', (host) => {
    expect(typeof parseDomainPattern(host)).toBe('string');
    expect(typeof parseDomainPattern(`${host}:443`)).toBe('string');
    expect(() => parseAuthority(`${host}:443`)).toThrow(expect.objectContaining({ code: 'bad_request' }));
    expect(() => classifyHost(normaliseHost(host))).toThrow(expect.objectContaining({ code: 'bad_request' }));
  });
});
