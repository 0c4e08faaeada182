import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryLeaks, curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// An OAuth grant whose token went into the body (inject: {body: true}): after the upstream's 401,
// keyway refreshes as always, but does not replay that body, which carries the token just refused
// (sent again, it would be refused again, and the old token would go out a second time).

const OLD = `${CANARY}-old-access`;
const NEW = 'kw-new-access-token-3e9f1a';

let proxy: TestProxy;
let upstream: TestUpstream;
let tokens: Server;
let tokenCalls = 0;
const seen: string[] = [];

beforeAll(async () => {
  tokens = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      tokenCalls++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: NEW, token_type: 'Bearer', expires_in: 3600 }));
    });
  });
  tokens.listen(0, '127.0.0.1');
  await once(tokens, 'listening');
  upstream = await startUpstream({
    handler: (_req, res, body) => {
      const text = body?.toString('utf8') ?? '';
      seen.push(text);
      const ok = new URLSearchParams(text).get('token') === NEW;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(JSON.stringify({ ok }));
      return true;
    },
  });
  const tokenUrl = `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token`;
  proxy = await startProxy({
    config: { providers: { scripted: { token_url: tokenUrl, client_auth: 'body' } } },
    grants: [
      {
        id: 'slack-oauth',
        type: 'oauth2',
        provider: 'scripted',
        domains: ['api.example.test'],
        inject: { body: true },
        secret: { clientId: 'c', clientSecret: 'kw-client-secret-77aa', refreshToken: 'kw-refresh-5b5b', accessToken: OLD, expiresAt: Date.now() + 3_600_000 },
      },
    ],
  });
});

afterAll(async () => {
  await proxy?.stop();
  await upstream?.close();
  await new Promise<void>((resolve) => tokens?.close(() => resolve()));
});

describe('an OAuth grant with its token in the body', () => {
  it('refreshes after a 401 but does not replay the body that carried the refused token', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const r = await curl(
      ['-s', '-o', '-', '-w', '\\n%{http_code}', '--data-urlencode', 'token=keyway-placeholder-slack-oauth', `https://api.example.test:${upstream.port}/post`],
      env,
    );
    expect(r.stdout.trim().split('\n').at(-1)).toBe('401');
    expect(seen).toHaveLength(1);
    expect(new URLSearchParams(seen[0]!).get('token')).toBe(OLD);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/post'), 'the audit line');
    expect(line).toMatchObject({ body_swap: 'swapped', status: 401, replay: 'skipped: the body carries the token' });
    expect(line['replayed']).toBeUndefined();
    // The next request gets the refreshed token (the refresh still happened, once).
    const again = await curl(['-s', '--data-urlencode', 'token=keyway-placeholder-slack-oauth', `https://api.example.test:${upstream.port}/post2`], env);
    expect(JSON.parse(again.stdout)).toEqual({ ok: true });
    expect(tokenCalls).toBe(1);
    expect(canaryLeaks(proxy, r.stdout, r.stderr, again.stdout)).toEqual([]);
  });
});
