// http_signature through keyway: the agent sends a plain request; keyway signs it (RFC 9421) with
// the grant's key, and a loopback API checks the signature with implementations keyway did not
// write (http-message-signatures; Cloudflare's web-bot-auth for Web Bot Auth). A grant holding
// another key is refused by the same API, and the key itself is never in any output.
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createVerifier, httpbis } from 'http-message-signatures';
import { Agent, ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verify as verifyWebBotAuth } from 'web-bot-auth';
import { verifierFromJWK } from 'web-bot-auth/crypto';
import { TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';
import { jwkThumbprint, publicJwk } from './directory.ts';
import { adminClient } from '../../../../test/helpers/admin-api.ts';

const pem = (key: KeyObject) => key.export({ format: 'pem', type: 'pkcs8' }).toString();
const ed = generateKeyPairSync('ed25519');
const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const stranger = generateKeyPairSync('ed25519');

interface Checked {
  ok: boolean;
  why: string;
  headers: Record<string, string | string[] | undefined>;
}

/** An API that accepts a request only when its signature verifies with the key it knows for the keyid. */
async function startVerifyingApi(): Promise<{ server: Server; port: number; checked: Checked[] }> {
  const checked: Checked[] = [];
  const known = new Map<string, { key: KeyObject; alg: 'ed25519' | 'ecdsa-p256-sha256' }>([
    ['ed-key', { key: ed.publicKey, alg: 'ed25519' }],
    ['p256-key', { key: p256.publicKey, alg: 'ecdsa-p256-sha256' }],
  ]);
  const server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = req.headers as Record<string, string>;
      const message = { method: req.method!, url: `https://${req.headers.host}${req.url}`, headers };
      const digestOk =
        headers['content-digest'] === undefined || headers['content-digest'] === `sha-256=:${createHash('sha256').update(body).digest('base64')}:`;
      const verifying = headers['signature-input']?.includes('web-bot-auth')
        ? verifierFromJWK(publicJwk(ed.privateKey))
            .then((verifier) => verifyWebBotAuth(new Request(message.url, { method: message.method, headers }), verifier))
            .then(() => true)
        : httpbis.verifyMessage(
            {
              keyLookup: async (params) => {
                const entry = known.get(String(params.keyid));
                return entry ? { id: String(params.keyid), algs: [entry.alg], verify: createVerifier(entry.key, entry.alg) } : null;
              },
            },
            message,
          );
      verifying.then(
        (ok) => answer(Boolean(ok) && digestOk, ok ? (digestOk ? 'verified' : 'digest mismatch') : 'signature refused'),
        (err: Error) => answer(false, err.message),
      );
      function answer(ok: boolean, why: string): void {
        checked.push({ ok, why, headers: req.headers });
        res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify({ ok, why }));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as AddressInfo).port, checked };
}

describe('http_signature grants: keyway signs each request (RFC 9421)', () => {
  let api: Awaited<ReturnType<typeof startVerifyingApi>>;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const directClient = new Agent({ connect: { ca: TLS_FIXTURES.ca, servername: 'api.example.test' } });
  const outputs: string[] = [];
  const keys = [pem(ed.privateKey), pem(p256.privateKey), pem(stranger.privateKey)];

  beforeAll(async () => {
    api = await startVerifyingApi();
    const sign = (alg: string, key: string, extra: Record<string, unknown> = {}) => ({
      alg,
      key,
      components: ['@method', '@authority', '@path', '@query', 'content-digest'],
      ...extra,
    });
    proxy = await startProxy({
      env: { ED_KEY: keys[0]!, P256_KEY: keys[1]!, STRANGER_KEY: keys[2]! },
      config: {
        grants: {
          ed: { type: 'http_signature', domains: ['api.example.test'], secret: 'env:ED_KEY', sign: sign('ed25519', 'ed-key', { nonce: true }) },
          p256: { type: 'http_signature', domains: ['other.example.test'], secret: 'env:P256_KEY', sign: sign('ecdsa-p256-sha256', 'p256-key') },
          wrong: { type: 'http_signature', domains: ['bad.example.test'], secret: 'env:STRANGER_KEY', sign: sign('ed25519', 'ed-key') },
          mismatch: { type: 'http_signature', domains: ['slow.example.test'], secret: 'env:ED_KEY', sign: sign('ecdsa-p256-sha256', 'ed-key') },
          bot: {
            type: 'http_signature',
            domains: ['tunnel.example.test'],
            secret: 'env:ED_KEY',
            sign: { alg: 'ed25519', components: ['@authority', 'signature-agent'], tag: 'web-bot-auth', signature_agent: 'https://signer.example.test' },
          },
        },
      },
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await client?.close();
    await directClient.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const key of keys) expect(findLeak(text, key.split('\n')[1]!), 'a key in an output').toBeUndefined();
    await proxy?.stop();
    api?.server.close();
  });

  async function call(host: string, path: string, body?: string) {
    const res = await request(`https://${host}:${api.port}${path}`, {
      dispatcher: client,
      method: body === undefined ? 'GET' : 'POST',
      headers: { 'content-type': 'application/json', signature: 'sig1=:Zm9yZ2Vk:', 'signature-input': 'sig1=("@method");keyid="ed-key"' },
      body,
    });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, text };
  }

  for (const [grant, host] of [
    ['ed', 'api.example.test'],
    ['p256', 'other.example.test'],
  ] as const) {
    it(`${grant}: a POST with a body reaches the API signed and verified, the client's own signature replaced`, async () => {
      const { status, text } = await call(host, '/v1/items?limit=2', '{"name":"widget"}');
      expect(status, text).toBe(200);
      const seen = api.checked.at(-1)!;
      expect(seen.headers['signature-input']).toMatch(/^sig1=\("@method" "@authority" "@path" "@query" "content-digest"\);created=\d+;expires=\d+;/);
      expect(seen.headers['signature']).not.toContain('Zm9yZ2Vk');
      const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === grant && l['decision'] === 'inject'), 'the audit line');
      expect(line).toMatchObject({ signed: 'http_signature', status: 200 });
    });
  }

  it('a grant holding another key: the API refuses the signature (the check bites)', async () => {
    const { status, text } = await call('bad.example.test', '/v1/items', '{}');
    expect(status).toBe(401);
    expect(JSON.parse(text).why).toMatch(/refused|verif|invalid/i);
  });

  it('what keyway signed is what was sent: the same signature over a changed body, path or method is refused by the API', async () => {
    const before = api.checked.length;
    const { status } = await call('api.example.test', '/v1/upload', 'x'.repeat(100_000));
    expect(status).toBe(200);
    const signed = api.checked[before]!.headers;
    expect(signed['content-digest']).toMatch(/^sha-256=:/);
    const headers = Object.fromEntries(['host', 'content-type', 'content-digest', 'signature', 'signature-input'].map((name) => [name, String(signed[name])]));
    // Straight to the API, keyway's headers as they came: the bytes it signed verify, others not.
    const direct = async (method: string, path: string, body: string) => {
      const res = await request(`https://127.0.0.1:${api.port}${path}`, { dispatcher: directClient, method: method as 'POST', headers, body });
      return { status: res.statusCode, why: (JSON.parse(await res.body.text()) as { why: string }).why };
    };
    expect(await direct('POST', '/v1/upload', 'x'.repeat(100_000))).toEqual({ status: 200, why: 'verified' });
    expect(await direct('POST', '/v1/upload', `${'x'.repeat(99_999)}y`)).toEqual({ status: 401, why: 'digest mismatch' });
    expect((await direct('POST', '/v1/other', 'x'.repeat(100_000))).status).toBe(401);
    expect((await direct('PUT', '/v1/upload', 'x'.repeat(100_000))).status).toBe(401);
  });

  it("an agent's own Signature-Agent is dropped, never signed; a key that is not sign.alg's is refused", async () => {
    const before = api.checked.length;
    const res = await request(`https://api.example.test:${api.port}/`, { dispatcher: client, headers: { 'signature-agent': '"https://evil.example.test"' } });
    outputs.push(await res.body.text());
    expect(res.statusCode).toBe(200);
    expect(api.checked[before]!.headers['signature-agent']).toBeUndefined();
    const mismatch = await request(`https://slow.example.test:${api.port}/`, { dispatcher: client });
    const text = await mismatch.body.text();
    outputs.push(text);
    expect(mismatch.statusCode).toBe(401);
    expect(mismatch.headers['x-keyway-error']).toBe('grant_no_secret');
    expect(text).toMatch(/signs with ecdsa-p256-sha256, and its key is Ed25519/);
    expect(api.checked.length).toBe(before + 1);
  });

  it('Web Bot Auth: the tag, Signature-Agent and the key thumbprint as keyid, verified by web-bot-auth', async () => {
    const { status, text } = await call('tunnel.example.test', '/');
    expect(status, text).toBe(200);
    const seen = api.checked.at(-1)!;
    expect(seen.headers['signature-agent']).toBe('"https://signer.example.test"');
    expect(seen.headers['signature-input']).toMatch(/tag="web-bot-auth"/);
  });

  it('the key directory on the admin listener lists each grant key, public parts only, its thumbprint as kid', async () => {
    const res = await fetch(`${adminClient(proxy).base}/.well-known/http-message-signatures-directory`);
    const text = await res.text();
    outputs.push(text);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/http-message-signatures-directory+json');
    const { keys: listed } = JSON.parse(text) as { keys: Array<Record<string, string>> };
    const expected = [ed.privateKey, p256.privateKey, stranger.privateKey].map((key) => ({ ...publicJwk(key), kid: jwkThumbprint(publicJwk(key)) }));
    expect(listed).toHaveLength(3); // ed's key serves two grants: listed once
    expect(listed).toEqual(expect.arrayContaining(expected));
    for (const key of listed) expect(key).not.toHaveProperty('d');
    // The Web Bot Auth grant named its key by that thumbprint.
    const bot = api.checked.find((c) => String(c.headers['signature-input']).includes('web-bot-auth'))!;
    expect(bot.headers['signature-input']).toContain(`keyid="${jwkThumbprint(publicJwk(ed.privateKey))}"`);
  });
});
