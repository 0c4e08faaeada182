// Signed requests (issue 24): hmac grants. The agent sends its request with placeholder signature
// headers (or none); keyway signs it by the grant's scheme with the real key, and a loopback server
// per scheme (test/helpers/hmac-verifier.ts, which rebuilds the bytes to sign on its own) accepts
// it only if the signature, timestamp, nonce, key id and passphrase are right.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hmacSignSchema } from './fields/sign-schema.ts';
import { compileHmacScheme } from './signing/index.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { type HmacVerifier, startHmacVerifier } from '../../../../test/helpers/hmac-verifier.ts';
import { startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';

const KEY_B64 = Buffer.from(`${CANARY}-hmac-key-0123456789`).toString('base64');
const CASES = [
  {
    preset: 'binance',
    host: 'api.example.test',
    material: { key: `${CANARY}-binance-secret`, keyId: 'binance-key-id' },
    call: { method: 'GET', path: '/api/v3/account?recvWindow=5000&timestamp=1&signature=placeholder', headers: { 'x-mbx-apikey': 'keyway-placeholder' } },
  },
  {
    preset: 'kraken',
    host: 'other.example.test',
    material: { key: KEY_B64, keyId: 'kraken-key-id' },
    call: {
      method: 'POST',
      path: '/0/private/Balance',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'api-key': 'keyway-placeholder', 'api-sign': 'placeholder' },
      body: 'nonce=1&asset=XBT',
    },
  },
  {
    preset: 'coinbase_exchange',
    host: 'tunnel.example.test',
    material: { key: KEY_B64, keyId: 'cb-key-id', passphrase: `${CANARY}-cb-passphrase` },
    call: {
      method: 'POST',
      path: '/orders',
      headers: { 'content-type': 'application/json', 'cb-access-sign': 'placeholder' },
      body: '{"size":"0.01","side":"buy"}',
    },
  },
  {
    preset: 'okx',
    host: 'slow.example.test',
    material: { key: `${CANARY}-okx-secret`, keyId: 'okx-key-id', passphrase: `${CANARY}-okx-passphrase` },
    call: { method: 'GET', path: '/api/v5/account/balance?ccy=BTC', headers: { 'ok-access-sign': 'placeholder' } },
  },
] as const;
const SECRETS = CASES.flatMap((c) => [c.material.key, ...('passphrase' in c.material ? [c.material.passphrase] : [])]);

describe('hmac grants: keyway signs each request by the grant scheme', () => {
  const verifiers = new Map<string, HmacVerifier>();
  let proxy: TestProxy;
  let client: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    for (const c of CASES) verifiers.set(c.preset, await startHmacVerifier(compileHmacScheme(hmacSignSchema.parse({ preset: c.preset })), c.material));
    const env = Object.fromEntries(CASES.map((c) => [`HMAC_${c.preset.toUpperCase()}`, JSON.stringify(c.material)]));
    proxy = await startProxy({
      env: { ...env, HMAC_WRONG: JSON.stringify({ key: 'd3JvbmcgYnV0IGJhc2U2NA==', keyId: 'kraken-key-id' }) },
      config: {
        grants: {
          ...Object.fromEntries(
            CASES.map((c) => [
              c.preset.replace('_', '-'),
              { type: 'hmac', domains: [c.host], secret: `env:HMAC_${c.preset.toUpperCase()}`, sign: { preset: c.preset } },
            ]),
          ),
          wrong: { type: 'hmac', domains: ['bad.example.test'], secret: 'env:HMAC_WRONG', sign: { preset: 'kraken' } },
        },
      },
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const secret of SECRETS) expect(findLeak(text, secret), 'a secret in an output').toBeUndefined();
    await proxy?.stop();
    for (const v of verifiers.values()) await v.close();
  });

  for (const c of CASES) {
    it(`${c.preset}: the request reaches the API signed with the real key, the placeholder gone`, async () => {
      const verifier = verifiers.get(c.preset)!;
      const res = await request(`https://${c.host}:${verifier.port}${c.call.path}`, {
        dispatcher: client,
        method: c.call.method,
        headers: c.call.headers,
        body: 'body' in c.call ? c.call.body : undefined,
      });
      const text = await res.body.text();
      outputs.push(text);
      expect(res.statusCode, `${text} ${verifier.refused.join('; ')}`).toBe(200);
      const seen = verifier.accepted.at(-1)!;
      expect(JSON.stringify(seen)).not.toContain('placeholder');
      const line = await waitFor(() => proxy.auditLines().find((l) => l['host'] === c.host && l['decision'] === 'inject'), 'the audit line');
      expect(line).toMatchObject({ signed: 'hmac', grant: c.preset.replace('_', '-') });
      // The listing names the scheme (never the key).
      const shown = await proxy.cli(['grants', 'show', c.preset.replace('_', '-'), '--json']);
      outputs.push(shown.stdout);
      expect(JSON.parse(shown.stdout).inject).toContain(c.preset);
    });
  }

  it('grants add --sign-preset makes a signing grant from the command line; a wrong preset, bad JSON or both flags are refused by name', async () => {
    const okx = CASES.find((c) => c.preset === 'okx')!;
    const verifier = verifiers.get('okx')!;
    const refusals = await Promise.all([
      proxy.cli(['grants', 'add', 'x1', '--type', 'hmac', '--domains', 'plain.example.test', '--sign-preset', 'nope']),
      proxy.cli(['grants', 'add', 'x2', '--type', 'hmac', '--domains', 'plain.example.test', '--sign', '{not json']),
      proxy.cli(['grants', 'add', 'x3', '--type', 'hmac', '--domains', 'plain.example.test', '--sign-preset', 'okx', '--sign', '{}']),
      proxy.cli(['grants', 'add', 'x4', '--type', 'hmac', '--domains', 'plain.example.test', '--sign', '{"algorithm":"md5","string":"{method}"}']),
    ]);
    for (const r of refusals) outputs.push(r.stdout, r.stderr);
    expect(refusals.map((r) => r.code)).toEqual([2, 2, 2, 2]);
    expect(refusals[0]!.stderr).toMatch(/--sign preset/);
    expect(refusals[1]!.stderr).toMatch(/--sign: expected a JSON object/);
    expect(refusals[2]!.stderr).toMatch(/--sign-preset or --sign, not both/);
    expect(refusals[3]!.stderr).toMatch(/--sign algorithm/);

    const added = await proxy.cli(
      ['grants', 'add', 'okx-cli', '--type', 'hmac', '--domains', 'plain.example.test', '--sign-preset', 'okx', '--secret-stdin'],
      JSON.stringify(okx.material),
    );
    outputs.push(added.stdout, added.stderr);
    expect(added.code, added.stderr).toBe(0);
    const shown = await proxy.cli(['grants', 'show', 'okx-cli', '--json']);
    outputs.push(shown.stdout);
    expect(JSON.parse(shown.stdout)).toMatchObject({ type: 'hmac', key_id: 'okx-key-id' });
    expect(JSON.parse(shown.stdout).inject).toContain('okx');
    // The running proxy takes the new grant from the store and signs with it.
    let status = 0;
    for (let tries = 0; tries < 40 && status !== 200; tries++) {
      if (tries > 0) await new Promise((r) => setTimeout(r, 250));
      const res = await request(`https://plain.example.test:${verifier.port}${okx.call.path}`, { dispatcher: client, headers: okx.call.headers });
      outputs.push(await res.body.text());
      status = res.statusCode;
    }
    expect(status, verifier.refused.join('; ')).toBe(200);
    expect(JSON.stringify(verifier.accepted.at(-1))).not.toContain('placeholder');
  });

  it('a grant whose key is not the API key is refused by the API: the verifier would catch a wrong signer', async () => {
    const verifier = verifiers.get('kraken')!;
    const res = await request(`https://bad.example.test:${verifier.port}/0/private/Balance`, {
      dispatcher: client,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'nonce=1',
    });
    outputs.push(await res.body.text());
    expect(res.statusCode).toBe(401);
    expect(verifier.refused.at(-1)).toMatch(/signature/);
  });
});
