import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  compileHmacScheme,
  fixedSources,
  type HmacMaterial,
  type HmacRequest,
  HmacSignError,
  hmacSignSchema,
  signHmacRequest,
  systemSources,
} from './signing/index.ts';
import { canaryForms } from '../../../../test/helpers/leak-canary.ts';

// Custom schemes (sign: as data): each placeholder, algorithm and encoding, timestamp and nonce
// formats and places, and what the signer returns, checked against node:crypto computed here.

const KEY = 'custom-scheme-test-key-0123456789';
const material: HmacMaterial = { key: KEY, keyId: 'key-id-1', passphrase: 'pass-phrase-1' };
const NOW = Date.parse('2026-11-23T10:20:30.456Z');

const scheme = (sign: Record<string, unknown>) =>
  compileHmacScheme(hmacSignSchema.parse({ output: { header: 'X-Sig', encoding: 'hex' }, algorithm: 'sha256', ...sign }));

const baseRequest: HmacRequest = {
  method: 'post',
  path: '/v1/orders/7',
  query: 'b=2&a=one%20two',
  headers: { 'content-type': 'application/json', 'x-client': ['one', 'two'], 'x-sig': 'placeholder' },
  body: Buffer.from('{"qty":1,"note":"é"}'),
  host: 'api.example.test:8443',
};

const hmacHex = (message: string | Buffer, key: string | Buffer = KEY, algorithm = 'sha256') => createHmac(algorithm, key).update(message).digest('hex');

function signWith(sign: Record<string, unknown>, request: HmacRequest = baseRequest, sources = fixedSources(NOW, 'n-1')) {
  return signHmacRequest(request, material, scheme(sign), sources);
}

describe('placeholders in the string to sign', () => {
  const body = baseRequest.body as Buffer;
  it.each([
    ['{method}', 'POST'],
    ['{path}', '/v1/orders/7'],
    ['{query}', 'b=2&a=one%20two'],
    ['{path_query}', '/v1/orders/7?b=2&a=one%20two'],
    ['{host}', 'api.example.test:8443'],
    ['{key_id}', 'key-id-1'],
    ['{header:Content-Type}', 'application/json'],
    ['{header:X-Client}', 'one, two'],
    ['{header:X-Missing}', ''],
    ['{body_sha256_hex}', createHash('sha256').update(body).digest('hex')],
    ['{body_sha256_base64}', createHash('sha256').update(body).digest('base64')],
    ['{body_sha1_hex}', createHash('sha1').update(body).digest('hex')],
    ['{body_sha512_base64}', createHash('sha512').update(body).digest('base64')],
    ['{{literal}} {method}\n', '{literal} POST\n'],
  ])('%s', (template, expected) => {
    expect(signWith({ string: template }).setHeaders['x-sig']).toBe(hmacHex(expected));
  });

  it('{body} is the body bytes as sent, not re-encoded text', () => {
    const binary = Buffer.from([0xff, 0x00, 0xfe, 0x41]);
    const signed = signWith({ string: '{method}{body}' }, { ...baseRequest, body: binary });
    expect(signed.setHeaders['x-sig']).toBe(hmacHex(Buffer.concat([Buffer.from('POST'), binary])));
  });

  it('{body} and the body hashes of a request without a body are of the empty string', () => {
    const signed = signWith({ string: '{body}|{body_sha256_hex}' }, { ...baseRequest, body: undefined });
    expect(signed.setHeaders['x-sig']).toBe(hmacHex(`|${createHash('sha256').update('').digest('hex')}`));
  });

  it('{timestamp}, {nonce} and {query} are the values keyway sends', () => {
    const signed = signWith({
      string: '{timestamp}|{nonce}|{query}',
      timestamp: { query: 'ts', format: 'unix_ms' },
      nonce: { header: 'X-Nonce', format: 'random_hex' },
    });
    expect(signed.target).toBe(`/v1/orders/7?b=2&a=one%20two&ts=${NOW}`);
    expect(signed.setHeaders['x-nonce']).toBe('n-1');
    expect(signed.setHeaders['x-sig']).toBe(hmacHex(`${NOW}|n-1|b=2&a=one%20two&ts=${NOW}`));
  });

  it('says up front whether it needs the body', () => {
    expect(scheme({ string: '{method}{path}' }).needsBody).toBe(false);
    expect(scheme({ string: '{body}' }).needsBody).toBe(true);
    expect(scheme({ string: '{body_sha384_hex}' }).needsBody).toBe(true);
    expect(scheme({ string: '{nonce}', nonce: { form: 'nonce', format: 'counter_ms' } }).needsBody).toBe(true);
  });
});

describe('algorithms and encodings', () => {
  it.each(['sha1', 'sha256', 'sha384', 'sha512'])('%s, hex and base64', (algorithm) => {
    expect(signWith({ algorithm, string: '{method}' }).setHeaders['x-sig']).toBe(createHmac(algorithm, KEY).update('POST').digest('hex'));
    const base64 = signWith({ algorithm, string: '{method}', output: { header: 'X-Sig', encoding: 'base64' } });
    expect(base64.setHeaders['x-sig']).toBe(createHmac(algorithm, KEY).update('POST').digest('base64'));
  });

  it('reads the key as utf8, base64 or hex', () => {
    const raw = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x7f]);
    const sign = (key: string, key_encoding: string) =>
      signHmacRequest(baseRequest, { key }, scheme({ string: '{method}', key_encoding }), fixedSources(NOW)).setHeaders['x-sig'];
    expect(sign(raw.toString('base64'), 'base64')).toBe(hmacHex('POST', raw));
    expect(sign(raw.toString('hex'), 'hex')).toBe(hmacHex('POST', raw));
    expect(sign('plain text key', 'utf8')).toBe(hmacHex('POST', 'plain text key'));
  });

  it('refuses a key that does not parse in its encoding, never quoting it', () => {
    for (const [key, key_encoding] of [
      ['not base64 at all!', 'base64'],
      ['abc', 'hex'],
      ['zz', 'hex'],
    ] as const) {
      const attempt = () => signHmacRequest(baseRequest, { key }, scheme({ string: '{method}', key_encoding }), fixedSources(NOW));
      expect(attempt).toThrow(HmacSignError);
      expect(attempt).toThrow(new RegExp(`not .*${key_encoding}`));
      try {
        attempt();
      } catch (error) {
        expect((error as HmacSignError).code).toBe('grant_no_secret');
        expect((error as Error).message).not.toContain(key);
      }
    }
  });
});

describe('timestamps and nonces', () => {
  it.each([
    ['unix_seconds', String(Math.floor(NOW / 1000))],
    ['unix_ms', String(NOW)],
    ['iso8601', '2026-11-23T10:20:30.456Z'],
  ])('timestamp format %s, in a header', (format, expected) => {
    const signed = signWith({ string: '{timestamp}', timestamp: { header: 'X-Timestamp', format } });
    expect(signed.setHeaders['x-timestamp']).toBe(expected);
    expect(signed.setHeaders['x-sig']).toBe(hmacHex(expected));
  });

  it('a timestamp in the query replaces the client’s in place and is percent-encoded', () => {
    const signed = signWith({ string: '{query}', timestamp: { query: 'ts', format: 'iso8601' } }, { ...baseRequest, query: 'ts=old&x=1&ts=older' });
    expect(signed.target).toBe('/v1/orders/7?ts=2026-11-23T10%3A20%3A30.456Z&x=1');
    expect(signed.removeQuery).toEqual(['ts']);
    expect(signed.setQuery).toEqual([['ts', '2026-11-23T10:20:30.456Z']]);
  });

  it('counter nonces increase strictly, even when the clock stands still or steps back', () => {
    let now = NOW;
    const sources = systemSources(() => now);
    const ms = [sources.nonce('counter_ms', now), sources.nonce('counter_ms', now)];
    now -= 5000;
    ms.push(sources.nonce('counter_ms', now));
    expect(ms.map(Number)).toEqual([NOW, NOW + 1, NOW + 2]);
    const us = [sources.nonce('counter_us', now), sources.nonce('counter_us', now)].map(Number);
    expect(us[0]).toBe((NOW - 5000) * 1000);
    expect(us[1]).toBe((NOW - 5000) * 1000 + 1);
  });

  it('random nonces: 32 hex digits, or a UUID, different each time', () => {
    const sources = systemSources();
    const hex = sources.nonce('random_hex', NOW);
    expect(hex).toMatch(/^[0-9a-f]{32}$/);
    expect(sources.nonce('random_hex', NOW)).not.toBe(hex);
    expect(sources.nonce('uuid', NOW)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('a nonce in a form body field: set in the body, which is returned with its new length', () => {
    const request = {
      ...baseRequest,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'transfer-encoding': 'chunked' },
      body: Buffer.from('a=1&nonce=0'),
    };
    const signed = signWith({ string: '{nonce}{body}', nonce: { form: 'nonce', format: 'counter_ms' } }, request);
    expect(signed.body?.toString()).toBe('a=1&nonce=n-1');
    expect(signed.setHeaders['content-length']).toBe('13');
    expect(signed.removeHeaders).toContain('transfer-encoding');
    expect(signed.setHeaders['x-sig']).toBe(hmacHex('n-1a=1&nonce=n-1'));
  });
});

describe('where things go', () => {
  it('a signature in the query goes last, replacing the client’s placeholder, and is not in {query}', () => {
    const signed = signWith(
      { string: '{query}', output: { query: 'sig', encoding: 'hex' }, key_id: { query: 'key' } },
      { ...baseRequest, query: 'sig=placeholder&a=1' },
    );
    const signedQuery = 'a=1&key=key-id-1';
    expect(signed.target).toBe(`/v1/orders/7?${signedQuery}&sig=${hmacHex(signedQuery)}`);
    expect(signed.removeQuery).toEqual(['sig']);
    expect(signed.setQuery.map(([name]) => name)).toEqual(['key', 'sig']);
    expect(signed.setHeaders).toEqual({});
  });

  it('key id and passphrase in headers; client placeholders under those names are listed for removal', () => {
    const signed = signWith(
      { string: '{method}', key_id: { header: 'X-Key' }, passphrase: { header: 'X-Pass' } },
      { ...baseRequest, headers: { 'x-key': 'keyway-placeholder', 'x-sig': 'placeholder' } },
    );
    expect(signed.setHeaders).toEqual({ 'x-key': 'key-id-1', 'x-pass': 'pass-phrase-1', 'x-sig': hmacHex('POST') });
    expect(signed.removeHeaders.sort()).toEqual(['x-key', 'x-sig']);
    expect(signed.target).toBe('/v1/orders/7?b=2&a=one%20two');
    expect(signed.body).toBeUndefined();
  });

  it('refuses, naming what is missing, when the material lacks the key id or passphrase the scheme sends', () => {
    const sign = (m: HmacMaterial) => () =>
      signHmacRequest(baseRequest, m, scheme({ string: '{method}', key_id: { header: 'X-Key' }, passphrase: { query: 'pp' } }), fixedSources(NOW));
    expect(sign({ key: KEY, passphrase: 'p' })).toThrow(/no keyId, which hmac-sha256 hex in header x-sig sends in header x-key/);
    expect(sign({ key: KEY, keyId: 'k' })).toThrow(/no passphrase, .* sends in query pp/);
  });

  it('refuses a form field on a GET, which has no body to carry it', () => {
    const attempt = () =>
      signWith({ string: '{nonce}', nonce: { form: 'nonce', format: 'counter_ms' } }, { ...baseRequest, method: 'get', headers: {}, body: undefined });
    expect(attempt).toThrow(/puts nonce in a form body; a GET request has no body/);
  });

  it('refuses a form field on a body that is not a form', () => {
    const attempt = () => signWith({ string: '{nonce}', nonce: { form: 'nonce', format: 'counter_ms' } });
    expect(attempt).toThrow(/puts nonce in a form body; this request's body is application\/json/);
    try {
      attempt();
    } catch (error) {
      expect((error as HmacSignError).code).toBe('signature_unsupported');
    }
  });
});

describe('purity and secrets', () => {
  it('never mutates the request it is given', () => {
    const request: HmacRequest = structuredClone({
      ...baseRequest,
      headers: { ...baseRequest.headers, 'content-type': 'application/x-www-form-urlencoded' },
      body: undefined,
    });
    request.body = Buffer.from('nonce=1&a=2');
    const before = { ...structuredClone({ ...request, body: undefined }), body: Buffer.from(request.body) };
    const frozen = Object.freeze({ ...request, headers: Object.freeze({ ...request.headers }) });
    signWith({ string: '{nonce}{body}{query}', nonce: { form: 'nonce', format: 'counter_ms' }, timestamp: { query: 'ts', format: 'unix_ms' } }, frozen);
    expect({ ...frozen, body: Buffer.from(frozen.body as Buffer) }).toEqual(before);
  });

  it('the key appears in nothing it returns, in any encoding; the passphrase only where the scheme puts it', () => {
    const keyMaterial: HmacMaterial = { key: 'canary-hmac-key-5f1e2d3c4b5a69788796a5b4', keyId: 'visible-key-id', passphrase: 'canary-passphrase-0a1b2c3d4e' };
    for (const [sign, request] of [
      [{ string: '{method}{path_query}{body}{key_id}', key_id: { header: 'X-Key' }, passphrase: { header: 'X-Pass' } }, baseRequest],
      [{ string: '{query}', output: { query: 'sig', encoding: 'base64' }, key_id: { query: 'k' }, passphrase: { query: 'p' } }, baseRequest],
      [
        { string: '{nonce}{body}', nonce: { form: 'nonce', format: 'counter_ms' }, passphrase: { header: 'X-Pass' } },
        { ...baseRequest, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from('nonce=1') },
      ],
    ] as const) {
      const compiled = scheme(sign);
      const signed = signHmacRequest(request, keyMaterial, compiled, fixedSources(NOW, '9'));
      const text = JSON.stringify({ ...signed, body: signed.body?.toString('latin1'), describe: compiled.describe() });
      for (const [form, needle] of Object.entries(canaryForms(keyMaterial.key))) expect(text, `key as ${form}`).not.toContain(needle);
      const withoutPassphraseSlot = JSON.stringify({
        ...signed,
        setHeaders: { ...signed.setHeaders, 'x-pass': undefined },
        setQuery: signed.setQuery.filter(([name]) => name !== 'p'),
        target: signed.target.replace(/[?&]p=[^&]*/, ''),
        body: signed.body?.toString('latin1'),
      });
      expect(withoutPassphraseSlot).not.toContain('canary-passphrase');
    }
  });
});
