import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base32, fromBase32 } from '../helpers/capture-canaries.ts';
import { curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// The leak guard against an echo its client decodes (issue 85, item 8): a gzip file sent without
// Content-Encoding, text in UTF-16 (either byte order, with a byte-order mark or without) and
// base32 (upper and lower case, padded or not, alone or inside a larger blob). The upstream echoes
// the Authorization keyway injected; what the client received is decoded here as a client would
// (gunzip, UTF-16 both ways, every base32 run), written apart from keyway's own code, and searched
// for the canary in every form leak-canary.ts knows.

const AUTH = `Bearer ${CANARY}`;

/** Every reading of `body` a client could make: as it is, gunzipped, as UTF-16 either way, each base32 run decoded. */
function readings(body: Buffer): Buffer[] {
  const out = [body];
  if (body[0] === 0x1f && body[1] === 0x8b) {
    try {
      out.push(gunzipSync(body, { finishFlush: 2 }));
    } catch {
      // not a whole gzip file: its raw bytes are searched still
    }
  }
  const even = body.subarray(0, body.length - (body.length % 2));
  for (const b of [Buffer.from(even), Buffer.from(even).swap16(), Buffer.from(body.subarray(1, 1 + ((body.length - 1) & ~1)))])
    out.push(Buffer.from(b.toString('utf16le')));
  for (const text of out.map((b) => b.toString('latin1')))
    for (const run of text.match(/[A-Za-z2-7]{16,}=*/g) ?? []) for (let skip = 0; skip < 8; skip++) out.push(fromBase32(run.slice(skip)));
  return out;
}

function leakIn(body: Buffer): string | undefined {
  for (const reading of readings(body)) {
    const found = findLeak(reading, CANARY);
    if (found !== undefined) return found;
  }
  return undefined;
}

const echo = (auth: string) => Buffer.from(JSON.stringify({ received: auth, message: `you sent ${auth}` }));

/** A plain text the size of a download, compressible, with no secret in it. */
const CLEAN = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `line ${i}: nothing to see here\n`).join(''));

describe('the leak guard on what a client decodes: gzip without Content-Encoding, UTF-16, base32', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;

  const handler = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = new URL(req.url ?? '/', 'https://upstream');
    const auth = req.headers.authorization ?? '';
    const type = url.searchParams.get('type') ?? 'application/octet-stream';
    const send = (body: Buffer, sized = url.searchParams.get('chunked') === null) => {
      const headers: Record<string, string> = {};
      if (type !== 'none') headers['content-type'] = type;
      if (sized) headers['content-length'] = String(body.length);
      res.writeHead(200, headers);
      if (sized) return void res.end(body);
      // In pieces, as a download comes.
      for (let at = 0; at < body.length; at += 16 * 1024) res.write(body.subarray(at, at + 16 * 1024));
      res.end();
    };
    switch (url.pathname) {
      case '/gzip-file':
        send(gzipSync(echo(auth)));
        return true;
      case '/gzip-big': {
        // A 1.2 MiB text with the echo near its end, gzipped: the secret far from the first bytes.
        send(gzipSync(Buffer.concat([CLEAN, echo(auth)])));
        return true;
      }
      case '/gzip-clean':
        send(gzipSync(CLEAN));
        return true;
      case '/utf16': {
        const order = url.searchParams.get('order');
        const bom = url.searchParams.get('bom') === '1';
        let body = Buffer.from(`${bom ? '\ufeff' : ''}${echo(auth).toString('utf8')}`, 'utf16le');
        if (order === 'be') body = body.swap16();
        send(body);
        return true;
      }
      case '/base32': {
        const lower = url.searchParams.get('case') === 'lower';
        const pad = url.searchParams.get('pad') !== '0';
        const what = url.searchParams.get('what') ?? 'token';
        const encode = (b: Buffer) => {
          const e = base32(b);
          return (pad ? e : e.replace(/=+$/, ''))[lower ? 'toLowerCase' : 'toUpperCase']();
        };
        const token = auth.slice('Bearer '.length);
        const blobs =
          what === 'token'
            ? [encode(Buffer.from(token)), encode(Buffer.from(auth))]
            : ['', 'x', 'xy', 'xyz', 'wxyz'].map((pre) => encode(Buffer.from(`${pre}{"authorization":"${auth}"}`)));
        send(Buffer.from(JSON.stringify({ blobs })));
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

  /** A GET through keyway: the status and every byte that came (a cut body: what came before the cut), and the audit line. */
  async function get(path: string) {
    const before = proxy.auditLines().length;
    const res = await request(url(path), { dispatcher, signal: AbortSignal.timeout(slack(20_000)) });
    const chunks: Buffer[] = [];
    let cut = false;
    try {
      for await (const chunk of res.body) chunks.push(chunk as Buffer);
    } catch {
      cut = true;
    }
    const body = Buffer.concat(chunks);
    const auditPath = path.split('?')[0];
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .slice(before)
          .findLast((l) => l['grant'] === 'api' && l['path'] === auditPath),
      `the audit line for ${path}`,
    );
    return { status: res.statusCode, headers: res.headers, body, cut, line };
  }

  it('the test’s own decoding finds the canary in each form the upstream sends, read directly (the checker can fail)', async () => {
    for (const body of [
      gzipSync(echo(AUTH)),
      Buffer.from(echo(AUTH).toString('utf8'), 'utf16le').swap16(),
      Buffer.from(base32(Buffer.from(CANARY)).toLowerCase().replace(/=+$/, '')),
      Buffer.from(base32(Buffer.from(`xyz{"a":"${AUTH}"}`))),
    ])
      expect(leakIn(body)).toBeDefined();
  });

  it.each([
    ['application/octet-stream', 'sized'],
    ['application/gzip', 'chunked'],
    ['text/plain', 'sized'],
    ['none', 'sized'],
  ])('a gzip file typed %s (%s) that holds the secret is refused or cut before it leaves', async (type, framing) => {
    const r = await get(`/gzip-file?type=${encodeURIComponent(type)}${framing === 'chunked' ? '&chunked=1' : ''}`);
    expect(leakIn(r.body)).toBeUndefined();
    // Refused before its head (a small text read whole: 502), or cut after it (streamed).
    expect(r.status === 502 || r.cut).toBe(true);
    expect(r.line['code']).toBe('upstream_unreachable');
    expect(String(r.line['message'])).toMatch(/gzip file/);
    expect(r.line['leak_redacted']).toBeGreaterThanOrEqual(1);
  });

  it('a gzip download with the secret near its end is cut before the bytes that hold it leave', async () => {
    const r = await get('/gzip-big?chunked=1');
    expect(r.cut).toBe(true);
    expect(leakIn(r.body)).toBeUndefined();
  });

  it('control: a gzip file with no secret reaches the client byte for byte (its checksum holds), streamed or whole', async () => {
    const expected = createHash('sha256').update(gzipSync(CLEAN)).digest('hex');
    for (const path of ['/gzip-clean?chunked=1', '/gzip-clean', '/gzip-clean?type=text/plain']) {
      const r = await get(path);
      expect(r.status, path).toBe(200);
      expect(r.cut, path).toBe(false);
      expect(createHash('sha256').update(r.body).digest('hex'), path).toBe(expected);
    }
  });

  it('curl saving a gzip file that holds the secret gets none of it', async () => {
    const env = cleanEnv({ HTTPS_PROXY: proxy.url, CURL_CA_BUNDLE: proxy.bundlePath });
    const file = join(mkdtempSync(join(tmpdir(), 'keyway-gz-')), 'echo.gz');
    const r = await curl(['-s', '-o', file, url('/gzip-file?type=application/gzip&chunked=1')], env);
    expect(r.code).not.toBe(0); // cut: curl says the transfer ended early
    expect(leakIn(existsSync(file) ? readFileSync(file) : Buffer.alloc(0))).toBeUndefined();
  });

  it.each([
    ['le', '1'],
    ['le', '0'],
    ['be', '1'],
    ['be', '0'],
  ])('UTF-16 %s (byte-order mark: %s) is redacted', async (order, bom) => {
    for (const type of ['application/json; charset=utf-16', 'application/octet-stream']) {
      const r = await get(`/utf16?order=${order}&bom=${bom}&type=${encodeURIComponent(type)}`);
      expect(r.status).toBe(200);
      expect(leakIn(r.body), type).toBeUndefined();
      expect(r.line['leak_redacted']).toBe(2);
    }
  });

  it.each([
    ['upper', '1'],
    ['upper', '0'],
    ['lower', '1'],
    ['lower', '0'],
  ])('base32 in %s case (padded: %s), the token alone and the whole header, is redacted', async (letterCase, pad) => {
    const r = await get(`/base32?case=${letterCase}&pad=${pad}&type=application/json`);
    expect(r.status).toBe(200);
    expect(leakIn(r.body)).toBeUndefined();
    expect(r.line['leak_redacted']).toBeGreaterThanOrEqual(2);
  });

  it.each(['upper', 'lower'])('base32 (%s case) of a larger blob holding the header, at each of five alignments, is redacted', async (letterCase) => {
    const r = await get(`/base32?what=blob&case=${letterCase}&type=application/json`);
    expect(r.status).toBe(200);
    expect(leakIn(r.body)).toBeUndefined();
    expect(r.line['leak_redacted']).toBeGreaterThanOrEqual(5);
  });
});
