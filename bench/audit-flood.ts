// How many audit bytes per second one hostile connection can make keyway write (issue 21, "the agent
// can erase its own trail"): refused requests are cheap, each still writes a line, and rotation
// deletes the oldest files, so this rate is how fast an agent can push evidence out of the log.
//
//   node bench/audit-flood.ts [--seconds 5] [--max 40000]
//
// keyway runs as a child process (its own event loop, as deployed). Loopback only; every scenario is
// bounded in time and in requests. Scenarios, each on ONE client connection:
//   h1-deny   HTTP/1.1 inside an intercepted tunnel, pipelined GETs with 15 KB paths a rule refuses
//   h2-deny   HTTP/2, the same with ~60 KB :path (up to 64 streams in flight)
//   h1-407    plain-HTTP absolute-form requests with a wrong agent key, pipelined (407s)
//   h1-407-reconnect  the same, one new connection per request (what an attacker does once keyway
//             closes the connection): counted over all its connections
// HTTP/2 exists only inside an intercepted tunnel, after the CONNECT authenticated: there is no
// HTTP/2 407 to measure.
import { once } from 'node:events';
import { readdirSync, statSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { startKeywayChild, type KeywayChild } from './keyway-child.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '5' }, max: { type: 'string', default: '40000' } } });
const SECONDS = Math.min(Number(values.seconds), 30);
const MAX_REQUESTS = Math.min(Number(values.max), 200_000);
const SETTLE_MS = 10_500;
const HOST = 'api.bench.test';
const AGENT = 'flood';
const KEY = 'flood-key-0123456789abcdef0123456789abcdef';
const AUTH = `Basic ${Buffer.from(`${AGENT}:${KEY}`).toString('base64')}`;
const WRONG = `Basic ${Buffer.from(`${AGENT}:not-the-key`).toString('base64')}`;

/** A path the agent's rules refuse (only /allowed/** is), about `bytes` long, of path-safe letters. */
function longPath(bytes: number, n: number): string {
  return `/denied/${n}/${'a'.repeat(bytes)}`;
}

function auditBytes(home: string): number {
  const dir = join(home, 'logs');
  let total = 0;
  for (const name of readdirSync(dir)) if (name.startsWith('audit')) total += statSync(join(dir, name)).size;
  return total;
}

interface Figure {
  scenario: string;
  requests: number;
  seconds: number;
  auditBytes: number;
  statuses: Record<string, number>;
}

/** Counts HTTP/1.1 responses on a stream (status line + Content-Length bodies), for pipelining. */
class ResponseCounter {
  #buffer: Buffer = Buffer.alloc(0);
  count = 0;
  statuses: Record<string, number> = {};
  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = this.#buffer.subarray(0, end).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (this.#buffer.length < end + 4 + length) return;
      this.#buffer = this.#buffer.subarray(end + 4 + length);
      const status = head.slice(9, 12);
      this.statuses[status] = (this.statuses[status] ?? 0) + 1;
      this.count++;
    }
  }
}

async function connectTunnel(port: number, caPem: string, alpn: string): Promise<TLSSocket> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\nProxy-Authorization: ${AUTH}\r\n\r\n`);
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  if (!chunk.toString('latin1').startsWith('HTTP/1.1 200')) throw new Error(`CONNECT refused: ${chunk.toString('latin1').split('\r\n')[0]}`);
  const tls = tlsConnect({ socket, servername: HOST, ca: caPem, ALPNProtocols: [alpn] });
  await once(tls, 'secureConnect');
  return tls;
}

/** Pipelines requests made by `request(n)` on one connection, `window` in flight, until time, count or close. */
async function pipeline(stream: Socket | TLSSocket, request: (n: number) => string, window: number): Promise<ResponseCounter> {
  const counter = new ResponseCounter();
  const deadline = performance.now() + SECONDS * 1000;
  let sent = 0;
  let closed = false;
  stream.on('close', () => (closed = true));
  stream.on('error', () => undefined);
  const fill = () => {
    while (!closed && sent - counter.count < window && sent < MAX_REQUESTS && performance.now() < deadline) stream.write(request(sent++));
  };
  stream.on('data', (chunk: Buffer) => {
    counter.push(chunk);
    fill();
  });
  fill();
  while (!closed && performance.now() < deadline && counter.count < MAX_REQUESTS) await sleep(50);
  stream.destroy();
  return counter;
}

async function measure(keyway: KeywayChild, scenario: string, run: () => Promise<{ requests: number; statuses: Record<string, number> }>): Promise<Figure> {
  await sleep(300); // the lines of the scenario before have reached the file
  const before = auditBytes(keyway.home);
  const started = performance.now();
  const { requests, statuses } = await run();
  const seconds = (performance.now() - started) / 1000;
  // Past the end of the refusal budget's interval (10 s from the first refusal), so that the summary
  // lines the scenario caused are counted too. The rate is over the whole window even when keyway
  // closed the connection early: that is what one connection could force in that time.
  await sleep(SETTLE_MS);
  return { scenario, requests, seconds: Math.max(seconds, SECONDS), auditBytes: auditBytes(keyway.home) - before, statuses };
}

async function h1Deny(keyway: KeywayChild) {
  const tls = await connectTunnel(keyway.port, keyway.caPem, 'http/1.1');
  const c = await pipeline(tls, (n) => `GET ${longPath(15_000, n)} HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`, 4);
  return { requests: c.count, statuses: c.statuses };
}

async function h2Deny(keyway: KeywayChild) {
  const tls = await connectTunnel(keyway.port, keyway.caPem, 'h2');
  const session = h2connect(`https://${HOST}`, { createConnection: () => tls });
  session.on('error', () => undefined);
  const statuses: Record<string, number> = {};
  let done = 0;
  let sent = 0;
  const deadline = performance.now() + SECONDS * 1000;
  await new Promise<void>((resolve) => {
    const next = () => {
      if (session.closed || session.destroyed || sent >= MAX_REQUESTS || performance.now() >= deadline) {
        if (done === sent) resolve();
        return;
      }
      const stream = session.request({ ':method': 'GET', ':path': longPath(60_000, sent++) });
      stream.on('response', (h) => (statuses[String(h[':status'])] = (statuses[String(h[':status'])] ?? 0) + 1));
      stream.resume();
      stream.on('error', () => undefined);
      stream.on('close', () => {
        done++;
        next();
      });
    };
    for (let i = 0; i < 16; i++) next();
    session.once('close', () => resolve());
  });
  session.destroy();
  return { requests: done, statuses };
}

async function h1Wrong(keyway: KeywayChild) {
  const socket = connect(keyway.port, '127.0.0.1');
  await once(socket, 'connect');
  const c = await pipeline(socket, (n) => `GET http://${HOST}/x/${n} HTTP/1.1\r\nHost: ${HOST}\r\nProxy-Authorization: ${WRONG}\r\n\r\n`, 16);
  return { requests: c.count, statuses: c.statuses };
}

async function h1WrongReconnect(keyway: KeywayChild) {
  const statuses: Record<string, number> = {};
  let requests = 0;
  const deadline = performance.now() + SECONDS * 1000;
  while (performance.now() < deadline && requests < MAX_REQUESTS) {
    const socket = connect(keyway.port, '127.0.0.1');
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    const counter = new ResponseCounter();
    socket.on('data', (chunk: Buffer) => counter.push(chunk));
    socket.write(`GET http://${HOST}/x/${requests} HTTP/1.1\r\nHost: ${HOST}\r\nProxy-Authorization: ${WRONG}\r\nConnection: close\r\n\r\n`);
    await Promise.race([once(socket, 'close'), sleep(2_000)]);
    socket.destroy();
    requests += counter.count;
    for (const [s, n] of Object.entries(counter.statuses)) statuses[s] = (statuses[s] ?? 0) + n;
  }
  return { requests, statuses };
}

async function main(): Promise<void> {
  const keyway = await startKeywayChild({
    hosts: [HOST],
    domains: ['*.bench.test'],
    secret: 'bench-secret-not-sent',
    upstreamCa: [],
    env: { FLOOD_KEY: KEY },
    // No rotation while measuring (the sizes are summed over every audit file anyway).
    config: {
      agents: { [AGENT]: { key: 'env:FLOOD_KEY', rules: [{ grant: 'bench', methods: ['GET'], paths: ['/allowed/**'] }] } },
      audit: { max_bytes: '1GiB' },
    },
  });
  const figures: Figure[] = [];
  try {
    figures.push(await measure(keyway, 'h1-deny (15 KB paths)', () => h1Deny(keyway)));
    figures.push(await measure(keyway, 'h2-deny (60 KB :path)', () => h2Deny(keyway)));
    figures.push(await measure(keyway, 'h1-407 (wrong key, one connection)', () => h1Wrong(keyway)));
    figures.push(await measure(keyway, 'h1-407-reconnect (wrong key, new connection each)', () => h1WrongReconnect(keyway)));
  } finally {
    await keyway.stop();
  }
  for (const f of figures) {
    const rate = f.auditBytes / f.seconds;
    console.log(
      `${f.scenario.padEnd(52)} ${String(f.requests).padStart(6)} req in ${f.seconds.toFixed(1)} s = ${(f.requests / f.seconds).toFixed(0).padStart(5)} req/s, ` +
        `audit ${(f.auditBytes / 1024).toFixed(0).padStart(7)} KiB = ${(rate / 1024).toFixed(1).padStart(8)} KiB/s  statuses ${JSON.stringify(f.statuses)}`,
    );
  }
}

await main();
