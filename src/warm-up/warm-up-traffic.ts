// The warm-up's requests (warm-up.ts): an HTTPS server in this process answers the one host, and
// undici sends GETs to it through the throwaway keyway as its one agent, one after another on one
// connection and then over several at once, as an agent's burst does. The server checks the bearer
// credential keyway put in, so a request only counts when keyway's whole path ran.
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { connect as netConnect } from 'node:net';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { Agent, type Connector, type Dispatcher, requestUrl } from '../net/undici.ts';
import type { LeafCertificate } from '../tls/index.ts';
import { WARM_UP_HOST } from './warm-up-config.ts';

export interface WarmUpPlan {
  /** Throwaway keyways, one after another, the requests shared between them (warm-up.ts says why). */
  passes: number;
  /** Sequential GETs on one connection, then GETs over `connections` at once. */
  sequential: number;
  parallel: number;
  connections: number;
  /** No request starts after this; the whole warm-up, start and stop included, is given up this much later still (warm-up.ts). */
  maxMs: number;
  graceMs: number;
}

export interface WarmUpUpstream {
  port: number;
  close(): void;
}

/** The one host's server, on loopback; `expected` is the Authorization value keyway must send. */
export async function startWarmUpUpstream(leaf: LeafCertificate, expected: string): Promise<WarmUpUpstream> {
  const server: Server = createServer({ cert: leaf.certPem, key: leaf.keyPem }, (req, res) => {
    const ok = req.headers.authorization === expected;
    req.resume();
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json', 'content-length': ok ? 11 : 2 });
    res.end(ok ? '{"ok":true}' : '{}');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: () => {
      server.close();
      server.closeAllConnections();
    },
  };
}

export interface TrafficTarget {
  proxyPort: number;
  agent: string;
  agentKey: string;
  /** The throwaway keyway's CA, which signs the leaf it presents for the host. */
  caPem: string;
  upstreamPort: number;
}

/**
 * Sends the plan's requests until done or `deadline` (performance.now()); returns how many were
 * answered 200. Throws on any other answer. The client is undici's Agent, the part of undici the
 * proxy loads anyway (net/undici.ts), with a connector that opens each connection by CONNECT: not
 * undici's ProxyAgent, whose index would stay loaded in the proxy (~25 MiB: test/integration/proxy-footprint).
 */
export async function sendWarmUpTraffic(target: TrafficTarget, plan: WarmUpPlan, deadline: number): Promise<number> {
  const url = `https://${WARM_UP_HOST}:${target.upstreamPort}/warm-up`;
  // Every step bounded: a connection, a CONNECT answer, a handshake, an answer's head and body.
  const agent = (connections: number) =>
    new Agent({ connections, connect: tunnelConnector(target), headersTimeout: STEP_TIMEOUT_MS, bodyTimeout: STEP_TIMEOUT_MS });
  let answered = 0;
  const send = async (dispatcher: Dispatcher) => {
    const res = await requestUrl(url, { dispatcher, method: 'GET', headers: { accept: 'application/json' } });
    await res.body.dump();
    if (res.statusCode !== 200) throw new Error(`a warm-up request was answered ${res.statusCode}`);
    answered++;
  };
  const one = agent(1);
  try {
    for (let i = 0; i < plan.sequential && performance.now() < deadline; i++) await send(one);
  } finally {
    await one.close();
  }
  const many = agent(plan.connections);
  try {
    let started = 0;
    const worker = async () => {
      while (started < plan.parallel && performance.now() < deadline) {
        started++;
        await send(many);
      }
    };
    await Promise.all(Array.from({ length: plan.connections }, worker));
  } finally {
    await many.close();
  }
  return answered;
}

/** A connection to the host through the throwaway keyway: CONNECT as the warm-up agent, then TLS to keyway's leaf for the host. */
function tunnelConnector(target: TrafficTarget): Connector {
  const authorization = `Basic ${Buffer.from(`${target.agent}:${target.agentKey}`).toString('base64')}`;
  return (_options, callback) => {
    const authority = `${WARM_UP_HOST}:${target.upstreamPort}`;
    const socket = netConnect({ host: '127.0.0.1', port: target.proxyPort });
    let head = Buffer.alloc(0);
    let done = false;
    // Once: a CONNECT answered, refused, cut, or not answered in time; then the TLS handshake, likewise.
    const settle = (err: Error | null, stream?: TLSSocket) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        callback(err, null);
      } else callback(null, stream!);
    };
    const timer = setTimeout(() => settle(new Error(`the warm-up connection did not open within ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
    const cut = () => settle(new Error('the warm-up CONNECT was closed unanswered'));
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) {
        if (head.length > MAX_ANSWER_HEAD) settle(new Error('the warm-up CONNECT answer is too long'));
        return;
      }
      socket.off('data', onData);
      socket.off('end', cut);
      socket.off('close', cut);
      const status = head.subarray(0, end).toString('latin1').split(' ')[1];
      if (status !== '200' || end + 4 !== head.length) return settle(new Error(`the warm-up CONNECT was answered ${status}`));
      const tls = tlsConnect({ socket, servername: WARM_UP_HOST, ca: target.caPem, ALPNProtocols: ['http/1.1'] });
      tls.once('secureConnect', () => settle(null, tls));
      tls.once('error', (err) => settle(err));
      tls.once('close', () => settle(new Error('the warm-up TLS handshake was cut')));
    };
    socket.on('data', onData);
    socket.once('error', (err) => settle(err));
    socket.once('end', cut);
    socket.once('close', cut);
    socket.once('connect', () => socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${authorization}\r\n\r\n`));
  };
}

const MAX_ANSWER_HEAD = 16 * 1024;
const STEP_TIMEOUT_MS = 5_000;
