import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Agent, request as send } from 'undici';
import {
  compileHmacScheme,
  type HmacMaterial,
  type HmacPresetName,
  type HmacRequest,
  type HmacScheme,
  type HmacSigned,
  hmacSignSchema,
  signHmacRequest,
  systemSources,
} from './signing/index.ts';
import { TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { type HmacVerifier, startHmacVerifier } from '../../../../test/helpers/hmac-verifier.ts';

// The signer against a real HTTPS server that verifies each scheme the way its API would (no proxy
// yet: the request goes straight from this test's client, signed with signHmacRequest).

const agent = new Agent({ connect: { ca: TLS_FIXTURES.ca } });
afterAll(() => agent.close());

let verifier: HmacVerifier | undefined;
afterEach(async () => {
  await verifier?.close();
  verifier = undefined;
});

const compile = (sign: unknown) => compileHmacScheme(hmacSignSchema.parse(sign));

/** What the proxy will do with the signer's answer: drop, set, send target and body as returned. */
async function sendSigned(port: number, request: HmacRequest, signed: HmacSigned) {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    if (value === undefined || signed.removeHeaders.includes(name)) continue;
    headers[name] = typeof value === 'string' ? value : value.join(', ');
  }
  Object.assign(headers, signed.setHeaders);
  const body = signed.body ?? request.body;
  const response = await send(`https://127.0.0.1:${port}${signed.target}`, { method: request.method, headers, body, dispatcher: agent });
  return { status: response.statusCode, json: (await response.body.json()) as { ok?: boolean; reason?: string } };
}

function clientRequest(port: number, partial: Partial<HmacRequest> & Pick<HmacRequest, 'method' | 'path'>): HmacRequest {
  return { query: '', headers: {}, body: undefined, host: `127.0.0.1:${port}`, ...partial };
}

const SHAPES: Record<HmacPresetName, { material: HmacMaterial; request: Omit<HmacRequest, 'host'> }> = {
  binance: {
    material: { key: 'binance-test-secret-NhqPtmdSJYdKjVHjA7', keyId: 'binance-key-id' },
    request: {
      method: 'POST',
      path: '/api/v3/order',
      query: 'symbol=LTCBTC&side=BUY&timestamp=1&signature=placeholder',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-mbx-apikey': 'placeholder' },
      body: Buffer.from('quantity=1&price=0.1&recvWindow=5000'),
    },
  },
  kraken: {
    material: { key: Buffer.from('kraken-test-secret-'.repeat(4)).toString('base64'), keyId: 'kraken-key-id' },
    request: {
      method: 'POST',
      path: '/0/private/AddOrder',
      query: '',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'api-sign': 'placeholder' },
      body: Buffer.from('nonce=1&ordertype=limit&pair=XBTUSD&price=37500&type=buy&volume=1.25'),
    },
  },
  coinbase_exchange: {
    material: { key: Buffer.from('coinbase-test-secret-'.repeat(3)).toString('base64'), keyId: 'cb-key', passphrase: 'cb-pass' },
    request: {
      method: 'POST',
      path: '/orders',
      query: 'profile=default',
      headers: { 'content-type': 'application/json', 'cb-access-sign': 'placeholder' },
      body: Buffer.from('{"size":"1.0","side":"buy","product_id":"BTC-USD"}'),
    },
  },
  okx: {
    material: { key: '22582BD0CFF14C41EDBF1AB98506286D', keyId: 'okx-key', passphrase: 'okx-pass' },
    request: { method: 'GET', path: '/api/v5/account/balance', query: 'ccy=BTC', headers: { 'ok-access-sign': 'placeholder' }, body: undefined },
  },
};

describe.each(Object.keys(SHAPES) as HmacPresetName[])('the %s preset against a verifying server', (name) => {
  const { material, request } = SHAPES[name];
  const scheme = compile({ preset: name });

  it('accepts a request signed with the real key, and refuses a wrong signature with the reason', async () => {
    verifier = await startHmacVerifier(scheme, material);
    const port = verifier.port;
    const req = clientRequest(port, request);
    const sources = systemSources();
    const good = await sendSigned(port, req, signHmacRequest(req, material, scheme, sources));
    expect(good).toEqual({ status: 200, json: { ok: true } });
    expect(verifier.accepted).toHaveLength(1);

    const forged = signHmacRequest(
      req,
      { ...material, key: name === 'okx' || name === 'binance' ? 'some-other-key' : Buffer.from('other').toString('base64') },
      scheme,
      sources,
    );
    const bad = await sendSigned(port, req, forged);
    expect(bad).toEqual({ status: 401, json: { error: 'invalid_signature', reason: 'signature does not match' } });
  });
});

describe('the verifier itself', () => {
  const material: HmacMaterial = { key: 'custom-verifier-key', keyId: 'kid-7' };
  const custom: HmacScheme = compile({
    algorithm: 'sha512',
    key_encoding: 'utf8',
    string: '{method}\n{path_query}\n{timestamp}\n{nonce}\n{header:Content-Type}\n{body_sha256_hex}',
    timestamp: { header: 'X-Ts', format: 'unix_seconds' },
    nonce: { query: 'nonce', format: 'counter_ms' },
    output: { query: 'sig', encoding: 'base64' },
    key_id: { header: 'X-Key' },
  });

  it('accepts a custom scheme signed right, and refuses a body changed after signing, a replayed nonce and a wrong key id', async () => {
    verifier = await startHmacVerifier(custom, material);
    const port = verifier.port;
    const req = clientRequest(port, { method: 'PUT', path: '/items/1', query: 'a=1', headers: { 'content-type': 'text/plain' }, body: Buffer.from('hello') });
    const sources = systemSources();
    const signed = signHmacRequest(req, material, custom, sources);
    expect((await sendSigned(port, req, signed)).status).toBe(200);

    const replay = await sendSigned(port, req, signed);
    expect(replay.status).toBe(401);
    expect(replay.json.reason).toMatch(/^nonce \d+ is not larger than the last one/);

    const fresh = signHmacRequest(req, material, custom, sources);
    const tampered = await sendSigned(port, { ...req, body: Buffer.from('HELLO') }, fresh);
    expect(tampered.json).toEqual({ error: 'invalid_signature', reason: 'signature does not match' });

    const otherId = await sendSigned(port, req, signHmacRequest(req, { ...material, keyId: 'kid-8' }, custom, sources));
    expect(otherId.json.reason).toBe('unknown key id in header x-key');

    const unsigned = await sendSigned(port, req, { setHeaders: {}, removeHeaders: [], setQuery: [], removeQuery: [], target: '/items/1?a=1', body: undefined });
    expect(unsigned.json.reason).toBe('no signature in query sig');
    expect(verifier.refused).toHaveLength(4);
  });

  it('refuses a stale timestamp', async () => {
    verifier = await startHmacVerifier(custom, material, { now: () => Date.now() + 10 * 60_000 });
    const req = clientRequest(verifier.port, { method: 'GET', path: '/items' });
    const answer = await sendSigned(verifier.port, req, signHmacRequest(req, material, custom, systemSources()));
    expect(answer.status).toBe(401);
    expect(answer.json.reason).toMatch(/^timestamp \d+ is too far from the server's clock$/);
  });
});
