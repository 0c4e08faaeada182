import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { canaryLeaks, curl } from '../helpers/clients.ts';
import { startH2Upstream, type H2Upstream } from '../helpers/h2-upstream.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';

// HTTP/2 to the upstream: keyway offers h2 in ALPN to upstreams and multiplexes its requests on a
// kept-alive connection; an h2-only upstream (no HTTP/1.1 fallback) is reachable from either kind
// of client. Trailers and bidirectional streams pass through.

describe('HTTP/2 upstreams', () => {
  let upstream: H2Upstream;
  let proxy: TestProxy;
  let authority: string;

  beforeAll(async () => {
    upstream = await startH2Upstream();
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({ grants: [{ id: 'h2up', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('an HTTP/1.1 client reaches an h2-only upstream, with the credential injected', async () => {
    const r = await curl(
      ['--http1.1', '-w', '\\n%{http_version}', `https://${authority}/echo?tag=h1`],
      cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n')[1]).toBe('1.1');
    const seen = upstream.seen.find((h) => h[':path'] === '/echo?tag=h1');
    expect(seen?.authorization).toBe(`Bearer ${CANARY}`);
    expect(seen?.[':authority']).toBe(authority);
    expect(r.stdout).not.toContain(CANARY);
  });

  it('concurrent streams from an HTTP/2 client share one upstream HTTP/2 connection', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      // Warm: until one connection has chosen h2, undici opens one per request waiting (as for HTTP/1.1).
      expect((await h2Request(session, { ':path': '/echo?tag=warm' })).headers[':status']).toBe(200);
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => h2Request(session, { ':path': `/echo?tag=mux-${i}` })));
      expect(answers.map((a) => Number(a.headers[':status']))).toEqual(Array(20).fill(200));
    } finally {
      session.close();
    }
    const carried = upstream.seen.flatMap((h, i) => (String(h[':path']).startsWith('/echo?tag=mux-') ? [upstream.sessionOf[i]] : []));
    expect(carried).toHaveLength(20);
    expect(new Set(carried).size).toBe(1);
  });

  it("the upstream's trailers reach the client, the secret redacted from them", async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const r = await h2Request(session, { ':path': '/trailers', te: 'trailers' });
      expect(r.body.toString()).toBe('body before the trailers');
      expect(r.trailers['x-status']).toBe('0');
      expect(r.trailers['x-echo']).toBeDefined();
      expect(String(r.trailers['x-echo'])).not.toContain(CANARY);
    } finally {
      session.close();
    }
    // The one TE HTTP/2 allows goes upstream: gRPC servers may refuse a call without it.
    expect(upstream.seen.find((h) => h[':path'] === '/trailers')?.te).toBe('trailers');
    expect(canaryLeaks(proxy)).toEqual([]);
  });

  it('a bidirectional stream is not buffered: the client reads the echo of its first chunk before it sends the second', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/stream' });
      let received = 0;
      const got = (n: number) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${received} bytes echoed within 5 s, expected ${n}`)), 5_000);
          const check = () => {
            if (received < n) return;
            clearTimeout(timer);
            stream.off('data', check);
            resolve();
          };
          stream.on('data', check);
          check();
        });
      stream.on('data', (c: Buffer) => (received += c.length));
      stream.write(Buffer.alloc(4096, 0x61));
      await got(2048); // most of the first chunk, while the request is still open
      expect(stream.writableEnded).toBe(false);
      stream.write(Buffer.alloc(4096, 0x62));
      stream.end();
      await once(stream, 'end');
      expect(received).toBe(8192);
    } finally {
      session.close();
    }
  });
});
