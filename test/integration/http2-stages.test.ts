import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { canaryLeaks, waitFor } from '../helpers/clients.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Every stage applies per HTTP/2 stream as per HTTP/1.1 request: the agent named at CONNECT, its
// rules, the :authority check, refresh and replay on a 401, and one audit line each.

describe('HTTP/2 streams through every stage', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let tokens: Server;
  let issued = 0;
  let authority: string;

  beforeAll(async () => {
    // A token endpoint that hands out fresh-1, fresh-2...; the upstream takes only fresh tokens.
    tokens = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        issued++;
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ access_token: `fresh-${issued}-${CANARY}`, token_type: 'bearer', expires_in: 3600 }));
      });
    });
    tokens.listen(0, '127.0.0.1');
    await once(tokens, 'listening');
    upstream = await startUpstream({
      handler: (req, res, body) => {
        if (!req.url?.startsWith('/oauth/')) return false;
        if (!req.headers.authorization?.startsWith('Bearer fresh-')) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
          return true;
        }
        if (!req.url.startsWith('/oauth/upload')) return false;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ bytes: body?.length ?? 0 }));
        return true;
      },
    });
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({
      env: { H2_AGENT_KEY: 'h2-agent-key', OUTSIDER_KEY: 'outsider-key' },
      config: {
        providers: { tok: { token_url: `http://127.0.0.1:${(tokens.address() as AddressInfo).port}/token` } },
        agents: {
          h2agent: { key: 'env:H2_AGENT_KEY', grants: ['oauthy'], rules: [{ grant: 'oauthy', methods: ['GET', 'POST'], paths: ['/oauth/**'] }] },
          outsider: { key: 'env:OUTSIDER_KEY', grants: ['spare'] },
        },
      },
      grants: [
        {
          id: 'oauthy',
          type: 'oauth2',
          domains: ['api.example.test'],
          provider: 'tok',
          secret: { clientId: 'c', clientSecret: 's', refreshToken: 'r', accessToken: `stale-${CANARY}`, expiresAt: Date.now() + 3_600_000 },
        },
        { id: 'spare', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-spare` },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
    tokens?.close();
  });

  it('a 401 is withheld, the token refreshed and the stream replayed with its body', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      const r = await h2Request(session, { ':method': 'POST', ':path': '/oauth/echo?tag=replay', 'content-type': 'text/plain' }, 'the body, sent twice');
      expect(r.headers[':status']).toBe(200);
      const echo = JSON.parse(r.body.toString()) as { body: string; headers: Record<string, string> };
      expect(echo.body).toBe('the body, sent twice');
      expect(echo.headers['authorization']).toMatch(/^Bearer \[redacted by keyway\]|^Bearer fresh-1-\[redacted by keyway\]/);
    } finally {
      session.close();
    }
    const seen = upstream.seen.filter((s) => s.url === '/oauth/echo?tag=replay');
    expect(seen.map((s) => s.headers.authorization)).toEqual([`Bearer stale-${CANARY}`, `Bearer fresh-1-${CANARY}`]);
    expect(seen[1]?.bodyBytes).toBe('the body, sent twice'.length);
    expect(await waitFor(() => proxy.auditLines().some((l) => l['path'] === '/oauth/echo'))).toBe(true);
    const line = proxy.auditLines().find((l) => l['path'] === '/oauth/echo');
    expect(line).toMatchObject({ agent: 'h2agent', grant: 'oauthy', decision: 'inject', status: 200, replayed: true, refreshed: true });
  });

  it("the agent's rules judge each stream: one allowed, one refused, on the same connection", async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      const [allowed, refused] = await Promise.all([
        h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=rules-ok' }),
        h2Request(session, { ':method': 'DELETE', ':path': '/oauth/echo?tag=rules-no' }),
      ]);
      expect(allowed.headers[':status']).toBe(200);
      expect(refused.headers[':status']).toBe(403);
      expect(refused.headers['x-keyway-error']).toBe('policy_denied');
    } finally {
      session.close();
    }
    expect(upstream.seen.some((s) => s.url === '/oauth/echo?tag=rules-no')).toBe(false);
    expect(await waitFor(() => proxy.auditLines().some((l) => l['code'] === 'policy_denied' && l['method'] === 'DELETE'))).toBe(true);
  });

  it('a :method not in upper case (`get` against a GET rule, `delete`) is refused as bad_request, never matched or sent upstream', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      for (const method of ['get', 'Get', 'delete']) {
        const r = await h2Request(session, { ':method': method, ':path': `/oauth/echo?tag=case-${method}` });
        expect(r.headers[':status']).toBe(400);
        expect(r.headers['x-keyway-error']).toBe('bad_request');
      }
      // The upper-case form is still served on the same connection.
      const ok = await h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=case-ok' });
      expect(ok.headers[':status']).toBe(200);
    } finally {
      session.close();
    }
    expect(upstream.seen.some((s) => /tag=case-(get|Get|delete)/.test(s.url))).toBe(false);
    expect(await waitFor(() => proxy.auditLines().filter((l) => l['code'] === 'bad_request' && l['path'] === '/oauth/echo').length === 3)).toBe(true);
  });

  it(':authority (or a Host beside it) naming another host than the CONNECT target is refused as host_mismatch', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      const other = await h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=authority', ':authority': `other.example.test:${upstream.port}` });
      expect(other.headers[':status']).toBe(400);
      expect(other.headers['x-keyway-error']).toBe('host_mismatch');
      const host = await h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=host', host: `other.example.test:${upstream.port}` });
      expect(host.headers['x-keyway-error']).toBe('host_mismatch');
      const port = await h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=port', ':authority': 'api.example.test:1' });
      expect(port.headers['x-keyway-error']).toBe('host_mismatch');
    } finally {
      session.close();
    }
    expect(upstream.seen.some((s) => /tag=(authority|host|port)/.test(s.url))).toBe(false);
    expect(await waitFor(() => proxy.auditLines().filter((l) => l['code'] === 'host_mismatch').length === 3)).toBe(true);
  });

  it('cookies sent as several fields reach an HTTP/1.1 upstream as one header joined by "; " (RFC 9113 8.2.3)', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      const r = await h2Request(session, { ':method': 'GET', ':path': '/oauth/echo?tag=cookie', cookie: ['a=1', 'b=2', 'c=3'] });
      expect(r.headers[':status']).toBe(200);
    } finally {
      session.close();
    }
    expect(upstream.seen.find((s) => s.url === '/oauth/echo?tag=cookie')?.headers.cookie).toBe('a=1; b=2; c=3');
  });

  it('a body with no content-length (HTTP/2 has no chunked coding) is forwarded whole', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'h2agent:h2-agent-key');
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/oauth/upload?tag=nolength' });
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      for (let i = 0; i < 8; i++) stream.write(Buffer.alloc(100_000, 0x62));
      stream.end();
      await once(stream, 'end');
      expect(JSON.parse(Buffer.concat(chunks).toString())).toEqual({ bytes: 800_000 });
    } finally {
      session.close();
    }
    expect(canaryLeaks(proxy)).toEqual([]);
  });

  it('an agent refused at CONNECT gets the refusal inside TLS over h2, audited, and the session ends (GOAWAY)', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, 'outsider:outsider-key');
    let goaway = false;
    session.once('goaway', () => (goaway = true));
    try {
      const r = await h2Request(session, { ':path': '/oauth/echo?tag=outsider' });
      expect(r.headers[':status']).toBe(403);
      expect(r.headers['x-keyway-error']).toBeDefined();
      expect(await waitFor(() => goaway || session.closed, 3_000)).toBe(true);
    } finally {
      session.close();
    }
    expect(upstream.seen.some((s) => s.url.includes('tag=outsider'))).toBe(false);
    expect(await waitFor(() => proxy.auditLines().some((l) => l['agent'] === 'outsider' && l['path'] === '/oauth/echo'))).toBe(true);
  });
});
