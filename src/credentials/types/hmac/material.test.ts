import { describe, expect, it } from 'vitest';
import { KeywayError } from '../../../errors/index.ts';
import { compileHmacScheme, hmacMaterialProblem, hmacSignSchema, parseHmacMaterial } from './signing/index.ts';

// An hmac grant's material as `keyway secrets set` will take it, and whether it fits the scheme.

const SECRET = 'material-canary-5e4d3c2b1a';

describe('hmac material', () => {
  it('reads {key, keyId, passphrase} as JSON text or parsed, camelCase or snake_case', () => {
    expect(parseHmacMaterial(`{"key":"${SECRET}","key_id":"id-1","passphrase":"pp"}`)).toEqual({ key: SECRET, keyId: 'id-1', passphrase: 'pp' });
    expect(parseHmacMaterial({ key: SECRET, keyId: 'id-1' })).toEqual({ key: SECRET, keyId: 'id-1', passphrase: undefined });
  });

  it.each([
    [SECRET, 'an hmac secret is a JSON object {"key", "keyId"?, "passphrase"?}'],
    [`["${SECRET}"]`, 'an hmac secret is a JSON object'],
    [`{"secret":"${SECRET}"}`, 'an hmac secret takes key, keyId and passphrase; unknown: secret'],
    ['{"key":""}', 'an hmac secret needs "key", a non-empty string'],
    [`{"key":"${SECRET}","keyId":7}`, '"keyId" must be a non-empty string'],
    [`{"key":"${SECRET}","passphrase":""}`, '"passphrase" must be a non-empty string'],
  ])('refuses %s as a usage error that never quotes it', (input, message) => {
    let thrown: unknown;
    try {
      parseHmacMaterial(input);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(KeywayError);
    expect((thrown as KeywayError).code).toBe('usage');
    expect((thrown as Error).message).toContain(message);
    expect((thrown as Error).message).not.toContain(SECRET);
  });

  it('says when material does not fit its scheme, before any request', () => {
    const coinbase = compileHmacScheme(hmacSignSchema.parse({ preset: 'coinbase_exchange' }));
    const key = Buffer.from(SECRET).toString('base64');
    expect(hmacMaterialProblem(coinbase, { key, keyId: 'k', passphrase: 'p' })).toBeUndefined();
    expect(hmacMaterialProblem(coinbase, { key: SECRET, keyId: 'k', passphrase: 'p' })).toBe('the key is not valid base64, yet the scheme reads it as base64');
    expect(hmacMaterialProblem(coinbase, { key, passphrase: 'p' })).toBe('hmac preset coinbase_exchange sends the key id in header cb-access-key: add "keyId"');
    expect(hmacMaterialProblem(coinbase, { key, keyId: 'k' })).toBe(
      'hmac preset coinbase_exchange sends the passphrase in header cb-access-passphrase: add "passphrase"',
    );
  });
});
