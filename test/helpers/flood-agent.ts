// The agent of the audit-volume and proxy-authentication tests (test/integration/audit-volume.test.ts,
// test/hostile/auth-throttle.test.ts): a proxy with one keyed agent whose rules allow GETs of /echo
// and /allowed/**, and raw clients that send exactly what a test says, from a chosen local address.
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach } from 'vitest';
import { CANARY } from './fixtures.ts';
import { startProxy, type TestProxy } from './keyway.ts';
import { startUpstream, type TestUpstream } from './upstream.ts';
import { slack } from './load.ts';

export const AGENT = 'flood';
export const KEY = 'flood-agent-key';
export const AUTH = `${AGENT}:${KEY}`;

/** For a test file: each test's start() gets a proxy and an upstream, stopped after the test. */
export function floodProxyPerTest(): () => Promise<{ proxy: TestProxy; authority: string }> {
  let started: { proxy: TestProxy; upstream: TestUpstream } | undefined;
  afterEach(async () => {
    await started?.proxy.stop();
    await started?.upstream.close();
    started = undefined;
  });
  return async () => {
    const { proxy, upstream, authority } = await startFloodProxy();
    started = { proxy, upstream };
    return { proxy, authority };
  };
}

/** The proxy and an upstream; the caller stops both. */
export async function startFloodProxy(): Promise<{ proxy: TestProxy; upstream: TestUpstream; authority: string }> {
  const upstream = await startUpstream();
  const proxy = await startProxy({
    env: { FLOOD_KEY: KEY },
    config: { agents: { [AGENT]: { key: 'env:FLOOD_KEY', rules: [{ grant: 'api', methods: ['GET'], paths: ['/echo', '/allowed/**'] }] } } },
    grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
  });
  return { proxy, upstream, authority: `api.example.test:${upstream.port}` };
}

/** Sends requests one after another on one HTTP/1.1 connection inside the tunnel; returns the statuses. */
export async function http1Requests(tls: TLSSocket, targets: string[], host: string): Promise<number[]> {
  const statuses: number[] = [];
  let buffered = '';
  let wake: (() => void) | undefined;
  let closed = false;
  tls.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    wake?.();
  });
  tls.on('close', () => {
    closed = true;
    wake?.();
  });
  for (const target of targets) {
    tls.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      const length = end === -1 ? -1 : Number(/\r\ncontent-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      if (end !== -1 && buffered.length >= end + 4 + length) {
        statuses.push(Number(buffered.slice(9, 12)));
        buffered = buffered.slice(end + 4 + length);
        break;
      }
      if (closed) throw new Error('connection closed');
      await new Promise<void>((resolve, reject) => {
        const answerMs = slack(5_000, 30_000);
        const timer = setTimeout(() => reject(new Error(`no answer within ${answerMs} ms`)), answerMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
  return statuses;
}

/** A plain-HTTP request on its own connection from `localAddress`, with Proxy-Authorization `auth`. */
export function plainRequest(
  port: number,
  auth: string,
  localAddress = '127.0.0.1',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      localAddress,
      agent: false,
      method: 'GET',
      path: 'http://plain.example.test:1/x',
      headers: { 'proxy-authorization': `Basic ${Buffer.from(auth).toString('base64')}` },
      timeout: 5_000,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

/** Writes `text` on a new connection and collects the answer until keyway closes it (bounded in time). */
export function rawConnect(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const closeMs = slack(5_000, 30_000);
    const timer = setTimeout(() => socket.destroy(new Error(`no close within ${closeMs} ms`)), closeMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(text);
  });
}
