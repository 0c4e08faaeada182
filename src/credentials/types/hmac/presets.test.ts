import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compileHmacScheme, fixedSources, type HmacMaterial, type HmacPresetName, type HmacRequest, hmacSignSchema, signHmacRequest } from './signing/index.ts';

// Each preset against its API's own documentation: the published worked example where the API
// publishes one (inputs and expected signature copied from the page cited), else the documented
// recipe computed independently with node:crypto, and labelled so.

const preset = (name: HmacPresetName) => compileHmacScheme(hmacSignSchema.parse({ preset: name }));

function request(partial: Partial<HmacRequest> & Pick<HmacRequest, 'method' | 'path'>): HmacRequest {
  return { query: '', headers: {}, body: undefined, host: 'api.example.test', ...partial };
}

describe('binance preset', () => {
  // Worked example, "SIGNED Endpoint Examples for POST /api/v3/order - HMAC Keys", example 1 (all
  // parameters in the query string) and the mixed query string and body example:
  // https://developers.binance.com/docs/binance-spot-api-docs/rest-api/request-security
  const material: HmacMaterial = {
    key: 'NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j',
    keyId: 'vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A',
  };
  const sources = fixedSources(1499827319559);

  it('signs the documented query-string example, replacing the client placeholder signature and timestamp', () => {
    const signed = signHmacRequest(
      request({
        method: 'POST',
        path: '/api/v3/order',
        query: 'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1&signature=placeholder',
        headers: { 'x-mbx-apikey': 'keyway-placeholder' },
      }),
      material,
      preset('binance'),
      sources,
    );
    expect(signed.target).toBe(
      '/api/v3/order?symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559' +
        '&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71',
    );
    expect(signed.setHeaders).toEqual({ 'x-mbx-apikey': material.keyId });
    expect(signed.removeHeaders).toEqual(['x-mbx-apikey']);
    expect(signed.removeQuery.sort()).toEqual(['signature', 'timestamp']);
    expect(signed.body).toBeUndefined();
  });

  it('signs the documented mixed example: query then body with no & between them', () => {
    const signed = signHmacRequest(
      request({
        method: 'POST',
        path: '/api/v3/order',
        query: 'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        // The client put its own timestamp and signature in the body (as python-binance does):
        // keyway takes them out and signs with fresh ones in the query.
        body: Buffer.from('quantity=1&price=0.1&recvWindow=5000&timestamp=1&signature=placeholder'),
      }),
      material,
      preset('binance'),
      sources,
    );
    const query = 'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&timestamp=1499827319559';
    const body = 'quantity=1&price=0.1&recvWindow=5000';
    // The documented mixed example has timestamp at the end of the body; with timestamp in the query the
    // documented recipe (HMAC of query + body) gives this, computed independently:
    const expected = createHmac('sha256', material.key)
      .update(query + body)
      .digest('hex');
    expect(signed.target).toBe(`/api/v3/order?${query}&signature=${expected}`);
    expect(signed.body?.toString()).toBe(body);
    expect(signed.setHeaders['content-length']).toBe(String(body.length));
  });

  it('the documented mixed query-and-body vector: signature over query + body exactly as the page gives it', () => {
    const scheme = preset('binance');
    const message = scheme.message({
      method: 'POST',
      path: '/api/v3/order',
      query: 'symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC',
      body: Buffer.from('quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559'),
      host: 'api.binance.com',
      headers: {},
      timestamp: '1499827319559',
      nonce: undefined,
      keyId: material.keyId,
    });
    expect(createHmac('sha256', material.key).update(message).digest('hex')).toBe('0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77');
  });
});

describe('kraken preset', () => {
  // Worked example, "Spot REST Authentication", Examples table (AddOrder, buy 1.25 XBTUSD at $37,500):
  // https://docs.kraken.com/api/docs/guides/spot-rest-auth
  const material: HmacMaterial = {
    key: 'kQH5HW/8p1uGOVjbgWA7FunAmGO8lsSUXNsu3eow76sz84Q18fWxnyRzBHCd3pd5nE9qa99HAZtuZuj6F1huXg==',
    keyId: 'public-api-key',
  };

  it('signs the documented example, setting keyway’s own nonce in the body in place of the client’s', () => {
    const signed = signHmacRequest(
      request({
        method: 'POST',
        path: '/0/private/AddOrder',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'api-sign': 'placeholder', 'api-key': 'placeholder' },
        body: Buffer.from('nonce=42&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25'),
      }),
      material,
      preset('kraken'),
      fixedSources(0, '1616492376594'),
    );
    expect(signed.body?.toString()).toBe('nonce=1616492376594&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25');
    expect(signed.setHeaders['api-sign']).toBe('4/dpxb3iT4tp/ZCVEwSnEsLxx0bqyhLpdfOpc6fn7OR8+UClSV5n9E6aSS8MPtnRfp32bAb0nmbRn6H8ndwLUQ==');
    expect(signed.setHeaders['api-key']).toBe('public-api-key');
    expect(signed.setHeaders['content-length']).toBe(String(signed.body?.length));
    expect(signed.removeHeaders.sort()).toEqual(['api-key', 'api-sign']);
    expect(signed.target).toBe('/0/private/AddOrder');
  });

  it('adds a nonce to a body without one, and refuses a body that is not a form', () => {
    const scheme = preset('kraken');
    const signed = signHmacRequest(
      request({ method: 'POST', path: '/0/private/Balance', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: Buffer.from('') }),
      material,
      scheme,
      fixedSources(0, '7'),
    );
    expect(signed.body?.toString()).toBe('nonce=7');
    expect(() =>
      signHmacRequest(
        request({ method: 'POST', path: '/0/private/Balance', headers: { 'content-type': 'application/json' }, body: Buffer.from('{"nonce":1}') }),
        material,
        scheme,
        fixedSources(0, '7'),
      ),
    ).toThrow(/signature_unsupported|form body; this request's body is application\/json/);
  });

  it('refuses to edit a form it would read otherwise than the server: UTF-7 (a nonce hidden as no+AG4-ce), a charset twice, gzip', () => {
    const scheme = preset('kraken');
    const sign = (headers: Record<string, string>) =>
      signHmacRequest(
        request({ method: 'POST', path: '/0/private/Balance', headers, body: Buffer.from('no+AG4-ce=1&pair=XBTUSD') }),
        material,
        scheme,
        fixedSources(0, '7'),
      );
    expect(() => sign({ 'content-type': 'application/x-www-form-urlencoded; charset=utf-7' })).toThrow(/UTF-8 only: its charset is "utf-7"/);
    expect(() => sign({ 'content-type': 'application/x-www-form-urlencoded; charset=utf-8; charset=utf-7' })).toThrow(/UTF-8 only/);
    expect(() => sign({ 'content-type': 'application/x-www-form-urlencoded', 'content-encoding': 'gzip' })).toThrow(/Content-Encoding/);
    // Read as UTF-8 the same bytes are a field named "no+AG4-ce", and keyway adds its own nonce.
    expect(sign({ 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }).body?.toString()).toBe('no+AG4-ce=1&pair=XBTUSD&nonce=7');
  });
});

describe('coinbase_exchange preset', () => {
  // Coinbase Exchange documents the recipe (https://docs.cdp.coinbase.com/exchange/rest-api/authentication,
  // "Signing a Message") with a sample whose secret is elided ('PYPd1Hv4J6/7x...') and no expected
  // signature: there is no official vector. INDEPENDENT COMPUTATION: the documented inputs (POST
  // /orders with that JSON body) with a full base64 secret of our own, checked against node:crypto
  // following the recipe: base64 HMAC-SHA256, base64-decoded key, timestamp + method + requestPath + body.
  const secret = Buffer.from('coinbase-exchange-test-secret-64-bytes-long-0123456789abcdefghij').toString('base64');
  const material: HmacMaterial = { key: secret, keyId: 'cb-key-id', passphrase: 'cb-passphrase' };
  const body = JSON.stringify({ price: '1.0', size: '1.0', side: 'buy', product_id: 'BTC-USD' });

  it('signs timestamp + method + path + body with the decoded key and sets the four headers', () => {
    const signed = signHmacRequest(
      request({ method: 'post', path: '/orders', headers: { 'content-type': 'application/json', 'cb-access-sign': 'placeholder' }, body: Buffer.from(body) }),
      material,
      preset('coinbase_exchange'),
      fixedSources(1_700_000_000_123),
    );
    const expected = createHmac('sha256', Buffer.from(secret, 'base64')).update(`1700000000POST/orders${body}`).digest('base64');
    expect(signed.setHeaders).toEqual({
      'cb-access-timestamp': '1700000000',
      'cb-access-key': 'cb-key-id',
      'cb-access-passphrase': 'cb-passphrase',
      'cb-access-sign': expected,
    });
    expect(signed.removeHeaders).toEqual(['cb-access-sign']);
    expect(signed.body).toBeUndefined();
  });

  it('signs the query string as part of the request path on a GET', () => {
    const signed = signHmacRequest(
      request({ method: 'GET', path: '/orders', query: 'status=open&limit=10' }),
      material,
      preset('coinbase_exchange'),
      fixedSources(1_700_000_000_000),
    );
    const expected = createHmac('sha256', Buffer.from(secret, 'base64')).update('1700000000GET/orders?status=open&limit=10').digest('base64');
    expect(signed.setHeaders['cb-access-sign']).toBe(expected);
    expect(signed.target).toBe('/orders?status=open&limit=10');
  });
});

describe('okx preset', () => {
  // OKX documents the recipe (https://www.okx.com/docs-v5/en/#overview-rest-authentication-signature)
  // with example inputs (timestamp 2020-12-08T09:08:57.715Z, GET /api/v5/account/balance?ccy=BTC,
  // SecretKey 22582BD0CFF14C41EDBF1AB98506286D) but no expected signature: there is no official
  // vector. INDEPENDENT COMPUTATION with node:crypto on those documented inputs.
  const material: HmacMaterial = { key: '22582BD0CFF14C41EDBF1AB98506286D', keyId: 'okx-key-id', passphrase: 'okx-passphrase' };

  it('signs ISO timestamp + method + path with query, keyed with the secret as text', () => {
    const signed = signHmacRequest(
      request({ method: 'GET', path: '/api/v5/account/balance', query: 'ccy=BTC' }),
      material,
      preset('okx'),
      fixedSources(Date.parse('2020-12-08T09:08:57.715Z')),
    );
    const expected = createHmac('sha256', '22582BD0CFF14C41EDBF1AB98506286D')
      .update('2020-12-08T09:08:57.715ZGET/api/v5/account/balance?ccy=BTC')
      .digest('base64');
    expect(signed.setHeaders).toEqual({
      'ok-access-timestamp': '2020-12-08T09:08:57.715Z',
      'ok-access-key': 'okx-key-id',
      'ok-access-passphrase': 'okx-passphrase',
      'ok-access-sign': expected,
    });
  });

  it('signs a POST body as sent', () => {
    const body = '{"instId":"BTC-USDT","lever":"5","mgnMode":"isolated"}';
    const signed = signHmacRequest(
      request({ method: 'POST', path: '/api/v5/account/set-leverage', headers: { 'content-type': 'application/json' }, body: Buffer.from(body) }),
      material,
      preset('okx'),
      fixedSources(Date.parse('2020-12-08T09:08:57.715Z')),
    );
    const expected = createHmac('sha256', material.key).update(`2020-12-08T09:08:57.715ZPOST/api/v5/account/set-leverage${body}`).digest('base64');
    expect(signed.setHeaders['ok-access-sign']).toBe(expected);
  });
});

describe('presets say up front whether they need the body', () => {
  it('every preset signs over the body', () => {
    for (const name of ['binance', 'kraken', 'coinbase_exchange', 'okx'] as const) expect(preset(name).needsBody).toBe(true);
  });

  it('kraken hashes nonce + body as raw digest bytes after the path', () => {
    const message = preset('kraken').message({
      method: 'POST',
      path: '/0/private/Balance',
      query: '',
      body: Buffer.from('nonce=5'),
      host: 'api.kraken.com',
      headers: {},
      timestamp: undefined,
      nonce: '5',
      keyId: undefined,
    });
    expect(message).toEqual(Buffer.concat([Buffer.from('/0/private/Balance'), createHash('sha256').update('5nonce=5').digest()]));
  });
});
