// GET /api/audit and GET /api/audit/stream on a running keyway, after real traffic through it (a
// real HTTPS upstream, undici's ProxyAgent trusting keyway's CA): filters and paging against what
// the file holds, a live line within a second, resume with Last-Event-ID, a second writer sharing the
// home, the stream cap, a reader that stops reading, and the end of every stream when keyway stops.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { once } from 'node:events';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditWriter } from '../../src/audit/index.ts';
import { adminClient, type AdminClient } from '../helpers/admin-api.ts';
import { openEventStream, type SseClient } from '../helpers/event-stream.ts';
import { CANARY, TLS_FIXTURES } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

interface Line {
  seq: number;
  decision: string;
  grant: string | null;
  host: string;
  path: string | null;
  code: string | null;
  status?: number | null;
}

describe('admin API: audit query and live stream', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  let agent: ProxyAgent;
  const answers: string[] = [];
  const streams: SseClient[] = [];

  const call = async (method: string, path: string, headers?: Record<string, string>) => {
    const res = await admin.call(method, path, undefined, headers);
    answers.push(res.text);
    return res;
  };
  const stream = async (query = '', headers: Record<string, string> = {}) => {
    const s = await openEventStream(`${admin.base}/api/audit/stream${query}`, { authorization: `Bearer ${admin.token}`, ...headers });
    streams.push(s);
    return s;
  };
  const through = async (host: string, path: string) => {
    const res = await request(`https://${host}:${upstream.port}${path}`, { dispatcher: agent });
    await res.body.text();
    return res.statusCode;
  };
  const fileLines = () => proxy.auditLines() as unknown as Line[];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ grants: [{ id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY }] });
    admin = adminClient(proxy);
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: [readFileSync(proxy.caPath, 'utf8'), TLS_FIXTURES.ca] } });
    // Three injected requests (one with a query string carrying a secret), one blind tunnel, one admin write.
    for (const path of ['/echo?n=1', `/echo?key=${CANARY}`, '/echo']) expect(await through('api.example.test', path)).toBe(200);
    expect(await through('tunnel.example.test', '/echo')).toBe(200);
    expect((await admin.call('POST', '/api/reload')).status).toBe(200);
    const deadline = Date.now() + 5_000;
    while (fileLines().length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  });
  afterAll(async () => {
    for (const s of streams) s.close();
    await agent?.close();
    await proxy?.stop();
    await upstream?.close();
    // Nothing any answer or stream carried holds the secret, in any encoding.
    const all = [...answers, ...streams.flatMap((s) => s.events.map((e) => e.data))].join('\n');
    expect(findLeak(all, CANARY)).toBeUndefined();
  });

  it('filters as `keyway audit query` does, newest first, and pages with a cursor', async () => {
    const injected = fileLines().filter((l) => l.decision === 'inject');
    expect(injected).toHaveLength(3);
    const first = await call('GET', '/api/audit?decision=inject&limit=2');
    expect(first.status).toBe(200);
    const page1 = first.body as { lines: Line[]; next: string | null };
    expect(page1.lines.map((l) => l.seq)).toEqual([injected[2]!.seq, injected[1]!.seq]);
    expect(page1.next).toEqual(expect.any(String));
    const second = (await call('GET', `/api/audit?decision=inject&limit=2&cursor=${page1.next}`)).body as typeof page1;
    expect(second.lines.map((l) => l.seq)).toEqual([injected[0]!.seq]);
    expect(second.next).toBeNull();
    // The lines are the file's, field for field.
    expect(second.lines[0]).toEqual(injected[0]);

    const asc = (await call('GET', '/api/audit?order=asc&limit=1&grant=github')).body as typeof page1;
    expect(asc.lines.map((l) => l.seq)).toEqual([injected[0]!.seq]);
    const asc2 = (await call('GET', `/api/audit?order=asc&limit=5&grant=github&cursor=${asc.next}`)).body as typeof page1;
    expect(asc2.lines.map((l) => l.seq)).toEqual([injected[1]!.seq, injected[2]!.seq]);

    const tunnel = (await call('GET', '/api/audit?decision=tunnel&host=TUNNEL.example.test')).body as typeof page1;
    expect(tunnel.lines.map((l) => l.host)).toEqual(['tunnel.example.test']);
    const admins = (await call('GET', '/api/audit?decision=admin&since=1h')).body as typeof page1;
    expect(admins.lines.length).toBeGreaterThanOrEqual(1);
    expect((await call('GET', `/api/audit?until=${encodeURIComponent('2000-01-01T00:00:00Z')}`)).body).toEqual({ lines: [], next: null });
    // No path in any line carries the query string the agent sent.
    expect(injected.every((l) => l.path === '/echo')).toBe(true);
  });

  it('refuses filters, limits, orders and cursors it cannot read, without echoing them', async () => {
    const bad = async (query: string) => {
      const res = await call('GET', `/api/audit?${query}`);
      expect(res.status, query).toBe(400);
      return (res.body as { error: { code: string; message: string } }).error;
    };
    expect((await bad('decision=allow')).message).toMatch(/inject, tunnel, deny, error or admin|inject, tunnel, deny, error, admin/);
    await bad('limit=0');
    await bad('limit=1001');
    await bad('limit=ten');
    await bad('order=sideways');
    await bad('since=yesterday');
    await bad('cursor=not-a-cursor');
    expect((await bad(`${CANARY}=1`)).message).not.toContain(CANARY);
    await bad('grant=a&grant=b');
    const page = (await call('GET', '/api/audit?limit=1')).body as { next: string };
    expect((await bad(`order=asc&cursor=${page.next}`)).message).toMatch(/order=desc/);
    // A forged cursor that decodes to something else is refused too.
    await bad(`cursor=${Buffer.from('desc.-1').toString('base64url')}`);
  });

  it('needs the admin token for both routes', async () => {
    expect((await fetch(`${admin.base}/api/audit`)).status).toBe(401);
    const s = await openEventStream(`${admin.base}/api/audit/stream`, {});
    expect(s.status).toBe(401);
  });

  it('streams a line for a real proxied request within a second, with retry and the seq as id', async () => {
    const s = await stream('?grant=github');
    expect(s.status).toBe(200);
    expect(s.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(s.headers.get('cache-control')).toBe('no-store');
    const started = Date.now();
    expect(await through('api.example.test', '/echo?live=1')).toBe(200);
    expect(await through('tunnel.example.test', '/echo')).toBe(200);
    const event = await s.next((e) => e.event === 'audit', 1_000);
    const elapsed = Date.now() - started;
    const line = JSON.parse(event.data) as Line;
    expect(line).toMatchObject({ decision: 'inject', grant: 'github', path: '/echo' });
    expect(event.id).toBe(String(line.seq));
    // Exactly the file's line.
    expect(fileLines().find((l) => l.seq === line.seq)).toEqual(line);
    expect(s.retry).toBe(3000);
    // The tunnel line does not match grant=github and never arrives.
    await new Promise((r) => setTimeout(r, 300));
    expect(s.events.map((e) => (JSON.parse(e.data) as Line).decision)).toEqual(['inject']);
    console.log(`audit stream: proxied request to event in ${elapsed} ms`);
    s.close();
  });

  it('resumes after Last-Event-ID with the matching lines written since', async () => {
    const before = fileLines().at(-1)!.seq;
    expect(await through('api.example.test', '/echo?missed=1')).toBe(200);
    expect(await through('api.example.test', '/echo?missed=2')).toBe(200);
    const deadline = Date.now() + 3_000;
    // Both outcomes written (a request's write-ahead line alone is not its end).
    while (fileLines().filter((l) => l.seq > before && l.decision === 'inject' && l.status !== null).length < 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    const s = await stream('?decision=inject', { 'last-event-id': String(before) });
    await s.next((e) => Number(e.id) > before, 2_000);
    await new Promise((r) => setTimeout(r, 200));
    const expected = fileLines()
      .filter((l) => l.seq > before && l.decision === 'inject')
      .map((l) => String(l.seq));
    expect(s.events.map((e) => e.id)).toEqual(expected);
    const bad = await stream('', { 'last-event-id': 'abc' });
    expect(bad.status).toBe(400);
    s.close();
  });

  it('delivers lines another keyway process sharing the home writes', async () => {
    const s = await stream('?agent=other-process');
    const { paths, auditHeadKey } = proxy.running.services;
    const other = await AuditWriter.open({ path: paths.audit, headPath: paths.auditHead, headKey: auditHeadKey });
    try {
      await other.write(event('other-process', 'from the second writer'));
      const got = await s.next(() => true, 1_000);
      expect(JSON.parse(got.data)).toMatchObject({ agent: 'other-process', message: 'from the second writer' });
    } finally {
      await other.close();
      s.close();
    }
  });

  it('answers 429 past the stream cap, and takes a new stream once one closes', async () => {
    await new Promise((r) => setTimeout(r, 100)); // streams closed by earlier tests are gone
    const open: SseClient[] = [];
    for (let i = 0; i < 8; i++) open.push(await stream());
    expect(open.map((s) => s.status)).toEqual(Array(8).fill(200));
    const refused = await stream();
    expect(refused.status).toBe(429);
    expect(refused.errorBody).toMatchObject({ error: { code: 'too_many_streams' } });
    open[0]!.close();
    await new Promise((r) => setTimeout(r, 200));
    const again = await stream();
    expect(again.status).toBe(200);
    for (const s of [...open, again]) s.close();
    await new Promise((r) => setTimeout(r, 200));
  });

  it('cuts off a reader that stops reading instead of buffering for it', async () => {
    const socket = connect(admin.base.split(':').at(-1) as unknown as number, '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `GET /api/audit/stream?agent=flood HTTP/1.1\r\nHost: 127.0.0.1:${admin.base.split(':').at(-1)}\r\nAuthorization: Bearer ${admin.token}\r\n\r\n`,
    );
    socket.pause(); // never reads: the kernel buffers fill, then keyway's
    const closed = once(socket, 'close');
    const { paths, auditHeadKey } = proxy.running.services;
    const other = await AuditWriter.open({ path: paths.audit, headPath: paths.auditHead, headKey: auditHeadKey });
    const pad = 'x'.repeat(1800);
    try {
      // About 24 MB of matching lines: more than the socket buffers and keyway's 1 MiB backlog.
      await Promise.all(Array.from({ length: 12_000 }, () => other.write(event('flood', pad))));
    } finally {
      await other.close();
    }
    // Still paused while keyway's feed reads the lines and pushes them at this reader.
    await new Promise((r) => setTimeout(r, 3_000));
    let received = 0;
    socket.on('data', (chunk: Buffer) => (received += chunk.length));
    socket.resume();
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('still open'), 10_000))]);
    expect(outcome).toBe('closed');
    // What reached the reader is what the buffers held when keyway gave up, not the whole flood.
    expect(received).toBeLessThan(12_000 * 1800);
    console.log(`stalled reader: cut off after ${received} bytes of ${12_000 * 1800}`);
    // A stream slot is free again and the feed still works for others.
    const s = await stream('?agent=after-flood');
    expect(s.status).toBe(200);
    s.close();
  });

  it('ends every open stream when keyway stops, at once even with a drain period', async () => {
    const s = await stream();
    expect(s.status).toBe(200);
    const started = Date.now();
    // A 10 s drain lets requests in flight finish; a stream never finishes, so it is ended rather than waited for.
    const stopping = proxy.running.stop({ drainMs: 10_000 });
    await s.ended;
    expect(Date.now() - started).toBeLessThan(2_000);
    await stopping;
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

function event(agent: string, message: string) {
  return {
    ts: new Date().toISOString(),
    id: `test-${Math.random()}`,
    agent,
    grant: null,
    decision: 'deny' as const,
    code: null,
    method: 'GET',
    host: 'api.example.test',
    port: 443,
    path: '/x',
    status: 403,
    duration_ms: 1,
    refreshed: false,
    client: '127.0.0.1',
    message,
  };
}
