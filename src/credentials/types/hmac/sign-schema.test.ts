import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { describeIssue } from '../../../config/messages.ts';
import { hmacSignSchema } from './signing/index.ts';

// The sign: block as the config loader will report it: each refusal names the key path and says
// what to write, in one line.

const config = z.strictObject({ grants: z.record(z.string(), z.strictObject({ sign: hmacSignSchema })) });

function refusal(sign: unknown): string {
  const raw = { grants: { exchange: { sign } } };
  const result = config.safeParse(raw);
  if (result.success) throw new Error('accepted');
  return result.error.issues.map((issue) => describeIssue(issue, raw, config)).join('; ');
}

const valid = { algorithm: 'sha256', string: '{method}{path}', output: { header: 'X-Signature', encoding: 'hex' } };

describe('the sign: block', () => {
  it('takes a preset by name', () => {
    expect(config.parse({ grants: { g: { sign: { preset: 'kraken' } } } }).grants['g']?.sign).toEqual({ kind: 'preset', preset: 'kraken' });
  });

  it('takes a custom scheme, defaulting key_encoding to utf8 and lowercasing header names', () => {
    const sign = config.parse({ grants: { g: { sign: valid } } }).grants['g']?.sign;
    expect(sign).toMatchObject({
      kind: 'custom',
      algorithm: 'sha256',
      keyEncoding: 'utf8',
      output: { place: { in: 'header', name: 'x-signature' }, encoding: 'hex' },
    });
  });

  it.each([
    ['grants.exchange.sign.preset: expected one of binance, kraken, coinbase_exchange, okx', { preset: 'krakn' }],
    ['grants.exchange.sign: unknown key algorithm (known here: preset)', { preset: 'okx', algorithm: 'sha256' }],
    ['grants.exchange.sign: expected {preset: NAME} (one of binance, kraken, coinbase_exchange, okx) or a map describing the scheme', 'okx'],
    ['grants.exchange.sign: is required: {preset: NAME} or a custom scheme (algorithm, string, output …)', null],
    ['grants.exchange.sign.algorithm: expected one of sha1, sha256, sha384, sha512', { ...valid, algorithm: 'md5' }],
    ['grants.exchange.sign.key_encoding: expected one of utf8, base64, hex', { ...valid, key_encoding: 'latin1' }],
    ['grants.exchange.sign.algorithm: is required', { string: '{method}', output: valid.output }],
    ['grants.exchange.sign.string: is required', { algorithm: 'sha256', output: valid.output }],
    ['grants.exchange.sign.output: is required', { algorithm: 'sha256', string: '{method}' }],
    ['grants.exchange.sign.output.encoding: is required', { ...valid, output: { header: 'X-Sig' } }],
    ['grants.exchange.sign.output.encoding: expected one of hex, base64', { ...valid, output: { header: 'X-Sig', encoding: 'base32' } }],
    ['grants.exchange.sign.output: say where it goes: header: NAME or query: NAME', { ...valid, output: { encoding: 'hex' } }],
    ['grants.exchange.sign.output: give one of header or query, not both', { ...valid, output: { header: 'X-Sig', query: 'sig', encoding: 'hex' } }],
    ['grants.exchange.sign.output: unknown key form (known here: header, query, encoding)', { ...valid, output: { form: 'sig', encoding: 'hex' } }],
    ['grants.exchange.sign.output.header: expected a header name (letters, digits and -)', { ...valid, output: { header: 'X Sig', encoding: 'hex' } }],
    [
      'grants.exchange.sign: unknown key signature (known here: algorithm, key_encoding, string, timestamp, nonce, output, key_id, passphrase)',
      { ...valid, signature: {} },
    ],
    ['grants.exchange.sign.timestamp.format: expected one of unix_seconds, unix_ms, iso8601', { ...valid, timestamp: { header: 'X-Ts', format: 'rfc1123' } }],
    ['grants.exchange.sign.nonce.format: expected one of counter_ms, counter_us, random_hex, uuid', { ...valid, nonce: { query: 'n', format: 'counter' } }],
    ['grants.exchange.sign.key_id: say where it goes: header: NAME or query: NAME', { ...valid, key_id: {} }],
    ['grants.exchange.sign.key_id: header x-signature is already where output goes', { ...valid, key_id: { header: 'x-signature' } }],
    ['grants.exchange.sign.string: uses {timestamp}, so sign.timestamp must say its format', { ...valid, string: '{timestamp}{method}' }],
    ['grants.exchange.sign.string: uses {nonce}, so sign.nonce must say its format', { ...valid, string: '{nonce}' }],
    ['grants.exchange.sign.string: unknown placeholder {date}; known: {method}, {path}, {query}', { ...valid, string: '{method}\n{date}' }],
    [
      'grants.exchange.sign.string: {header:} does not name a header (expected {header:NAME}, such as {header:Content-Type})',
      { ...valid, string: '{header:}' },
    ],
    ['grants.exchange.sign.string: an unclosed { at character 1; write {{ for a literal brace', { ...valid, string: '{method' }],
    ['grants.exchange.sign.string: a lone } at character 2; write }} for a literal brace', { ...valid, string: 'a}b' }],
    ['grants.exchange.sign.string: unknown placeholder {body_md5_hex}', { ...valid, string: '{body_md5_hex}' }],
    ['grants.exchange.sign.string: expected the string to sign, as a template', { ...valid, string: 42 }],
  ])('refuses: %s', (message, sign) => {
    expect(refusal(sign)).toContain(message);
  });

  it('puts a nonce in a form body field, but nothing else', () => {
    expect(config.safeParse({ grants: { g: { sign: { ...valid, string: '{nonce}', nonce: { form: 'nonce', format: 'counter_ms' } } } } }).success).toBe(true);
    expect(refusal({ ...valid, timestamp: { form: 'ts', format: 'unix_ms' } })).toContain('grants.exchange.sign.timestamp: unknown key form');
  });
});
