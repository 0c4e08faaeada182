import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, connect as netConnect, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { exchange, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';

// The leak guard on the upgrade path. An ordinary GET carrying `Connection: Upgrade` and
// `Upgrade: websocket` used to take a raw pipe: whatever the upstream answered other than 101 (an
// echo, an error page quoting the Authorization header) reached the agent unredacted, with no
// leak_redacted in the audit line. Now only a real WebSocket handshake takes the upgrade path, a
// non-101 answer to it is redacted like any response, and after a 101 the frames from upstream
// are scanned (the secret masked with as many '*', so frames keep their length).

const AUTH = `Bearer ${CANARY}`;
const REDACTED = '[redacted by keyway]';
const MASKED = '*'.repeat(CANARY.length);
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY = Buffer.alloc(16, 7).toString('base64');

/** An unmasked server frame. */
function frame(opcode: number, payload: Buffer | string, fin = true): Buffer {
  const body = Buffer.from(payload);
  if (body.length >= 126) throw new Error('test frames stay under 126 bytes');
  return Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, body.length]), body]);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface SeenUpgrade {
  url: string;
  headers: IncomingMessage['headers'];
  /** Whether the request reached the upstream as an upgrade (its 'upgrade' event) or a plain request. */
  asUpgrade: boolean;
}

/**
 * A focused upstream: plain routes that answer an upgrade request with something else than 101,
 * and WebSocket routes that write frames by hand (split where the test wants) or through `ws`.
 */
async function startWsUpstream(): Promise<{ port: number; seen: SeenUpgrade[]; close: () => Promise<void> }> {
  const seen: SeenUpgrade[] = [];
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: { threshold: 0 } });
  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    seen.push({ url: req.url ?? '', headers: req.headers, asUpgrade: false });
    const auth = req.headers.authorization ?? '';
    req.resume();
    switch (new URL(req.url ?? '/', 'https://upstream').pathname) {
      case '/upgrade-echo': {
        // An echo endpoint that ignores the upgrade: 200 with the request headers.
        const text = JSON.stringify({ headers: req.headers });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }).end(text);
        return;
      }
      case '/upgrade-refused': {
        // A 400 page quoting the header, in a response header and in an HTML body, chunked.
        res.writeHead(400, { 'content-type': 'text/html', 'www-authenticate': `Bearer error="invalid_request", token="${auth.slice(7)}"` });
        res.end(`<html><body>Bad upgrade. You sent: <code>${auth}</code></body></html>`);
        return;
      }
      case '/upgrade-refused-gzip': {
        const body = gzipSync(`{"error":"no websocket here","authorization":"${auth}"}`);
        res.writeHead(401, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': String(body.length) }).end(body);
        return;
      }
      default:
        res.writeHead(404).end();
    }
  };
  const server: Server = createServer(
    {
      cert: TLS_FIXTURES.cert,
      key: TLS_FIXTURES.key,
      // The plain routes answer upgrade requests as ordinary ones (an API that ignores the header).
      shouldUpgradeCallback: (req) => (req.url ?? '').startsWith('/ws'),
    },
    onRequest,
  );
  const upgraded = new Set<Duplex>();
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push({ url: req.url ?? '', headers: req.headers, asUpgrade: true });
    upgraded.add(socket);
    socket.once('close', () => upgraded.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.once('end', () => socket.end());
    const auth = req.headers.authorization ?? '';
    if (req.url === '/ws-deflate') {
      wss.handleUpgrade(req, socket, head, (ws) => ws.send(`deflate? you sent ${auth}`));
      return;
    }
    socket.resume(); // what the agent sends (pongs, its close frame) is read and dropped
    const accept = createHash('sha1')
      .update(`${String(req.headers['sec-websocket-key'])}${WS_GUID}`)
      .digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    const cut = auth.indexOf(CANARY) + 9;
    void (async () => {
      switch (req.url) {
        case '/ws-text':
          socket.write(frame(1, `hello, you sent ${auth}`));
          break;
        case '/ws-split': {
          // One text message in three frames, the secret cut across the first two, a ping
          // between them, and the first frame itself written in two TCP pieces mid-secret.
          const first = frame(1, `part one: ${auth.slice(0, cut)}`, false);
          socket.write(first.subarray(0, first.length - 4));
          await sleep(30);
          socket.write(first.subarray(first.length - 4));
          await sleep(30);
          socket.write(frame(9, 'are you there'));
          await sleep(30);
          socket.write(frame(0, `${auth.slice(cut)} and more`, false));
          await sleep(30);
          socket.write(frame(0, ' end', true));
          break;
        }
        case '/ws-binary':
          socket.write(
            frame(2, Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(CANARY), Buffer.from([0xff]), Buffer.from(Buffer.from(CANARY).toString('hex'))])),
          );
          break;
        case '/ws-rsv1': {
          // A "compressed" frame (RSV1) though no extension was agreed: unreadable, so never relayed.
          const f = frame(1, `you sent ${auth}`);
          f[0] = f[0]! | 0x40;
          socket.write(f);
          break;
        }
        case '/ws-close':
          // A server closing: its close frame, then the TCP connection.
          socket.end(frame(8, Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from(`bad ${auth}`)])));
          break;
      }
    })();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      // Upgraded sockets are the server's no more: closeAllConnections does not reach them.
      for (const socket of upgraded) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('the leak guard on WebSocket upgrades', () => {
  let upstream: Awaited<ReturnType<typeof startWsUpstream>>;
  let proxy: TestProxy;
  let keywayCa: string;
  let authority: string;

  beforeAll(async () => {
    upstream = await startWsUpstream();
    proxy = await startProxy({ grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    keywayCa = readFileSync(proxy.caPath, 'utf8');
    authority = `api.example.test:${upstream.port}`;
  });

  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const auditLine = (path: string) => waitFor(() => proxy.auditLines().find((l) => l['path'] === path), `the audit line for ${path}`);

  /** A request written by hand on TLS through the tunnel; everything the client got, raw. */
  async function rawRequest(text: string): Promise<{ raw: string; tls: TLSSocket }> {
    const tls = await startTls(await openTunnel(proxy.port, authority), 'api.example.test', keywayCa);
    tls.on('error', () => undefined);
    return { raw: await exchange(tls, text), tls };
  }

  const handshake = (path: string, extra = '') =>
    `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n${extra}\r\n`;

  it('redacts a 200 echo answered to a real WebSocket handshake, and counts it in the audit line', async () => {
    const { raw } = await rawRequest(handshake('/upgrade-echo'));
    expect(findLeak(raw, CANARY)).toBeUndefined();
    const r = parseResponse(raw);
    expect(r.status).toBe(200);
    const echo = JSON.parse(r.body) as { headers: Record<string, string> };
    expect(echo.headers['authorization']).toBe(`Bearer ${REDACTED}`);
    expect(upstream.seen.findLast((s) => s.url === '/upgrade-echo')?.headers.authorization).toBe(AUTH);
    const line = await auditLine('/upgrade-echo');
    expect(line['decision']).toBe('inject');
    expect(line['status']).toBe(200);
    expect(line['leak_redacted']).toBe(1);
  });

  it('redacts a 400 that quotes the header in a response header and a chunked HTML body', async () => {
    const { raw } = await rawRequest(handshake('/upgrade-refused'));
    expect(findLeak(raw, CANARY)).toBeUndefined();
    const r = parseResponse(raw);
    expect(r.status).toBe(400);
    expect(r.headers['www-authenticate']).toBe(`Bearer error="invalid_request", token="${REDACTED}"`);
    expect(r.body).toBe(`<html><body>Bad upgrade. You sent: <code>Bearer ${REDACTED}</code></body></html>`);
    expect((await auditLine('/upgrade-refused'))['leak_redacted']).toBe(2);
  });

  it('decodes and redacts a gzip-encoded refusal, as the ws client sees it', async () => {
    const tunnel = await openTunnel(proxy.port, authority);
    const ws = new WebSocket(`wss://${authority}/upgrade-refused-gzip`, {
      createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa })) as unknown as typeof netConnect,
    });
    ws.on('error', () => undefined);
    const [, res] = (await Promise.race([once(ws, 'unexpected-response'), sleep(5_000).then(() => [])])) as [unknown, IncomingMessage];
    expect(res?.statusCode).toBe(401);
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(JSON.parse(body.toString())).toEqual({ error: 'no websocket here', authorization: `Bearer ${REDACTED}` });
    expect(findLeak(body, CANARY)).toBeUndefined();
    ws.terminate();
    expect((await auditLine('/upgrade-refused-gzip'))['leak_redacted']).toBe(1);
  });

  it('sends a request with upgrade headers but no real handshake down the normal path: upgrade headers dropped, answer redacted, connection kept', async () => {
    const tls = await startTls(await openTunnel(proxy.port, authority), 'api.example.test', keywayCa);
    tls.on('error', () => undefined);
    const received: Buffer[] = [];
    tls.on('data', (c: Buffer) => received.push(c));
    // No Sec-WebSocket-Key: not a WebSocket handshake. Then a second request on the same connection.
    tls.write(`GET /upgrade-echo?n=1 HTTP/1.1\r\nHost: ${authority}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
    await waitFor(() => (Buffer.concat(received).toString().includes('"headers"') ? true : undefined), 'the first answer');
    tls.write(
      `GET /upgrade-echo?n=2 HTTP/1.1\r\nHost: ${authority}\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n`,
    );
    await waitFor(
      () => (upstream.seen.some((s) => s.url === '/upgrade-echo?n=2') && Buffer.concat(received).toString().split('"headers"').length === 3 ? true : undefined),
      'the second answer',
    );
    tls.destroy();
    const all = Buffer.concat(received);
    expect(findLeak(all, CANARY)).toBeUndefined();
    expect(all.toString().split(`Bearer ${REDACTED}`).length).toBe(3);
    for (const n of [1, 2]) {
      const seen = upstream.seen.find((s) => s.url === `/upgrade-echo?n=${n}`)!;
      expect(seen.asUpgrade).toBe(false);
      expect(seen.headers.upgrade).toBeUndefined();
      expect(seen.headers.authorization).toBe(AUTH);
    }
    // The lines are written as each response closes, through the audit queue: waited for, not read at once.
    const redacted = () => proxy.auditLines().filter((l) => l['path'] === '/upgrade-echo' && l['leak_redacted'] === 1);
    await waitFor(() => (redacted().length >= 2 ? true : undefined), 'both audit lines').catch(() => undefined);
    const lines = redacted();
    expect(lines.length).toBeGreaterThanOrEqual(2);
  });

  /** A ws client through keyway, with every decrypted byte it received kept for the leak check. */
  async function openWs(
    path: string,
  ): Promise<{ ws: WebSocket; raw: () => Buffer; messages: Array<{ data: Buffer; binary: boolean }>; closed: Promise<{ code: number; reason: string }> }> {
    const tunnel: Socket = await openTunnel(proxy.port, authority);
    const received: Buffer[] = [];
    const ws = new WebSocket(`wss://${authority}${path}`, {
      createConnection: (() => {
        const tls = tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa });
        tls.on('data', (c: Buffer) => received.push(c));
        return tls;
      }) as unknown as typeof netConnect,
    });
    const messages: Array<{ data: Buffer; binary: boolean }> = [];
    ws.on('message', (data: Buffer, binary: boolean) => messages.push({ data, binary }));
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })),
    );
    await Promise.race([
      once(ws, 'open'),
      once(ws, 'error').then(([err]) => Promise.reject(err as Error)),
      sleep(5_000).then(() => Promise.reject(new Error('no open in 5 s'))),
    ]);
    return { ws, raw: () => Buffer.concat(received), messages, closed };
  }

  it('masks the secret in a text frame after a 101, and counts it', async () => {
    const { ws, raw, messages } = await openWs('/ws-text');
    await waitFor(() => (messages.length >= 1 ? true : undefined), 'the text message');
    ws.terminate();
    expect(messages[0]!.data.toString()).toBe(`hello, you sent Bearer ${MASKED}`);
    expect(findLeak(raw(), CANARY)).toBeUndefined();
    const line = await auditLine('/ws-text');
    expect(line['status']).toBe(101);
    expect(line['leak_redacted']).toBe(1);
  });

  it('masks a secret split across continuation frames and TCP chunks, with a ping between fragments', async () => {
    const { ws, raw, messages } = await openWs('/ws-split');
    await waitFor(() => (messages.length >= 1 ? true : undefined), 'the fragmented message');
    ws.terminate();
    expect(messages.map((m) => m.data.toString())).toEqual([`part one: Bearer ${MASKED} and more end`]);
    expect(findLeak(raw(), CANARY)).toBeUndefined();
    expect((await auditLine('/ws-split'))['leak_redacted']).toBe(1);
  });

  it('masks the secret and its hex form in a binary frame, and in a close reason', async () => {
    const bin = await openWs('/ws-binary');
    await waitFor(() => (bin.messages.length >= 1 ? true : undefined), 'the binary message');
    bin.ws.terminate();
    expect(bin.messages[0]!.binary).toBe(true);
    expect(
      bin.messages[0]!.data.equals(
        Buffer.concat([Buffer.from([0, 1, 2]), Buffer.from(MASKED), Buffer.from([0xff]), Buffer.from('*'.repeat(CANARY.length * 2))]),
      ),
    ).toBe(true);
    expect(findLeak(bin.raw(), CANARY)).toBeUndefined();
    expect((await auditLine('/ws-binary'))['leak_redacted']).toBe(2);

    const closing = await openWs('/ws-close');
    const { code, reason } = await Promise.race([closing.closed, sleep(5_000).then(() => ({ code: 0, reason: 'no close in 5 s' }))]);
    expect(code).toBe(4000);
    expect(reason).toBe(`bad Bearer ${MASKED}`);
    expect(findLeak(closing.raw(), CANARY)).toBeUndefined();
  });

  it('closes the connection on a frame it cannot read (RSV1 with no extension agreed), relaying none of it, and says so in the audit line', async () => {
    const { raw, messages, closed } = await openWs('/ws-rsv1');
    const { code } = await Promise.race([closed, sleep(5_000).then(() => ({ code: 0, reason: 'no close in 5 s' }))]);
    expect(code).toBe(1006); // abnormal closure: no close frame, the connection dropped
    expect(messages).toEqual([]);
    expect(findLeak(raw(), CANARY)).toBeUndefined();
    const line = await auditLine('/ws-rsv1');
    expect(line['code']).toBe('upstream_unreachable');
  });

  it('does not offer permessage-deflate upstream when it injects, so frames stay readable (and masked)', async () => {
    const { ws, raw, messages } = await openWs('/ws-deflate');
    await waitFor(() => (messages.length >= 1 ? true : undefined), 'the message');
    ws.terminate();
    const seen = upstream.seen.findLast((s) => s.url === '/ws-deflate')!;
    expect(seen.headers.authorization).toBe(AUTH);
    expect(seen.headers['sec-websocket-extensions']).toBeUndefined();
    expect(messages[0]!.data.toString()).toBe(`deflate? you sent Bearer ${MASKED}`);
    expect(findLeak(raw(), CANARY)).toBeUndefined();
  });

  it('never writes the secret to the app log or the audit file', () => {
    for (const text of [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')]) expect(findLeak(text, CANARY)).toBeUndefined();
  });
});
