import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { canaryLeaks, curl, waitFor } from '../helpers/clients.ts';
import { PREFACE, settingsFrame } from '../helpers/h2-frames.ts';
import { h2Request, h2ThroughProxy, tlsThroughProxy } from '../helpers/http2-client.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// HTTP/2 on the client leg: keyway offers h2 in ALPN, and every stream runs the same stages as an
// HTTP/1.1 request (grant, injection replacing the client's own credential, leak guard, audit).

const HTTPX_SCRIPT = `
import json, sys, httpx
with httpx.Client(http2=True, proxies=sys.argv[2], verify=sys.argv[3], timeout=10) as c:
    r = c.get(sys.argv[1], headers={'Authorization': 'Bearer client-own-token'})
    print(json.dumps({'status': r.status_code, 'version': r.http_version, 'body': r.text}))
`;

describe('HTTP/2 clients through keyway', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let authority: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({ grants: [{ id: 'h2grant', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('curl --http2 negotiates h2 and gets the credential injected', async () => {
    const r = await curl(
      ['--http2', '-w', '\\n%{http_version}', '-H', 'Authorization: Bearer client-own-token', `https://${authority}/echo?tag=curl`],
      cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(r.stderr).toBe('');
    const [body, version] = r.stdout.split('\n');
    expect(version).toBe('2');
    const echo = JSON.parse(body!) as { headers: Record<string, string> };
    expect(echo.headers['authorization']).toBe('Bearer [redacted by keyway]');
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(r.stdout).not.toContain('client-own-token');
    expect(canaryLeaks(proxy, r.stdout, r.stderr)).toEqual([]);
  });

  it("Node's http2 client: several streams on one connection, one audit line each", async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const answers = await Promise.all(
        [1, 2, 3].map((i) => h2Request(session, { ':method': 'GET', ':path': `/echo?tag=node-${i}`, authorization: 'Bearer client-own-token' })),
      );
      for (const a of answers) {
        expect(a.headers[':status']).toBe(200);
        expect(a.body.toString()).toContain('[redacted by keyway]');
        expect(a.body.toString()).not.toContain(CANARY);
      }
    } finally {
      session.close();
    }
    for (const i of [1, 2, 3]) {
      const seen = upstream.seen.find((s) => s.url === `/echo?tag=node-${i}`);
      expect(seen?.headers.authorization).toBe(`Bearer ${CANARY}`);
      expect(seen?.headers.host).toBe(authority);
    }
    expect(await waitFor(() => proxy.auditLines().filter((l) => l['path'] === '/echo' && l['grant'] === 'h2grant').length >= 4)).toBe(true);
    const lines = proxy.auditLines().filter((l) => l['grant'] === 'h2grant');
    expect(lines.every((l) => l['decision'] === 'inject' && l['status'] === 200)).toBe(true);
  });

  it('Python httpx with http2=True', async () => {
    const r = await runProcess(
      '/usr/bin/python3',
      ['-c', HTTPX_SCRIPT, `https://${authority}/echo?tag=httpx`, proxy.url, proxy.bundlePath],
      cleanEnv(),
      undefined,
      20_000,
    );
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout) as { status: number; version: string; body: string };
    expect(out.version).toBe('HTTP/2');
    expect(out.status).toBe(200);
    expect(out.body).toContain('Bearer [redacted by keyway]');
    expect(upstream.seen.find((s) => s.url === '/echo?tag=httpx')?.headers.authorization).toBe(`Bearer ${CANARY}`);
  });

  it('ALPN: h2 whenever offered, http/1.1 when only it is, no protocol when none is offered, and a handshake refused when only unknown ones are', async () => {
    const chosen = async (alpn: string[]) => {
      const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn });
      const protocol = tls.alpnProtocol;
      tls.destroy();
      return protocol;
    };
    expect(await chosen(['http/1.1', 'h2'])).toBe('h2');
    expect(await chosen(['http/1.1'])).toBe('http/1.1');
    expect(await chosen([])).toBe(false);
    await expect(chosen(['spdy/3'])).rejects.toThrow(/no application protocol/i);
  });

  it('a client that closes its side of an h2 connection is let go at once, not at the idle timeout', async () => {
    expect(await waitFor(() => proxy.running.connectionCount() === 0, 5_000)).toBe(true);
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath);
    expect(tls.alpnProtocol).toBe('h2');
    tls.write(Buffer.concat([PREFACE, settingsFrame()]));
    tls.on('data', () => undefined);
    expect(proxy.running.connectionCount()).toBe(1);
    tls.end();
    expect(await waitFor(() => proxy.running.connectionCount() === 0, 3_000)).toBe(true);
    tls.destroy();
  });

  it('the self-check name (keyway doctor) answers over h2 too', async () => {
    const r = await curl(
      ['--http2', '-w', '\n%{http_version}', 'https://keyway.internal/healthz'],
      cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(r.stderr).toBe('');
    const [body, version] = r.stdout.split('\n');
    expect(version).toBe('2');
    expect(JSON.parse(body!)).toMatchObject({ ok: true, service: 'keyway' });
  });
});
