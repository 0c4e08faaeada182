import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, request as directRequest, type Server } from 'node:https';
import type { AddressInfo, connect as netConnect } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { canaryForms, findLeak } from '../helpers/leak-canary.ts';
import { openTunnel } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// The secret handed out in pieces or in forms that once passed the leak guard: an upstream that
// honours Range over an echo (each window holds part of the secret, none a whole needle), base64
// wrapped in lines as MIME, PEM and GitHub's contents API wrap it, every byte percent-encoded,
// every character \u-escaped, a secret with a quote or a backslash inside a JSON string, and the
// secret in a response header's name. Over HTTP/1.1, HTTP/2 and WebSocket messages.

/** A secret with the characters a JSON string escapes (and a slash, which some encoders escape too). */
const AWKWARD = 'kw"canary\\7f/3a9c+1e=5b2d';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The echo cut into windows: `{"received":"Bearer <secret>",...}`, the secret from byte 20 to 42. */
const rangeBody = (auth: string) => Buffer.from(`{"received":"${auth}","note":"an echo the upstream lets you fetch in windows"}`);
const SECRET_AT = 20;

/** base64 wrapped as an encoder does: a break after every `width` characters. */
const wrap = (b64: string, width: number, eol: string) => b64.replace(new RegExp(`.{${width}}(?=.)`, 'g'), `$&${eol}`);

/** The secret in the form `name`, as the upstream writes it into a body (test/helpers/leak-canary.ts names). */
function encodeForm(secret: string, name: string): string {
  const wrapped = /^(MIME|PEM|GitHub)@(\d)$/.exec(name);
  if (wrapped) {
    // The secret inside a JSON document wrapped whole in base64, placed so that the first line
    // break falls 12 characters into its encoding, at each of the three byte alignments.
    const [width, eol] = { MIME: [76, '\r\n'], PEM: [64, '\n'], GitHub: [60, '\n'] }[wrapped[1] as 'MIME' | 'PEM' | 'GitHub'] as [number, string];
    const before = `{"authorization":"Bearer `;
    const pad = Math.ceil(((width - 12) * 6) / 8) - before.length + Number(wrapped[2]);
    const blob = Buffer.from(`${'x'.repeat(pad)}${before}${secret}"}`);
    return wrap(blob.toString('base64'), width, eol);
  }
  return canaryForms(secret)[name]!;
}

async function startPiecesUpstream(): Promise<{ port: number; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    const url = new URL(req.url ?? '/', 'https://upstream');
    const auth = req.headers.authorization ?? '';
    const secret = auth.slice('Bearer '.length);
    switch (url.pathname) {
      case '/range': {
        // Honours a single Range (bytes=a-b) over the echo, as a static file server would.
        const body = rangeBody(auth);
        const type = url.searchParams.get('type') ?? 'application/json';
        const m = /^bytes=(\d+)-(\d*)$/.exec(String(req.headers.range ?? ''));
        if (!m) {
          res.writeHead(200, { 'content-type': type, 'content-length': String(body.length), 'accept-ranges': 'bytes' }).end(body);
          return;
        }
        const start = Number(m[1]);
        const end = Math.min(m[2] ? Number(m[2]) : body.length - 1, body.length - 1);
        const part = body.subarray(start, end + 1);
        res.writeHead(206, { 'content-type': type, 'content-length': String(part.length), 'content-range': `bytes ${start}-${end}/${body.length}` }).end(part);
        return;
      }
      case '/form': {
        // The secret in one form, the body written in two parts `cut` bytes in, 20 ms apart.
        const text = Buffer.from(`{"echo":"${encodeForm(secret, url.searchParams.get('name') ?? 'raw')}","ok":true}\n`);
        const cut = Number(url.searchParams.get('cut') ?? 0) % text.length;
        res.writeHead(200, { 'content-type': url.searchParams.get('type') ?? 'text/plain' });
        res.write(text.subarray(0, cut));
        const timer = setTimeout(() => res.end(text.subarray(cut)), 20);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      case '/headers': {
        const forms = canaryForms(secret);
        const headers: Record<string, string> = { 'content-length': '0' };
        for (const name of ['percent, every byte', 'percent, every byte, lower', 'unicode escapes', 'unicode escapes, upper', 'json string']) {
          headers[`x-${name.replace(/\W+/g, '-')}`] = `token=${forms[name]}`;
        }
        // The secret as a header's name, where it is a token (RFC 9110 5.1).
        if (/^[\w-]+$/.test(secret)) headers[`x-echo-${secret}`] = 'seen';
        res.writeHead(200, headers).end();
        return;
      }
      default:
        res.writeHead(404).end();
    }
  };
  const server: Server = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, onRequest);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const secret = (req.headers.authorization ?? '').slice('Bearer '.length);
    wss.handleUpgrade(req, socket, head, (ws) => {
      // A window pair (the secret cut after 9 characters), then encoded forms, the \u one
      // fragmented mid-needle into two frames.
      ws.send(`window one: Bearer ${secret.slice(0, 9)}`);
      ws.send(`${secret.slice(9)} was window two`);
      ws.send(`pct ${canaryForms(secret)['percent, every byte']}`);
      const unicode = canaryForms(secret)['unicode escapes, upper']!;
      ws.send(`u ${unicode.slice(0, 50)}`, { fin: false });
      ws.send(`${unicode.slice(50)} end`, { fin: true });
      ws.send(encodeForm(secret, 'GitHub@1'));
      ws.send('done');
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the leak guard on a secret handed out in pieces or in other encodings', () => {
  let upstream: Awaited<ReturnType<typeof startPiecesUpstream>>;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  let keywayCa: string;
  const authority = (host = 'api.example.test') => `${host}:${upstream.port}`;

  beforeAll(async () => {
    upstream = await startPiecesUpstream();
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'awkward', type: 'bearer', domains: ['other.example.test'], secret: AWKWARD },
      ],
    });
    keywayCa = readFileSync(proxy.caPath, 'utf8');
    dispatcher = new ProxyAgent({ uri: proxy.url, requestTls: { ca: keywayCa } });
  });

  afterAll(async () => {
    await dispatcher?.close().catch(() => undefined);
    await proxy?.stop();
    await upstream?.close();
  });

  async function get(path: string, headers: Record<string, string> = {}, host?: string) {
    const res = await request(`https://${authority(host)}${path}`, { dispatcher, headers, signal: AbortSignal.timeout(slack(10_000)) });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  /** The same window straight from the upstream (its CA trusted), for the check that it does give the secret away. */
  function direct(path: string, range: string): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const req = directRequest(
        {
          host: '127.0.0.1',
          port: upstream.port,
          path,
          servername: 'api.example.test',
          ca: TLS_FIXTURES.ca,
          headers: { authorization: `Bearer ${CANARY}`, range },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve(Buffer.concat(chunks)));
        },
      );
      req.on('error', reject);
      req.end();
    });
  }

  const total = rangeBody(`Bearer ${CANARY}`).length;
  // Cuts inside the secret (and at its edges): each window pair holds all of it between them.
  const cuts = Array.from({ length: CANARY.length + 1 }, (_, i) => SECRET_AT + i - 1);

  it('honours Range in the test upstream: two windows joined, fetched directly, do give the secret', async () => {
    const joined = Buffer.concat([await direct('/range', 'bytes=0-25'), await direct('/range', `bytes=26-${total - 1}`)]);
    expect(findLeak(joined, CANARY)).toBe('raw');
  });

  it.each(['application/json', 'application/octet-stream'])(
    'over HTTP/1.1, two Range windows (%s) joined never give the secret, wherever the cut falls',
    async (type) => {
      for (const cut of cuts) {
        const first = await get(`/range?type=${encodeURIComponent(type)}`, { range: `bytes=0-${cut}` });
        const second = await get(`/range?type=${encodeURIComponent(type)}`, { range: `bytes=${cut + 1}-${total - 1}` });
        // 206 while keyway passes Range on; 200 (the whole echo, redacted) if it drops Range on
        // the requests it injects into: the windows must not give the secret either way.
        expect([200, 206]).toContain(first.status);
        expect([200, 206]).toContain(second.status);
        const joined = Buffer.concat([first.body, second.body]);
        expect(findLeak(joined, CANARY), `cut after byte ${cut}`).toBeUndefined();
        // Nothing else is touched: the text around the secret arrives as it was.
        expect(joined.toString()).toMatch(/^\{"received":"Bearer .*","note":"an echo the upstream lets you fetch in windows"\}$/);
      }
    },
  );

  it('over HTTP/2, two Range windows joined never give the secret', async () => {
    const session = await h2ThroughProxy(proxy.port, authority(), proxy.caPath);
    try {
      for (const cut of [25, 29, 33]) {
        const windows = [];
        for (const range of [`bytes=0-${cut}`, `bytes=${cut + 1}-${total - 1}`]) {
          const r = await h2Request(session, { ':method': 'GET', ':path': '/range', range });
          expect([200, 206]).toContain(r.headers[':status']);
          windows.push(r.body);
        }
        expect(findLeak(Buffer.concat(windows), CANARY), `cut after byte ${cut}`).toBeUndefined();
      }
    } finally {
      session.close();
    }
  });

  const FORMS = ['MIME@0', 'MIME@1', 'MIME@2', 'PEM@0', 'PEM@1', 'PEM@2', 'GitHub@0', 'GitHub@1', 'GitHub@2'];
  const ESCAPES = ['percent, every byte', 'percent, every byte, lower', 'unicode escapes', 'unicode escapes, upper'];

  it('puts a line break inside the secret in each wrapped form (the check sees the secret across it)', () => {
    for (const name of FORMS) expect(findLeak(encodeForm(CANARY, name), CANARY), name).toMatch(/across line breaks$/);
  });

  it.each([...FORMS, ...ESCAPES])('redacts the secret echoed as %s, the body cut in two anywhere', async (name) => {
    for (const cut of [0, 15, 40, 77, 101, 130]) {
      const r = await get(`/form?name=${encodeURIComponent(name)}&cut=${cut}`);
      expect(r.status).toBe(200);
      expect(findLeak(r.body, CANARY), `cut at ${cut}`).toBeUndefined();
      expect(r.body.toString()).toContain('[redacted by keyway]');
    }
  });

  it.each(['json string', 'json string, slashes', 'percent, every byte', 'unicode escapes'])(
    'redacts a secret with a quote and a backslash echoed as %s',
    async (name) => {
      for (const type of ['application/json', 'application/octet-stream']) {
        const r = await get(`/form?name=${encodeURIComponent(name)}&cut=12&type=${encodeURIComponent(type)}`, {}, 'other.example.test');
        expect(r.status).toBe(200);
        expect(findLeak(r.body, AWKWARD)).toBeUndefined();
        expect(r.body.toString()).toMatch(type === 'application/json' ? /^\{"echo":"\[redacted by keyway\]","ok":true\}\n$/ : /^\{"echo":"\*+","ok":true\}\n$/);
      }
    },
  );

  it('redacts these forms in response header values, and drops a header whose name is the secret', async () => {
    for (const [host, secret] of [
      ['api.example.test', CANARY],
      ['other.example.test', AWKWARD],
    ] as const) {
      const r = await get('/headers', {}, host);
      expect(r.status, r.body.toString()).toBe(200);
      expect(findLeak(JSON.stringify(r.headers), secret)).toBeUndefined();
      for (const name of ['x-percent-every-byte', 'x-percent-every-byte-lower', 'x-unicode-escapes', 'x-unicode-escapes-upper']) {
        expect(r.headers[name]).toBe('token=[redacted by keyway]');
      }
    }
    const r = await get('/headers');
    expect(Object.keys(r.headers).filter((n) => n.startsWith('x-echo'))).toEqual([]);
  });

  it('masks a window pair and the encoded forms in WebSocket messages', async () => {
    const tunnel = await openTunnel(proxy.port, authority());
    const received: Buffer[] = [];
    const ws = new WebSocket(`wss://${authority()}/ws`, {
      createConnection: (() => {
        const tls = tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa });
        tls.on('data', (c: Buffer) => received.push(c));
        return tls;
      }) as unknown as typeof netConnect,
    });
    ws.on('error', () => undefined);
    const messages: string[] = [];
    ws.on('message', (data: Buffer) => messages.push(data.toString()));
    await waitFor(() => (messages.includes('done') ? true : undefined), 'the last message', 5_000);
    ws.terminate();
    await sleep(10);
    expect(messages).toHaveLength(6);
    expect(messages[0]).toBe(`window one: Bearer ${'*'.repeat(9)}`);
    expect(messages[1]).toBe(`${'*'.repeat(CANARY.length - 9)} was window two`);
    expect(findLeak(messages.join(''), CANARY)).toBeUndefined();
    expect(findLeak(Buffer.concat(received), CANARY)).toBeUndefined();
  });

  it('never writes the secret to the app log or the audit file', () => {
    for (const text of [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')]) {
      expect(findLeak(text, CANARY)).toBeUndefined();
      expect(findLeak(text, AWKWARD)).toBeUndefined();
    }
  });
});
