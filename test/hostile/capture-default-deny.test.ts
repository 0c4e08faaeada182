import { createHmac } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import { createSecureServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h2Request, h2ThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { base32, Canaries, closeWithSockets, isPlaceholder } from '../helpers/capture-canaries.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';
import { slack } from '../helpers/load.ts';

// Login capture, default deny (issue 59): no real token keyway's login server issued reaches the
// agent in any form. A placeholder or a refusal are both fine; these tests never ask which. One
// hand-written login server (HTTP/1.1 and HTTP/2) on login.hostile.test hands out each token as a
// fresh canary, in every shape keyway might not read: at the watched endpoint (/token?form=…, the
// query is not part of the watched path) and on paths nobody listed. An API on api.hostile.test,
// the grant's domain, checks the real access token and keeps what it is given, to be read back.
// Every status, header, trailer and body byte the agent receives is searched for every canary in
// every encoding leak-canary.ts knows, and in UTF-16.

const LOGIN = 'login.hostile.test';
const API = 'api.hostile.test';
const APP = 'app.hostile.test';
const T = { timeout: 20_000 };
const AGENTS = { alice: 'alice-hostile-key-5d1f8e', bob: 'bob-hostile-key-9a7c2b' } as const;
type Agent = keyof typeof AGENTS;

/** Every real token the login server issued: none may reach an agent. */
const canaries = new Canaries();
const canary = (kind?: string): string => canaries.make(kind);
/** The real access and refresh tokens of the last standard answer: the API takes the access ones. */
let lastStandard: { access: string; refresh: string } | undefined;
const realAccess = new Set<string>();

interface Received {
  status: number;
  headers: Array<[string, string]>;
  trailers: Array<[string, string]>;
  body: Buffer;
}

const leaks = (bytes: Buffer | string): string[] => canaries.leaks(bytes);

/** Everything the agent got, as one buffer to search. */
function flatten(r: Received): Buffer {
  const head = [`${r.status}`, ...r.headers.map(([k, v]) => `${k}: ${v}`), '', ...r.trailers.map(([k, v]) => `${k}: ${v}`), ''].join('\n');
  return Buffer.concat([Buffer.from(head, 'utf8'), r.body]);
}

function expectNoLeak(r: Received, what: string): void {
  expect(leaks(flatten(r)), `${what}: answered ${r.status}`).toEqual([]);
}

// ---- the login server: HTTP/2 and HTTP/1.1 on one port ----

function jwt(payload: Record<string, unknown>): string {
  const b = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const signing = `${b({ alg: 'HS256', typ: 'JWT' })}.${b(payload)}`;
  return `${signing}.${createHmac('sha256', 'jarm-test-key').update(signing).digest('base64url')}`;
}

function nested(depth: number, leaf: Record<string, unknown>): Record<string, unknown> {
  let at = leaf;
  for (let i = 0; i < depth; i++) at = { level: at };
  return at;
}

function json(res: Http2ServerResponse, body: unknown, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
}

/** A login page keyway must pass: a CSRF field, and a form_post of an authorization code (redeemed at the watched endpoint). */
const LOGIN_PAGE = `<html><body><form method="post" action="/session"><input type="hidden" name="authenticity_token" value="csrf0123456789abcdef0123456789"><input name="login"></form>
<form method="post" action="https://app.hostile.test/cb"><input type="hidden" name="code" value="code0123456789abcdef0123456789"><input type="hidden" name="state" value="st0123456789abcdef"></form></body></html>`;

/** OAuth's response_mode=form_post: a page whose form posts the authorization response to the client, by itself. */
function formPost(fields: Record<string, string>): string {
  const inputs = Object.entries(fields).map(([name, value]) => `<input type="hidden" name="${name}" value="${value}"/>`);
  return `<html><head><title>Submit This Form</title></head><body onload="javascript:document.forms[0].submit()"><form method="post" action="https://${APP}/cb">${inputs.join('')}</form></body></html>`;
}

/** /token?form=…: the watched endpoint, answering in the form asked for. */
function tokenAnswer(form: string, res: Http2ServerResponse): void {
  switch (form) {
    case 'standard': {
      lastStandard = { access: canary('acc'), refresh: canary('ref') };
      realAccess.add(lastStandard.access);
      return json(res, { access_token: lastStandard.access, refresh_token: lastStandard.refresh, token_type: 'Bearer', expires_in: 3600 });
    }
    case 'keystone': // OpenStack Keystone: POST /v3/auth/tokens answers the token in a header.
      return json(res, { methods: ['password'], user: { id: 'u1', name: 'demo' }, expires_at: '2030-01-01T00:00:00Z' }, { 'x-subject-token': canary() });
    case 'authorization-header':
      return json(res, { ok: true, user: 'u1' }, { authorization: `Bearer ${canary()}` });
    case 'set-cookie':
      return json(res, { ok: true }, { 'set-cookie': [`session=${canary()}; Path=/; Secure; HttpOnly`, 'theme=dark; Path=/'] });
    case 'token-member':
      return json(res, { token: canary(), expires_in: 3600 });
    case 'camel': // Firebase's signInWithPassword, and many SDKs.
      return json(res, { idToken: 'short', accessToken: canary(), refreshToken: canary(), expiresIn: '3600' });
    case 'array':
      return json(res, { access_token: [canary()], token_type: 'Bearer' });
    case 'object':
      return json(res, { access_token: { value: canary() }, token_type: 'Bearer' });
    case 'deep':
      return json(res, nested(12, { access_token: canary(), token_type: 'Bearer' }));
    case 'trailer':
      // A JSON body with no token in it, and the token in a trailer (chunked on HTTP/1.1).
      res.writeHead(200, { 'content-type': 'application/json', trailer: 'x-token' });
      res.addTrailers({ 'x-token': canary() });
      res.write('{"ok":true}');
      res.end();
      return;
    default:
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"no such form"}');
  }
}

/** Paths nobody listed, each answering a token in a form keyway does not read today. */
const UNLISTED: Record<string, (res: Http2ServerResponse) => void> = {
  '/events': (res) => res.writeHead(200, { 'content-type': 'text/event-stream' }).end(`data: {"access_token":"${canary()}"}\n\n`),
  '/blob': (res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(`{"access_token":"${canary()}"}`),
  '/ndjson': (res) => res.writeHead(200, { 'content-type': 'application/x-ndjson' }).end(`{"access_token":"${canary()}"}\n{"done":true}\n`),
  '/jsonp': (res) => res.writeHead(200, { 'content-type': 'application/javascript' }).end(`cb({"access_token":"${canary()}","token_type":"Bearer"});`),
  '/multipart': (res) =>
    res
      .writeHead(200, { 'content-type': 'multipart/form-data; boundary=XyZ' })
      .end(`--XyZ\r\nContent-Disposition: form-data; name="access_token"\r\n\r\n${canary()}\r\n--XyZ--\r\n`),
  '/csv': (res) => res.writeHead(200, { 'content-type': 'text/csv' }).end(`access_token,token_type\n${canary()},Bearer\n`),
  '/utf16': (res) =>
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-16' }).end(Buffer.from(JSON.stringify({ access_token: canary() }), 'utf16le')),
  // JSON.parse keeps the last member, which the escape hides from a plain text search. Refused
  // already at HEAD (a member named twice, and the text spells access_token): kept as the pair of
  // the next one, which is not.
  '/duplicate': (res) => res.writeHead(200, { 'content-type': 'application/json' }).end(`{"access_token":"x","acc\\u0065ss_token":"${canary()}"}`),
  // Both names escaped: the text never spells access_token at all.
  '/duplicate-escaped': (res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(`{"acc\\u0065ss_token":"x","access\\u005ftoken":"${canary()}"}`),
  // Issue 85: the head of an answer on an unwatched path, and an HTML form_post page.
  '/cookie': (res) => json(res, { ok: true }, { 'set-cookie': [`refresh_token=${canary('ref')}; Path=/; HttpOnly; Secure`, 'theme=dark; Path=/'] }),
  '/cookie-unnamed': (res) => json(res, { ok: true }, { 'set-cookie': [`sid=${canary()}; Path=/; HttpOnly`] }),
  '/challenge': (res) =>
    res
      .writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="login", error="invalid_token", access_token="${canary('acc')}"`,
      })
      .end('{"error":"invalid_token"}'),
  '/challenge-token68': (res) =>
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': `Negotiate ${Buffer.from(canary()).toString('base64')}` }).end('no'),
  '/header-unlisted': (res) => json(res, { ok: true }, { 'x-session': canary() }),
  '/link': (res) => json(res, { ok: true }, { link: `<https://${APP}/cb?refresh_token=${canary('ref')}>; rel="next"` }),
  '/form-post': (res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(formPost({ code: 'c1', id_token: canary('id'), state: 's1' })),
  '/form-post-escaped': (res) =>
    res.writeHead(200, { 'content-type': 'text/html' }).end(formPost({ 'access&#95;token': canary('acc'), 'token&#x5f;type': 'Bearer' })),
  '/form-post-token': (res) => res.writeHead(200, { 'content-type': 'text/html' }).end(formPost({ token: canary(), state: 's1' })),
  '/form-post-jarm': (res) =>
    res
      .writeHead(200, { 'content-type': 'text/html' })
      .end(formPost({ response: jwt({ iss: `https://${LOGIN}`, aud: 'client', access_token: canary('acc') }) })),
  '/implicit': (res) => res.writeHead(302, { location: `https://${APP}/cb#access%5Ftoken=${canary()}&token_type=bearer` }).end(),
  // JARM (response_mode=jwt): the authorization answer is a JWT in the query.
  '/jarm': (res) =>
    res
      .writeHead(302, {
        location: `https://${APP}/cb?response=${jwt({ iss: `https://${LOGIN}`, aud: 'client', exp: 4_000_000_000, access_token: canary(), token_type: 'Bearer' })}`,
      })
      .end(),
};

// ---- the API: checks the real access token, keeps what it is given, answers it back ----

interface ApiSeen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const apiSeen: ApiSeen[] = [];
const kept = new Map<string, string>();

function apiHandler(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: string): void {
  const url = new URL(req.url ?? '/', `https://${API}`);
  const slot = url.searchParams.get('slot') ?? 'default';
  const send = (status: number, text: string): void => void res.writeHead(status, { 'content-type': 'application/json' }).end(text);
  if (url.pathname === '/me') {
    const auth = req.headers.authorization ?? '';
    return realAccess.has(auth.replace(/^Bearer /, '')) ? send(200, '{"ok":true,"user":"u1"}') : send(401, '{"error":"invalid_token"}');
  }
  if (url.pathname === '/store') {
    if (req.method === 'GET') return kept.has(`body:${slot}`) ? send(200, kept.get(`body:${slot}`)!) : send(404, '{}');
    kept.set(`body:${slot}`, body);
    return send(200, body);
  }
  if (url.pathname === '/echo') {
    // The Authorization it was sent, echoed in a form its client decodes (issue 85): a gzip file
    // without Content-Encoding, UTF-16 either way, base32 in either case.
    const auth = req.headers.authorization ?? '';
    const text = JSON.stringify({ authorization: auth });
    const b32 = base32(Buffer.from(auth));
    const forms: Record<string, [string, Buffer]> = {
      gzip: ['application/gzip', gzipSync(Buffer.from(text))],
      'gzip-text': ['text/plain', gzipSync(Buffer.from(text))],
      utf16le: ['application/json; charset=utf-16le', Buffer.from(`\ufeff${text}`, 'utf16le')],
      utf16be: ['application/octet-stream', Buffer.from(text, 'utf16le').swap16()],
      base32: ['text/plain', Buffer.from(b32)],
      base32lower: ['text/plain', Buffer.from(b32.replace(/=+$/, '').toLowerCase())],
    };
    const [type, body] = forms[url.searchParams.get('form') ?? ''] ?? ['text/plain', Buffer.from('no such form')];
    return void res.writeHead(200, { 'content-type': type, 'content-length': String(body.length) }).end(body);
  }
  if (url.pathname === '/store-header') {
    if (req.method === 'GET') return kept.has(`hdr:${slot}`) ? send(200, JSON.stringify({ authorization: kept.get(`hdr:${slot}`) })) : send(404, '{}');
    kept.set(`hdr:${slot}`, req.headers.authorization ?? '');
    return send(200, JSON.stringify({ authorization: req.headers.authorization ?? '' }));
  }
  send(404, '{}');
}

// ---- setup ----

let proxy: TestProxy;
let loginPort: number;
let apiPort: number;
const closers: Array<() => Promise<void>> = [];
const dispatchers: Partial<Record<Agent, ProxyAgent>> = {};

const tracked = closeWithSockets;

beforeAll(async () => {
  const leaf = mintTestLeaf([LOGIN, API, APP]);
  const login = createSecureServer({ ...leaf, allowHTTP1: true }, (req: Http2ServerRequest, res: Http2ServerResponse) => {
    req.resume();
    const url = new URL(req.url ?? '/', `https://${LOGIN}`);
    if (url.pathname === '/token') return tokenAnswer(url.searchParams.get('form') ?? 'standard', res);
    if (url.pathname === '/login-page') {
      return void res
        .writeHead(200, {
          'content-type': 'text/html; charset=utf-8',
          'set-cookie': ['theme=dark; Path=/', '__cf_bm=cf0123456789abcdef0123456789; Path=/; HttpOnly'],
          'dpop-nonce': 'eyJ7S_zG.eyJH0-Z.HX4w-7v-0123456789',
          'www-authenticate': 'Bearer realm="login.hostile.test", error="invalid_token", error_description="The access token expired"',
          link: '<https://login.hostile.test/.well-known/openid-configuration>; rel="describedby"',
        })
        .end(LOGIN_PAGE);
    }
    const unlisted = UNLISTED[url.pathname];
    if (unlisted) return unlisted(res);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  login.listen(0, '127.0.0.1');
  await once(login, 'listening');
  loginPort = (login.address() as AddressInfo).port;
  closers.push(tracked(login));

  const api = createHttpsServer(leaf, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      apiSeen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      apiHandler(req, res, body);
    });
  });
  api.listen(0, '127.0.0.1');
  await once(api, 'listening');
  apiPort = (api.address() as AddressInfo).port;
  closers.push(tracked(api));

  proxy = await startProxy({
    config: {
      proxy: { hosts: { [LOGIN]: '127.0.0.1', [API]: '127.0.0.1', [APP]: '127.0.0.1' } },
      grants: {
        'hostile-login': { type: 'login_capture', domains: [API], capture: { endpoints: [{ host: LOGIN, path: '/token' }] } },
      },
      agents: {
        alice: { key: 'env:ALICE_KEY', grants: ['hostile-login'] },
        bob: { key: 'env:BOB_KEY', grants: ['hostile-login'] },
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

/** A request as `who`, through keyway, trusting its CA, redirects not followed: everything it got. */
async function agent(who: Agent, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Received> {
  dispatchers[who] ??= new ProxyAgent({
    uri: proxy.url.replace('http://', `http://${who}:${encodeURIComponent(AGENTS[who])}@`),
    requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
  });
  const response = await undiciFetch(url, { ...init, redirect: 'manual', dispatcher: dispatchers[who], signal: AbortSignal.timeout(slack(10_000)) });
  const headers: Array<[string, string]> = [...response.headers.entries()];
  for (const cookie of response.headers.getSetCookie()) headers.push(['set-cookie', cookie]);
  return { status: response.status, headers, trailers: [], body: Buffer.from(await response.arrayBuffer()) };
}

const loginUrl = (path: string) => `https://${LOGIN}:${loginPort}${path}`;
const apiUrl = (path: string) => `https://${API}:${apiPort}${path}`;

/** A placeholder's shape: keyway's opaque mark, or a JWT whose header starts with kwc. */

/** A normal login: the placeholders the agent holds, and the real values (the test's, never the agent's). */
async function login(who: Agent): Promise<{ access: string; refresh: string; real: { access: string; refresh: string } }> {
  const answer = await agent(who, loginUrl('/token?form=standard'), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=password&username=u1&password=pw',
  });
  expectNoLeak(answer, 'a normal login');
  expect(answer.status).toBe(200);
  const tokens = JSON.parse(answer.body.toString('utf8')) as { access_token: string; refresh_token: string };
  expect(isPlaceholder(tokens.access_token)).toBe(true);
  expect(isPlaceholder(tokens.refresh_token)).toBe(true);
  return { access: tokens.access_token, refresh: tokens.refresh_token, real: lastStandard! };
}

describe('at the watched endpoint, a token anywhere in the answer', () => {
  it('control: a standard answer is captured, its placeholder works at the API, which refuses a wrong token', T, async () => {
    // Passes at HEAD: the form keyway has always read. It must keep passing under any fix.
    const { access } = await login('alice');
    const ok = await agent('alice', apiUrl('/me'), { headers: { authorization: `Bearer ${access}` } });
    expectNoLeak(ok, '/me with the placeholder');
    expect(ok.status).toBe(200);
    expect(apiSeen.at(-1)?.headers.authorization).toBe(`Bearer ${lastStandard!.access}`);
    const wrong = await agent('alice', apiUrl('/me'), { headers: { authorization: 'Bearer not-the-real-token-0123456789' } });
    expect(wrong.status).toBe(401);
  });

  const forms: Array<[string, string]> = [
    ['keystone', 'in an X-Subject-Token header (OpenStack Keystone), the body without token fields'],
    ['authorization-header', 'in an Authorization: Bearer response header'],
    ['set-cookie', 'in Set-Cookie: session=…'],
    ['token-member', 'as a body member named token'],
    ['camel', 'as accessToken and refreshToken (Firebase)'],
    ['array', 'as access_token whose value is an array'],
    ['object', 'as access_token whose value is an object {value}'],
    ['deep', 'as access_token nested 12 levels deep'],
  ];
  for (const [form, what] of forms) {
    it(`over HTTP/1.1: ${what}`, T, async () => {
      const answer = await agent('alice', loginUrl(`/token?form=${form}`), { method: 'POST', body: 'grant_type=password&username=u1&password=pw' });
      expectNoLeak(answer, form);
    });
  }

  it('over HTTP/2: in a trailer x-token', T, async () => {
    const session = await h2ThroughProxy(proxy.port, `${LOGIN}:${loginPort}`, proxy.caPath, `alice:${AGENTS.alice}`);
    try {
      const request = { ':method': 'POST', ':path': '/token?form=trailer', 'content-type': 'application/x-www-form-urlencoded' };
      // A stream reset before its end is a refusal too: nothing of the answer reached the agent.
      const got = await h2Request(session, request, 'grant_type=password').catch((err: Error) => err);
      if (got instanceof Error) return expect(got.message).toMatch(/closed before its response ended/);
      expectNoLeak(
        {
          status: Number(got.headers[':status']),
          headers: Object.entries(got.headers).map(([k, v]) => [k, String(v)]),
          trailers: Object.entries(got.trailers).map(([k, v]) => [k, String(v)]),
          body: got.body,
        },
        'an HTTP/2 trailer',
      );
    } finally {
      session.close();
    }
  });
});

describe('on paths nobody listed, answers keyway does not read', () => {
  it('control: a login page (a CSRF field, a code form_post, a challenge, a nonce, a load-balancer cookie) reaches the agent as it came', T, async () => {
    const answer = await agent('alice', loginUrl('/login-page'));
    expect(answer.status).toBe(200);
    expect(answer.body.toString('utf8')).toBe(LOGIN_PAGE);
    expect(answer.headers.find(([k]) => k === 'dpop-nonce')?.[1]).toBe('eyJ7S_zG.eyJH0-Z.HX4w-7v-0123456789');
    expect(answer.headers.filter(([k]) => k === 'set-cookie').length).toBeGreaterThanOrEqual(2);
  });

  for (const path of Object.keys(UNLISTED)) {
    it(`${path}`, T, async () => {
      const answer = await agent('alice', loginUrl(path), { method: 'POST' });
      expectNoLeak(answer, path);
    });
  }
});

describe('stored upstream, read back', () => {
  it('one login: a token member in a JSON body and an Authorization header, kept by the API and read back', T, async () => {
    const { access } = await login('alice');
    const outs: Received[] = [];
    outs.push(
      await agent('alice', apiUrl('/store?slot=one'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ token: access }),
      }),
    );
    outs.push(await agent('alice', apiUrl('/store-header?slot=one'), { method: 'POST', headers: { authorization: `Bearer ${access}` } }));
    outs.push(await agent('alice', apiUrl('/store?slot=one')));
    outs.push(await agent('alice', apiUrl('/store-header?slot=one')));
    for (const [i, r] of outs.entries()) expectNoLeak(r, `request ${i + 1}`);
  });

  it('its real token echoed as a gzip file without Content-Encoding, in UTF-16 either way, in base32 either case', T, async () => {
    const { access } = await login('alice');
    for (const form of ['gzip', 'gzip-text', 'utf16le', 'utf16be', 'base32', 'base32lower']) {
      const r = await agent('alice', apiUrl(`/echo?form=${form}`), { headers: { authorization: `Bearer ${access}` } }).catch(
        (err: Error) => ({ status: 0, headers: [], trailers: [], body: Buffer.from(String(err.message)) }) as Received,
      );
      expect(apiSeen.at(-1)?.headers.authorization, 'the API got the real token').toBe(`Bearer ${lastStandard!.access}`);
      expectNoLeak(r, form);
    }
  });

  it('two logins: upload with one, download with the other', T, async () => {
    const first = await login('alice');
    const second = await login('alice');
    const outs: Received[] = [];
    outs.push(
      await agent('alice', apiUrl('/store?slot=two'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${first.access}` },
        body: JSON.stringify({ token: first.access }),
      }),
    );
    outs.push(await agent('alice', apiUrl('/store-header?slot=two'), { method: 'POST', headers: { authorization: `Bearer ${first.access}` } }));
    outs.push(await agent('alice', apiUrl('/store?slot=two'), { headers: { authorization: `Bearer ${second.access}` } }));
    outs.push(await agent('alice', apiUrl('/store-header?slot=two'), { headers: { authorization: `Bearer ${second.access}` } }));
    for (const [i, r] of outs.entries()) expectNoLeak(r, `request ${i + 1}`);
  });

  it('another agent: alice stores, bob reads', T, async () => {
    const alice = await login('alice');
    const bob = await login('bob');
    await agent('alice', apiUrl('/store?slot=agents'), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: alice.access }),
    });
    await agent('alice', apiUrl('/store-header?slot=agents'), { method: 'POST', headers: { authorization: `Bearer ${alice.access}` } });
    const outs: Received[] = [];
    for (const path of ['/store?slot=agents', '/store-header?slot=agents']) {
      outs.push(await agent('bob', apiUrl(path)));
      outs.push(await agent('bob', apiUrl(path), { headers: { authorization: `Bearer ${bob.access}` } }));
    }
    for (const [i, r] of outs.entries()) expectNoLeak(r, `bob's read ${i + 1}`);
  });
});

describe('the refresh token stays at the watched endpoint', () => {
  it('its placeholder in Authorization: Bearer to the API host never puts the real refresh token there', T, async () => {
    const { refresh, real } = await login('alice');
    const before = apiSeen.length;
    const answer = await agent('alice', apiUrl('/me'), { headers: { authorization: `Bearer ${refresh}` } });
    expectNoLeak(answer, 'the refresh placeholder at the API');
    const arrived = apiSeen.slice(before).map((s) => `${JSON.stringify(s.headers)}\n${s.url}\n${s.body}`);
    for (const text of arrived) expect(findLeak(text, real.refresh), 'the real refresh token at the API').toBeUndefined();
  });
});

describe('what the operator sees', () => {
  it('no real token the login server issued is in the audit log or keyway’s logs, in any form', T, async () => {
    expect(canaries.values.length).toBeGreaterThan(20);
    const audit = readFileSync(proxy.auditPath);
    expect(proxy.auditLines().some((l) => l['code'] === 'capture_unlisted')).toBe(true);
    expect(leaks(Buffer.concat([audit, Buffer.from(proxy.logs.join('\n'))]))).toEqual([]);
  });
});
