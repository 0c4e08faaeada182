import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer as createNetServer, connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { exchange, parseResponse, startTls, type RawResponse } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

// Issue 8, defects 7 and 9, on the real request path with raw requests (so no client tidies the
// path first): what a rule judges is exactly what the upstream receives; override headers are
// judged as the method they name; a chunked body over max_body sends nothing upstream; a request
// without Host gets keyway's own 400 and an audit line.

const AUTH = `Proxy-Authorization: Basic ${Buffer.from('claude:claude-key').toString('base64')}\r\n`;

/** A TLS upstream that counts every application byte it receives and answers 200 to each request. */
async function startCountingUpstream(): Promise<{ port: number; bytes: () => number; reset: () => void; close: () => Promise<void> }> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server: TlsServer = createTlsServer({ cert: TLS_FIXTURES.cert, key: TLS_FIXTURES.key }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      buffered += chunk.toString('latin1');
      const end = buffered.indexOf('\r\n\r\n');
      if (end === -1) return;
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(buffered.slice(0, end))?.[1] ?? '0');
      if (buffered.length - end - 4 < length) return;
      buffered = buffered.slice(end + 4 + length);
      socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${String(length).length + 10}\r\n\r\n{"bytes":${length}}`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    bytes: () => bytes,
    reset: () => (bytes = 0),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A plain TCP listener that keeps every byte it receives and answers 200 to a head. Raw, not an HTTP
 * server: Node's would refuse a request without Host before any handler saw it, so a forwarded
 * Host-less request would go unrecorded.
 */
async function startPlainRecorder(): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
  let received = '';
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\r\n\r\n')) socket.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('rule bypasses and requests without Host (issue 8)', () => {
  let upstream: TestUpstream;
  let plain: Awaited<ReturnType<typeof startPlainRecorder>>;
  let counting: Awaited<ReturnType<typeof startCountingUpstream>>;
  let proxy: TestProxy;
  let keywayCa: string;

  beforeAll(async () => {
    [upstream, plain, counting] = await Promise.all([startUpstream(), startPlainRecorder(), startCountingUpstream()]);
    proxy = await startProxy({
      grants: [
        { id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'raw', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-raw` },
      ],
      env: { CLAUDE_KEY: 'claude-key' },
      config: {
        // Every refusal here is checked by its own line (auditOfLast): none folded into a summary.
        audit: { refusal_budget: 10_000 },
        agents: {
          claude: {
            key: 'env:CLAUDE_KEY',
            grants: ['api', 'raw'],
            rules: [
              { grant: 'api', methods: ['GET', 'HEAD'], paths: ['/**'] },
              { grant: 'api', deny: true, paths: ['/secret/**', '/admin/**'] },
              { grant: 'raw', methods: ['PUT'], paths: ['/upload'], max_body: '1KiB' },
              { grant: 'raw', methods: ['POST'], paths: ['/big'], max_body: '16MiB' },
            ],
          },
        },
      },
    });
    keywayCa = readFileSync(proxy.caPath, 'utf8');
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([upstream?.close(), plain?.close(), counting?.close()]);
  });

  /** CONNECT as the agent, TLS with keyway's CA, one raw request (`HOST` in it is replaced), its answer. */
  async function viaTunnel(host: string, port: number, request: string): Promise<RawResponse> {
    const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
    const authority = `${host}:${port}`;
    const head = await new Promise<string>((resolve, reject) => {
      let got = '';
      const timer = setTimeout(() => reject(new Error('CONNECT got no answer')), 5_000);
      const onData = (chunk: Buffer) => {
        got += chunk.toString('latin1');
        if (!got.includes('\r\n\r\n')) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.pause();
        resolve(got);
      };
      socket.on('data', onData);
      socket.once('error', reject);
      socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${AUTH}\r\n`);
    });
    expect(head).toMatch(/^HTTP\/1\.1 200/);
    const tls = await startTls(socket, host, keywayCa);
    requests++;
    return parseResponse(await exchange(tls, request.replaceAll('HOST', authority)));
  }

  const get = (path: string, extra = '') =>
    viaTunnel('api.example.test', upstream.port, `GET ${path} HTTP/1.1\r\nHost: HOST\r\n${extra}Connection: close\r\n\r\n`);
  // Every request here writes exactly one audit line (an intercepted CONNECT writes none): the n-th
  // request's line is the n-th line, however late it lands.
  let requests = 0;
  const auditOfLast = async () => waitFor(() => proxy.auditLines()[requests - 1], `audit line ${requests}`);
  const errorOf = (res: RawResponse) => (JSON.parse(res.body) as { error: Record<string, string> }).error;

  it('a deny rule holds against case, ;parameters, suffixes, encodings and dot segments; nothing reaches the upstream', async () => {
    const denied = [
      '/SECRET/x',
      '/Secret/keys',
      '/admin;x=1',
      '/admin;x=1/users',
      '/admin.json',
      '/ADMIN.JSON',
      '/admin%20',
      '/admin.',
      '/%61dmin/x',
      '/x/../admin/x',
      '/x/%2e%2e/admin',
      '//admin',
      '/admin%2Fusers',
      '/%EF%BD%81dmin',
    ];
    for (const path of denied) {
      const before = upstream.seen.length;
      const res = await get(path);
      expect(res.status, path).toBe(403);
      expect(res.headers['x-keyway-error'], path).toBe('policy_denied');
      expect(errorOf(res)['message'], path).toContain('agents.claude.rules[1]');
      expect(upstream.seen.length, path).toBe(before);
      const line = await auditOfLast();
      expect(line, path).toMatchObject({ decision: 'deny', code: 'policy_denied', grant: 'api' });
      expect(String(line['rule'])).toContain('rules[1]');
    }
  });

  it('refuses with 400 bad_request what cannot be normalised safely, audited without the raw path', async () => {
    const refused = [
      '/admin%00',
      '/admin%00.json',
      '/secret%252fx',
      '/x/..;/admin',
      '/a\\..\\admin',
      '/x%2F..%2Fadmin',
      '/a%FF',
      '/a%C0%AF',
      '/%2e%2e%5cadmin',
    ];
    for (const path of refused) {
      const before = upstream.seen.length;
      const res = await get(`${path}?token=${CANARY}`);
      expect(res.status, path).toBe(400);
      expect(res.headers['x-keyway-error'], path).toBe('bad_request');
      expect(errorOf(res)['message'], path).toContain('cannot be normalised safely');
      expect(res.body).not.toContain(CANARY);
      expect(upstream.seen.length, path).toBe(before);
      const line = await auditOfLast();
      expect(line, path).toMatchObject({ decision: 'deny', code: 'bad_request', path: null, status: 400 });
    }
  });

  it('sends upstream exactly the path it judged (plus the query), and audits that path without the query', async () => {
    const cases: Array<[string, string, string]> = [
      // [request target, what the upstream receives, the audit path]
      ['/echo#frag', '/echo', '/echo'],
      ['/echo?q=1#/../admin', '/echo?q=1', '/echo'],
      [`/x/../echo?token=${CANARY}`, `/echo?token=${CANARY}`, '/echo'],
      ['//echo//a', '/echo/a', '/echo/a'],
      ['/%65cho', '/echo', '/echo'],
      ['/files/my%20file', '/files/my%20file', '/files/my%20file'],
      ['/repos/a%2fb', '/repos/a%2Fb', '/repos/a%2Fb'],
      ['/a%3bb;v=1', '/a%3Bb;v=1', '/a%3Bb;v=1'],
      ['/secrets', '/secrets', '/secrets'], // not /secret/**
    ];
    for (const [target, sent, audited] of cases) {
      const res = await get(target);
      expect(res.status, target).toBe(200);
      expect(upstream.seen.at(-1)?.url, target).toBe(sent);
      expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
      const line = await auditOfLast();
      expect(line, target).toMatchObject({ decision: 'inject', path: audited });
    }
    expect(readFileSync(proxy.auditPath, 'utf8')).not.toContain(CANARY);
  });

  it('takes an absolute-form target inside the tunnel by its path as sent, through the same stage', async () => {
    const absolute = (target: string) => viaTunnel('api.example.test', upstream.port, `GET ${target} HTTP/1.1\r\nHost: HOST\r\nConnection: close\r\n\r\n`);
    const before = upstream.seen.length;
    expect((await absolute('https://HOST/x/../ADMIN.json')).status).toBe(403);
    expect((await absolute('https://HOST/a\\..\\admin')).status).toBe(400);
    expect(upstream.seen.length).toBe(before);
    expect((await absolute('https://HOST/echo?q=1#f')).status).toBe(200);
    expect(upstream.seen.at(-1)?.url).toBe('/echo?q=1');
    expect((await absolute('https://HOST?q=2')).status).toBe(200);
    expect(upstream.seen.at(-1)?.url).toBe('/?q=2');
  });

  it('judges a method override as the method it names (headers and ?_method); a garbled one is refused', async () => {
    for (const extra of [
      'X-HTTP-Method-Override: DELETE\r\n',
      'X-Method-Override: delete\r\n',
      'X-HTTP-Method: PATCH\r\n',
      'X-HTTP-Method-Override: GET, DELETE\r\n',
    ]) {
      const before = upstream.seen.length;
      const res = await get('/echo', extra);
      expect(res.status, extra).toBe(403);
      expect(errorOf(res)['message'], extra).toMatch(/named by X-(HTTP-)?Method/);
      expect(upstream.seen.length, extra).toBe(before);
      const line = await auditOfLast();
      expect(line, extra).toMatchObject({ code: 'policy_denied', method: 'GET' });
      expect(String(line['method_override'])).toMatch(/DELETE|PATCH/);
    }
    const before = upstream.seen.length;
    const query = await get('/echo?_method=DELETE');
    expect(query.status).toBe(403);
    expect(errorOf(query)['message']).toContain('named by ?_method');
    expect((await get('/echo', 'X-HTTP-Method-Override: DE LETE\r\n')).status).toBe(400);
    expect(upstream.seen.length).toBe(before);
    // An override the rules allow goes up unchanged: the API may rely on it.
    expect((await get('/echo', 'X-HTTP-Method-Override: HEAD\r\n')).status).toBe(200);
    expect(upstream.seen.at(-1)?.headers['x-http-method-override']).toBe('HEAD');
  });

  it('judges X-Original-URL and X-Rewrite-URL as the paths they name', async () => {
    const before = upstream.seen.length;
    for (const extra of ['X-Original-URL: /admin/users\r\n', 'X-Rewrite-URL: /x/../SECRET/keys?y=1\r\n']) {
      const res = await get('/echo', extra);
      expect(res.status, extra).toBe(403);
      expect(errorOf(res)['message'], extra).toMatch(/named by X-(Original|Rewrite)-URL/);
      expect(await auditOfLast(), extra).toMatchObject({ code: 'policy_denied', path: '/echo' });
    }
    expect((await get('/echo', 'X-Original-URL: /a%00\r\n')).status).toBe(400);
    expect(upstream.seen.length).toBe(before);
    expect((await get('/echo', 'X-Original-URL: /repos/x\r\n')).status).toBe(200);
  });

  it('holds a chunked body under max_body before anything goes up: over the cap, the upstream receives 0 bytes', async () => {
    const chunked = (size: number) => {
      let body = '';
      for (let sent = 0; sent < size; sent += 256) body += `100\r\n${'a'.repeat(256)}\r\n`;
      return `${body}0\r\n\r\n`;
    };
    const put = (path: string, size: number, method = 'PUT') =>
      viaTunnel(
        'other.example.test',
        counting.port,
        `${method} ${path} HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(size)}`,
      );

    const over = await put('/upload', 4096);
    expect(over.status, over.body).toBe(403);
    await new Promise((r) => setTimeout(r, 100));
    expect(counting.bytes(), 'bytes the upstream received').toBe(0); // no head, no credential, no body
    expect(errorOf(over)['code']).toBe('policy_denied');
    expect(errorOf(over)['message']).toMatch(/rules\[2\]: a body of \d+ bytes exceeds max_body 1KiB/);
    expect(await auditOfLast()).toMatchObject({ decision: 'deny', code: 'policy_denied', grant: 'raw', path: '/upload' });
    // A cap above what keyway holds (8 MiB): a body of undeclared size must declare its length.
    const huge = await put('/big', 512, 'POST');
    expect(huge.status).toBe(403);
    expect(errorOf(huge)['message']).toContain('Content-Length');
    await new Promise((r) => setTimeout(r, 100));
    expect(counting.bytes()).toBe(0);

    const under = await put('/upload', 512);
    expect(under.status, under.body).toBe(200);
    expect(JSON.parse(under.body)).toEqual({ bytes: 512 }); // sent whole, with its length
    expect(counting.bytes()).toBeGreaterThan(512);
    counting.reset();
  });

  it('a client that leaves while its body is held sends nothing upstream and still gets its audit line', async () => {
    const authority = `other.example.test:${counting.port}`;
    const socket = netConnect({ host: '127.0.0.1', port: proxy.port });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n${AUTH}\r\n`);
    await waitFor(() => (socket.read() as Buffer | null) ?? undefined, 'the CONNECT answer');
    const tls = await startTls(socket, 'other.example.test', keywayCa);
    requests++;
    tls.write(`PUT /upload HTTP/1.1\r\nHost: ${authority}\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n${'a'.repeat(256)}\r\n`);
    await new Promise((r) => setTimeout(r, 150));
    tls.destroy();
    // Node also reports the cut body as a parser error, which server.ts audits as a second line.
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'client_closed' && l['grant'] === 'raw'), 'the client_closed line');
    expect(line).toMatchObject({ path: '/upload', method: 'PUT' });
    requests = proxy.auditLines().length;
    expect(counting.bytes()).toBe(0);
  });

  it('answers a request without Host with its own 400 and an audit line, inside a tunnel and on the plain listener', async () => {
    const before = upstream.seen.length;
    const inside = await viaTunnel('api.example.test', upstream.port, 'GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n');
    expect(inside.status).toBe(400);
    expect(inside.headers['x-keyway-error']).toBe('bad_request');
    expect(errorOf(inside)['message']).toContain('Host');
    expect(await auditOfLast()).toMatchObject({ decision: 'deny', code: 'bad_request', host: 'api.example.test', port: upstream.port, agent: 'claude' });
    expect(upstream.seen.length).toBe(before);

    // The path carries a mark of this run: the listener's port is a free one, and another test file's
    // client that still dials a port it once had may reach it, so the check is for this request only.
    const mark = `/echo-${randomBytes(6).toString('hex')}`;
    const url = `http://plain.example.test:${plain.port}${mark}`;
    requests++;
    const outside = parseResponse(
      await exchange(netConnect({ host: '127.0.0.1', port: proxy.port }), `GET ${url} HTTP/1.1\r\n${AUTH}Connection: close\r\n\r\n`),
    );
    expect(outside.status).toBe(400);
    expect(outside.headers['x-keyway-error']).toBe('bad_request');
    expect(await auditOfLast()).toMatchObject({ decision: 'deny', code: 'bad_request', host: 'plain.example.test' });
    await new Promise((r) => setTimeout(r, 100));
    expect(plain.received()).not.toContain(mark);

    // HTTP/1.0 has no Host requirement: inside a CONNECT, the target stands.
    const old = await viaTunnel('api.example.test', upstream.port, 'GET /echo HTTP/1.0\r\n\r\n');
    expect(old.status).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
  });
});
