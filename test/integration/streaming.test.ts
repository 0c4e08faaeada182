import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { openTunnel, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Streaming through an intercepted connection: large bodies both ways, Expect: 100-continue, SSE,
// WebSocket, a client leaving mid-body, and connection reuse.

const MiB = 1024 * 1024;
const AUTH = `Bearer ${CANARY}`;

/** `total` bytes in 64 KiB pieces, made as they are read: never the whole body in memory. */
async function* generatedBody(total: number): AsyncGenerator<Buffer> {
  const piece = Buffer.alloc(64 * 1024, 0x62);
  for (let sent = 0; sent < total; sent += piece.length) yield piece.subarray(0, Math.min(piece.length, total - sent));
}

/** Received WebSocket messages, awaited one at a time (each wait bounded). */
function messageQueue(ws: WebSocket): () => Promise<string> {
  const queued: string[] = [];
  const waiting: Array<(m: string) => void> = [];
  ws.on('message', (data: Buffer) => {
    const text = data.toString('utf8');
    const next = waiting.shift();
    if (next) next(text);
    else queued.push(text);
  });
  return () =>
    new Promise((resolve, reject) => {
      const ready = queued.shift();
      if (ready !== undefined) return resolve(ready);
      const timer = setTimeout(() => reject(new Error('no WebSocket message within 5 s')), 5_000);
      waiting.push((m) => {
        clearTimeout(timer);
        resolve(m);
      });
    });
}

describe('streaming through keyway', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let keywayCa: string;
  let api: string;
  const dispatchers: ProxyAgent[] = [];
  /** Remote ports of the connections the upstream saw /echo requests on (keep-alive check). */
  const echoPorts: number[] = [];

  const client = () => {
    const dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: keywayCa } });
    dispatchers.push(dispatcher);
    return dispatcher;
  };

  beforeAll(async () => {
    upstream = await startUpstream({
      // Every route answers 401 unless keyway injected the credential.
      requireAuthorization: AUTH,
      handler: (req) => {
        if (req.url?.startsWith('/echo')) echoPorts.push(req.socket.remotePort ?? -1);
        return false;
      },
    });
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    keywayCa = readFileSync(proxy.caPath, 'utf8');
    api = `https://api.example.test:${upstream.port}`;
  });

  afterAll(async () => {
    await Promise.all(dispatchers.map((d) => d.close().catch(() => undefined)));
    await proxy?.stop();
    await upstream?.close();
  });

  it('streams a 20 MiB download with the credential injected', async () => {
    const res = await request(`${api}/download?n=${20 * MiB}`, { dispatcher: client() });
    expect(res.statusCode).toBe(200);
    let bytes = 0;
    for await (const chunk of res.body) bytes += (chunk as Buffer).length;
    expect(bytes).toBe(20 * MiB);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(AUTH);
  });

  it('streams a 20 MiB upload from a generator with the credential injected', async () => {
    const res = await request(`${api}/upload`, { dispatcher: client(), method: 'POST', body: Readable.from(generatedBody(20 * MiB)) });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ bytes: 20 * MiB });
    const seen = upstream.seen.findLast((r) => r.url === '/upload');
    expect(seen?.bodyBytes).toBe(20 * MiB);
    expect(seen?.headers.authorization).toBe(AUTH);
  });

  it('uploads with Expect: 100-continue (curl -T, 2 MiB) and the credential still goes upstream', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyway-expect-'));
    try {
      const file = join(dir, 'body.bin');
      writeFileSync(file, Buffer.alloc(2 * MiB, 0x63));
      const before = upstream.seen.length;
      const result = await runProcess(
        'curl',
        ['-sS', '-v', '--fail-with-body', '-H', 'Expect: 100-continue', '-T', file, `${api}/upload`],
        cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath }),
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.stderr).toMatch(/> Expect: 100-continue/i);
      expect(JSON.parse(result.stdout)).toEqual({ bytes: 2 * MiB });
      const seen = upstream.seen.slice(before).find((r) => r.url === '/upload');
      expect(seen?.headers.authorization).toBe(AUTH);
      expect(seen?.headers.expect).toBeUndefined();
      expect(seen?.bodyBytes).toBe(2 * MiB);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('delivers server-sent events one by one, as the upstream sends them', async () => {
    const res = await request(`${api}/sse?n=5`, { dispatcher: client() });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/event-stream');
    const start = Date.now();
    const arrivals: Array<{ at: number; events: number }> = [];
    let text = '';
    for await (const chunk of res.body) {
      const piece = (chunk as Buffer).toString('utf8');
      text += piece;
      arrivals.push({ at: Date.now() - start, events: piece.split('data: ').length - 1 });
    }
    expect(text).toBe([0, 1, 2, 3, 4].map((i) => `data: event-${i}\n\n`).join(''));
    // The upstream writes one event every 100 ms: buffered delivery would bring them together.
    expect(arrivals.length).toBeGreaterThanOrEqual(4);
    const first = arrivals[0]!;
    const last = arrivals.at(-1)!;
    expect(first.events).toBeLessThanOrEqual(2);
    expect(last.at - first.at).toBeGreaterThanOrEqual(250);
  });

  it('relays a WebSocket echo with the credential on the upgrade', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const tunnel = await openTunnel(proxy.port, authority);
    const ws = new WebSocket(`wss://${authority}/ws`, {
      createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa })) as unknown as typeof netConnect,
    });
    try {
      const next = messageQueue(ws);
      await Promise.race([once(ws, 'open'), once(ws, 'error').then(([err]) => Promise.reject(err as Error))]);
      // The upstream's report of the header it got comes back through the leak guard, masked.
      expect(JSON.parse(await next())).toEqual({ authorization: `Bearer ${'*'.repeat(CANARY.length)}` });
      for (const word of ['one', 'two', 'three']) {
        ws.send(word);
        expect(await next()).toBe(`echo:${word}`);
      }
      const seen = upstream.seen.findLast((r) => r.url === '/ws');
      expect(seen?.headers.authorization).toBe(AUTH);
      expect(seen?.headers['proxy-authorization']).toBeUndefined();
    } finally {
      ws.terminate();
    }
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/ws'), 'WebSocket audit line');
    expect(line['decision']).toBe('inject');
    expect(line['status']).toBe(101);
  });

  it('keeps serving when a client hangs up in the middle of a 20 MiB upload', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const tls = await startTls(await openTunnel(proxy.port, authority), 'api.example.test', keywayCa);
    tls.on('error', () => undefined);
    tls.write(`POST /upload?hangup=1 HTTP/1.1\r\nHost: ${authority}\r\nContent-Length: ${20 * MiB}\r\n\r\n`);
    const piece = Buffer.alloc(64 * 1024, 0x64);
    for (let sent = 0; sent < MiB; sent += piece.length) {
      if (!tls.write(piece)) await Promise.race([once(tls, 'drain'), new Promise((r) => setTimeout(r, 2_000))]);
    }
    // Let the first bytes reach the upstream, then leave.
    await waitFor(() => upstream.seen.find((r) => r.url === '/upload?hangup=1' && r.bodyBytes > 0), 'the upload to start upstream');
    tls.destroy();

    const line = await waitFor(
      () => proxy.auditLines().find((l) => l['path'] === '/upload' && l['code'] === 'client_closed'),
      'an audit line for the abandoned upload',
    );
    expect(line['grant']).toBe('api');
    const partial = upstream.seen.find((r) => r.url === '/upload?hangup=1');
    expect(partial?.bodyBytes).toBeLessThan(20 * MiB);

    const seenBefore = upstream.seen.length;
    const res = await request(`${api}/echo?after=hangup`, { dispatcher: client() });
    expect(res.statusCode).toBe(200);
    const text = await res.body.text();
    // The upstream got the credential; its echo reaches the client with the secret redacted.
    const seen = upstream.seen.slice(seenBefore).filter((r) => r.url === '/echo?after=hangup');
    expect(seen).toHaveLength(1);
    expect(seen[0]?.headers.authorization).toBe(AUTH);
    expect((JSON.parse(text) as { headers: Record<string, string> }).headers.authorization).toBe('Bearer [redacted by keyway]');
    expect(text).not.toContain(CANARY);
  });

  it('reuses connections: 50 sequential requests through one ProxyAgent', async () => {
    const dispatcher = client();
    const before = echoPorts.length;
    for (let i = 0; i < 50; i++) {
      const res = await request(`${api}/echo?i=${i}`, { dispatcher });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    }
    const ports = echoPorts.slice(before);
    expect(ports).toHaveLength(50);
    // Far fewer upstream connections than requests (one, when keep-alive works end to end).
    expect(new Set(ports).size).toBeLessThanOrEqual(3);
  });

  it('leaves no secret in the logs or the audit file', () => {
    for (const text of [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')]) expect(text).not.toContain(CANARY);
  });
});
