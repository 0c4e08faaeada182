import { readFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { exchange, openConnect, parseResponse, startTls, type RawResponse } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

// Errors keyway itself returns, and the blind tunnel, against the real proxy and real upstreams.
// Every error body is collected and, with the logs and the audit file, searched for the secrets.

/** A second secret, sent by the client in query strings: it must never be logged either. */
const CANARY2 = 'kw-query-canary-4e8d2b6a';
const QUERY = `?token=${CANARY2}`;
const EXTRA_HOSTS = ['plainok.example.test', 'stale.example.test', 'down.example.test', 'unset.example.test', 'unsetoauth.example.test'];

describe('keyway errors and the blind tunnel', () => {
  let upstream: TestUpstream;
  let untrusted: TestUpstream;
  let plain: TestUpstream;
  let slow: TestUpstream;
  let downPort: number;
  let proxy: TestProxy;
  let denyProxy: TestProxy;
  let timeoutProxy: TestProxy;
  let keywayCa: string;
  const dispatchers: ProxyAgent[] = [];
  /** Every error body keyway sent in this file. */
  const errorBodies: string[] = [];

  const hostsConfig = () => Object.fromEntries([...TEST_HOSTS, ...EXTRA_HOSTS].map((h) => [h, '127.0.0.1']));

  /** A client trusting keyway's CA, as an agent would. */
  const client = (p: TestProxy, ca = readFileSync(p.caPath, 'utf8')) => {
    const dispatcher = new ProxyAgent({ uri: p.url, requestTls: { ca } });
    dispatchers.push(dispatcher);
    return dispatcher;
  };

  /** A request through keyway with undici; error bodies are kept for the canary search. */
  async function get(p: TestProxy, url: string, headers: Record<string, string> = {}) {
    const res = await request(url, { dispatcher: client(p), headers });
    const text = await res.body.text();
    if (res.headers['x-keyway-error'] !== undefined) errorBodies.push(text);
    return { status: res.statusCode, headers: res.headers, text };
  }

  function expectErrorBody(res: { status: number; headers: Record<string, unknown>; body?: string; text?: string }, status: number, code: string) {
    const text = res.body ?? res.text ?? '';
    expect(res.status).toBe(status);
    expect(res.headers['x-keyway-error']).toBe(code);
    const parsed = JSON.parse(text) as { error: Record<string, unknown> };
    expect(Object.keys(parsed.error).sort()).toEqual(['code', 'grant', 'hint', 'message']);
    expect(parsed.error['code']).toBe(code);
    expect(typeof parsed.error['message']).toBe('string');
    return parsed.error;
  }

  /** Keeps keyway's error bodies for the canary search. */
  const keep = (res: RawResponse) => {
    if (res.headers['x-keyway-error'] !== undefined) errorBodies.push(res.body);
    return res;
  };

  /** Sends raw bytes to the proxy's port on a new connection and parses the answer. */
  const rawToProxy = async (port: number, text: string) => keep(parseResponse(await exchange(netConnect({ host: '127.0.0.1', port }), text)));

  /** The one audit line for this host/code, once written. */
  const auditFor = (p: TestProxy, host: string, code: string | null) =>
    waitFor(() => p.auditLines().find((l) => l['host'] === host && l['code'] === code), `audit line ${host} ${code}`);

  beforeAll(async () => {
    [upstream, untrusted, plain, slow] = await Promise.all([
      startUpstream(),
      startUpstream({ tls: 'untrusted' }),
      startUpstream({ tls: 'plain' }),
      startUpstream(),
    ]);
    // Nothing listens there, and no keyway ever will: a free port picked now could be bound by a
    // parallel test's keyway before the request, which keyway then refuses as a destination (403).
    downPort = 9;
    const bearer = (id: string, domains: string[], extra: object = {}) => ({ id, type: 'bearer' as const, domains, secret: CANARY, ...extra });
    proxy = await startProxy({
      config: { proxy: { hosts: hostsConfig() } },
      grants: [
        bearer('api', ['api.example.test']),
        bearer('bad', ['bad.example.test']),
        { id: 'twin-a', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-a` },
        { id: 'twin-b', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-b` },
        bearer('plain', ['plain.example.test']),
        bearer('plain-ok', ['plainok.example.test'], { allow_http: true }),
        bearer('stale', ['stale.example.test'], { status: 'needs_reconnect' }),
        bearer('down', ['down.example.test']),
        // Added without a secret (grants add, no --secret-stdin), a static one and an OAuth one.
        { id: 'unset', type: 'bearer', domains: ['unset.example.test'] },
        { id: 'unset-oauth', type: 'oauth2', domains: ['unsetoauth.example.test'] },
      ],
    });
    denyProxy = await startProxy({ config: { proxy: { unmatched: 'deny' } }, grants: [bearer('api', ['api.example.test'])] });
    timeoutProxy = await startProxy({ config: { proxy: { upstream_timeout: '500ms' } }, grants: [bearer('slow', ['slow.example.test'])] });
    keywayCa = readFileSync(proxy.caPath, 'utf8');
  });

  afterAll(async () => {
    await Promise.all(dispatchers.map((d) => d.close().catch(() => undefined)));
    await Promise.all([proxy, denyProxy, timeoutProxy].map((p) => p?.stop()));
    await Promise.all([upstream, untrusted, plain, slow].map((u) => u?.close()));
  });

  it('tunnels an unmatched host blind: the upstream’s own certificate, nothing injected', async () => {
    const before = upstream.seen.length;
    const { socket, status } = await openConnect(proxy.port, `tunnel.example.test:${upstream.port}`);
    expect(status).toBe(200);
    const tls = await startTls(socket, 'tunnel.example.test', TLS_FIXTURES.ca);
    const peer = tls.getPeerCertificate();
    expect(peer.issuer.CN).toBe('keyway test upstream CA');
    const answer = parseResponse(await exchange(tls, `GET /echo${QUERY} HTTP/1.1\r\nHost: tunnel.example.test:${upstream.port}\r\nConnection: close\r\n\r\n`));
    expect(answer.status).toBe(200);
    const echoed = JSON.parse(answer.body) as { headers: Record<string, string> };
    expect(echoed.headers['authorization']).toBeUndefined();
    expect(upstream.seen.length).toBe(before + 1);
    expect(upstream.seen.at(-1)?.headers.authorization).toBeUndefined();

    const line = await waitFor(() => proxy.auditLines().find((l) => l['host'] === 'tunnel.example.test' && l['method'] === 'CONNECT'), 'tunnel audit line');
    expect(line['decision']).toBe('tunnel');
    expect(line['grant']).toBeNull();
    expect(line['port']).toBe(upstream.port);
  });

  it('tunnels an unmatched host for undici too, which then verifies against the upstream CA only', async () => {
    const res = await request(`https://tunnel.example.test:${upstream.port}/echo`, { dispatcher: client(proxy, TLS_FIXTURES.ca) });
    expect(res.statusCode).toBe(200);
    const echoed = (await res.body.json()) as { headers: Record<string, string> };
    expect(echoed.headers['authorization']).toBeUndefined();
  });

  it('refuses an unmatched host with 403 host_not_allowed in deny mode', async () => {
    const before = upstream.seen.length;
    const raw = await rawToProxy(denyProxy.port, `CONNECT tunnel.example.test:${upstream.port} HTTP/1.1\r\nHost: tunnel.example.test:${upstream.port}\r\n\r\n`);
    const error = expectErrorBody(raw, 403, 'host_not_allowed');
    expect(String(error['message'])).toContain('tunnel.example.test');
    expect(error).toHaveProperty('grant');
    expect(error).toHaveProperty('hint');
    expect(upstream.seen.length).toBe(before);
    const line = await auditFor(denyProxy, 'tunnel.example.test', 'host_not_allowed');
    expect(line['decision']).toBe('deny');
    expect(line['status']).toBe(403);
    // A plain http:// request to it gets the same refusal, hint included (one rule for both).
    const plainRefused = await rawToProxy(
      denyProxy.port,
      `GET http://tunnel.example.test:${plain.port}/echo HTTP/1.1\r\nHost: tunnel.example.test:${plain.port}\r\nConnection: close\r\n\r\n`,
    );
    const plainError = expectErrorBody(plainRefused, 403, 'host_not_allowed');
    expect(plainError['message']).toBe(`no grant covers tunnel.example.test and proxy.unmatched is deny`);
    expect(plainError['hint']).toBe(error['hint']);
    expect(plain.seen.some((s) => s.url === '/echo' && s.headers.host?.startsWith('tunnel.example.test'))).toBe(false);
    // A covered host still works on the deny-mode proxy: the grant is injected (and its echo redacted).
    const ok = await get(denyProxy, `https://api.example.test:${upstream.port}/echo`);
    expect(ok.status).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect((JSON.parse(ok.text) as { headers: Record<string, string> }).headers['authorization']).toBe('Bearer [redacted by keyway]');
    expect(ok.text).not.toContain(CANARY);
  });

  it('answers 502 upstream_unreachable for an upstream with a bad certificate, and sends it nothing', async () => {
    const res = await get(proxy, `https://bad.example.test:${untrusted.port}/echo${QUERY}`);
    const error = expectErrorBody(res, 502, 'upstream_unreachable');
    expect(error['grant']).toBe('bad');
    expect(untrusted.seen).toEqual([]);
    const line = await auditFor(proxy, 'bad.example.test', 'upstream_unreachable');
    expect(line['decision']).toBe('error');
    expect(line['path']).toBe('/echo');
  });

  it('refuses a Host header that differs from the CONNECT target, and two Host headers', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const before = upstream.seen.length;
    const send = async (headers: string) => {
      const { socket, status } = await openConnect(proxy.port, authority);
      expect(status).toBe(200);
      const tls = await startTls(socket, 'api.example.test', keywayCa);
      return keep(parseResponse(await exchange(tls, `GET /echo${QUERY} HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`)));
    };

    const control = await send(`Host: ${authority}\r\n`);
    expect(control.status).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect((JSON.parse(control.body) as { headers: Record<string, string> }).headers['authorization']).toBe('Bearer [redacted by keyway]');
    expect(control.body).not.toContain(CANARY);

    const other = await send('Host: other.example.test\r\n');
    expectErrorBody(other, 400, 'host_mismatch');
    const twice = await send(`Host: ${authority}\r\nHost: ${authority}\r\n`);
    expect(twice.status).toBe(400);
    expectErrorBody(twice, 400, 'host_mismatch');
    expect(upstream.seen.length).toBe(before + 1);

    const line = await auditFor(proxy, 'api.example.test', 'host_mismatch');
    expect(line['decision']).toBe('deny');
    expect(line['path']).toBe('/echo');
  });

  it.each([
    ['no port', 'CONNECT nohost HTTP/1.1\r\nHost: nohost\r\n\r\n'],
    ['port out of range', 'CONNECT a.test:99999 HTTP/1.1\r\nHost: a.test:99999\r\n\r\n'],
    ['bad IPv6 literal', 'CONNECT [zz]:443 HTTP/1.1\r\nHost: [zz]:443\r\n\r\n'],
    ['empty host', 'CONNECT :443 HTTP/1.1\r\nHost: :443\r\n\r\n'],
    ['space in target', 'CONNECT a b:443 HTTP/1.1\r\nHost: a\r\n\r\n'],
  ])('answers 400 to a malformed CONNECT target (%s) and keeps serving', async (_name, text) => {
    const answer = await rawToProxy(proxy.port, text);
    expect(answer.status).toBe(400);
    const ok = await get(proxy, `https://api.example.test:${upstream.port}/echo`);
    expect(ok.status).toBe(200);
  });

  it('answers 504 upstream_timeout when the upstream is slower than proxy.upstream_timeout', async () => {
    const started = Date.now();
    const res = await get(timeoutProxy, `https://slow.example.test:${slow.port}/slow${QUERY}&ms=3000`);
    const elapsed = Date.now() - started;
    const error = expectErrorBody(res, 504, 'upstream_timeout');
    expect(error['grant']).toBe('slow');
    expect(elapsed).toBeGreaterThanOrEqual(450);
    // 500 ms of upstream_timeout plus 2 s on an idle machine; the slack stretched by the measured load.
    expect(elapsed).toBeLessThan(500 + slack(2_000, 10_000));
    const line = await auditFor(timeoutProxy, 'slow.example.test', 'upstream_timeout');
    expect(line['decision']).toBe('error');
    expect(line['path']).toBe('/slow');
  });

  it('answers 502 upstream_unreachable when nothing listens upstream', async () => {
    const res = await get(proxy, `https://down.example.test:${downPort}/echo${QUERY}`);
    const error = expectErrorBody(res, 502, 'upstream_unreachable');
    expect(String(error['message'])).toContain('refused');
    const line = await auditFor(proxy, 'down.example.test', 'upstream_unreachable');
    expect(line['decision']).toBe('error');
  });

  it('answers 400 grant_ambiguous listing both grants; X-Keyway-Grant chooses one and is not forwarded', async () => {
    const url = `https://other.example.test:${upstream.port}/echo${QUERY}`;
    const before = upstream.seen.length;
    const ambiguous = await get(proxy, url);
    const error = expectErrorBody(ambiguous, 400, 'grant_ambiguous');
    expect(String(error['hint'])).toContain('twin-a');
    expect(String(error['hint'])).toContain('twin-b');
    expect(upstream.seen.length).toBe(before);
    const line = await auditFor(proxy, 'other.example.test', 'grant_ambiguous');
    expect(line['decision']).toBe('deny');

    for (const id of ['twin-b', 'twin-a']) {
      const seenBefore = upstream.seen.length;
      const chosen = await get(proxy, url, { 'x-keyway-grant': id });
      expect(chosen.status).toBe(200);
      expect(upstream.seen.length).toBe(seenBefore + 1);
      expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}-${id.slice(-1)}`);
      expect(upstream.seen.at(-1)?.headers['x-keyway-grant']).toBeUndefined();
      const echoed = JSON.parse(chosen.text) as { headers: Record<string, string> };
      expect(echoed.headers['authorization']).toBe('Bearer [redacted by keyway]');
      expect(echoed.headers['x-keyway-grant']).toBeUndefined();
      expect(chosen.text).not.toContain(CANARY);
    }
    const injected = await waitFor(
      () => proxy.auditLines().find((l) => l['host'] === 'other.example.test' && l['grant'] === 'twin-b' && l['decision'] === 'inject'),
      'inject audit line for twin-b',
    );
    expect(injected['status']).toBe(200);
  });

  it('refuses to send a grant over plain HTTP (403 insecure_upstream) unless it has allow_http', async () => {
    const absolute = (host: string) => `GET http://${host}:${plain.port}/echo${QUERY} HTTP/1.1\r\nHost: ${host}:${plain.port}\r\nConnection: close\r\n\r\n`;
    const refused = await rawToProxy(proxy.port, absolute('plain.example.test'));
    const error = expectErrorBody(refused, 403, 'insecure_upstream');
    expect(error['grant']).toBe('plain');
    expect(String(error['hint'])).toContain('allow_http');
    expect(plain.seen).toEqual([]);
    const line = await auditFor(proxy, 'plain.example.test', 'insecure_upstream');
    expect(line['decision']).toBe('deny');
    expect(line['path']).toBe('/echo');

    const allowed = await rawToProxy(proxy.port, absolute('plainok.example.test'));
    expect(allowed.status).toBe(200);
    expect(plain.seen).toHaveLength(1);
    expect(plain.seen[0]?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect((JSON.parse(allowed.body) as { headers: Record<string, string> }).headers['authorization']).toBe('Bearer [redacted by keyway]');
    expect(allowed.body).not.toContain(CANARY);
  });

  it('an absolute-form plain request is read as a tunnelled one is: a backslash or dot segment is refused, not resolved by a URL parser', async () => {
    const before = plain.seen.length;
    // A WHATWG URL parser would turn `\` into `/` and resolve `..`, so `/a\..\admin` became `/admin`
    // before the rules saw it; inside a tunnel the same path is refused.
    for (const path of ['/echo\\..\\admin', '/echo/a\\b']) {
      const res = await rawToProxy(
        proxy.port,
        `GET http://plainok.example.test:${plain.port}${path} HTTP/1.1\r\nHost: plainok.example.test:${plain.port}\r\nConnection: close\r\n\r\n`,
      );
      expectErrorBody(res, 400, 'bad_request');
    }
    // http:host (no slashes) is a URL parser's leniency, not absolute form.
    const lenient = await rawToProxy(
      proxy.port,
      `GET http:plainok.example.test:${plain.port}/echo HTTP/1.1\r\nHost: plainok.example.test\r\nConnection: close\r\n\r\n`,
    );
    expectErrorBody(lenient, 400, 'bad_request');
    expect(plain.seen.length).toBe(before);
  });

  it('answers 401 grant_no_secret, hint `keyway secrets set`, for a grant with no secret yet, static or OAuth, and leaves it as it was', async () => {
    for (const [host, grant] of [
      ['unset.example.test', 'unset'],
      ['unsetoauth.example.test', 'unset-oauth'],
    ] as const) {
      const before = upstream.seen.length;
      const res = await get(proxy, `https://${host}:${upstream.port}/echo${QUERY}`);
      const error = expectErrorBody(res, 401, 'grant_no_secret');
      expect(error['grant']).toBe(grant);
      expect(error['hint']).toBe(`keyway secrets set ${grant} --stdin`);
      expect(upstream.seen.length).toBe(before);
      const line = await auditFor(proxy, host, 'grant_no_secret');
      expect(line).toMatchObject({ grant, decision: 'error', status: 401 });
    }
    // `keyway refresh` (and the admin API's refresh, the same operation) says the same.
    const refresh = await proxy.cli(['refresh', 'unset-oauth']);
    expect(refresh.code).toBe(1);
    expect(refresh.stderr).toBe('keyway refresh: grant "unset-oauth" has no usable secret set\n');
    // Not marked needs_reconnect, as a refused refresh token would be: it still waits for its secret.
    const shown = await proxy.cli(['grants', 'show', 'unset-oauth', '--json']);
    expect(shown.code, shown.stderr).toBe(0);
    expect(JSON.parse(shown.stdout)).toMatchObject({ status: 'active', display_status: 'no secret' });
  });

  it('answers 401 grant_needs_reconnect with a hint for a grant that needs reconnecting', async () => {
    const before = upstream.seen.length;
    const res = await get(proxy, `https://stale.example.test:${upstream.port}/echo${QUERY}`);
    const error = expectErrorBody(res, 401, 'grant_needs_reconnect');
    expect(error['grant']).toBe('stale');
    expect(String(error['hint'])).toContain('keyway connect');
    expect(upstream.seen.length).toBe(before);
    const line = await auditFor(proxy, 'stale.example.test', 'grant_needs_reconnect');
    expect(['deny', 'error']).toContain(line['decision']);
  });

  it('keeps every audit line free of query strings, with a code on every refusal', async () => {
    for (const p of [proxy, denyProxy, timeoutProxy]) {
      const lines = p.auditLines();
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) {
        if (typeof line['path'] === 'string') expect(line['path']).not.toContain('?');
        if (line['decision'] === 'deny' || line['decision'] === 'error') expect(typeof line['code']).toBe('string');
      }
    }
  });

  it('never shows the grant secret or a query value in error bodies, logs or audit lines', async () => {
    // Let late audit lines (tunnels closing) land before reading.
    await new Promise((r) => setTimeout(r, 100));
    expect(errorBodies.length).toBeGreaterThanOrEqual(10);
    const texts = [...errorBodies, ...[proxy, denyProxy, timeoutProxy].flatMap((p) => [p.logs.join(''), readFileSync(p.auditPath, 'utf8')])];
    for (const text of texts) {
      expect(text).not.toContain(CANARY);
      expect(text).not.toContain(CANARY2);
    }
  });
});
