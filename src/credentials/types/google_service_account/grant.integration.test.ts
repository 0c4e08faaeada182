// google_service_account grants end to end: keyway signs an RS256 assertion with the account's key
// and exchanges it (RFC 7523) at a loopback token endpoint that verifies it as Google does, with
// the account's public key (jose): signature, issuer, audience, lifetime, scope and subject; one
// it cannot verify is refused. The API host accepts only the token the endpoint minted last.
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { jwtVerify } from 'jose';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../../../../test/helpers/clients.ts';
import { CANARY } from '../../../../test/helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../../../../test/helpers/upstream.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';

const pem = () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { privateKey: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), publicKey };
};
const ACCOUNT = { email: 'agent-runner@keyway-test.iam.gserviceaccount.com', ...pem() };
// A key the token endpoint has never seen: its assertions must be refused.
const STRANGER = pem();
const SCOPES = ['https://www.googleapis.com/auth/drive.readonly', 'https://www.googleapis.com/auth/calendar'];
const MINUTE = 60_000;

interface Mint {
  scope: string;
  sub: string | undefined;
  lifetime: number;
  kid: string | undefined;
}

describe('google_service_account: tokens minted from the account key, once per expiry', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  let ahead = 0;
  const clock = () => Date.now() + ahead;
  const mints: Mint[] = [];
  const refused: string[] = [];
  const issued: string[] = [];
  const outputs: string[] = [];
  let tokenUri = '';
  const keyFile = (privateKey: string, id = 'k1') =>
    JSON.stringify({
      type: 'service_account',
      project_id: 'keyway-test',
      private_key_id: id,
      private_key: privateKey,
      client_email: ACCOUNT.email,
      token_uri: tokenUri,
    });

  /** Google's token endpoint, as far as the JWT bearer grant goes; and an API that wants its tokens. */
  function handler(req: IncomingMessage, res: ServerResponse, body: Buffer | undefined): boolean {
    const json = (status: number, value: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
    if (req.url === '/token') {
      const form = new URLSearchParams(body?.toString() ?? '');
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
        json(400, { error: 'unsupported_grant_type' });
        return true;
      }
      jwtVerify(form.get('assertion') ?? '', ACCOUNT.publicKey, {
        issuer: ACCOUNT.email,
        audience: tokenUri,
        algorithms: ['RS256'],
        currentDate: new Date(clock()),
      }).then(
        ({ payload, protectedHeader }) => {
          const lifetime = (payload.exp ?? 0) - (payload.iat ?? 0);
          if (lifetime > 3600 || typeof payload['scope'] !== 'string') {
            refused.push('lifetime or scope');
            json(400, { error: 'invalid_grant', error_description: 'Invalid JWT' });
            return;
          }
          mints.push({ scope: payload['scope'], sub: payload.sub, lifetime, kid: protectedHeader.kid });
          const token = `ya29.${CANARY}-minted-${mints.length}`;
          issued.push(token);
          json(200, { access_token: token, expires_in: 3599, token_type: 'Bearer' });
        },
        (err: Error) => {
          refused.push(err.message);
          json(400, { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' });
        },
      );
      return true;
    }
    const ok = issued.length > 0 && req.headers.authorization === `Bearer ${issued.at(-1)}`;
    json(ok ? 200 : 401, { ok });
    return true;
  }

  beforeAll(async () => {
    upstream = await startUpstream({ handler });
    tokenUri = `https://other.example.test:${upstream.port}/token`;
    proxy = await startProxy({
      tokenClock: clock,
      env: {
        GSA_KEY: keyFile(ACCOUNT.privateKey),
        GSA_STRANGER: keyFile(STRANGER.privateKey, 'k2'),
      },
      config: {
        grants: {
          drive: { type: 'google_service_account', domains: ['api.example.test'], secret: 'env:GSA_KEY', scopes: SCOPES },
          admin: {
            type: 'google_service_account',
            domains: ['plain.example.test'],
            secret: 'env:GSA_KEY',
            scopes: ['https://www.googleapis.com/auth/admin.directory.user'],
            subject: 'ada@example.com',
          },
          stranger: { type: 'google_service_account', domains: ['bad.example.test'], secret: 'env:GSA_STRANGER', scopes: SCOPES },
        },
      },
    });
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 64 });
  });

  afterAll(async () => {
    await agent?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    const secrets = [ACCOUNT.privateKey.split('\n')[1]!, STRANGER.privateKey.split('\n')[1]!, ...issued];
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const secret of secrets) expect(findLeak(text, secret), 'a secret in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  const call = async (host: string, path = '/files') => {
    const res = await request(`https://${host}:${upstream.port}${path}`, { dispatcher: agent, headersTimeout: 30_000 });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };

  it('curl gets through with a token minted from an assertion the endpoint verified; the agent never sees the token', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const r = await curl(['-sS', `https://api.example.test:${upstream.port}/files`], env);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true });
    expect(mints).toEqual([{ scope: SCOPES.join(' '), sub: undefined, lifetime: 3600, kid: 'k1' }]);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === 'drive' && l['decision'] === 'inject'), 'the line');
    expect(line).toMatchObject({ secret_source: 'google_service_account', refreshed: true, status: 200 });
    const shown = await proxy.cli(['grants', 'show', 'drive', '--json']);
    outputs.push(shown.stdout);
    expect(Date.parse(JSON.parse(shown.stdout).token_expires_at) - clock()).toBeGreaterThan(50 * MINUTE);
  });

  it('keyway refresh mints a new token at once, one mint, and the proxy sends it from then on', async () => {
    const before = mints.length;
    const r = await proxy.cli(['refresh', 'drive']);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(mints.length).toBe(before + 1);
    // The API takes only the newest token; the proxy reads it from the store within a second.
    for (let i = 0; i < 50 && proxy.running.services.store.get<{ accessToken: string }>('minted:drive')?.accessToken !== issued.at(-1); i++) {
      await new Promise((res) => setTimeout(res, 100));
    }
    expect((await call('api.example.test', '/files?after=refresh')).status).toBe(200);
    expect(mints.length).toBe(before + 1);
  });

  it('200 requests at once when the token is due: one mint, all with the new token; the next mint comes 5 minutes before expiry', async () => {
    ahead += 56 * MINUTE; // 4 minutes left on the token: due
    const before = mints.length;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => call('api.example.test', `/files?i=${i}`)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(mints.length - before).toBe(1);
    ahead += 30 * MINUTE; // fresh token, far from its expiry: no mint
    expect((await call('api.example.test')).status).toBe(200);
    expect(mints.length - before).toBe(1);
  });

  it('a subject (domain-wide delegation) goes in the assertion as sub, with that grant scopes', async () => {
    expect((await call('plain.example.test')).status).toBe(200);
    expect(mints.at(-1)).toMatchObject({ sub: 'ada@example.com', scope: 'https://www.googleapis.com/auth/admin.directory.user' });
  });

  it('a key the endpoint cannot verify: 502 token_refresh_failed naming the endpoint, nothing sent to the API, backoff', async () => {
    const seen = upstream.seen.length;
    const first = await call('bad.example.test');
    expect(first.status).toBe(502);
    expect(first.code).toBe('token_refresh_failed');
    expect(JSON.parse(first.text).error.message).toMatch(/^grant "stranger" could not get a token from https:\/\/other\.example\.test:\d+: /);
    expect(refused.at(-1)).toMatch(/signature/);
    const again = await call('bad.example.test');
    expect(again.code).toBe('token_refresh_failed');
    // One call to the token endpoint (the second request met the backoff), none to the API.
    expect(upstream.seen.slice(seen).map((r) => r.url)).toEqual(['/token']);
  });

  it('grants add takes the key file on stdin with --scopes; one whose key is not a key is refused without quoting it', async () => {
    const base = ['grants', 'add', 'gsa-store', '--type', 'google_service_account', '--domains', 'tunnel.example.test'];
    const noScopes = await proxy.cli([...base, '--secret-stdin'], keyFile(ACCOUNT.privateKey));
    expect(noScopes.stderr).toContain('--scopes: a google_service_account grant needs the scopes its tokens are for');
    const bad = await proxy.cli(
      [...base, '--scopes', SCOPES[0]!, '--secret-stdin'],
      JSON.stringify({ client_email: ACCOUNT.email, private_key: `${CANARY}-not-a-key`, token_uri: tokenUri }),
    );
    outputs.push(bad.stdout, bad.stderr);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"private_key" is not a PEM private key');
    expect(bad.stderr).not.toContain(CANARY);
    const good = await proxy.cli([...base, '--scopes', SCOPES.join(','), '--secret-stdin'], keyFile(ACCOUNT.privateKey));
    outputs.push(good.stdout, good.stderr);
    expect(good.code, good.stderr).toBe(0);
    const listed = JSON.parse((await proxy.cli(['grants', 'show', 'gsa-store', '--json'])).stdout);
    expect(listed).toMatchObject({ type: 'google_service_account', secret: 'set' });
  });
});
