import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { connect as netConnectTo, type AddressInfo, type connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { stringify } from 'yaml';
import { startChildProxy, type ChildProxy } from '../helpers/child-proxy.ts';
import { curlStatus, seenWithTag } from '../helpers/clients.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, runProcess } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { openConnect, openTunnel, parseResponse, startTls } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Live reload: SIGHUP, `keyway reload` and POST /api/reload re-read keyway.yaml in a running
// `keyway start` (its own process). The next request uses the new config; a bad config is refused
// with its reason and the old one keeps serving; tunnels, requests and WebSockets already open are
// not dropped, except what is open under a grant the reload takes away (ended within a second or so:
// test/hostile/revocation-open.test.ts); every reload, taken or refused, is an audit line with decision admin.

const BOT_KEY = 'kw-bot-key-5d1e8a';
const BEARER_ON_API = { github: { type: 'bearer', domains: ['api.example.test'], secret: 'env:GITHUB_TOKEN' } };
const KEY_ON_OTHER = {
  github: { type: 'api_key', domains: ['other.example.test'], inject: { header: 'x-api-key', format: 'key={secret}' }, secret: 'env:GITHUB_TOKEN' },
};

describe('live reload of a running proxy', () => {
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;
  let upstream: TestUpstream;
  let adminPort: number;
  let adminToken: string;
  /** Reloads asked for so far (each must leave exactly one admin audit line). */
  let reloads = 0;

  const writeConfig = (grants: object, proxyExtra: object = {}, extra: object = {}) =>
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        proxy: {
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: ['127.0.0.0/8'],
          hosts: { 'api.example.test': '127.0.0.1', 'other.example.test': '127.0.0.1', 'tunnel.example.test': '127.0.0.1' },
          unmatched: 'deny',
          allow_tunnel: ['tunnel.example.test'],
          drain_timeout: '2s',
          ...proxyExtra,
        },
        grants,
        ...extra,
      }),
    );

  beforeAll(async () => {
    // The blind tunnel test holds one kept-alive stream across reloads: under load that took
    // longer than Node's 5 s keep-alive, and the upstream closed it (not keyway).
    upstream = await startUpstream({ keepAliveMs: 120_000 });
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeConfig(BEARER_ON_API);
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY, BOT_KEY });
    proxy = await startChildProxy({ home, env });
    adminPort = (JSON.parse(readFileSync(join(home, 'data', 'proxy.json'), 'utf8')) as { admin: { port: number } }).admin.port;
    adminToken = readFileSync(join(home, 'data', 'admin.token'), 'utf8').trim();
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  /** curl through keyway; the upstream's record of the request (by tag) when it got through. */
  let tagCount = 0;
  const request = async (host: string) => {
    const tag = `t${++tagCount}`;
    const result = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}', `https://${host}:${upstream.port}/echo?tag=${tag}`],
      cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
    );
    const [status, connect] = result.stdout.split(' ');
    return { status, connect, seen: () => seenWithTag(upstream, tag).headers };
  };
  const expectBearerOnApi = async () => {
    const api = await request('api.example.test');
    expect(api.status).toBe('200');
    expect(api.seen().authorization).toBe(`Bearer ${CANARY}`);
    expect((await request('other.example.test')).connect).toBe('403');
  };
  const expectKeyOnOther = async () => {
    const other = await request('other.example.test');
    expect(other.status).toBe('200');
    expect(other.seen()['x-api-key']).toBe(`key=${CANARY}`);
    expect(other.seen().authorization).toBeUndefined();
    expect((await request('api.example.test')).connect).toBe('403');
  };
  const postReload = (headers: Record<string, string> = { authorization: `Bearer ${adminToken}` }) =>
    fetch(`http://127.0.0.1:${adminPort}/api/reload`, { method: 'POST', headers });
  const adminLines = () =>
    readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l['decision'] === 'admin');

  it('keyway reload: the next request uses the changed grant (domains and injection)', async () => {
    await expectBearerOnApi();
    writeConfig(KEY_ON_OTHER);
    const result = await runCli(['reload', '--home', home], env);
    reloads++;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(`keyway (pid ${proxy.child.pid}) reloaded its config: changed grants.github`);
    await expectKeyOnOther();
  });

  it('SIGHUP: the next request uses the changed grant', async () => {
    writeConfig(BEARER_ON_API);
    const before = adminLines().length;
    proxy.child.kill('SIGHUP');
    reloads++;
    await waitFor(() => (adminLines().length > before ? true : undefined), 'the audit line of the SIGHUP reload', 15_000);
    await expectBearerOnApi();
    expect(adminLines().at(-1)).toMatchObject({
      decision: 'admin',
      action: 'reload',
      client: 'SIGHUP',
      actor: 'SIGHUP',
      method: null,
      code: null,
      changed: 'grants.github',
    });
    // The process did not die of the signal.
    expect(proxy.child.exitCode).toBeNull();
  });

  it('POST /api/reload: refused without the admin token, a wrong one, or a foreign Host; applied with it', async () => {
    writeConfig(KEY_ON_OTHER);
    const missing = await postReload({});
    expect(missing.status).toBe(401);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe('admin_auth_required');
    expect((await postReload({ authorization: 'Bearer wrong-token' })).status).toBe(401);
    expect((await postReload({ 'x-api-key': `${adminToken}x` })).status).toBe(401);
    // A page the user visits cannot make the browser reload keyway through DNS rebinding.
    const rebound = await curlStatus(
      `http://127.0.0.1:${adminPort}/api/reload`,
      { method: 'POST', headers: ['Host: attacker.example', `Authorization: Bearer ${adminToken}`] },
      cleanEnv(),
    );
    expect(rebound.status).toBe(403);
    // None of those reloaded anything.
    await expectBearerOnApi();

    const ok = await postReload({ 'x-api-key': adminToken });
    reloads++;
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ reloaded: true, changed: ['grants.github'], needs_restart: [] });
    await expectKeyOnOther();
    expect(adminLines().at(-1)).toMatchObject({ client: '127.0.0.1', method: 'POST', path: '/api/reload', status: 200, port: adminPort });
  });

  it('agents, their rules and proxy.hosts apply to the next request', async () => {
    // A new name in proxy.hosts (unresolvable before: .test is not in DNS), a grant on it, and an agent with a deny rule: all in one reload.
    writeConfig(
      { github: { ...KEY_ON_OTHER.github, domains: ['other.example.test', 'slow.example.test'] } },
      { hosts: { 'other.example.test': '127.0.0.1', 'slow.example.test': '127.0.0.1' } },
    );
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      `${readFileSync(join(home, 'config', 'keyway.yaml'), 'utf8')}agents:\n  bot:\n    key: env:BOT_KEY\n    rules: [{ grant: github, deny: true, paths: ["/admin/**"] }]\n`,
    );
    const ok = await postReload();
    reloads++;
    expect(await ok.json()).toEqual({ reloaded: true, changed: ['agents.bot', 'grants.github', 'proxy.hosts'], needs_restart: [] });
    const through = (auth: string, host: string, path: string) =>
      runProcess(
        'curl',
        ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}', `https://${host}:${upstream.port}${path}`],
        cleanEnv({ HTTPS_PROXY: `http://${auth}127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
      ).then((r) => r.stdout);
    // With an agent configured, a request without its key is refused.
    expect(await through('', 'other.example.test', '/echo')).toBe('000 407');
    expect(await through(`bot:${BOT_KEY}@`, 'slow.example.test', '/echo?tag=slow-host')).toBe('200 200');
    expect(seenWithTag(upstream, 'slow-host').headers['x-api-key']).toBe(`key=${CANARY}`);
    expect(await through(`bot:${BOT_KEY}@`, 'other.example.test', '/admin/users')).toBe('403 200');

    writeConfig(KEY_ON_OTHER);
    expect((await postReload()).status).toBe(200);
    reloads++;
    await expectKeyOnOther();
  });

  it('a broken config is refused by each way with the key path, and the running config keeps serving', async () => {
    // A secret pasted into the config instead of a reference: refused, and never quoted back.
    writeConfig({ github: { ...KEY_ON_OTHER.github, secret: CANARY } });
    const pasted = await runCli(['reload', '--json', '--home', home], env);
    reloads++;
    expect(pasted.code).toBe(1);
    expect(JSON.parse(pasted.stdout)).toMatchObject({ reloaded: false, error: { code: 'config_invalid' } });
    expect(pasted.stderr).toContain(
      'grants.github.secret: expected env:NAME, file:PATH, {cmd: [PROG, ARG…]} or {from: SOURCE, id: ITEM} (never the secret itself)',
    );
    expect(findLeak(pasted.stdout + pasted.stderr, CANARY)).toBeUndefined();

    writeConfig({ github: { ...KEY_ON_OTHER.github, domains: [] } });
    const cli = await runCli(['reload', '--home', home], env);
    reloads++;
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim().split('\n')).toHaveLength(1);
    expect(cli.stderr).toMatch(
      /^keyway reload: the config was refused; pid \d+ keeps the running one: .*grants\.github\.domains: expected at least one domain/,
    );

    writeConfig({ github: { ...KEY_ON_OTHER.github, secret: 'env:KEYWAY_TEST_UNSET_VARIABLE' } });
    const api = await postReload();
    reloads++;
    expect(api.status).toBe(422);
    const body = (await api.json()) as { reloaded: boolean; error: { code: string; message: string } };
    expect(body.reloaded).toBe(false);
    expect(body.error.code).toBe('config_invalid');
    expect(body.error.message).toContain('grants.github.secret');

    writeFileSync(join(home, 'config', 'keyway.yaml'), 'grants:\n  github: [unclosed\n');
    const stderrBefore = proxy.stderr().length;
    proxy.child.kill('SIGHUP');
    reloads++;
    const said = await waitFor(() => /SIGHUP: the config was refused.*\n/.exec(proxy.stderr().slice(stderrBefore))?.[0], 'the SIGHUP refusal', 15_000);
    expect(said).toContain('not valid YAML');

    await expectKeyOnOther();
    const refused = adminLines().slice(-3);
    expect(refused.map((l) => l['code'])).toEqual(['config_invalid', 'config_invalid', 'config_invalid']);
    expect(refused.map((l) => l['client'])).toEqual(['127.0.0.1', '127.0.0.1', 'SIGHUP']);
    expect(refused[0]!['message']).toContain('grants.github.domains');
    expect(refused[1]!['status']).toBe(422);
  });

  it('names the changes that only a restart applies, and keeps listening where it was', async () => {
    writeConfig(KEY_ON_OTHER, { listen: '127.0.0.1:1', timeouts: { first_byte: '5s' } });
    const ok = await postReload();
    reloads++;
    expect(await ok.json()).toEqual({ reloaded: true, changed: ['proxy.listen', 'proxy.timeouts.first_byte'], needs_restart: ['proxy.listen'] });
    await expectKeyOnOther();
    writeConfig(KEY_ON_OTHER);
    const back = await runCli(['reload', '--home', home], env);
    reloads++;
    expect(back.stdout).toContain('changed proxy.listen, proxy.timeouts.first_byte; a restart applies proxy.listen');
  });

  it('applies server-side timeouts to the next connection: a request head slower than the new proxy.timeouts.headers is cut', async () => {
    writeConfig(KEY_ON_OTHER, { timeouts: { headers: '1s' } });
    const ok = await postReload();
    reloads++;
    expect(await ok.json()).toEqual({ reloaded: true, changed: ['proxy.timeouts.headers'], needs_restart: [] });
    // Half a request head, never finished: with the start's 30s it would stay open far past 6 s.
    const socket = netConnectTo(proxy.port);
    await once(socket, 'connect');
    const startedAt = Date.now();
    socket.write(`GET http://other.example.test:${upstream.port}/ HTTP/1.1\r\nHost: other.example.test\r\n`);
    socket.resume();
    const closed = await Promise.race([once(socket, 'close').then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 6_000))]);
    socket.destroy();
    expect(closed).toBe(true);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(900);
    writeConfig(KEY_ON_OTHER);
    expect((await postReload()).status).toBe(200);
    reloads++;
  });

  it('a blind tunnel survives a reload that removes it; a slow request and a WebSocket survive a reload that keeps their grant, and end with it', async () => {
    writeConfig(BEARER_ON_API);
    expect((await runCli(['reload', '--home', home], env)).code).toBe(0);
    reloads++;
    const keywayCa = readFileSync(join(home, 'certs', 'ca.pem'), 'utf8');

    // Slow enough to still be waiting when the grant is taken away, however long the steps between take.
    const slow = runProcess(
      'curl',
      ['-sS', '-w', ' %{http_code}', `https://api.example.test:${upstream.port}/slow?ms=30000`],
      cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
    );
    const ws = await openWebSocket(proxy.port, `api.example.test:${upstream.port}`, keywayCa);
    // The upstream got the injected token (the leak guard masks its echo on the way back).
    expect(JSON.parse(await ws.next())).toEqual({ authorization: expect.stringMatching(/^Bearer \*+$/) });
    expect(upstream.seen.filter((r) => r.url === '/ws').at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    const tunnel = await startTls(await openTunnel(proxy.port, `tunnel.example.test:${upstream.port}`), 'tunnel.example.test', TLS_FIXTURES.ca);
    const get = (tag: string) => `GET /echo?tag=${tag} HTTP/1.1\r\nHost: tunnel.example.test:${upstream.port}\r\n\r\n`;
    expect(parseResponse(await firstResponse(tunnel, get('tunnel-before'))).status).toBe(200);
    // Wait until the slow request is really in flight at the upstream.
    await waitFor(() => (upstream.seen.some((r) => r.url.startsWith('/slow')) ? true : undefined), 'the slow request upstream');

    // A reload that leaves the grant as it was: what is open under it carries on past the sweep.
    writeConfig(BEARER_ON_API, { drain_timeout: '3s' });
    expect((await runCli(['reload', '--home', home], env)).code).toBe(0);
    reloads++;
    await new Promise((r) => setTimeout(r, 1_200));
    ws.socket.send('after a reload that kept the grant');
    expect(await ws.next()).toBe('echo:after a reload that kept the grant');

    writeConfig(KEY_ON_OTHER, { allow_tunnel: [] });
    const reload = await runCli(['reload', '--home', home], env);
    reloads++;
    expect(reload.code, reload.stderr).toBe(0);

    // New connections get the new config...
    expect((await openConnect(proxy.port, `tunnel.example.test:${upstream.port}`)).status).toBe(403);
    await expectKeyOnOther();
    // ...the tunnel already open carries on...
    expect(parseResponse(await firstResponse(tunnel, get('tunnel-after'))).status).toBe(200);
    expect(seenWithTag(upstream, 'tunnel-after').headers.authorization).toBeUndefined();
    // ...while what was open under the grant taken from api.example.test is ended: the WebSocket
    // closed with 1008, the slow request cut before its answer.
    const [code] = (await ws.closed) as [number];
    expect(code).toBe(1008);
    const slowResult = await slow;
    expect(slowResult.stdout).not.toContain('slow 200');
    tunnel.destroy();
  });

  it("a provider's token endpoint changed by a reload is the one the next token comes from", async () => {
    // Two token endpoints that tag their tokens; each token is already due (expires_in below
    // oauth.refresh_skew), so every request fetches a new one from the provider in force.
    const endpoints = await Promise.all(['first', 'second'].map((name) => startTokenEndpoint(name)));
    try {
      const providers = (url: string) => ({ providers: { tok: { token_url: url } } });
      const hosts = { 'other.example.test': '127.0.0.1', 'slow.example.test': '127.0.0.1' };
      writeConfig(KEY_ON_OTHER, { hosts }, providers(endpoints[0]!.url));
      expect((await postReload()).status).toBe(200);
      reloads++;
      const add = await runCli(
        ['grants', 'add', 'machine', '--type', 'client_credentials', '--domains', 'slow.example.test', '--provider', 'tok', '--home', home],
        env,
      );
      expect(add.code, add.stderr).toBe(0);
      const set = await runCli(['secrets', 'set', 'machine', '--stdin', '--home', home], env, JSON.stringify({ clientId: 'c', clientSecret: 's' }));
      expect(set.code, set.stderr).toBe(0);
      const viaMachine = async () => {
        const r = await request('slow.example.test');
        return r.status === '200' ? String(r.seen().authorization) : `refused ${r.status} ${r.connect}`;
      };
      // The store change reaches the proxy within a second (its watch), bounded here.
      let first = '';
      for (let i = 0; i < 20 && !first.startsWith('Bearer first-'); i++) {
        first = await viaMachine();
        if (!first.startsWith('Bearer first-')) await new Promise((r) => setTimeout(r, 250));
      }
      expect(first).toMatch(/^Bearer first-/);

      writeConfig(KEY_ON_OTHER, { hosts }, providers(endpoints[1]!.url));
      const ok = await postReload();
      reloads++;
      expect(await ok.json()).toEqual({ reloaded: true, changed: ['providers.tok'], needs_restart: [] });
      expect(await viaMachine()).toMatch(/^Bearer second-/);
      expect(endpoints[1]!.calls()).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(endpoints.map((e) => e.close()));
    }
  });

  it('audits every reload (taken or refused) with decision admin, keeps the chain valid, and leaks nothing', async () => {
    // The CLI's own writes (grants add, …) are admin lines too (cli-audit.test.ts): only reloads here.
    const lines = adminLines().filter((l) => l['action'] === 'reload');
    expect(lines).toHaveLength(reloads);
    for (const line of lines) {
      expect(line).toMatchObject({ decision: 'admin', action: 'reload', agent: null, grant: null, refreshed: false });
    }
    const verify = await runCli(['audit', 'verify', '--home', home], env);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    const query = await runCli(['audit', 'query', '--decision', 'admin', '--home', home], env);
    expect(query.code, query.stderr).toBe(0);
    expect(query.stdout).toContain('reload (SIGHUP)');
    expect(query.stdout).toContain('reload (POST /api/reload from 127.0.0.1, by token)');
    expect(query.stdout).toContain('changed: grants.github');

    const outputs = [readFileSync(join(home, 'logs', 'audit.jsonl'), 'utf8'), proxy.stdout(), proxy.stderr(), query.stdout];
    for (const text of outputs) {
      expect(findLeak(text, CANARY)).toBeUndefined();
      expect(text).not.toContain(adminToken);
      expect(text).not.toContain(BOT_KEY);
    }
    // The reloads were logged too.
    expect(proxy.stdout()).toContain('config reloaded');
    expect(proxy.stdout()).toContain('config reload refused; the running config stays');
  });

  it('keyway reload with no proxy running: one line, exit 1', async () => {
    const other = makeHome();
    const result = await runCli(['reload', '--home', other], cleanEnv());
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(`keyway reload: no proxy is running for home ${other}\n`);
    expect(existsSync(join(other, 'data'))).toBe(false);
  });
});

/** Writes one request on a kept-alive TLS stream and resolves with the first whole response. */
function firstResponse(tls: TLSSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    // A hang-catcher, not a timing: a loaded CI machine has taken over 5 s here.
    const timer = setTimeout(() => reject(new Error(`no response to ${text.split('\r\n')[0]} in 15 s (${got.length} bytes so far)`)), 15_000);
    // A stream keyway closed is told as such, not waited out.
    const onClose = () => {
      clearTimeout(timer);
      reject(new Error(`the stream closed before a whole response (${got.length} bytes)`));
    };
    tls.once('close', onClose);
    const onData = (chunk: Buffer) => {
      got += chunk.toString('utf8');
      const head = got.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(got);
      if (head !== -1 && length && got.length >= head + 4 + Number(length[1])) {
        clearTimeout(timer);
        tls.off('data', onData);
        tls.off('close', onClose);
        resolve(got);
      }
    };
    tls.on('data', onData);
    tls.write(text);
  });
}

/** A `ws` client through keyway's intercepted CONNECT, trusting keyway's CA only. */
async function openWebSocket(
  proxyPort: number,
  authority: string,
  keywayCa: string,
): Promise<{ socket: WebSocket; next: () => Promise<string>; closed: Promise<unknown[]> }> {
  const tunnel = await openTunnel(proxyPort, authority);
  const socket = new WebSocket(`wss://${authority}/ws`, {
    createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca: keywayCa })) as unknown as typeof netConnect,
  });
  const queue: string[] = [];
  socket.on('message', (data: Buffer) => queue.push(data.toString()));
  const closed = once(socket, 'close');
  await Promise.race([once(socket, 'open'), new Promise((_, reject) => setTimeout(() => reject(new Error('no WebSocket open in 5 s')), 5_000))]);
  return { socket, next: () => waitFor(() => queue.shift(), 'a WebSocket message'), closed };
}

/** A loopback OAuth token endpoint whose tokens say which endpoint issued them, due at once. */
async function startTokenEndpoint(name: string): Promise<{ url: string; calls: () => number; close: () => Promise<void> }> {
  let calls = 0;
  const server = createHttpServer((req, res) => {
    req.resume();
    req.on('end', () => {
      calls++;
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: `${name}-${randomBytes(6).toString('hex')}`, token_type: 'Bearer', expires_in: 1 }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    calls: () => calls,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('keyway reload with the admin API off', () => {
  let home: string;
  let env: Record<string, string>;
  let proxy: ChildProxy;
  let upstream: TestUpstream;

  const writeConfig = (domain: string) =>
    writeFileSync(
      join(home, 'config', 'keyway.yaml'),
      stringify({
        admin: { enabled: false },
        proxy: {
          upstream_ca: [TLS_FIXTURES.caPath],
          allow_networks: ['127.0.0.0/8'],
          hosts: { 'api.example.test': '127.0.0.1', 'other.example.test': '127.0.0.1' },
          unmatched: 'deny',
        },
        grants: { github: { type: 'bearer', domains: [domain], secret: 'env:GITHUB_TOKEN' } },
      }),
    );
  const status = async (host: string) =>
    (
      await runProcess(
        'curl',
        ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{http_connect}', `https://${host}:${upstream.port}/echo`],
        cleanEnv({ HTTPS_PROXY: `http://127.0.0.1:${proxy.port}`, CURL_CA_BUNDLE: join(home, 'certs', 'bundle.pem') }),
      )
    ).stdout;

  beforeAll(async () => {
    upstream = await startUpstream();
    home = makeHome();
    mkdirSync(join(home, 'config'), { recursive: true });
    writeConfig('api.example.test');
    env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), GITHUB_TOKEN: CANARY });
    proxy = await startChildProxy({ home, env });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  it('sends SIGHUP to the confirmed keyway process, which reloads; the audit line says so', async () => {
    expect(await status('other.example.test')).toBe('000 403');
    writeConfig('other.example.test');
    const result = await runCli(['reload', '--home', home], env);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe(
      `sent SIGHUP to keyway (pid ${proxy.child.pid}); its log and \`keyway audit query --decision admin\` say whether the config was taken`,
    );
    const audit = join(home, 'logs', 'audit.jsonl');
    await waitFor(() => (existsSync(audit) && readFileSync(audit, 'utf8').includes('"decision":"admin"') ? true : undefined), 'the reload audit line', 15_000);
    expect(await status('other.example.test')).toBe('200 200');
    expect(proxy.child.exitCode).toBeNull();
  });
});
