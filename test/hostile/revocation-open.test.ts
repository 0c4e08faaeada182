import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { parse, stringify } from 'yaml';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openTunnel, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Revocation reaches what is open under a grant (issue 59, part 4): a WebSocket or an answer still
// streaming that a grant opened used to go on after a reload took the grant from the agent, and a
// WebSocket whose handshake resolved a captured login after `keyway grants rm` dropped it: up to
// proxy.timeouts.max_connection_age (4 h). Now the sweep ends each within a second or so: a WebSocket
// closed with 1008 and a short reason, a stream cut, each on an audit line that says why. And a
// captured token's placeholder in a WebSocket message is refused like one anywhere else but a
// credential position (part 3): nothing of the message goes upstream, the socket closes with 1008.

const TOKEN = `${CANARY}-open-exchanges`;
const LOGIN_HOST = 'login.example.test';
/** The acceptance bound: closed within 3 s of the reload (or of `grants rm` returning). */
const WITHIN_MS = 3_000;
const AGENTS = ['ws1', 'sse1', 'sse2', 'cap'] as const;
const keyOf = (id: string) => `${id}-agent-key-5e1f`;

let upstream: TestUpstream;
let recorder: { port: number; messages: Array<{ data: string; binary: boolean }>; close(): Promise<void> };
let auth: AuthServer;
let proxy: TestProxy;
/** Everything a client received or a command printed: searched for the secrets at the end. */
const outputs: string[] = [];

beforeAll(async () => {
  upstream = await startUpstream();
  recorder = await startRecorder();
  auth = await startAuthServer({ tls: { hostname: LOGIN_HOST } });
  proxy = await startProxy({
    env: { GH: TOKEN, ...Object.fromEntries(AGENTS.map((id) => [`KEY_${id.toUpperCase()}`, keyOf(id)])) },
    config: {
      proxy: { hosts: Object.fromEntries([...TEST_HOSTS, LOGIN_HOST].map((h) => [h, '127.0.0.1'])) },
      grants: {
        github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GH' },
        spare: { type: 'bearer', domains: ['tunnel.example.test'], secret: 'env:GH' },
        'corp-login': { type: 'login_capture', domains: ['other.example.test'], capture: { endpoints: [{ host: LOGIN_HOST, path: '/token' }] } },
        // Swaps its placeholder into the agent's messages: keyway takes the agent's compression offer then.
        swap: { type: 'bearer', domains: ['plain.example.test'], secret: 'env:GH', inject: { body: true } },
      },
      agents: Object.fromEntries(
        AGENTS.map((id) => [id, { key: `env:KEY_${id.toUpperCase()}`, grants: id === 'cap' ? ['github', 'corp-login', 'swap'] : ['github', 'spare'] }]),
      ),
    },
  });
});

afterAll(async () => {
  const texts = [readFileSync(proxy.auditPath, 'utf8'), ...outputs, ...proxy.logs];
  for (const text of texts) {
    expect(findLeak(text, TOKEN), 'the grant secret in an output').toBeUndefined();
    for (const token of auth.issuedTokens) expect(text.includes(token), 'a captured token in an output').toBe(false);
  }
  await proxy?.stop();
  await recorder?.close();
  await upstream?.close();
  await auth?.close();
});

/** Takes the github grant from `agent` with a reload of the config file; resolves when it is in force. */
async function narrow(agent: string): Promise<number> {
  const file = join(proxy.home, 'config', 'keyway.yaml');
  const config = parse(readFileSync(file, 'utf8')) as { agents: Record<string, { grants: string[] }> };
  config.agents[agent]!.grants = ['spare'];
  writeFileSync(file, stringify(config));
  expect((await proxy.running.reload()).reloaded).toBe(true);
  return Date.now();
}

interface OpenSocket {
  socket: WebSocket;
  received: string[];
  closed: Promise<{ code: number; reason: string; at: number }>;
}

/** A `ws` client through keyway's intercepted CONNECT as `agent`, trusting keyway's CA only. */
async function openWebSocket(agent: string, authority: string, headers: Record<string, string> = {}): Promise<OpenSocket> {
  const proxyAuth = `Proxy-Authorization: Basic ${Buffer.from(`${agent}:${keyOf(agent)}`).toString('base64')}\r\n`;
  const tunnel = await openTunnel(proxy.port, authority, proxyAuth);
  const servername = authority.slice(0, authority.lastIndexOf(':'));
  const socket = new WebSocket(`wss://${authority}/ws`, {
    headers,
    createConnection: (() => tlsConnect({ socket: tunnel, servername, ca: readFileSync(proxy.caPath, 'utf8') })) as unknown as typeof netConnect,
  });
  const received: string[] = [];
  socket.on('message', (data: Buffer) => {
    received.push(data.toString());
    outputs.push(data.toString());
  });
  socket.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    socket.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: Date.now() })),
  );
  await Promise.race([once(socket, 'open'), new Promise((_, reject) => setTimeout(() => reject(new Error('no WebSocket open in 5 s')), 5_000))]);
  return { socket, received, closed };
}

/** Resolves with the close, or undefined if the socket is still open after `ms`. */
function closedWithin(open: OpenSocket, ms: number): Promise<{ code: number; reason: string; at: number } | undefined> {
  return Promise.race([open.closed, new Promise<undefined>((r) => setTimeout(() => r(undefined), ms))]);
}

function auditLine(match: (line: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> {
  return waitFor(() => proxy.auditLines().find(match), what);
}

/** Logs `agent` in at the provider through keyway (client credentials): the placeholder it holds. */
async function login(agent: string): Promise<string> {
  const dispatcher = new ProxyAgent({
    uri: proxy.url.replace('http://', `http://${agent}:${keyOf(agent)}@`),
    requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
  });
  const fetchImpl = (async (input: string, init?: RequestInit) => {
    const response = await undiciFetch(input, { ...(init as object), dispatcher });
    outputs.push(await response.clone().text());
    return response;
  }) as unknown as client.CustomFetch;
  const config = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: fetchImpl });
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api' });
  expect(tokens.access_token).toMatch(/^kwcap_/);
  return tokens.access_token;
}

describe('what a grant opened ends when the grant no longer admits the agent', () => {
  it('a WebSocket is closed with 1008 within 3 s of a reload that takes its grant from the agent, and audited', async () => {
    const ws = await openWebSocket('ws1', `api.example.test:${upstream.port}`);
    await waitFor(() => ws.received[0], 'the greeting');
    expect(JSON.parse(ws.received[0]!)).toEqual({ authorization: expect.stringMatching(/^Bearer \*+$/) });
    ws.socket.send('before the reload');
    await waitFor(() => (ws.received.includes('echo:before the reload') ? true : undefined), 'the echo');

    const reloadedAt = await narrow('ws1');
    const closed = await closedWithin(ws, WITHIN_MS);
    expect(closed, `the WebSocket still open ${WITHIN_MS} ms after the reload`).toBeDefined();
    expect(closed!.at - reloadedAt).toBeLessThan(WITHIN_MS);
    expect(closed!.code).toBe(1008);
    expect(closed!.reason).toBe('keyway: grant revoked');
    const line = await auditLine((l) => l['agent'] === 'ws1' && l['path'] === '/ws' && l['code'] === 'host_not_allowed', 'the WebSocket close, audited');
    expect(line).toMatchObject({ decision: 'deny', grant: 'github' });
    expect(String(line['message'])).toContain('no longer admits agent "ws1"');
  });

  it('an event stream (HTTP/1.1) is cut within 3 s of a reload that takes its grant from the agent, and audited', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const proxyAuth = `Proxy-Authorization: Basic ${Buffer.from(`sse1:${keyOf('sse1')}`).toString('base64')}\r\n`;
    const tls = await startTls(await openTunnel(proxy.port, authority, proxyAuth), 'api.example.test', readFileSync(proxy.caPath, 'utf8'));
    let text = '';
    tls.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    tls.on('error', () => undefined);
    const ended = new Promise<number>((resolve) => tls.once('close', () => resolve(Date.now())));
    // 100 events, 100 ms apart: ten seconds of stream.
    tls.write(`GET /sse?n=100 HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    // The answer is chunked, and the chunks cut the events: an event's end is what is looked for.
    await waitFor(() => (text.includes('t-1\n\n') ? true : undefined), 'the first events');

    const reloadedAt = await narrow('sse1');
    const at = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), WITHIN_MS))]);
    outputs.push(text);
    expect(at, `the stream still open ${WITHIN_MS} ms after the reload`).toBeDefined();
    expect(at! - reloadedAt).toBeLessThan(WITHIN_MS);
    expect(text).not.toContain('t-99\n\n');
    const line = await auditLine((l) => l['agent'] === 'sse1' && l['code'] === 'host_not_allowed', 'the stream cut, audited');
    expect(line).toMatchObject({ decision: 'deny', grant: 'github', path: '/sse' });
  });

  it('an event stream on an HTTP/2 connection: its stream is reset within 3 s', async () => {
    const session: ClientHttp2Session = await h2ThroughProxy(proxy.port, `api.example.test:${upstream.port}`, proxy.caPath, `sse2:${keyOf('sse2')}`);
    try {
      const stream = session.request({ ':method': 'GET', ':path': '/sse?n=100' });
      let text = '';
      stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      stream.on('error', () => undefined);
      const ended = new Promise<{ at: number; complete: boolean }>((resolve) =>
        stream.once('close', () => resolve({ at: Date.now(), complete: stream.rstCode === 0 && stream.readableEnded })),
      );
      await waitFor(() => (text.includes('data: event-1') ? true : undefined), 'the first events');
      const reloadedAt = await narrow('sse2');
      const end = await Promise.race([ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), WITHIN_MS))]);
      outputs.push(text);
      expect(end, `the stream still open ${WITHIN_MS} ms after the reload`).toBeDefined();
      expect(end!.at - reloadedAt).toBeLessThan(WITHIN_MS);
      expect(end!.complete, 'a cut stream must not look complete').toBe(false);
      await auditLine((l) => l['agent'] === 'sse2' && l['code'] === 'host_not_allowed', 'the stream cut, audited');
    } finally {
      session.destroy();
    }
  });
});

describe('a captured login', () => {
  it('a WebSocket whose handshake resolved a captured login is closed within 3 s of `grants rm` dropping it', async () => {
    const placeholder = await login('cap');
    const ws = await openWebSocket('cap', `other.example.test:${upstream.port}`, { authorization: `Bearer ${placeholder}` });
    await waitFor(() => ws.received[0], 'the greeting');
    // The upstream got the real token (masked on the way back); the agent never did.
    const seen = upstream.seen.filter((r) => r.url === '/ws').at(-1)?.headers.authorization;
    expect(auth.issuedTokens.has(String(seen).slice('Bearer '.length))).toBe(true);

    const removed = await proxy.cli(['grants', 'rm', 'corp-login']);
    outputs.push(removed.stdout, removed.stderr);
    expect(removed.code, removed.stderr).toBe(0);
    const removedAt = Date.now();
    const closed = await closedWithin(ws, WITHIN_MS);
    expect(closed, `the WebSocket still open ${WITHIN_MS} ms after grants rm`).toBeDefined();
    expect(closed!.at - removedAt).toBeLessThan(WITHIN_MS);
    expect(closed!.code).toBe(1008);
    expect(closed!.reason).toBe('keyway: captured login dropped');
    const line = await auditLine((l) => l['agent'] === 'cap' && l['path'] === '/ws' && l['code'] === 'placeholder_refused', 'the close, audited');
    expect(String(line['message'])).toContain('captured login it used was dropped');
  });

  it('a placeholder keyway holds in a WebSocket message (text or binary) is refused: nothing of it goes up, the socket closes with 1008', async () => {
    const placeholder = await login('cap');
    const cases: Array<{ authority: string; headers: Record<string, string>; binary: boolean }> = [
      { authority: `api.example.test:${recorder.port}`, headers: {}, binary: false },
      // On the capture grant's own host, where the handshake itself resolved the same placeholder.
      { authority: `other.example.test:${recorder.port}`, headers: { authorization: `Bearer ${placeholder}` }, binary: true },
    ];
    for (const { authority, headers, binary } of cases) {
      const ws = await openWebSocket('cap', authority, headers);
      ws.socket.send(binary ? Buffer.from('plain bytes') : 'a plain message');
      await waitFor(() => (ws.received.length > 0 ? true : undefined), 'the plain message echoed');
      const before = recorder.messages.length;
      const message = JSON.stringify({ note: 'keep this for later', token: placeholder });
      // Sent in two fragments: the placeholder spans them.
      const cut = message.indexOf(placeholder) + 10;
      ws.socket.send(binary ? Buffer.from(message.slice(0, cut)) : message.slice(0, cut), { fin: false, binary });
      ws.socket.send(binary ? Buffer.from(message.slice(cut)) : message.slice(cut), { fin: true, binary });
      const closed = await closedWithin(ws, WITHIN_MS);
      expect(closed, 'the WebSocket still open after a placeholder in a message').toBeDefined();
      expect(closed!.code).toBe(1008);
      expect(closed!.reason).toBe('keyway: placeholder refused');
      await new Promise((r) => setTimeout(r, 200));
      expect(recorder.messages.slice(before), 'something of the refused message went upstream').toEqual([]);
      const line = await auditLine(
        (l) => l['agent'] === 'cap' && l['port'] === recorder.port && l['host'] === authority.split(':')[0] && l['code'] === 'placeholder_refused',
        'the refusal, audited',
      );
      expect(String(line['message'])).toContain('WebSocket message');
    }
  });
});

describe("the order of what reads the agent's messages", () => {
  it('a compressed message is searched for placeholders once keyway has inflated it (after its body swap): one holding a captured placeholder is refused', async () => {
    const placeholder = await login('cap');
    // `ws` offers permessage-deflate and compresses a message past 1 KiB; keyway takes the offer on a swapping grant.
    const ws = await openWebSocket('cap', `plain.example.test:${recorder.port}`);
    expect(ws.socket.extensions).toContain('permessage-deflate');
    const plain = `a plain message ${'x'.repeat(2048)}`;
    ws.socket.send(plain);
    await waitFor(() => (ws.received.includes(`echo:${plain}`) ? true : undefined), 'the compressed plain message, inflated and echoed');
    const before = recorder.messages.length;
    ws.socket.send(JSON.stringify({ note: 'y'.repeat(2048), token: placeholder }));
    const closed = await closedWithin(ws, WITHIN_MS);
    // Searched before the swap inflated it, the message would end the socket as unreadable frames (no close frame, 1006).
    expect(closed, 'the WebSocket still open after a compressed placeholder').toBeDefined();
    expect(closed!.code).toBe(1008);
    expect(closed!.reason).toBe('keyway: placeholder refused');
    await new Promise((r) => setTimeout(r, 200));
    expect(recorder.messages.slice(before), 'something of the refused message went upstream').toEqual([]);
    await auditLine((l) => l['agent'] === 'cap' && l['host'] === 'plain.example.test' && l['code'] === 'placeholder_refused', 'the refusal, audited');
  });
});

/** A WebSocket upstream that records every message it gets (and echoes it), over TLS with the test CA. */
async function startRecorder(): Promise<typeof recorder> {
  const server = createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key });
  const wss = new WebSocketServer({ server, path: '/ws' });
  const messages: Array<{ data: string; binary: boolean }> = [];
  wss.on('connection', (socket) => {
    socket.on('message', (data: Buffer, binary: boolean) => {
      messages.push({ data: data.toString(), binary });
      socket.send(`echo:${data.toString()}`);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    messages,
    close: async () => {
      for (const socket of wss.clients) socket.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
