import { describe, expect, it } from 'vitest';
import { isLoopbackAddress } from '../../src/config/index.ts';
import { parseConfig } from '../../src/config/load.ts';

// One loopback test serves the anonymous agent (socket addresses), the admin Host guard (Host
// header literals) and the http:// exception for OAuth endpoints in the config.

describe('isLoopbackAddress', () => {
  it.each(['127.0.0.1', '127.8.9.10', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', '[::FFFF:127.0.0.2]', '::ffff:7f00:1'])('%s is loopback', (text) =>
    expect(isLoopbackAddress(text)).toBe(true),
  );

  it.each([
    undefined,
    '',
    'localhost',
    '10.0.0.1',
    '128.0.0.1',
    '::2',
    '::ffff:10.0.0.1',
    '::127.0.0.1', // deprecated compatible form
    '::1%lo',
    '127.evil.example',
    '127.0.0.1.evil.example',
    '::ffff:8000:1',
  ])('%s is not', (text) => expect(isLoopbackAddress(text)).toBe(false));
});

describe('http:// OAuth endpoints only on loopback', () => {
  const withTokenUrl = (url: string) => () => parseConfig({ providers: { p: { token_url: url } } }, '/tmp/keyway-loopback-test');

  it.each(['http://127.0.0.1:9/token', 'http://[::1]:9/token', 'http://localhost:9/token', 'https://auth.example/token'])('accepts %s', (url) => {
    expect(withTokenUrl(url)).not.toThrow();
  });

  it.each(['http://auth.example/token', 'http://10.0.0.1/token', 'http://127.0.0.1.nip.io/token'])('refuses %s', (url) => {
    expect(withTokenUrl(url)).toThrow(/token_url/);
  });
});
