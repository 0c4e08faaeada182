// Attacking policy as code (issue 88, item 7): path spellings an agent controls against a Cedar
// forbid, through the real proxy with curl. The forbid must hold for every spelling a server may
// read as the forbidden path, as the YAML deny rules do (pathReadings: `%2F` read as a slash too),
// and the upstream must never see the request. A canary secret never shows in any output.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryLeaks } from '../helpers/clients.ts';
import { curlAsClaude, startCedarProxy } from '../helpers/cedar-home.ts';
import type { TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const POLICY = `@id("no-secrets")
forbid (principal, action == Action::"request", resource)
when { context.path_lower like "/api/secrets*" };

@id("no-corp-admin")
forbid (principal, action, resource) when { context.path like "/users/admin@corp*" };

@id("no-cafe")
forbid (principal, action, resource) when { context.path_lower like "/caf\u{e9}*" };

@id("no-admin-key")
forbid (principal, action, resource) when { context.query_keys.contains("admin") };
`;

describe('attack 88: path spellings against a Cedar forbid', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const outputs: string[] = [];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startCedarProxy(POLICY);
  });
  afterAll(async () => {
    const leaks = proxy ? canaryLeaks(proxy, ...outputs) : [];
    await proxy?.stop();
    await upstream?.close();
    expect(leaks).toEqual([]);
  });

  const get = (path: string) => curlAsClaude(proxy, ['--path-as-is', `https://api.example.test:${upstream.port}${path}`], outputs);

  it('admits the plain request the forbid does not name (the test can see a 200)', async () => {
    expect((await get('/api/public')).status).toBe(200);
  });

  // Each is /api/secrets to some server: an unreserved escape, case, dot segments, doubled slashes.
  it.each(['/api/secrets', '/%61pi/secrets', '/API/Secrets', '/api/x/%2e%2e/secrets', '/api//secrets', '/./api/secrets'])(
    'refuses %s (rule_denied or bad_request), never sent upstream',
    async (path) => {
      const r = await get(path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(['rule_denied', 'bad_request'], path).toContain(r.code);
    },
  );

  // A server that decodes %2F (WSGI's PATH_INFO, nginx's location matching) reads /api/secrets here.
  // keyway's YAML deny rules read it that way too (pathReadings); the Cedar forbid must as well.
  it.each(['/api%2Fsecrets', '/api%2fsecrets/x', '/API%2FSECRETS'])('refuses %s: an encoded slash is a slash to many servers', async (path) => {
    const r = await get(path);
    expect(r.status, path).toBe(403);
    expect(r.code, path).toBe('rule_denied');
  });

  // Escapes request-path.ts leaves as sent (not unreserved): the upstream decodes them.
  it.each(['/users/admin%40corp', '/caf%C3%A9/menu', '/CAF%C3%89', '/users/admin%40corp%2Fx'])(
    'refuses %s: an escape is its character to the upstream',
    async (path) => {
      const r = await get(path);
      expect(r.status, path).toBe(403);
      expect(r.code, path).toBe('rule_denied');
    },
  );

  it('reads query keys as the upstream decodes them (%61dmin is admin)', async () => {
    for (const q of ['?admin=1', '?%61dmin=1', '?x=1&admin', '?%61%64%6d%69%6e=']) {
      const r = await get(`/api/public${q}`);
      expect(r.code, q).toBe('rule_denied');
    }
  });

  it('never sent a forbidden spelling upstream', () => {
    const seen = upstream.seen.map((s) => decodeURIComponent(s.url.split('?')[0]!).toLowerCase().replace(/\/+/g, '/'));
    expect(seen.filter((p) => p.includes('secrets') || p.includes('admin@corp') || p.startsWith('/caf'))).toEqual([]);
    expect(upstream.seen.filter((s) => s.url.includes('?'))).toEqual([]);
  });
});
