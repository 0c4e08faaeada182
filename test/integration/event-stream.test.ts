// EventStream (src/admin/event-stream.ts) on a real HTTP server on loopback, with the timings made
// short: the `retry:` and heartbeat comments a client sees, and a reader that stops reading being
// cut off once its backlog passes the bound (rather than keyway buffering without end).
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { EventStream } from '../../src/admin/event-stream.ts';
import { openEventStream } from '../helpers/event-stream.ts';

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

async function serve(onStream: (stream: EventStream) => void, options = { heartbeatMs: 40, retryMs: 1234, maxBacklogBytes: 64 * 1024 }): Promise<string> {
  server = createServer((_req, res) => onStream(new EventStream(res, options)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('EventStream', () => {
  it('sends retry first, then heartbeat comments, then events with their ids', async () => {
    let stream: EventStream | undefined;
    const url = await serve((s) => (stream = s));
    const client = await openEventStream(url, {});
    expect(client.status).toBe(200);
    expect(client.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    await new Promise((r) => setTimeout(r, 200));
    expect(client.retry).toBe(1234);
    expect(client.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThanOrEqual(2);
    stream!.send('audit', '7', '{"seq":7}');
    expect(await client.next(() => true, 1_000)).toEqual({ event: 'audit', id: '7', data: '{"seq":7}' });
    stream!.end();
    await client.ended;
    expect(stream!.endedBy).toBe('server');
  });

  it('cuts off a reader that does not read once the backlog passes the bound', async () => {
    let stream: EventStream | undefined;
    const url = new URL(await serve((s) => (stream = s)));
    const socket = connect(Number(url.port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(`GET / HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    socket.pause();
    const closed = once(socket, 'close');
    const deadline = Date.now() + 5_000;
    while (stream === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const line = JSON.stringify({ pad: 'x'.repeat(1000) });
    // Far more than the socket buffers hold, in steps, so the kernel buffers fill between them.
    for (let i = 0; i < 400 && !stream!.ended; i++) {
      for (let j = 0; j < 100; j++) stream!.send('audit', String(i * 100 + j), line);
      await new Promise((r) => setImmediate(r));
    }
    expect(stream!.endedBy).toBe('stalled');
    socket.resume();
    await closed;
  });

  it('is over at once when the client left before the stream was set up', async () => {
    let stream: EventStream | undefined;
    server = createServer((req, res) => {
      req.socket.destroy();
      setImmediate(() => (stream = new EventStream(res)));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`).catch(() => undefined);
    const deadline = Date.now() + 2_000;
    while (stream === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await stream!.closed;
    expect(stream!.endedBy).toBe('client');
  });
});
