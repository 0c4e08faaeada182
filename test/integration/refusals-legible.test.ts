import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { curl, nodeFetch, pythonRequests, rawConnect } from '../helpers/clients.ts';
import { exchange, openConnect, parseResponse, startTls } from '../helpers/raw-http.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// Refusals an agent can read. A CONNECT to a host a grant covers, by an agent that may not use the
// grant, is accepted and refused inside TLS, where curl, undici and Python requests all show the
// JSON body; nothing reaches the upstream. A host keyway would never intercept keeps the refusal
// on the CONNECT, with the code and the reason in headers and in the status line.

const AGENT = 'scout';
const AGENT_KEY = 'scout-key-0123456789abcdef';
/** A secret an agent might put in a query string: never in an audit line, a log or a header. */
const QUERY_CANARY = 'kw-query-canary-91b7e3';

describe('refusals legible to an agent', () => {
  let upstream: Server;
  let upstreamPort: number;
  /** TCP connections the upstream accepted: a refusal must open none. */
  let upstreamConnections = 0;
  let proxy: TestProxy;
  let proxyUrl: string;
  let keywayCa: string;
  const outputs: string[] = [];

  const forbiddenUrl = (tag: string) => `https://other.example.test:${upstreamPort}/v1/items?tag=${tag}&token=${QUERY_CANARY}`;
  const agentEnv = () => cleanEnv({ HTTPS_PROXY: proxyUrl, CURL_CA_BUNDLE: proxy.bundlePath, REQUESTS_CA_BUNDLE: proxy.bundlePath });

  function expectRefusalBody(body: string) {
    outputs.push(body);
    const parsed = JSON.parse(body) as { error: { code: string; message: string; grant: string | null; hint: string | null } };
    expect(parsed.error.code).toBe('host_not_allowed');
    // The grant the agent may not use is named, not null.
    expect(parsed.error.grant).toBe('other');
    expect(parsed.error.message).toContain(`agent "${AGENT}" may not use the grant covering other.example.test`);
    expect(parsed.error.hint).toContain(`add the grant to agent "${AGENT}"`);
  }

  beforeAll(async () => {
    upstream = createServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (_req, res) => res.end('upstream reached'));
    upstream.on('connection', () => upstreamConnections++);
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    upstreamPort = (upstream.address() as AddressInfo).port;
    proxy = await startProxy({
      env: { SCOUT_KEY: AGENT_KEY },
      config: {
        // Short client timeouts: a refused connection is held no longer than any other.
        proxy: {
          unmatched: 'deny',
          hosts: Object.fromEntries(TEST_HOSTS.map((h) => [h, '127.0.0.1'])),
          timeouts: { first_byte: '1s', handshake: '1s', headers: '1s' },
        },
        agents: { [AGENT]: { key: 'env:SCOUT_KEY', grants: ['api'] } },
      },
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: `${CANARY}-api` },
        { id: 'other', type: 'bearer', domains: ['other.example.test'], secret: CANARY },
      ],
    });
    proxyUrl = `http://${AGENT}:${AGENT_KEY}@127.0.0.1:${proxy.port}`;
    keywayCa = readFileSync(proxy.caPath, 'utf8');
  });

  afterAll(async () => {
    await proxy?.stop();
    upstream?.close();
  });

  it('curl shows the JSON body, status and X-Keyway-Error of a refusal given inside TLS', async () => {
    const r = await curl(['-D', '-', forbiddenUrl('curl')], agentEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0); // an answer, not a failed tunnel
    const answer = parseResponse(r.stdout.replace(/^HTTP\/1\.1 200 Connection Established\r\n\r\n/, ''));
    expect(answer.status).toBe(403);
    expect(answer.headers['x-keyway-error']).toBe('host_not_allowed');
    expect(answer.headers['x-keyway-reason']).toContain('may not use the grant covering other.example.test');
    expectRefusalBody(answer.body);
  });

  it('undici fetch through ProxyAgent sees the same refusal', async () => {
    const dispatcher = new ProxyAgent({ uri: proxyUrl, requestTls: { ca: keywayCa } });
    try {
      const res = await fetch(forbiddenUrl('undici'), { dispatcher, signal: AbortSignal.timeout(slack(10_000)) });
      expect(res.status).toBe(403);
      expect(res.headers.get('x-keyway-error')).toBe('host_not_allowed');
      expectRefusalBody(await res.text());
    } finally {
      await dispatcher.close();
    }
  });

  it("Node's own fetch (NODE_USE_ENV_PROXY) sees the same refusal", async () => {
    const r = await nodeFetch(forbiddenUrl('node'), cleanEnv({ NODE_USE_ENV_PROXY: '1', HTTPS_PROXY: proxyUrl, NODE_EXTRA_CA_CERTS: proxy.caPath }));
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    const { status, body } = JSON.parse(r.stdout) as { status: number; body: string };
    expect(status).toBe(403);
    expectRefusalBody(body);
  });

  it('Python requests sees the same refusal', async () => {
    const r = await pythonRequests(forbiddenUrl('python'), agentEnv());
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    const { status, body } = JSON.parse(r.stdout) as { status: number; body: string };
    expect(status).toBe(403);
    expectRefusalBody(body);
  });

  it('audits each refused request as a deny with its code and message, and no upstream connection was made', async () => {
    const lines = await waitFor(() => {
      const found = proxy.auditLines().filter((l) => l['host'] === 'other.example.test' && l['method'] === 'GET');
      return found.length >= 4 ? found : undefined;
    }, 'four audit lines');
    for (const line of lines) {
      expect(line).toMatchObject({
        agent: AGENT,
        grant: 'other',
        decision: 'deny',
        code: 'host_not_allowed',
        status: 403,
        path: '/v1/items',
        port: upstreamPort,
      });
      expect(line['message']).toContain('may not use the grant covering other.example.test');
      expect(line['hint']).toContain('add the grant');
    }
    // The requests were answered: no line for their CONNECTs.
    expect(proxy.auditLines().filter((l) => l['host'] === 'other.example.test' && l['method'] === 'CONNECT')).toEqual([]);
    expect(upstreamConnections).toBe(0);
  });

  it('gains the agent nothing: pipelined requests, a Host naming a usable grant, a WebSocket handshake, a body', async () => {
    const hostile = [
      `GET /a HTTP/1.1\r\nHost: api.example.test:${upstreamPort}\r\nAuthorization: Bearer agent-own\r\n\r\n`,
      `POST /b HTTP/1.1\r\nHost: other.example.test:${upstreamPort}\r\nContent-Length: 5\r\n\r\nhello`,
    ].join('');
    // Without credentials: 407 on the CONNECT itself (keyway does not know the agent yet).
    const { socket, status } = await openConnect(proxy.port, `other.example.test:${upstreamPort}`);
    socket.destroy();
    expect(status).toBe(407);

    const auth = `Proxy-Authorization: Basic ${Buffer.from(`${AGENT}:${AGENT_KEY}`).toString('base64')}`;
    const tunnel = await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth);
    const tls = await startTls(tunnel, 'other.example.test', keywayCa);
    const raw = await exchange(tls, hostile);
    // One answer, then the connection closes: nothing after the first request is read as a request.
    expect(raw.match(/HTTP\/1\.1 /g)).toHaveLength(1);
    const answer = parseResponse(raw);
    expect(answer.status).toBe(403);
    expect(answer.headers['connection']).toBe('close');
    expectRefusalBody(answer.body);

    const ws = await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth);
    const wsTls = await startTls(ws, 'other.example.test', keywayCa);
    const handshake = parseResponse(
      await exchange(
        wsTls,
        `GET /ws HTTP/1.1\r\nHost: other.example.test:${upstreamPort}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`,
      ),
    );
    expect(handshake.status).toBe(403);
    expect(handshake.headers['x-keyway-error']).toBe('host_not_allowed');
    expectRefusalBody(handshake.body);
    expect(upstreamConnections).toBe(0);
  });

  it('audits a refused CONNECT whose client never sent a request (it did not trust the CA)', async () => {
    const r = await curl([`https://other.example.test:${upstreamPort}/never`], cleanEnv({ HTTPS_PROXY: proxyUrl }));
    outputs.push(r.stdout, r.stderr);
    expect(r.code).not.toBe(0);
    const line = await waitFor(
      () =>
        proxy
          .auditLines()
          .find((l) => l['host'] === 'other.example.test' && l['method'] === 'CONNECT' && l['agent'] === AGENT && l['code'] === 'host_not_allowed'),
      'the CONNECT line',
    );
    // And why no request came: the client's TLS alert (issue 48).
    const distrust = await waitFor(
      () => proxy.auditLines().find((l) => l['host'] === 'other.example.test' && l['code'] === 'client_tls_failed'),
      'the TLS line',
    );
    expect(distrust).toMatchObject({ decision: 'deny' });
    expect(line).toMatchObject({ agent: AGENT, grant: 'other', decision: 'deny', code: 'host_not_allowed', status: 403 });
    expect(line['message']).toContain('may not use the grant');
    expect(upstreamConnections).toBe(0);
  });

  it('holds a refused connection no longer than the usual timeouts: silent after CONNECT, after TLS, mid-head', async () => {
    const auth = `Proxy-Authorization: Basic ${Buffer.from(`${AGENT}:${AGENT_KEY}`).toString('base64')}`;
    const closedWithin = async (socket: { once(e: 'close', f: () => void): unknown; destroy(): void; resume(): unknown }, ms: number) => {
      const started = performance.now();
      // Read what keyway answers (a 408 for a head that never came): an unread answer would hold
      // the client's own end of the connection open.
      socket.resume();
      const closed = await Promise.race([once(socket as never, 'close').then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);
      socket.destroy();
      return closed ? performance.now() - started : Infinity;
    };
    // The proxy's timeouts are 1 s: closed within 3 s on an idle machine, the slack stretched by the
    // measured load on a busy one (timers fire late), never as long as the defaults (10 s and up).
    const within = 1_000 + slack(2_000, 8_000);
    const before = proxy.auditLines().filter((l) => l['method'] === 'CONNECT' && l['agent'] === AGENT).length;
    const silent = await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth);
    expect(await closedWithin(silent, within + 1_000)).toBeLessThan(within);
    const afterTls = await startTls(await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth), 'other.example.test', keywayCa);
    expect(await closedWithin(afterTls, within + 1_000)).toBeLessThan(within);
    const midHead = await startTls(await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth), 'other.example.test', keywayCa);
    midHead.write(`GET /slow HTTP/1.1\r\nHost: other.example.test:${upstreamPort}\r\nX-Partial: `);
    expect(await closedWithin(midHead, within + 1_000)).toBeLessThan(within);
    // A body that never ends: answered, then the connection closes rather than read on.
    const endless = await startTls(await connectWith(proxy.port, `other.example.test:${upstreamPort}`, auth), 'other.example.test', keywayCa);
    const received: Buffer[] = [];
    endless.on('data', (c: Buffer) => received.push(c));
    endless.on('error', () => undefined);
    endless.write(`POST /upload HTTP/1.1\r\nHost: other.example.test:${upstreamPort}\r\nContent-Length: 100000000\r\n\r\n`);
    const pump = setInterval(() => endless.writable && endless.write(Buffer.alloc(16 * 1024, 0x61)), 20);
    try {
      expect(await closedWithin(endless, within + 1_000)).toBeLessThan(within);
    } finally {
      clearInterval(pump);
    }
    expect(parseResponse(Buffer.concat(received).toString('utf8')).status).toBe(403);
    // Each silent one left its CONNECT's audit line (no request was answered on it); nothing went upstream.
    await waitFor(
      () => (proxy.auditLines().filter((l) => l['method'] === 'CONNECT' && l['agent'] === AGENT).length >= before + 3 ? true : undefined),
      'three CONNECT lines',
    );
    expect(upstreamConnections).toBe(0);
  });

  it('keeps the refusal on the CONNECT for a host keyway never intercepts, with code and reason in headers and status line', async () => {
    const auth = `Proxy-Authorization: Basic ${Buffer.from(`${AGENT}:${AGENT_KEY}`).toString('base64')}`;
    const answer = await rawConnect(proxy.port, `tunnel.example.test:${upstreamPort}`, [auth]);
    outputs.push(answer.body);
    expect(answer.status).toBe(403);
    expect(answer.headers.get('x-keyway-error')).toBe('host_not_allowed');
    expect(answer.headers.get('x-keyway-reason')).toBe('no grant covers tunnel.example.test and proxy.unmatched is deny');
    expect(JSON.parse(answer.body).error.code).toBe('host_not_allowed');

    const verbose = await curl(['-v', `https://tunnel.example.test:${upstreamPort}/`], agentEnv());
    outputs.push(verbose.stdout, verbose.stderr);
    expect(verbose.code).not.toBe(0);
    expect(verbose.stderr).toMatch(/^< HTTP\/1\.1 403 Forbidden \(keyway host_not_allowed: no grant covers tunnel\.example\.test/m);
    expect(verbose.stderr).toMatch(/^< x-keyway-error: host_not_allowed/im);
    expect(verbose.stderr).toMatch(/^< x-keyway-reason: no grant covers tunnel\.example\.test/im);

    // Python reports a refused CONNECT by its status line only: the code and reason are in it.
    const python = await pythonRequests(`https://tunnel.example.test:${upstreamPort}/`, agentEnv());
    outputs.push(python.stdout, python.stderr);
    expect(python.code).not.toBe(0);
    expect(python.stderr).toContain('403 Forbidden (keyway host_not_allowed: no grant covers tunnel.example.test');
    expect(upstreamConnections).toBe(0);
  });

  it('answers a plain-HTTP refusal with the body and both headers', async () => {
    const r = await curl(['-D', '-', '-x', proxyUrl, `http://tunnel.example.test:${upstreamPort}/p?token=${QUERY_CANARY}`], cleanEnv());
    outputs.push(r.stdout, r.stderr);
    const answer = parseResponse(r.stdout);
    expect(answer.status).toBe(403);
    expect(answer.headers['x-keyway-error']).toBe('host_not_allowed');
    expect(answer.headers['x-keyway-reason']).toContain('no grant covers tunnel.example.test');
    expect(JSON.parse(answer.body).error.code).toBe('host_not_allowed');
  });

  it('keyway audit tail shows each refusal with its message and hint; audit verify still holds', async () => {
    const tail = await proxy.cli(['audit', 'tail', '-n', '100']);
    outputs.push(tail.stdout, tail.stderr);
    expect(tail.code, tail.stderr).toBe(0);
    const lines = tail.stdout.split('\n');
    const refused = lines.findIndex((l) => / deny +403 scout\/other +GET other\.example\.test:\d+\/v1\/items +\[host_not_allowed\]/.test(l));
    expect(refused, tail.stdout).toBeGreaterThan(-1);
    expect(lines[refused + 1]).toBe(`    agent "${AGENT}" may not use the grant covering other.example.test (other)`);
    expect(lines[refused + 2]).toBe(`    hint: add the grant to agent "${AGENT}"`);
    const blind = lines.findIndex((l) => /CONNECT tunnel\.example\.test:\d+ +\[host_not_allowed\]/.test(l));
    expect(lines[blind + 1]).toBe('    no grant covers tunnel.example.test and proxy.unmatched is deny');
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('never shows a secret or a query string in any answer, log or audit line', () => {
    const keyway = [proxy.logs.join(''), readFileSync(proxy.auditPath, 'utf8')];
    for (const text of [...outputs, ...keyway]) expect(text).not.toContain(CANARY);
    // curl -v prints the proxy URL it was given; keyway itself never writes the agent's key.
    for (const text of keyway) expect(text).not.toContain(AGENT_KEY);
    expect(readFileSync(proxy.auditPath, 'utf8')).not.toContain(QUERY_CANARY);
    expect(proxy.logs.join('')).not.toContain(QUERY_CANARY);
  });
});

/** CONNECT with extra header lines; resolves with the socket once 200 arrived. */
async function connectWith(port: number, authority: string, header: string) {
  const { connect } = await import('node:net');
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${header}\r\n\r\n`);
  let head = Buffer.alloc(0);
  const deadline = setTimeout(() => socket.destroy(new Error('no answer to CONNECT')), 5_000);
  try {
    while (!head.includes('\r\n\r\n')) {
      const [chunk] = (await once(socket, 'data')) as [Buffer];
      head = Buffer.concat([head, chunk]);
    }
  } finally {
    clearTimeout(deadline);
  }
  socket.pause();
  const end = head.indexOf('\r\n\r\n') + 4;
  if (!head.subarray(0, end).toString().startsWith('HTTP/1.1 200')) throw new Error(`CONNECT refused: ${head.toString().split('\r\n')[0]}`);
  if (end < head.length) socket.unshift(head.subarray(end));
  return socket;
}
