import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { slack } from '../helpers/load.ts';
import { exchange, openConnect, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { closedWithin, openSlow, type SlowTarget } from '../helpers/slow-client.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Every phase of a client connection is bounded in time (proxy.timeouts), and a client that closes
// while keyway waits is let go at once. Before this, an idle CONNECT sat in CLOSE-WAIT forever and a
// few hundred of them took every file descriptor.

const SHORT = { first_byte: '300ms', handshake: '300ms', headers: '400ms', idle: '400ms', body_stall: '400ms', upstream: '5s' };
// Both bounds are about speed: on a busy machine timers fire late, so each is stretched by the load
// measured as the file starts (test/helpers/load.ts); 1.5 s and 1 s on an idle one.
/** A close counts as "at once" well under any default timeout (10 s and up): at most 8 s. */
const AT_ONCE_MS = slack(1_500, 8_000);
/** Timeout + this is the bound for a close on timeout (the issue asks for timeout + 1 s, idle). */
const SLACK_MS = slack(1_000, 5_000);

describe('timeouts on slow and vanishing clients', () => {
  let upstream: TestUpstream;
  let plain: TestUpstream;
  let short: TestProxy;
  let patient: TestProxy;
  let shortTarget: SlowTarget;
  const grants = () => [
    { id: 'api', type: 'bearer' as const, domains: ['api.example.test'], secret: CANARY },
    { id: 'plain', type: 'bearer' as const, domains: ['plain.example.test'], secret: CANARY, allow_http: true },
  ];

  beforeAll(async () => {
    upstream = await startUpstream();
    plain = await startUpstream({ tls: 'plain' });
    short = await startProxy({ config: { proxy: { timeouts: SHORT } }, grants: grants() });
    // Default timeouts (10 s and more): a close seen quickly here is the FIN handling, not a timer.
    patient = await startProxy({ grants: grants() });
    shortTarget = {
      proxyPort: short.port,
      authority: `api.example.test:${upstream.port}`,
      servername: 'api.example.test',
      ca: readFileSync(short.caPath, 'utf8'),
    };
  });
  afterAll(async () => {
    await short?.stop();
    await patient?.stop();
    await upstream?.close();
    await plain?.close();
  });

  const connectionsSettle = (p: TestProxy) =>
    waitFor(() => (p.running.connectionCount() === 0 ? true : undefined), 'keyway to hold no client connection', slack(3_000));

  describe('a client that closes while keyway waits is released at once', () => {
    it('after CONNECT, before any byte (no CLOSE-WAIT)', async () => {
      const { socket } = await openConnect(patient.port, `api.example.test:${upstream.port}`);
      socket.end();
      expect(await closedWithin(socket, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
      await connectionsSettle(patient);
    });

    it('during the TLS handshake', async () => {
      const raw = await openTunnel(patient.port, `api.example.test:${upstream.port}`);
      raw.write(Buffer.from([0x16, 0x03]));
      raw.end();
      expect(await closedWithin(raw, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
      await connectionsSettle(patient);
    });

    it('after CONNECT to an allow_http grant, before any plain HTTP byte', async () => {
      const { socket } = await openConnect(patient.port, `plain.example.test:${plain.port}`);
      socket.end();
      expect(await closedWithin(socket, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
      await connectionsSettle(patient);
    });

    it('with a partial request head inside TLS, and with plain HTTP inside the CONNECT', async () => {
      const target = { ...shortTarget, proxyPort: patient.port, ca: readFileSync(patient.caPath, 'utf8') };
      const tls = await openSlow('partial-head', target);
      tls.end();
      const { socket: plainSocket } = await openConnect(patient.port, `plain.example.test:${plain.port}`);
      plainSocket.write(`GET /echo HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\nX-Slow: `);
      plainSocket.end();
      expect(await closedWithin(tls, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
      expect(await closedWithin(plainSocket, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
      await connectionsSettle(patient);
    });

    it('from an idle blind tunnel', async () => {
      const tunnelled = await startUpstream({ tls: 'plain' });
      try {
        const sock = await openTunnel(patient.port, `tunnel.example.test:${tunnelled.port}`);
        sock.end();
        expect(await closedWithin(sock, AT_ONCE_MS)).toBeLessThan(AT_ONCE_MS);
        await connectionsSettle(patient);
      } finally {
        await tunnelled.close();
      }
    });

    it('a hundred idle CONNECTs that leave give back every descriptor', async () => {
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      const sockets = await Promise.all(
        Array.from({ length: 100 }, () => openConnect(patient.port, `api.example.test:${upstream.port}`).then((r) => r.socket)),
      );
      for (const s of sockets) s.end();
      await Promise.all(sockets.map((s) => closedWithin(s, slack(3_000))));
      await connectionsSettle(patient);
      // This process holds both ends; give the kernel a moment to hand back the last few.
      await waitFor(() => (fds() <= before + 2 ? true : undefined), 'descriptors back to where they were', slack(3_000));
    });
  });

  describe('a request head that never ends (headers) is answered and on record', () => {
    // headers shorter than body_stall and idle, as with the defaults (30 s against 60 s): the head's
    // own deadline is the one that fires.
    let headed: TestProxy;
    beforeAll(async () => {
      headed = await startProxy({ config: { proxy: { timeouts: { headers: '300ms', body_stall: '10s', idle: '10s' } } }, grants: grants() });
    });
    afterAll(async () => {
      await headed?.stop();
    });

    const unfinishedHead = async (socket: Socket, head: string) => {
      const received: Buffer[] = [];
      socket.on('data', (d: Buffer) => received.push(d));
      socket.write(head);
      expect(await closedWithin(socket, 300 + SLACK_MS + 1_000)).toBeLessThan(300 + SLACK_MS);
      return Buffer.concat(received).toString();
    };

    it('inside a CONNECT: 408 request_timeout, and an audit line naming the target', async () => {
      const { socket } = await openConnect(headed.port, `plain.example.test:${plain.port}`);
      const answer = await unfinishedHead(socket, `GET /echo HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\nX-Slow: `);
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      expect(answer).toMatch(/x-keyway-error: request_timeout/i);
      const line = await waitFor(
        () => headed.auditLines().find((l) => l['code'] === 'request_timeout' && l['host'] === 'plain.example.test'),
        'the audit line',
      );
      expect(line['decision']).toBe('deny');
    });

    it('on the listener itself: 408 request_timeout, and an audit line', async () => {
      const before = headed.auditLines().filter((l) => l['code'] === 'request_timeout').length;
      const socket = netConnect({ host: '127.0.0.1', port: headed.port });
      await once(socket, 'connect');
      const answer = await unfinishedHead(socket, 'GET http://plain.example.test/ HTTP/1.1\r\nX-Slow: ');
      expect(answer).toMatch(/^HTTP\/1\.1 408 [\s\S]*x-keyway-error: request_timeout/i);
      await waitFor(() => (headed.auditLines().filter((l) => l['code'] === 'request_timeout').length > before ? true : undefined), 'the audit line');
    });
  });

  describe('a client that sends nothing, or too little, is dropped after its timeout', () => {
    const cases = [
      ['an idle CONNECT (first_byte)', 'connect-idle', 300],
      ['a one-byte ClientHello (handshake)', 'partial-hello', 300],
      ['a request head that never ends (headers)', 'partial-head', 400],
      ['a request body that stops (body_stall)', 'stalled-body', 400],
      ['a kept-alive connection after a request (idle)', 'idle-keepalive', 400],
    ] as const;
    for (const [what, phase, timeoutMs] of cases) {
      it(what, async () => {
        const socket = await openSlow(phase, shortTarget);
        const took = await closedWithin(socket, timeoutMs + SLACK_MS + 2_000);
        expect(took).toBeGreaterThanOrEqual(timeoutMs - 100);
        expect(took).toBeLessThan(timeoutMs + SLACK_MS);
      });
    }

    it('plain HTTP inside a CONNECT to an allow_http grant, with no byte (first_byte)', async () => {
      const { socket } = await openConnect(short.port, `plain.example.test:${plain.port}`);
      expect(await closedWithin(socket, 300 + SLACK_MS)).toBeLessThan(300 + SLACK_MS);
    });

    it('plain HTTP inside a CONNECT, a head that never ends (headers)', async () => {
      const { socket } = await openConnect(short.port, `plain.example.test:${plain.port}`);
      socket.write(`GET /echo HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\nX-Slow: `);
      expect(await closedWithin(socket, 400 + SLACK_MS)).toBeLessThan(400 + SLACK_MS);
    });

    it('a client that stops reading a large response (body_stall)', async () => {
      const raw = await openTunnel(short.port, `api.example.test:${upstream.port}`);
      const tls = await startTls(raw, 'api.example.test', shortTarget.ca);
      tls.write(`GET /download?n=${256 * 1024 * 1024} HTTP/1.1\r\nHost: api.example.test:${upstream.port}\r\n\r\n`);
      tls.pause(); // never read: keyway's writes back up, then stop
      tls.on('error', () => undefined);
      // The client cannot see the close (the FIN waits behind the bytes it does not read): watch
      // keyway let go of the connection instead.
      await waitFor(() => (short.running.connectionCount() > 0 ? true : undefined), 'the download to start');
      const started = Date.now();
      await connectionsSettle(short).finally(() => tls.destroy());
      expect(Date.now() - started).toBeLessThan(400 + SLACK_MS + 1_000);
    });

    it('an idle kept-alive connection on the listener itself (idle), and a head that never ends there (headers)', async () => {
      const idle = netConnect({ host: '127.0.0.1', port: short.port });
      await new Promise((r) => idle.once('connect', r));
      idle.write(`GET http://plain.example.test:${plain.port}/echo HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\n\r\n`);
      await new Promise((r) => idle.once('data', r));
      const partial = netConnect({ host: '127.0.0.1', port: short.port });
      partial.write('GET http://plain.example.test/ HTTP/1.1\r\nX-Slow: ');
      const [a, b] = await Promise.all([closedWithin(idle, 400 + SLACK_MS + 1_000), closedWithin(partial, 400 + SLACK_MS + 1_000)]);
      expect(a).toBeLessThan(400 + SLACK_MS);
      expect(b).toBeLessThan(400 + SLACK_MS);
    });

    it('a WebSocket with no frame either way (idle), closed on both sides; one with frames outlasts it', async () => {
      const open = async () => {
        const tunnel = await openTunnel(short.port, shortTarget.authority);
        const ws = new WebSocket(`wss://${shortTarget.authority}/ws`, {
          createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: shortTarget.ca })) as unknown as typeof netConnect,
        });
        ws.on('error', () => undefined);
        await once(ws, 'open');
        await once(ws, 'message'); // the upstream's greeting: the authorization it saw
        return ws;
      };
      const quiet = await open();
      const started = performance.now();
      await once(quiet, 'close');
      expect(performance.now() - started).toBeLessThan(400 + SLACK_MS);
      // Frames every 100 ms for 1.2 s, three times idle: still open, every echo back.
      const busy = await open();
      try {
        for (let i = 0; i < 12; i++) {
          busy.send(`ping-${i}`);
          const [data] = await once(busy, 'message');
          expect(String(data)).toBe(`echo:ping-${i}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        expect(busy.readyState).toBe(WebSocket.OPEN);
      } finally {
        busy.terminate();
      }
    });

    it('a blind tunnel with no byte either way (idle), closed on both sides', async () => {
      const tunnelled = await startUpstream({ tls: 'plain' });
      try {
        const sock: Socket = await openTunnel(short.port, `tunnel.example.test:${tunnelled.port}`);
        expect(await closedWithin(sock, 400 + SLACK_MS)).toBeLessThan(400 + SLACK_MS);
        const line = await waitFor(() => short.auditLines().find((l) => l['decision'] === 'tunnel' && l['port'] === tunnelled.port), 'the tunnel audit line');
        expect(line['status']).toBe(200);
      } finally {
        await tunnelled.close();
      }
    });
  });

  describe('what must not be cut', () => {
    it('a slow upstream (past body_stall, within the upstream timeout) still answers', async () => {
      const dispatcher = new ProxyAgent({ uri: short.url, requestTls: { ca: shortTarget.ca } });
      try {
        const res = await request(`https://api.example.test:${upstream.port}/slow?ms=1200`, { dispatcher });
        expect(res.statusCode).toBe(200);
        expect(await res.body.text()).toBe('slow');
      } finally {
        await dispatcher.close();
      }
    });

    it('a streamed response (events 100 ms apart) that outlasts every short timeout', async () => {
      const dispatcher = new ProxyAgent({ uri: short.url, requestTls: { ca: shortTarget.ca } });
      try {
        // Server-sent events, 100 ms apart, for about 1.5 s: longer than idle and body_stall.
        const res = await request(`https://api.example.test:${upstream.port}/sse?n=15`, { dispatcher });
        expect((await res.body.text()).match(/data:/g)).toHaveLength(15);
      } finally {
        await dispatcher.close();
      }
    });

    it('plain HTTP inside a CONNECT to an allow_http grant is served, with the credential', async () => {
      const { socket } = await openConnect(short.port, `plain.example.test:${plain.port}`);
      socket.resume();
      const answer = await exchange(socket, `GET /echo HTTP/1.1\r\nHost: plain.example.test:${plain.port}\r\nConnection: close\r\n\r\n`);
      const res = parseResponse(answer);
      expect(res.status).toBe(200);
      expect(plain.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    });

    it('proxy.timeouts.upstream still answers 504 upstream_timeout', async () => {
      const quick = await startProxy({ config: { proxy: { timeouts: { upstream: '300ms' } } }, grants: grants() });
      const dispatcher = new ProxyAgent({ uri: quick.url, requestTls: { ca: readFileSync(quick.caPath, 'utf8') } });
      try {
        const res = await request(`https://api.example.test:${upstream.port}/slow?ms=2000`, { dispatcher });
        expect(res.statusCode).toBe(504);
        expect(res.headers['x-keyway-error']).toBe('upstream_timeout');
        await res.body.text();
      } finally {
        await dispatcher.close();
        await quick.stop();
      }
    });
  });
});
