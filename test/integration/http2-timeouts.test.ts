import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { waitFor } from '../helpers/clients.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// proxy.timeouts.body_stall per HTTP/2 stream: a request body that stops is cancelled; a stream
// waiting on a slow upstream is not (the upstream's own timeouts judge that).

describe('HTTP/2 body_stall', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let authority: string;

  beforeAll(async () => {
    upstream = await startUpstream();
    authority = `api.example.test:${upstream.port}`;
    proxy = await startProxy({
      config: { proxy: { timeouts: { body_stall: '1s' } } },
      grants: [{ id: 'stall', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('a request body that stops moving is cancelled after body_stall, with an audit line', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const stream = session.request({ ':method': 'POST', ':path': '/upload?tag=stalled', 'content-length': '1000' });
      stream.on('error', () => undefined);
      stream.write(Buffer.alloc(100, 0x61)); // then nothing more
      const started = Date.now();
      const closed = await waitFor(() => stream.closed, 5_000);

      expect(closed).toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
      expect(stream.rstCode).toBe(8); // CANCEL
      // The session itself serves on.
      expect((await h2Request(session, { ':path': '/echo?tag=after-stall' })).headers[':status']).toBe(200);
    } finally {
      session.close();
    }
    expect(await waitFor(() => proxy.auditLines().some((l) => l['path'] === '/upload' && l['code'] === 'client_closed'), 3_000)).toBe(true);
  });

  it('a stream waiting on a slow upstream is not cut by body_stall', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const r = await h2Request(session, { ':path': '/slow?ms=2500&tag=slow' }, undefined, 8_000);
      expect(r.headers[':status']).toBe(200);
      expect(r.body.toString()).toBe('slow');
    } finally {
      session.close();
    }
  });

  it('a stream the client resets while waiting is audited as client_closed', async () => {
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath);
    try {
      const stream = session.request({ ':path': '/slow?ms=3000&tag=reset-by-client' });
      stream.on('error', () => undefined);
      expect(await waitFor(() => upstream.seen.some((s) => s.url.includes('tag=reset-by-client')), 3_000)).toBe(true);
      stream.close(8); // CANCEL
    } finally {
      session.close();
    }
    expect(await waitFor(() => proxy.auditLines().some((l) => l['path'] === '/slow' && l['code'] === 'client_closed'), 3_000)).toBe(true);
  });
});
