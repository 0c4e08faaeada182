import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { KeywayError } from '../../src/errors/index.ts';

// proxy.timeouts and proxy.drain_timeout as the config loader reads them (pure: no sockets).
const load = (proxy: unknown) => parseConfig({ proxy }, '/home/test').proxy;
const failure = (proxy: unknown): string => {
  try {
    load(proxy);
  } catch (err) {
    expect(err).toBeInstanceOf(KeywayError);
    return (err as KeywayError).message;
  }
  throw new Error('expected the config to be refused');
};

describe('proxy.timeouts and proxy.drain_timeout', () => {
  it('default to bounded waits', () => {
    const proxy = load({});
    expect(proxy.timeouts).toEqual({
      first_byte: 10_000,
      handshake: 10_000,
      headers: 30_000,
      idle: 60_000,
      body_stall: 60_000,
      upstream: 60_000,
      max_connection_age: 4 * 3_600_000,
    });
    expect(proxy.drain_timeout).toBe(10_000);
  });

  it('keep proxy.upstream_timeout working as the older name of timeouts.upstream', () => {
    expect(load({ upstream_timeout: '500ms' }).timeouts.upstream).toBe(500);
    expect(load({ upstream_timeout: '500ms' }).upstream_timeout).toBe(500);
    expect(load({ upstream_timeout: '500ms', timeouts: { upstream: '2s' } }).timeouts.upstream).toBe(2_000);
    expect(load({ timeouts: { upstream: '2s' } }).upstream_timeout).toBe(2_000);
  });

  it('refuse unknown keys, zero and bad durations, naming the key', () => {
    expect(failure({ timeouts: { first_bytes: '1s' } })).toContain('proxy.timeouts');
    expect(failure({ timeouts: { idle: '0s' } })).toContain('proxy.timeouts.idle');
    expect(failure({ timeouts: { headers: 'soon' } })).toContain('proxy.timeouts.headers');
    expect(failure({ drain_timeout: '10' })).toContain('proxy.drain_timeout');
  });

  it('accept a drain_timeout of 0s (stop at once)', () => {
    expect(load({ drain_timeout: '0s' }).drain_timeout).toBe(0);
  });
});
