// proxy.transparent (issue 35): listeners for connections redirected to keyway (a sidecar's
// nftables rules send a pod's port 443 and 80 there), with no proxy settings and no proxy
// credentials. Here the redirect is done by the clients themselves (curl --connect-to, a raw TLS
// socket): each dials keyway's transparent port while naming the real host. The upstreams listen
// on 443 and 80 of their own loopback addresses, where keyway's own resolution (proxy.hosts) sends
// it: what the client dialled is never used. The same decisions and audit lines as a CONNECT, with
// `via: transparent`; no server name or no Host is refused (no_destination) and audited.
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { curl } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { freePort } from '../helpers/ports.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-transparent`;
// Addresses of this test's own (the whole 127/8 is loopback): the upstreams need ports 443 and 80.
const third = 100 + (process.pid % 100);
const API_ADDRESS = `127.${third}.0.2`;
const PLAIN_ADDRESS = `127.${third}.0.3`;
const OTHER_ADDRESS = `127.${third}.0.4`;

describe('proxy.transparent: redirected connections routed by SNI and Host', () => {
  let proxy: TestProxy;
  let tlsPort: number;
  let httpPort: number;
  const servers: Server[] = [];
  /** What each upstream saw: its name, the path, and whether the credential was the right one. */
  const seen: Array<{ at: string; path: string; authorized: boolean; authorization: boolean }> = [];
  const outputs: string[] = [];

  const handler = (at: string) => (req: IncomingMessage, res: ServerResponse) => {
    const authorized = req.headers.authorization === `Bearer ${TOKEN}`;
    seen.push({ at, path: req.url ?? '', authorized, authorization: req.headers.authorization !== undefined });
    // Like a real API: the right token or 401.
    res.writeHead(authorized || at === 'other' ? 200 : 401, { 'content-type': 'text/plain' }).end(`${at} ${authorized ? 'ok' : 'no'}`);
  };

  async function listen(server: Server, host: string, port: number) {
    server.listen(port, host);
    await once(server, 'listening');
    servers.push(server);
  }

  beforeAll(async () => {
    await listen(createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, handler('api')), API_ADDRESS, 443);
    await listen(createHttpServer(handler('plain')), PLAIN_ADDRESS, 80);
    await listen(createHttpsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, handler('other')), OTHER_ADDRESS, 443);
    tlsPort = await freePort();
    httpPort = await freePort();
    proxy = await startProxy({
      env: { API_TOKEN: TOKEN, BOT_KEY: 'bot-key-transparent' },
      config: {
        proxy: {
          hosts: { 'api.example.test': API_ADDRESS, 'plain.example.test': PLAIN_ADDRESS, 'other.example.test': OTHER_ADDRESS },
          allow_networks: ['127.0.0.0/8'],
          transparent: { listen: `127.0.0.1:${tlsPort}`, http_listen: `127.0.0.1:${httpPort}`, agent: 'bot' },
        },
        grants: {
          api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' },
          plain: { type: 'bearer', domains: ['plain.example.test'], secret: 'env:API_TOKEN', allow_http: true },
        },
        agents: {
          bot: {
            key: 'env:BOT_KEY',
            grants: ['api', 'plain'],
            rules: [{ grant: 'api', deny: true, paths: ['/admin/**'] }],
          },
        },
      },
    });
  });
  afterAll(async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN)).toBeUndefined();
    await proxy?.stop();
    for (const s of servers) s.close();
  });

  /** curl with no proxy at all, its connection to HOST:PORT sent to keyway's transparent port instead (what the redirect does). */
  async function redirected(url: string, extra: string[] = []) {
    const { hostname, port, protocol } = new URL(url);
    const to = protocol === 'https:' ? tlsPort : httpPort;
    const defaultPort = protocol === 'https:' ? '443' : '80';
    const r = await curl(['-sS', '--noproxy', '*', '--connect-to', `${hostname}:${port || defaultPort}:127.0.0.1:${to}`, ...extra, url], cleanEnv({}));
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  it('TLS by SNI: intercepted, the credential injected, the upstream reached at the address keyway resolved; via: transparent', async () => {
    const before = seen.length;
    const r = await redirected('https://api.example.test/v1/items', ['--cacert', proxy.caPath, '-w', '\n%{http_code}']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['api ok', '200']);
    expect(seen.slice(before)).toEqual([{ at: 'api', path: '/v1/items', authorized: true, authorization: true }]);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/v1/items'), 'the audit line');
    expect(line).toMatchObject({ decision: 'inject', agent: 'bot', grant: 'api', host: 'api.example.test', port: 443, via: 'transparent' });
  });

  it("the agent's rules hold: a denied path is refused inside TLS, and nothing goes upstream", async () => {
    const before = seen.length;
    const r = await redirected('https://api.example.test/admin/users', ['--cacert', proxy.caPath, '-w', '\n%{http_code}']);
    expect(r.stdout).toContain('policy_denied');
    expect(r.stdout.trim().split('\n').at(-1)).toBe('403');
    expect(seen.length).toBe(before);
  });

  it('a host no grant covers is tunnelled blind: the client sees the real certificate, nothing is injected', async () => {
    const ca = join(proxy.home, 'upstream-ca.pem');
    writeFileSync(ca, TLS_FIXTURES.ca);
    const before = seen.length;
    const r = await redirected('https://other.example.test/x', ['--cacert', ca]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('other no');
    expect(seen.slice(before)).toEqual([{ at: 'other', path: '/x', authorized: false, authorization: false }]);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['host'] === 'other.example.test' && l['decision'] === 'tunnel'), 'the tunnel line');
    expect(line).toMatchObject({ agent: 'bot', via: 'transparent', port: 443 });
  });

  it('plain HTTP by Host: the grant that allows http is injected', async () => {
    const before = seen.length;
    const r = await redirected('http://plain.example.test/status');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('plain ok');
    expect(seen.slice(before)).toEqual([{ at: 'plain', path: '/status', authorized: true, authorization: true }]);
  });

  it('a TLS connection without a server name (a raw IP) is closed, and audited no_destination', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port: tlsPort, ca: TLS_FIXTURES.ca });
    const error = await new Promise<Error>((resolve) => socket.once('error', resolve));
    expect((error as NodeJS.ErrnoException).code).toMatch(/ECONNRESET|EPIPE|ERR_SSL|ECONNREFUSED/);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'no_destination' && l['port'] === 443), 'the refusal');
    expect(line).toMatchObject({ decision: 'deny', agent: 'bot', via: 'transparent', host: '' });
  });

  it('a plain request without a Host: 400 no_destination, audited', async () => {
    const socket = netConnect({ host: '127.0.0.1', port: httpPort });
    socket.end('GET /status HTTP/1.0\r\n\r\n');
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await once(socket, 'close');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer.toLowerCase()).toContain('x-keyway-error: no_destination');
  });
});
