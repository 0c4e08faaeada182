import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { ProxyAgent, request } from 'undici';
import { connect as tlsConnect } from 'node:tls';
import type { connect as netConnect } from 'node:net';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { openConnect, openTunnel } from '../helpers/raw-http.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// One agent's share of keyway (issue 21): the bodies kept for a replay after a 401 are bounded per
// agent and overall (past it: streamed, not replayed, and the audit line says so), and given back
// when the request ends however it ends; an agent's requests in flight are bounded (past it: 429
// rate_limited with Retry-After), and other agents are not affected. The grant is a
// client_credentials grant on a real authorization server (oidc-provider).

const BODY = randomBytes(1024 * 1024 - 512); // under REPLAY_LIMIT: a replay candidate
const KEYS = { a: 'agent-a-key-0123456789', b: 'agent-b-key-0123456789', c: 'agent-c-key-0123456789', d: 'agent-d-key-0123456789' };
type AgentId = keyof typeof KEYS;

describe('agent load: replay memory and requests in flight', () => {
  let auth: AuthServer;
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let ca: string;
  /** /gate?id=X: the first attempt of each id waits here (body read) until the test opens the gate, then gets 401; the second gets 200. */
  const waiting = new Map<string, ServerResponse>();
  const attempts = new Map<string, number>();
  const agents = new Map<AgentId, ProxyAgent>();

  beforeAll(async () => {
    auth = await startAuthServer();
    upstream = await startUpstream({
      handler: (req, res, body) => {
        const url = new URL(req.url ?? '/', 'https://upstream');
        if (url.pathname !== '/gate') return false;
        const id = url.searchParams.get('id') ?? '';
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        if (n === 1) waiting.set(id, res);
        else res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id, bytes: body?.length ?? 0 }));
        return true;
      },
    });
    proxy = await startProxy({
      config: {
        proxy: { max_in_flight_per_agent: 4, max_replay_memory: '3MiB', max_replay_memory_per_agent: '2MiB' },
        providers: { testauth: { token_url: auth.tokenUrl, client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET' } },
        agents: Object.fromEntries(
          Object.keys(KEYS).map((id) => [
            id,
            // d's rule caps the body: one of undeclared size is held whole to check it.
            { key: `env:KEY_${id.toUpperCase()}`, grants: ['machine'], ...(id === 'd' ? { rules: [{ grant: 'machine', max_body: '1MiB' }] } : {}) },
          ]),
        ),
      },
      env: { TEST_CLIENT_SECRET: CLIENT_SECRET, KEY_A: KEYS.a, KEY_B: KEYS.b, KEY_C: KEYS.c, KEY_D: KEYS.d },
      grants: [
        {
          id: 'machine',
          type: 'client_credentials',
          domains: ['api.example.test'],
          provider: 'testauth',
          secret: { clientId: CLIENT_ID, clientSecret: CLIENT_SECRET },
          // The gate refuses every first attempt whatever its token: each 401 here is to be replayed,
          // not the storm of refusals renew_floor holds back.
          renew_floor: '0s',
        },
      ],
    });
    ca = readFileSync(proxy.caPath, 'utf8');
  });
  afterAll(async () => {
    for (const client of agents.values()) await client.destroy();
    for (const res of waiting.values()) res.destroy();
    await proxy?.stop();
    await upstream?.close();
    await auth?.close();
  });

  const clientOf = (id: AgentId) => {
    let client = agents.get(id);
    if (!client) {
      client = new ProxyAgent({ uri: `http://${id}:${KEYS[id]}@127.0.0.1:${proxy.port}`, requestTls: { ca } });
      agents.set(id, client);
    }
    return client;
  };
  interface Answer {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    text: string;
  }

  function post(agent: AgentId, path: string, signal?: AbortSignal, headers: Record<string, string> = {}): Promise<Answer> {
    return request(`https://api.example.test:${upstream.port}${path}`, {
      method: 'POST',
      body: BODY,
      headers: { 'content-type': 'application/octet-stream', ...headers },
      dispatcher: clientOf(agent),
      signal,
    }).then(async (res) => ({ status: res.statusCode, headers: res.headers, text: await res.body.text() }));
  }

  async function until(what: string, check: () => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function openGates(ids: string[]): void {
    for (const id of ids) {
      const res = waiting.get(id);
      waiting.delete(id);
      res?.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}');
    }
  }

  const linesFor = (prefix: string) => proxy.auditLines().filter((l) => String(l['path']).startsWith('/gate') && linePath(l).startsWith(prefix));
  const linePath = (l: Record<string, unknown>) => String(l['path']);

  it('keeps bodies for a replay within the per-agent and overall budgets; past them streams, answers the 401, and says so', async () => {
    // a: three bodies, two fit its 2 MiB. Each waits at the gate with its body read.
    const aIds = ['a1', 'a2', 'a3'];
    const aSent = aIds.map((id) => post('a', `/gate?id=${id}`));
    await until('a at the gate', () => aIds.every((id) => waiting.has(id)));
    // b: its own 2 MiB, but only ~1 MiB is left of the 3 MiB overall: one body kept, one not.
    const bIds = ['b1', 'b2'];
    const bSent = bIds.map((id) => post('b', `/gate?id=${id}`));
    await until('b at the gate', () => bIds.every((id) => waiting.has(id)));
    openGates([...aIds, ...bIds]);
    const a = await Promise.all(aSent);
    const b = await Promise.all(bSent);
    expect(a.map((r) => r.status).sort(), a.map((r) => r.text).join('\n')).toEqual([200, 200, 401]);
    expect(b.map((r) => r.status).sort(), b.map((r) => r.text).join('\n')).toEqual([200, 401]);
    for (const r of [...a, ...b].filter((r) => r.status === 200)) expect(JSON.parse(r.text)).toMatchObject({ bytes: BODY.length });

    await until('audit lines', () => linesFor('/gate').length >= 5);
    const lines = linesFor('/gate');
    const replayed = lines.filter((l) => l['replayed'] === true);
    const skipped = lines.filter((l) => l['replay'] !== undefined);
    expect(replayed.map((l) => l['agent']).sort()).toEqual(['a', 'a', 'b']);
    expect(skipped.map((l) => [l['agent'], l['status'], l['replay']]).sort()).toEqual([
      ['a', 401, 'skipped: replay memory full'],
      ['b', 401, 'skipped: replay memory full'],
    ]);
  });

  it('gives the memory and the slots back when clients leave mid-request (no leak)', async () => {
    // Twice over what a may hold, each round cut off while held at the gate.
    for (let round = 0; round < 3; round++) {
      const ids = [`cut${round}-1`, `cut${round}-2`];
      const abort = new AbortController();
      const sent = ids.map((id) => post('a', `/gate?id=${id}`, abort.signal).catch((err: Error) => err));
      await until('held at the gate', () => ids.every((id) => waiting.has(id)));
      abort.abort();
      for (const r of await Promise.all(sent)) expect(r).toBeInstanceOf(Error);
      for (const id of ids) waiting.get(id)?.destroy();
      for (const id of ids) waiting.delete(id);
    }
    // Every slot and byte came back: two bodies kept and replayed again.
    const ids = ['back-1', 'back-2'];
    const sent = ids.map((id) => post('a', `/gate?id=${id}`));
    await until('back at the gate', () => ids.every((id) => waiting.has(id)));
    openGates(ids);
    expect((await Promise.all(sent)).map((r) => r.status)).toEqual([200, 200]);
  });

  it('drops Range and If-Range from the replay too, not only from the first attempt', async () => {
    const sent = post('b', '/gate?id=ranged', undefined, { range: 'bytes=0-3', 'if-range': '"v1"' });
    await until('ranged at the gate', () => waiting.has('ranged'));
    openGates(['ranged']);
    expect((await sent).status).toBe(200);
    const attemptsSeen = upstream.seen.filter((r) => r.url === '/gate?id=ranged');
    expect(attemptsSeen).toHaveLength(2);
    for (const r of attemptsSeen) expect([r.headers['range'], r.headers['if-range']]).toEqual([undefined, undefined]);
  });

  it('bodies held to check a max_body rule (no Content-Length) come out of the same budget: past it, 429 before anything is read upstream', async () => {
    // Chunked: no declared size, so each body is held whole (up to the rule's 1 MiB) before it goes on.
    const chunked = (id: string) =>
      request(`https://api.example.test:${upstream.port}/gate?id=${id}`, {
        method: 'POST',
        body: Readable.from([BODY.subarray(0, 512 * 1024), BODY.subarray(512 * 1024)]),
        headers: { 'content-type': 'application/octet-stream' },
        dispatcher: clientOf('d'),
      }).then(async (res) => ({ status: res.statusCode, headers: res.headers, text: await res.body.text() }));
    // d's 2 MiB: two bodies held (and kept for the replay) while they wait at the gate.
    const ids = ['h1', 'h2'];
    const held = ids.map(chunked);
    await until('d holds two bodies', () => ids.every((id) => waiting.has(id)));
    const third = await chunked('h3');
    expect(third.status, third.text).toBe(429);
    expect(third.headers['x-keyway-error']).toBe('rate_limited');
    expect(third.headers['retry-after']).toBe('1');
    expect(JSON.parse(third.text).error.hint).toContain('send Content-Length');
    expect(attempts.has('h3')).toBe(false);
    openGates(ids);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([200, 200]);
    // Given back: the next one is held and goes through.
    const after = chunked('h4');
    await until('h4 at the gate', () => waiting.has('h4'));
    openGates(['h4']);
    expect((await after).status).toBe(200);
  });

  it('refuses an agent past its requests in flight with 429 rate_limited and Retry-After; other agents are served', async () => {
    const ids = ['f1', 'f2', 'f3', 'f4'];
    const held = ids.map((id) => post('c', `/gate?id=${id}`));
    await until('c holds its 4', () => ids.every((id) => waiting.has(id)));

    const refused = await post('c', '/gate?id=f5');
    expect(refused.status, refused.text).toBe(429);
    expect(refused.headers['x-keyway-error']).toBe('rate_limited');
    expect(refused.headers['retry-after']).toBe('1');
    expect(JSON.parse(refused.text)).toMatchObject({ error: { code: 'rate_limited' } });
    expect(attempts.has('f5')).toBe(false); // never went upstream
    // A burst over HTTP/1.1, each with its body on the way: every one is told 429, none is cut off.
    const h1 = new ProxyAgent({ uri: `http://c:${KEYS.c}@127.0.0.1:${proxy.port}`, requestTls: { ca }, allowH2: false });
    const burst = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        request(`https://api.example.test:${upstream.port}/gate?id=burst${i}`, { method: 'POST', body: BODY, dispatcher: h1 }).then(
          async (r) => `${r.statusCode} ${r.headers['retry-after']} ${(await r.body.text()).includes('rate_limited')}`,
          (e: Error) => e.message,
        ),
      ),
    );
    await h1.close();
    expect(burst).toEqual(Array(10).fill('429 1 true'));

    // Another agent on the same grant, meanwhile.
    const other = await request(`https://api.example.test:${upstream.port}/echo`, { dispatcher: clientOf('b') });
    await other.body.text();
    expect(other.statusCode).toBe(200);

    await until('the refusal audited', () => proxy.auditLines().some((l) => l['code'] === 'rate_limited' && l['agent'] === 'c'));
    const line = proxy.auditLines().find((l) => l['code'] === 'rate_limited' && l['agent'] === 'c')!;
    expect(line).toMatchObject({ agent: 'c', decision: 'deny', status: 429 });

    openGates(ids);
    // Two of them were kept (c's 2 MiB) and replayed; the other two streamed, and their 401 came back.
    expect((await Promise.all(held)).map((r) => r.status).sort()).toEqual([200, 200, 401, 401]);
    // The slots came back.
    const again = post('c', '/gate?id=f6');
    await until('f6 at the gate', () => waiting.has('f6'));
    openGates(['f6']);
    expect((await again).status).toBe(200);
  });

  it('an open WebSocket counts as a request in flight: past the limit the handshake gets 429, and a closed one gives its slot back', async () => {
    const authority = `api.example.test:${upstream.port}`;
    const auth = `Proxy-Authorization: Basic ${Buffer.from(`c:${KEYS.c}`).toString('base64')}\r\n`;
    const open = async (): Promise<WebSocket> => {
      const tunnel = await openTunnel(proxy.port, authority, auth);
      const ws = new WebSocket(`wss://${authority}/ws`, {
        createConnection: (() => tlsConnect({ socket: tunnel, servername: 'api.example.test', ca })) as unknown as typeof netConnect,
      });
      ws.on('error', () => undefined);
      return ws;
    };
    const opened: WebSocket[] = [];
    try {
      for (let i = 0; i < 4; i++) {
        const ws = await open();
        await once(ws, 'open');
        opened.push(ws);
      }
      // The fifth, while four are open: refused before anything goes upstream.
      const fifth = await open();
      const outcome = await Promise.race([
        once(fifth, 'open').then(() => ({ statusCode: 101, headers: {} as Record<string, string> })),
        once(fifth, 'unexpected-response').then(([, res]) => res as { statusCode: number; headers: Record<string, string> }),
      ]);
      fifth.terminate();
      expect(outcome.statusCode).toBe(429);
      expect(outcome.headers['x-keyway-error']).toBe('rate_limited');
      expect(outcome.headers['retry-after']).toBe('1');
      // One closes: its slot comes back (when keyway sees the close), and a new one opens.
      const closing = opened.pop()!;
      closing.close();
      await once(closing, 'close');
      let again: WebSocket | undefined;
      for (let attempt = 0; attempt < 50 && again === undefined; attempt++) {
        const ws = await open();
        const event = await Promise.race([once(ws, 'open').then(() => 'open'), once(ws, 'unexpected-response').then(() => 'refused')]);
        if (event === 'open') again = ws;
        else {
          ws.terminate();
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      expect(again).toBeDefined();
      opened.push(again!);
    } finally {
      for (const ws of opened) ws.terminate();
    }
    // Other agents were never limited by c's sockets.
    const { status } = await openConnect(proxy.port, authority, `Proxy-Authorization: Basic ${Buffer.from(`a:${KEYS.a}`).toString('base64')}\r\n`);
    expect(status).toBe(200);
  });
});
