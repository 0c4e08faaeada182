import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { waitFor } from '../helpers/wait.ts';

// Where a captured token goes, as the grant declares it (capture.headers, capture.pass,
// capture.resolve): Keystone's way, a token answered in X-Subject-Token and sent back as
// X-Auth-Token, captured and resolved there; a JSON member the grant declares on one path; an ID
// the grant says is no credential passed as it came. And what it does not declare, refused. Plain
// HTTP on loopback (allow_http), so the servers stay small.

const SUBJECT_TOKEN = 'gAAAAABkeystoneREALsubjecttoken0123456789abcdef';
const ACCESS_TOKEN = 'REALaccess-positions-0123456789abcdef';
const PROJECT_ID = '8f14e45fceea167a5a36dedd4bea2543';

let login: Server;
let api: Server;
let proxy: TestProxy;
let loginPort = 0;
let apiPort = 0;
/** What the API received: each request's path, its X-Auth-Token and Authorization, and its body. */
const received: Array<{ path: string; auth: string | undefined; authorization: string | undefined; body: string }> = [];

async function listen(server: Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

function bodyOf(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

beforeAll(async () => {
  login = createServer((req, res) => {
    req.resume();
    if (req.url === '/v3/auth/tokens') {
      res.writeHead(201, { 'content-type': 'application/json', 'x-subject-token': SUBJECT_TOKEN });
      res.end(JSON.stringify({ token: { methods: ['password'], expires_at: '2030-01-01T00:00:00.000000Z', project: { id: PROJECT_ID } } }));
    } else if (req.url === '/oauth/token') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600 }));
    } else res.writeHead(404).end();
  });
  api = createServer(async (req, res) => {
    const body = await bodyOf(req);
    received.push({ path: req.url ?? '', auth: req.headers['x-auth-token'] as string | undefined, authorization: req.headers.authorization, body });
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
  });
  loginPort = await listen(login);
  apiPort = await listen(api);
  proxy = await startProxy({
    config: {
      grants: {
        keystone: {
          type: 'login_capture',
          domains: [`127.0.0.1:${apiPort}`],
          allow_http: true,
          capture: {
            endpoints: [
              { host: `127.0.0.1:${loginPort}`, path: '/v3/auth/tokens' },
              { host: `127.0.0.1:${loginPort}`, path: '/oauth/token' },
            ],
            fields: ['access_token'],
            headers: ['X-Subject-Token'],
            // The project id is a long hex id: no credential, and the grant says so.
            pass: { fields: ['token.project.id'] },
            resolve: [
              { in: 'header', name: 'authorization' },
              { in: 'header', name: 'x-auth-token' },
              { in: 'body', name: 'token', path: '/graphql' },
            ],
          },
        },
      },
    },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise((r) => login?.close(r));
  await new Promise((r) => api?.close(r));
});

function agent(): typeof undiciFetch {
  const dispatcher = new ProxyAgent({ uri: proxy.url });
  return ((input: string, init?: Parameters<typeof undiciFetch>[1]) => undiciFetch(input, { ...init, dispatcher })) as typeof undiciFetch;
}

describe('login capture at the positions the grant declares', () => {
  it('a token answered in a header (capture.headers) is captured, and resolves in the header the grant names', async () => {
    const fetch = agent();
    const answer = await fetch(`http://127.0.0.1:${loginPort}/v3/auth/tokens`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
    expect(answer.status).toBe(201);
    const placeholder = answer.headers.get('x-subject-token')!;
    expect(placeholder).toMatch(/^kwcap_[A-Za-z0-9]{26,}$/);
    const body = (await answer.json()) as { token: { project: { id: string } } };
    // Passed as it came: the grant lists it in capture.pass.
    expect(body.token.project.id).toBe(PROJECT_ID);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v3/auth/tokens' && l['captured'] !== undefined), 'the capture audited');
    expect(line['captured']).toEqual(['x-subject-token']);

    expect((await fetch(`http://127.0.0.1:${apiPort}/v2.1/servers`, { headers: { 'x-auth-token': placeholder } })).status).toBe(200);
    expect(received.at(-1)?.auth).toBe(SUBJECT_TOKEN);
    // Named in resolve, the header resolves; a header it does not name refuses the placeholder.
    const before = received.length;
    const refused = await fetch(`http://127.0.0.1:${apiPort}/v2.1/servers`, { headers: { 'x-other-token': placeholder } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-keyway-error')).toBe('placeholder_refused');
    expect(received.length).toBe(before);
  });

  it('a JSON member resolves only on the path the grant declares it for; the same member elsewhere is refused', async () => {
    const fetch = agent();
    const tokens = (await (await fetch(`http://127.0.0.1:${loginPort}/oauth/token`, { method: 'POST' })).json()) as { access_token: string };
    expect(tokens.access_token).toMatch(/^kwcap_/);
    const post = (path: string) =>
      fetch(`http://127.0.0.1:${apiPort}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: '{ me }', token: tokens.access_token }),
      });
    expect((await post('/graphql')).status).toBe(200);
    expect(JSON.parse(received.at(-1)!.body)).toEqual({ query: '{ me }', token: ACCESS_TOKEN });
    const before = received.length;
    const elsewhere = await post('/settings');
    expect(elsewhere.status).toBe(403);
    expect(elsewhere.headers.get('x-keyway-error')).toBe('placeholder_refused');
    expect(await elsewhere.text()).toContain('the body member');
    expect(received.length).toBe(before);
    // Authorization is listed: it resolves there too.
    expect((await fetch(`http://127.0.0.1:${apiPort}/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(200);
    expect(received.at(-1)?.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
  });
});
