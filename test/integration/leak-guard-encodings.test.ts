import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl, nodeFetch } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// The leak guard against bodies that used to slip past it: compressed ones (the agent asks for
// gzip, the upstream compresses), types and encodings written in another case, no type or a binary
// type, and the secret echoed in another spelling (base64, hex). Every byte a client receives is
// searched for the canary in every form (test/helpers/leak-canary.ts).

const AUTH = `Bearer ${CANARY}`;
const REDACTED = '[redacted by keyway]';
const MASKED = '*'.repeat(CANARY.length);
const MiB = 1024 * 1024;

const ENCODERS: Record<string, (b: Buffer) => Buffer> = {
  gzip: (b) => gzipSync(b),
  'x-gzip': (b) => gzipSync(b),
  deflate: (b) => deflateSync(b),
  br: (b) => brotliCompressSync(b),
  zstd: (b) => zstdCompressSync(b),
  // Not really compress (LZW): the test only needs a coding keyway does not know, over bytes that
  // would leak if relayed.
  compress: (b) => b,
  identity: (b) => b,
};

/** Encodes `body` with `codings` (comma-separated, applied in order, any case). */
function encode(body: Buffer, codings: string): Buffer {
  return codings
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean)
    .reduce((b, c) => ENCODERS[c.toLowerCase()]!(b), body);
}

/** 300 MiB of zeros with the canary at the start, as 300 gzip members of 1 MiB each (~300 KiB on the wire). */
function gzipBomb(auth: string): Buffer {
  const member = gzipSync(Buffer.alloc(MiB));
  return Buffer.concat([gzipSync(Buffer.from(auth)), ...Array.from({ length: 300 }, () => member)]);
}

describe('the leak guard on encoded, untyped and re-encoded bodies', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'https://upstream');
    const auth = req.headers.authorization ?? '';
    switch (url.pathname) {
      case '/enc': {
        // ?ce=gzip,br&type=application/json: the echo, encoded with ce, typed with type ('none': no type).
        const body = encode(Buffer.from(JSON.stringify({ received: auth, message: `you sent ${auth}` })), url.searchParams.get('ce') ?? '');
        const headers: Record<string, string> = { 'content-length': String(body.length), etag: '"v1"' };
        const ce = url.searchParams.get('ce');
        if (ce) headers['content-encoding'] = ce;
        const type = url.searchParams.get('type') ?? 'application/json';
        if (type !== 'none') headers['content-type'] = type;
        res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : body);
        return true;
      }
      case '/forms': {
        // The header re-encoded the ways an echo might: inside a base64 blob at three alignments, hex.
        const token = auth.slice(7);
        const blobs = ['', 'x', 'xy'].map((pad) => Buffer.from(`${pad}{"token":"${token}"}`).toString('base64'));
        const text = JSON.stringify({
          blobs,
          url: Buffer.from(`{"t":"${token}"}`).toString('base64url'),
          hex: Buffer.from(token).toString('hex'),
          HEX: Buffer.from(token).toString('hex').toUpperCase(),
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return true;
      }
      case '/octet-big': {
        // 2 MiB of binary with the secret near the end: scanned, masked, its length kept.
        const body = Buffer.alloc(2 * MiB, 0x01);
        Buffer.from(auth).copy(body, 2 * MiB - 100);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length) }).end(body);
        return true;
      }
      case '/bomb': {
        const body = gzipBomb(auth);
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) }).end(body);
        return true;
      }
      case '/empty-gzip': {
        // Says gzip, sends nothing (chunked): an empty body, not an error.
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': url.searchParams.get('ce') ?? 'gzip' });
        res.end();
        return true;
      }
      case '/corrupt': {
        // Says gzip, is not: the raw echo inside must not come out.
        const body = Buffer.from(`\x1f\x8b\x08\x00garbage ${auth} more garbage`);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-encoding': 'gzip', 'content-length': String(body.length) }).end(body);
        return true;
      }
      default:
        return false;
    }
  };

  beforeAll(async () => {
    upstream = await startUpstream({ handler });
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });

  afterAll(async () => {
    await dispatcher?.close().catch(() => undefined);
    await proxy?.stop();
    await upstream?.close();
  });

  const url = (path: string) => `https://api.example.test:${upstream.port}${path}`;

  /** A GET through keyway with undici (which never decompresses): the bytes on the wire, raw. */
  async function get(path: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' = 'GET') {
    const before = proxy.auditLines().length;
    const res = await request(url(path), { dispatcher, method, headers, signal: AbortSignal.timeout(slack(20_000)) });
    const body = Buffer.from(await res.body.arrayBuffer());
    // This request's line: its path (the audit keeps no query), not just the next line on the
    // grant, which may be an earlier request's written late on a busy machine.
    const auditPath = path.split('?')[0];
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .findLast((l) => l['grant'] === 'api' && l['path'] === auditPath),
      `the audit line for ${path}`,
    );
    return { status: res.statusCode, headers: res.headers, body, text: body.toString('utf8'), line };
  }

  it.each(['gzip', 'x-gzip', 'deflate', 'br', 'zstd', 'GZIP', 'gzip, br', 'identity', 'Identity'])(
    'decodes Content-Encoding: %s, redacts, and sends the body decoded',
    async (ce) => {
      const r = await get(`/enc?ce=${encodeURIComponent(ce)}`, { 'accept-encoding': 'gzip, deflate, br, zstd' });
      expect(r.status).toBe(200);
      expect(findLeak(r.body, CANARY)).toBeUndefined();
      expect(r.headers['content-encoding']).toBeUndefined();
      expect(JSON.parse(r.text)).toEqual({ received: `Bearer ${REDACTED}`, message: `you sent Bearer ${REDACTED}` });
      // A decoded body is another representation: its validator turns weak.
      expect(r.headers['etag']).toBe(ce.toLowerCase() === 'identity' ? '"v1"' : 'W/"v1"');
      expect(r.line['leak_redacted']).toBe(2);
    },
  );

  it('gives curl --compressed a redacted body, and curl without it a readable one', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    for (const ce of ['gzip', 'br', 'deflate']) {
      const compressed = await curl(['--compressed', url(`/enc?ce=${ce}`)], env);
      expect(compressed.code, compressed.stderr).toBe(0);
      expect(findLeak(compressed.stdout, CANARY)).toBeUndefined();
      expect(JSON.parse(compressed.stdout)).toEqual({ received: `Bearer ${REDACTED}`, message: `you sent Bearer ${REDACTED}` });
      // Asking for gzip without decoding: what arrives is the identity body keyway sent.
      const raw = await curl(['-H', 'Accept-Encoding: gzip', url(`/enc?ce=${ce}`)], env);
      expect(findLeak(raw.stdout, CANARY)).toBeUndefined();
      expect(JSON.parse(raw.stdout)['received']).toBe(`Bearer ${REDACTED}`);
    }
  });

  it("gives Node's own fetch (which asks for gzip, deflate, br and decodes) a redacted body", async () => {
    const env = cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxy.url, NODE_EXTRA_CA_CERTS: proxy.caPath });
    for (const ce of ['br', 'gzip']) {
      const r = await nodeFetch(url(`/enc?ce=${ce}&client=node`), env);
      expect(r.code, r.stderr).toBe(0);
      expect(findLeak(r.stdout, CANARY)).toBeUndefined();
      const { status, body } = JSON.parse(r.stdout) as { status: number; body: string };
      expect(status).toBe(200);
      expect(JSON.parse(body)).toEqual({ received: `Bearer ${REDACTED}`, message: `you sent Bearer ${REDACTED}` });
      expect(upstream.seen.findLast((s) => s.url === `/enc?ce=${ce}&client=node`)?.headers['accept-encoding']).toMatch(/gzip/);
    }
  });

  it('narrows the Accept-Encoding sent upstream to the codings keyway can decode', async () => {
    await get('/enc?ce=gzip', { 'accept-encoding': 'gzip;q=1.0, compress, br;q=0.5, *;q=0.1, exotic' });
    expect(upstream.seen.findLast((s) => s.url === '/enc?ce=gzip')?.headers['accept-encoding']).toBe('gzip;q=1.0, br;q=0.5');
    await get('/enc?ce=identity&only=unknown', { 'accept-encoding': 'compress, exotic' });
    expect(upstream.seen.findLast((s) => s.url.includes('only=unknown'))?.headers['accept-encoding']).toBe('identity');
  });

  it.each(['compress', 'gzip, gzip, gzip'])('refuses Content-Encoding: %s with 502 rather than pass a body it cannot scan', async (ce) => {
    const r = await get(`/enc?ce=${encodeURIComponent(ce)}`);
    expect(r.status).toBe(502);
    expect(r.headers['x-keyway-error']).toBe('upstream_unreachable');
    expect(JSON.parse(r.text).error.message).toMatch(/scan it for the secret/);
    expect(findLeak(r.body, CANARY)).toBeUndefined();
    expect(r.line['code']).toBe('upstream_unreachable');
  });

  it('matches types and encodings case-insensitively: Application/JSON with Content-Encoding: Identity gets the marker', async () => {
    const r = await get(`/enc?ce=Identity&type=${encodeURIComponent('Application/JSON; Charset=UTF-8')}`);
    expect(JSON.parse(r.text)['received']).toBe(`Bearer ${REDACTED}`);
    expect(r.line['leak_redacted']).toBe(2);
  });

  it.each(['none', 'application/octet-stream', 'image/png'])(
    'masks the secret with as many bytes in a body typed %s, keeping its Content-Length',
    async (type) => {
      const r = await get(`/enc?type=${encodeURIComponent(type)}`);
      expect(findLeak(r.body, CANARY)).toBeUndefined();
      expect(JSON.parse(r.text)).toEqual({ received: `Bearer ${MASKED}`, message: `you sent Bearer ${MASKED}` });
      expect(r.headers['content-length']).toBe(String(r.body.length));
      expect(r.line['leak_redacted']).toBe(2);
    },
  );

  it('masks the secret near the end of a 2 MiB binary download, which keeps its Content-Length', async () => {
    const r = await get('/octet-big');
    expect(r.body.length).toBe(2 * MiB);
    expect(r.headers['content-length']).toBe(String(2 * MiB));
    expect(findLeak(r.body, CANARY)).toBeUndefined();
    expect(r.body.subarray(2 * MiB - 100, 2 * MiB - 100 + AUTH.length).toString()).toBe(`Bearer ${MASKED}`);
    expect(r.line['leak_redacted']).toBe(1);
  });

  it('redacts the secret re-encoded: inside base64 blobs at every alignment, base64url, hex in both cases', async () => {
    const r = await get('/forms');
    expect(findLeak(r.body, CANARY)).toBeUndefined();
    const parsed = JSON.parse(r.text) as { blobs: string[]; url: string; hex: string; HEX: string };
    expect(parsed.hex).toBe(REDACTED);
    expect(parsed.HEX).toBe(REDACTED);
    for (const blob of [...parsed.blobs, parsed.url]) expect(blob).toContain(REDACTED);
    expect(r.line['leak_redacted']).toBe(6);
  });

  it('keeps the Content-Length of a HEAD answer (no body to scan)', async () => {
    const r = await get('/enc?ce=identity&head=1', {}, 'HEAD');
    expect(r.status).toBe(200);
    expect(Number(r.headers['content-length'])).toBeGreaterThan(0);
  });

  it.each(['gzip', 'deflate', 'br', 'zstd'])('relays an empty chunked body that says %s as an empty body', async (ce) => {
    const r = await get(`/empty-gzip?ce=${ce}`);
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(0);
    expect(r.line['code']).toBeNull();
  });

  it('cuts a body that is not the gzip it claims, without relaying its bytes', async () => {
    const before = proxy.auditLines().length;
    const res = await request(url('/corrupt'), { dispatcher, headers: { 'accept-encoding': 'gzip' }, signal: AbortSignal.timeout(slack(10_000)) });
    const received: Buffer[] = [];
    await (async () => {
      for await (const chunk of res.body) received.push(chunk as Buffer);
    })().catch(() => undefined);
    expect(findLeak(Buffer.concat(received), CANARY)).toBeUndefined();
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .find((l) => l['path'] === '/corrupt'),
      'the audit line',
    );
    expect(line['code']).toBe('upstream_unreachable');
  });

  it('cuts a gzip bomb once it decodes past 256 MiB, having scanned all it sent, and keeps serving', async () => {
    const before = proxy.auditLines().length;
    const res = await request(url('/bomb'), { dispatcher, headers: { 'accept-encoding': 'gzip' }, signal: AbortSignal.timeout(slack(60_000)) });
    let bytes = 0;
    let leaked: string | undefined;
    let failed = false;
    try {
      for await (const chunk of res.body) {
        bytes += (chunk as Buffer).length;
        leaked ??= findLeak(chunk as Buffer, CANARY);
      }
    } catch {
      failed = true;
    }
    expect(failed).toBe(true);
    expect(bytes).toBeLessThanOrEqual(256 * MiB);
    expect(leaked).toBeUndefined();
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .find((l) => l['path'] === '/bomb'),
      'the audit line',
      10_000,
    );
    expect(line['code']).toBe('upstream_unreachable');
    // Everyone else is still served.
    expect((await get('/enc?ce=gzip&after=bomb')).status).toBe(200);
  });

  it('never writes the secret to the app log or the audit file', () => {
    for (const text of [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')]) expect(findLeak(text, CANARY)).toBeUndefined();
  });
});
