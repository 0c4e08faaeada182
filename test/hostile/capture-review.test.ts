import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { Canaries, closeWithSockets, isPlaceholder } from '../helpers/capture-canaries.ts';
import { openTunnel, startTls } from '../helpers/raw-http.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';
import { HeldNeedles } from '../../src/proxy/leak-guard/held.ts';
import { redactAll, secretNeedles } from '../../src/proxy/leak-guard/index.ts';
import { slack } from '../helpers/load.ts';

// A hostile review of login capture's default deny (issue 59), kept as standing tests: the ways a
// second look found for a captured token to reach the agent (a WebSocket handshake answered as a
// plain GET, messages on a WebSocket, Range windows and multipart byte ranges on a host no grant
// covers, a base64 slice broken into short lines), real providers' token answers that must still
// be captured, and hostile input. Each `it` names what it attacks; none may see a real token.

const LOGIN = 'login.review.test';
const API = 'api.review.test';
/** A host no grant covers (a CDN / usercontent domain serving what the API stores): intercepted under guard_other_hosts. */
const FILES = 'files.review.test';
const APP = 'app.review.test';
const T = { timeout: 20_000 };
const AGENTS = { alice: 'alice-review-key-5d1f8e', bob: 'bob-review-key-9a7c2b' } as const;
type Agent = keyof typeof AGENTS;

/** Every real token the login server issued: none may reach an agent. */
const canaries = new Canaries();
const canary = (kind?: string): string => canaries.make(kind);
let lastStandard: { access: string; refresh: string } | undefined;
const realAccess = new Set<string>();

const leaks = (bytes: Buffer | string): string[] => canaries.leaks(bytes);

// ---- the login server ----

function json(res: Http2ServerResponse, body: unknown, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}
const b64json = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const fakeJwt = (claims: Record<string, unknown>) =>
  `${b64json({ alg: 'RS256', kid: 'k1', typ: 'JWT' })}.${b64json(claims)}.${randomBytes(64).toString('base64url')}`;

/** Token answers as real providers send them (bodies from their docs; cookies as their edges set them). */
function tokenAnswer(form: string, res: Http2ServerResponse): void {
  const access = canary('acc');
  const refresh = canary('ref');
  lastStandard = { access, refresh };
  realAccess.add(access);
  const id = fakeJwt({ iss: `https://${LOGIN}`, sub: 'u1', aud: 'client', exp: 4_000_000_000 });
  switch (form) {
    case 'standard':
      return json(res, { access_token: access, refresh_token: refresh, token_type: 'Bearer', expires_in: 3600 });
    case 'keycloak':
      return json(res, {
        access_token: access,
        expires_in: 300,
        refresh_expires_in: 1800,
        refresh_token: refresh,
        token_type: 'Bearer',
        id_token: id,
        'not-before-policy': 0,
        session_state: '5f2b1c9e-8a77-4d3b-9a0e-1c2d3e4f5a6b',
        scope: 'openid profile email',
      });
    case 'entra':
      // MSAL always sends client_info=1: Entra answers client_info, base64url JSON {uid, utid}.
      return json(
        res,
        {
          token_type: 'Bearer',
          scope: 'https://graph.microsoft.com/User.Read openid profile offline_access',
          expires_in: 4727,
          ext_expires_in: 4727,
          access_token: access,
          refresh_token: refresh,
          id_token: id,
          client_info: b64json({ uid: '00000000-0000-0000-66f3-3332eca7ea81', utid: '9188040d-6c67-4c5b-b112-36a304b66dad' }),
          foci: '1',
        },
        {
          'x-ms-request-id': '6f3b2c1d-0000-4000-8000-aaaaaaaaaaaa',
          'x-ms-ests-server': '2.1.18874.4 - WUS3 ProdSlices',
          'set-cookie': [
            `fpc=AsWxVdRbTAVNnP1cJ4ZgVf8${randomBytes(6).toString('hex')}AQAAAEd5; expires=Fri, 25-Sep-2026 12:00:00 GMT; path=/; secure; HttpOnly; SameSite=None`,
            'x-ms-gateway-slice=estsfd; path=/; secure; samesite=none; httponly',
            'stsservicecookie=estsfd; path=/; secure; samesite=none; httponly',
          ],
        },
      );
    case 'entra-v1':
      // The v1 endpoint (ADAL, Azure CLI's older flows): resource is the API's URL.
      return json(res, {
        token_type: 'Bearer',
        expires_in: '3599',
        ext_expires_in: '3599',
        expires_on: '1388444763',
        not_before: '1388440863',
        resource: 'https://management.core.windows.net/',
        access_token: access,
        refresh_token: refresh,
        id_token: id,
      });
    case 'github':
      // github.com/login/oauth/access_token: a form, and github.com's session cookies on every answer.
      res
        .writeHead(200, {
          'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
          'x-github-request-id': 'C0DE:1234:5678:9ABC:65F0F0F0',
          'set-cookie': [
            `_gh_sess=${randomBytes(180).toString('base64url')}; path=/; secure; HttpOnly; SameSite=Lax`,
            `_octo=GH1.1.${1000000000 + Math.floor(Math.random() * 1e9)}.${Math.floor(Date.now() / 1000)}; path=/; domain=github.com; expires=Fri, 25 Sep 2026 12:00:00 GMT; secure; SameSite=Lax`,
            'logged_in=no; path=/; domain=github.com; expires=Fri, 25 Sep 2026 12:00:00 GMT; secure; HttpOnly; SameSite=Lax',
          ],
        })
        .end(`access_token=${access}&expires_in=28800&refresh_token=${refresh}&refresh_token_expires_in=15811200&scope=&token_type=bearer`);
      return;
    case 'auth0':
      return json(
        res,
        { access_token: access, refresh_token: refresh, id_token: id, scope: 'openid profile offline_access', expires_in: 86400, token_type: 'Bearer' },
        {
          'x-auth0-requestid': 'a1b2c3d4e5f6a7b8c9d0',
          'set-cookie': [
            `did=s%3Av0%3A${randomBytes(16).toString('hex')}.${randomBytes(32).toString('base64url')}; Max-Age=31557600; Path=/; Secure; HttpOnly; SameSite=None`,
          ],
        },
      );
    case 'cloudflare':
      // Any provider behind Cloudflare bot management (many Auth0/Okta custom domains).
      return json(
        res,
        { access_token: access, refresh_token: refresh, token_type: 'Bearer', expires_in: 3600 },
        {
          'set-cookie': [
            `__cf_bm=${randomBytes(32).toString('base64url')}-1700000000-1.0.1.1-${randomBytes(40).toString('base64url')}; path=/; HttpOnly; Secure; SameSite=None`,
          ],
        },
      );
    default:
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such form"}');
  }
}

/** Paths nobody listed, answering a token keyway must refuse. */
const UNLISTED: Record<string, (res: Http2ServerResponse) => void> = {
  '/implicit': (res) => res.writeHead(302, { location: `https://${APP}/cb#access_token=${canary()}&token_type=bearer` }).end(),
  '/events': (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: {"access_token":"${canary()}"}\n\n`),
  '/session': (res) => json(res, { access_token: canary(), token_type: 'Bearer' }),
};

// ---- the API and the files host: keep what they are given, answer it back (Range honoured) ----

const kept = new Map<string, string>();

/** Range: bytes=a-b[,c-d]: 206 with one part, or multipart/byteranges. */
function sendRanged(req: IncomingMessage, res: ServerResponse, text: string): void {
  const bytes = Buffer.from(text, 'utf8');
  const range = /^bytes=(.+)$/.exec(req.headers.range ?? '');
  if (range === null) return void res.writeHead(200, { 'content-type': 'application/json', 'accept-ranges': 'bytes' }).end(bytes);
  const parts = range[1]!.split(',').map((r) => r.trim().split('-').map(Number) as [number, number]);
  if (parts.length === 1) {
    const [a, b] = parts[0]!;
    return void res.writeHead(206, { 'content-type': 'application/json', 'content-range': `bytes ${a}-${b}/${bytes.length}` }).end(bytes.subarray(a, b + 1));
  }
  const boundary = 'RANGEB';
  const body = Buffer.concat([
    ...parts.map(([a, b]) =>
      Buffer.concat([
        Buffer.from(`--${boundary}\r\nContent-Type: application/json\r\nContent-Range: bytes ${a}-${b}/${bytes.length}\r\n\r\n`),
        bytes.subarray(a, b + 1),
        Buffer.from('\r\n'),
      ]),
    ),
    Buffer.from(`--${boundary}--\r\n`),
  ]);
  res.writeHead(206, { 'content-type': `multipart/byteranges; boundary=${boundary}` }).end(body);
}

function apiHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', `https://${API}`);
  const slot = url.searchParams.get('slot') ?? 'default';
  if (url.pathname === '/me') {
    const ok = realAccess.has((req.headers.authorization ?? '').replace(/^Bearer /, ''));
    return void res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' }).end(ok ? '{"ok":true}' : '{"error":"invalid_token"}');
  }
  if (url.pathname === '/store-header') {
    // Keeps the Authorization it was sent (a request inspector, a webhook tester, a debug echo).
    if (req.method !== 'GET' || req.headers.authorization !== undefined) kept.set(slot, req.headers.authorization ?? '');
    return sendRanged(req, res, JSON.stringify({ authorization: kept.get(slot) ?? '' }));
  }
  if (url.pathname === '/saw-range')
    return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ range: req.headers.range ?? null }));
  res.writeHead(404, { 'content-type': 'application/json' }).end('{}');
}

/** The files host serves what the API kept (api.example.com stores, usercontent.example.com serves). */
function filesHandler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', `https://${FILES}`);
  sendRanged(req, res, JSON.stringify({ authorization: kept.get(url.searchParams.get('slot') ?? 'default') ?? '' }));
}

/** A WebSocket endpoint on the API: after the upgrade, one text frame with what it kept. */
function wsUpgrade(req: IncomingMessage, socket: Duplex): void {
  const url = new URL(req.url ?? '/', `https://${API}`);
  if (url.pathname !== '/ws') {
    // Not a WebSocket endpoint: answered as the plain GET it also is (as most servers do).
    const body = JSON.stringify({ authorization: kept.get(url.searchParams.get('slot') ?? 'default') ?? '' });
    socket.end(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    return;
  }
  const accept = createHash('sha1')
    .update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
    .digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  const payload = Buffer.from(JSON.stringify({ authorization: kept.get(url.searchParams.get('slot') ?? 'default') ?? '' }));
  const header = payload.length < 126 ? Buffer.from([0x81, payload.length]) : Buffer.from([0x81, 126, payload.length >> 8, payload.length & 0xff]);
  socket.write(Buffer.concat([header, payload]));
  setTimeout(() => socket.end(), 200);
}

// ---- setup ----

let proxy: TestProxy;
let loginPort: number;
let apiPort: number;
let filesPort: number;
const closers: Array<() => Promise<void>> = [];
const dispatchers: Partial<Record<Agent, ProxyAgent>> = {};

const tracked = closeWithSockets;

beforeAll(async () => {
  const leaf = mintTestLeaf([LOGIN, API, FILES, APP]);
  const login = createSecureServer({ ...leaf, allowHTTP1: true }, (req: Http2ServerRequest, res: Http2ServerResponse) => {
    req.resume();
    const url = new URL(req.url ?? '/', `https://${LOGIN}`);
    if (url.pathname === '/token') return tokenAnswer(url.searchParams.get('form') ?? 'standard', res);
    const unlisted = UNLISTED[url.pathname];
    if (unlisted) return unlisted(res);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  login.listen(0, '127.0.0.1');
  await once(login, 'listening');
  loginPort = (login.address() as AddressInfo).port;
  closers.push(tracked(login));

  const api = createHttpsServer(leaf, (req, res) => {
    req.resume();
    req.on('end', () => apiHandler(req, res));
  });
  api.on('upgrade', wsUpgrade);
  api.listen(0, '127.0.0.1');
  await once(api, 'listening');
  apiPort = (api.address() as AddressInfo).port;
  closers.push(tracked(api));

  const files = createHttpsServer(leaf, (req, res) => {
    req.resume();
    req.on('end', () => filesHandler(req, res));
  });
  files.listen(0, '127.0.0.1');
  await once(files, 'listening');
  filesPort = (files.address() as AddressInfo).port;
  closers.push(tracked(files));

  proxy = await startProxy({
    config: {
      proxy: { hosts: { [LOGIN]: '127.0.0.1', [API]: '127.0.0.1', [FILES]: '127.0.0.1', [APP]: '127.0.0.1' } },
      grants: {
        'review-login': { type: 'login_capture', domains: [API], capture: { endpoints: [{ host: LOGIN, path: '/token' }] } },
      },
      agents: {
        alice: { key: 'env:ALICE_KEY', grants: ['review-login'] },
        bob: { key: 'env:BOB_KEY', grants: ['review-login'] },
      },
    },
    env: { ALICE_KEY: AGENTS.alice, BOB_KEY: AGENTS.bob },
  });
});

afterAll(async () => {
  for (const d of Object.values(dispatchers)) await d?.close().catch(() => undefined);
  await proxy?.stop();
  for (const close of closers) await close();
});

// ---- the agent ----

interface Received {
  status: number;
  head: string;
  body: Buffer;
}

async function agent(who: Agent, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Received> {
  dispatchers[who] ??= new ProxyAgent({
    uri: proxy.url.replace('http://', `http://${who}:${encodeURIComponent(AGENTS[who])}@`),
    requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
  });
  const response = await undiciFetch(url, { ...init, redirect: 'manual', dispatcher: dispatchers[who], signal: AbortSignal.timeout(slack(10_000)) });
  const head = [...response.headers.entries(), ...response.headers.getSetCookie().map((c) => ['set-cookie', c])].map(([k, v]) => `${k}: ${v}`).join('\n');
  return { status: response.status, head, body: Buffer.from(await response.arrayBuffer()) };
}

/** Raw bytes of one exchange on a CONNECT tunnel through keyway (TLS to `host`), until the peer closes or `ms` pass. */
async function raw(who: Agent, host: string, port: number, request: string, ms = 3_000): Promise<Buffer> {
  const auth = Buffer.from(`${who}:${AGENTS[who]}`).toString('base64');
  const tunnel = await openTunnel(proxy.port, `${host}:${port}`, `Proxy-Authorization: Basic ${auth}\r\n`);
  const tls = await startTls(tunnel, host, readFileSync(proxy.caPath, 'utf8'));
  const chunks: Buffer[] = [];
  tls.on('data', (c: Buffer) => chunks.push(c));
  tls.write(request);
  await Promise.race([once(tls, 'close'), new Promise((r) => setTimeout(r, ms))]);
  tls.destroy();
  return Buffer.concat(chunks);
}

/** A GET that looks like a WebSocket handshake (isWebSocketHandshake): most servers ignore Upgrade and answer as usual. */
function handshakeGet(host: string, port: number, path: string, extra = ''): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
    `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`
  );
}

const loginUrl = (path: string) => `https://${LOGIN}:${loginPort}${path}`;
const apiUrl = (path: string) => `https://${API}:${apiPort}${path}`;

async function login(who: Agent): Promise<{ access: string; real: { access: string; refresh: string } }> {
  const answer = await agent(who, loginUrl('/token?form=standard'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=password&username=u1&password=pw',
  });
  expect(answer.status).toBe(200);
  const tokens = JSON.parse(answer.body.toString('utf8')) as { access_token: string };
  expect(isPlaceholder(tokens.access_token)).toBe(true);
  return { access: tokens.access_token, real: lastStandard! };
}

/** Alice's real access token kept by the API under `slot` (Authorization is the default position). */
async function storeReal(slot: string): Promise<string> {
  const { access, real } = await login('alice');
  const stored = await agent('alice', apiUrl(`/store-header?slot=${slot}`), { method: 'POST', headers: { authorization: `Bearer ${access}` } });
  expect(leaks(stored.body), 'the echo of the store itself is redacted (control)').toEqual([]);
  expect(kept.get(slot)).toBe(`Bearer ${real.access}`);
  return real.access;
}

// ---- HIGH: a WebSocket-shaped GET skips the answer judge and the held needles ----

describe('a GET with WebSocket handshake headers (answered as a plain GET by the upstream)', () => {
  it('on the login host, unlisted paths: refused, the answer never relayed unjudged', T, async () => {
    for (const path of Object.keys(UNLISTED)) {
      const got = await raw('alice', LOGIN, loginPort, handshakeGet(LOGIN, loginPort, path));
      expect(leaks(got), `${path}: ${got.toString('latin1').split('\r\n')[0]}`).toEqual([]);
    }
  });

  it('on the API: the real access token the API kept, read back, is redacted', T, async () => {
    await storeReal('ws-get');
    const control = await agent('alice', apiUrl('/store-header?slot=ws-get'));
    expect(leaks(control.body), 'a plain GET (control)').toEqual([]);
    const got = await raw('alice', API, apiPort, handshakeGet(API, apiPort, '/store-header?slot=ws-get'));
    expect(leaks(got), got.toString('latin1').split('\r\n')[0]).toEqual([]);
  });

  it('a real WebSocket: the real token in a message from the upstream is masked', T, async () => {
    await storeReal('ws-frame');
    const got = await raw('alice', API, apiPort, handshakeGet(API, apiPort, '/ws?slot=ws-frame'), 1_500);
    expect(got.toString('latin1')).toMatch(/^HTTP\/1.1 101/);
    expect(leaks(got)).toEqual([]);
  });

  it('bob (same grant, own agent) reads alice`s kept token through a WebSocket', T, async () => {
    await storeReal('ws-bob');
    const got = await raw('bob', API, apiPort, handshakeGet(API, apiPort, '/ws?slot=ws-bob'), 1_500);
    expect(leaks(got)).toEqual([]);
  });
});

// ---- HIGH: Range windows on a host where Range is not dropped; inner slices are never searched ----

describe('stored upstream, read back in Range windows', () => {
  it('control: Range is dropped on the grant`s own domain', T, async () => {
    const got = await agent('alice', apiUrl('/saw-range'), { headers: { range: 'bytes=0-4' } });
    expect(JSON.parse(got.body.toString('utf8'))).toEqual({ range: null });
  });

  it('on a host no grant covers (intercepted under guard_other_hosts): three windows give the whole token', T, async () => {
    const real = await storeReal('range');
    const doc = JSON.stringify({ authorization: `Bearer ${real}` });
    const at = doc.indexOf(real);
    const files = (range: string) => agent('alice', `https://${FILES}:${filesPort}/?slot=range`, { headers: { range } });
    const full = await files('bytes=0-1000');
    expect(leaks(full.body), 'the whole document (control: redacted)').toEqual([]);
    // A prefix under MIN_SLICE, the middle (no edge of the body is an edge of the token), a suffix under MIN_SLICE.
    const head = (await files(`bytes=${at}-${at + 4}`)).body.toString('utf8');
    const middle = (await files(`bytes=${at + 1}-${at + real.length - 2}`)).body.toString('utf8');
    const tail = (await files(`bytes=${at + real.length - 5}-${at + real.length - 1}`)).body.toString('utf8');
    const rebuilt = head.slice(0, 1) + middle + tail.slice(-1);
    expect(rebuilt === real ? 'the agent rebuilt the real token' : 'not rebuilt').toBe('not rebuilt');
  });

  it('on a host no grant covers: one multipart/byteranges answer with the token in two parts', T, async () => {
    const real = await storeReal('multi');
    const doc = JSON.stringify({ authorization: `Bearer ${real}` });
    const at = doc.indexOf(real);
    const half = at + Math.floor(real.length / 2);
    const got = await agent('alice', `https://${FILES}:${filesPort}/?slot=multi`, {
      headers: { range: `bytes=${at}-${half - 1},${half}-${at + real.length - 1}` },
    });
    const parts = [...got.body.toString('utf8').matchAll(/\r\n\r\n([^\r]*)\r\n/g)].map((m) => m[1]).join('');
    expect(parts === real ? 'the real token, in two parts of one answer' : 'not rebuilt').toBe('not rebuilt');
  });
});

// ---- LOW: token answers real providers send, refused at the watched endpoint ----

describe('legit token answers at the watched endpoint are captured, not refused', () => {
  for (const form of ['keycloak', 'entra', 'entra-v1', 'github', 'auth0', 'cloudflare']) {
    it(form, T, async () => {
      const answer = await agent('alice', loginUrl(`/token?form=${form}`), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fapp',
      });
      expect(leaks(`${answer.head}\n${answer.body.toString('latin1')}`)).toEqual([]);
      expect(answer.status, answer.body.toString('utf8').slice(0, 300)).toBe(200);
    });
  }
});

// ---- LOW: a gate miss the full search finds (base64 slice at a body's start, short lines) ----

describe('the gate against the full search', () => {
  it('a base64 suffix of a held token at the start of a body, wrapped every 4 characters', () => {
    const token = `REALgate${randomBytes(20).toString('hex')}`;
    const needles = secretNeedles({ kind: 'token', value: token });
    const b64 = Buffer.from(token).toString('base64');
    const data = Buffer.from(`${b64.slice(10).replace(/(.{4})/g, '$1\n')}`);
    const full = redactAll(data, needles, 'marker');
    const gated = new HeldNeedles(needles).redactWhole(data, 'marker');
    expect(full.count).toBeGreaterThan(0);
    expect(gated.count).toBe(full.count);
  });
});

// ---- LOW: hostile request bodies ----

describe('hostile input', () => {
  it('a JSON body 20 000 levels deep with a \\u escape is refused, not a 500', T, async () => {
    const body = `${'['.repeat(20_000)}"\\u0041"${']'.repeat(20_000)}`;
    const got = await agent('alice', apiUrl('/saw-range'), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    // A clean refusal (4xx) is fine; a 500 internal_error from a RangeError is the finding.
    expect(got.status, got.body.toString('utf8').slice(0, 300)).toBeLessThan(500);
    const after = await agent('alice', apiUrl('/saw-range'));
    expect(after.status).toBe(200);
  });
});
