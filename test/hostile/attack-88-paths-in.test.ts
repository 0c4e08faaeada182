// Attacking policy as code (issue 88, item 7): is the Cedar forbid asked on every way a request can
// come in? HTTP/1.1 inside CONNECT (curl), HTTP/2 inside CONNECT, plain http:// through the proxy,
// a host spelled with a trailing dot, a method named by X-HTTP-Method-Override and a path named by
// X-Original-URL. Each must be refused as rule_denied, and the upstream must never see it. A host
// no grant covers is outside Cedar by design (its resource is a Grant): keyway sends nothing there.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryLeaks } from '../helpers/clients.ts';
import { curlAsClaude, startCedarProxy } from '../helpers/cedar-home.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import type { TestProxy } from '../helpers/keyway.ts';
import { exchange, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const POLICY = `@id("no-blocked")
forbid (principal, action == Action::"request", resource) when { context.path_lower like "/blocked*" || context.path like "/ws*" };

@id("no-delete-on-host")
forbid (principal, action, resource) when { context.host == "api.example.test" && context.method == "DELETE" };
`;

describe('attack 88: the Cedar forbid on every way in', () => {
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

  const viaCurl = (url: string, extra: string[] = []) => curlAsClaude(proxy, [...extra, url], outputs);

  it('HTTP/1.1 through CONNECT: refused, and a plain request passes (so a 403 means something)', async () => {
    expect((await viaCurl(`https://api.example.test:${upstream.port}/open`)).status).toBe(200);
    expect(await viaCurl(`https://api.example.test:${upstream.port}/blocked/1`)).toMatchObject({ status: 403, code: 'rule_denied' });
  });

  it('HTTP/2 through CONNECT: refused', async () => {
    const session = await h2ThroughProxy(proxy.port, `api.example.test:${upstream.port}`, proxy.caPath, 'claude:claude-key');
    try {
      const ok = await h2Request(session, { ':method': 'GET', ':path': '/open-h2' });
      expect(ok.headers[':status']).toBe(200);
      const refused = await h2Request(session, { ':method': 'GET', ':path': '/blocked/h2' });
      expect(refused.headers[':status']).toBe(403);
      expect(refused.body.toString('utf8')).toContain('rule_denied');
    } finally {
      session.close();
    }
  });

  it('a host with a trailing dot is the same host to a forbid that names it', async () => {
    const r = await viaCurl(`https://api.example.test.:${upstream.port}/x`, ['-X', 'DELETE']);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(upstream.seen.some((s) => s.method === 'DELETE')).toBe(false);
  });

  it('a method or path named by an override header is judged by Cedar too', async () => {
    const base = `https://api.example.test:${upstream.port}`;
    expect(await viaCurl(`${base}/x`, ['-X', 'POST', '-d', '', '-H', 'X-HTTP-Method-Override: DELETE'])).toMatchObject({ code: 'rule_denied' });
    expect(await viaCurl(`${base}/x`, ['-H', 'X-Original-URL: /blocked/override'])).toMatchObject({ status: 403 });
    expect(await viaCurl(`${base}/x?_method=DELETE`, ['-X', 'POST', '-d', ''])).toMatchObject({ status: 403 });
  });

  it('plain http:// through the proxy to a granted host: refused', async () => {
    const r = await viaCurl(`http://api.example.test:${upstream.port}/blocked/plain`);
    expect(r.status).toBeGreaterThanOrEqual(400);
  });

  it('a WebSocket handshake: refused before it is upgraded', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const auth = `Proxy-Authorization: Basic ${Buffer.from('claude:claude-key').toString('base64')}\r\n`;
    const tls = await startTls(await openTunnel(proxy.port, authority, auth), 'api.example.test', readFileSync(proxy.caPath, 'utf8'));
    tls.on('error', () => undefined);
    const raw = await exchange(
      tls,
      `GET /ws HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
    );
    tls.destroy();
    outputs.push(raw);
    expect(parseResponse(raw).status).toBe(403);
    expect(parseResponse(raw).headers['x-keyway-error']).toBe('rule_denied');
    expect(upstream.seen.filter((s) => s.url.startsWith('/ws'))).toEqual([]);
  });

  it('the upstream saw no forbidden request', () => {
    expect(upstream.seen.filter((s) => /blocked/i.test(s.url) || s.method === 'DELETE')).toEqual([]);
  });
});
