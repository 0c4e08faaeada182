// A type that reads every answer (`retry`) while keyway holds its secret (issue 87, item 5a): an
// HTTP Digest type is one, its password in the store and a 401's challenge answered with the same
// password over the server's nonce. No shipped type is both today, so the test makes bearer one for
// this file (its kind's compile gives a `retry`): a stored bearer grant, a real keyway, a real HTTPS
// upstream on loopback, a real client. The answers the type does not ask to replay reach the client
// whole and are asked for once; a challenge (`same`) is answered once with the same secret; a
// `fresh` has no newer secret to send, so the refusal goes to the client as it came.
import type { IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RetryVerdict } from '../../src/credentials/grant.ts';
import { KINDS } from '../../src/credentials/types/index.ts';
import { canaryLeaks } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { slack } from '../helpers/load.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const HOST = 'api.example.test';
const CHALLENGE = 'Digest realm="things", qop="auth", nonce="n-1"';
const PLAIN_BODY = 'the first answer, whole: '.padEnd(4096, 'x');

/** What the test type asks of each answer: a Digest challenge is answered with the same secret, a stale token would want a new one. */
function digestLike(status: number, headers: IncomingHttpHeaders): RetryVerdict {
  if (status !== 401) return undefined;
  const challenge = headers['www-authenticate'] ?? '';
  if (challenge.startsWith('Digest ')) return 'same';
  return challenge.includes('invalid_token') ? 'fresh' : undefined;
}

describe('a type that reads answers, its secret held by keyway', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let client: ProxyAgent;
  /** Every answer's status and path, as the type heard them. */
  const heard: Array<[number, string]> = [];
  /** Requests to each challenged path: the first is challenged, the next is let in. */
  const challenged = new Map<string, number>();
  /** The streamed answer: its first part is sent, the rest once the client has read that part (or, failing that, after a while). */
  let finishStream: () => void = () => undefined;
  let streamEnded = false;

  /** Bodies the upstream got, by path. */
  const bodies = new Map<string, string[]>();
  const get = async (path: string, body?: string) => {
    const method = body === undefined ? 'GET' : 'POST';
    const res = await request(`https://${HOST}:${upstream.port}${path}`, { dispatcher: client, method, body, signal: AbortSignal.timeout(15_000) });
    return { status: res.statusCode, text: await res.body.text() };
  };
  const seen = (path: string) => upstream.seen.filter((s) => s.url === path);
  const line = (path: string) => waitFor(() => proxy.auditLines().find((l) => l['path'] === path), `the audit line of ${path}`);

  beforeAll(async () => {
    const compile = KINDS.bearer.compile;
    vi.spyOn(KINDS.bearer, 'compile').mockImplementation((fields) => ({
      ...compile(fields),
      retry: (status, headers, url) => {
        heard.push([status, new URL(url).pathname]);
        return digestLike(status, headers);
      },
    }));
    upstream = await startUpstream({
      handler: (req, res, body) => {
        const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
          res.writeHead(status, headers).end(body);
          return true;
        };
        if (req.headers.authorization !== `Bearer ${CANARY}`) return answer(403, 'not the held secret');
        const path = new URL(req.url ?? '/', 'https://upstream').pathname;
        bodies.set(path, [...(bodies.get(path) ?? []), body?.toString() ?? '']);
        if (path === '/plain') return answer(200, PLAIN_BODY, { 'content-type': 'text/plain' });
        if (path === '/created') return answer(201, 'made');
        if (path === '/stale') return answer(401, 'stale token', { 'www-authenticate': 'Bearer error="invalid_token"' });
        if (path === '/refused') return answer(401, 'no');
        if (path === '/stream') {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: first\n\n');
          const finish = () => {
            if (streamEnded) return;
            streamEnded = true;
            res.end('data: last\n\n');
          };
          finishStream = finish;
          setTimeout(finish, slack(5_000)).unref();
          return true;
        }
        if (path.startsWith('/challenge')) {
          const count = (challenged.get(path) ?? 0) + 1;
          challenged.set(path, count);
          return count === 1 ? answer(401, 'answer the challenge', { 'www-authenticate': CHALLENGE }) : answer(200, 'the things');
        }
        return false;
      },
    });
    proxy = await startProxy({ grants: [{ id: 'digest', type: 'bearer', domains: [HOST], secret: CANARY }] });
    client = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  }, 30_000);

  afterAll(async () => {
    vi.restoreAllMocks();
    await client?.close();
    await proxy?.stop();
    await upstream?.close();
  });

  it('passes an answer it does not ask to replay to the client whole, and asks the upstream once', async () => {
    expect(await get('/plain')).toEqual({ status: 200, text: PLAIN_BODY });
    expect(await get('/created')).toEqual({ status: 201, text: 'made' });
    expect(seen('/plain')).toHaveLength(1);
    expect(seen('/created')).toHaveLength(1);
    expect(heard).toContainEqual([200, '/plain']);
    const plain = await line('/plain');
    expect(plain['replayed']).toBeUndefined();
    expect(plain['replay']).toBeUndefined();
  });

  it('streams an answer it does not ask to replay: its first part reaches the client before the upstream ends it', async () => {
    const res = await request(`https://${HOST}:${upstream.port}/stream`, { dispatcher: client, signal: AbortSignal.timeout(slack(5_000) * 4) });
    const parts: string[] = [];
    for await (const chunk of res.body) {
      if (parts.length === 0) {
        // Heard while the upstream still holds the answer open: not kept back for a replay.
        expect(streamEnded).toBe(false);
        finishStream();
      }
      parts.push(String(chunk));
    }
    expect(parts.join('')).toBe('data: first\n\ndata: last\n\n');
    expect(seen('/stream')).toHaveLength(1);
  });

  it('answers a challenge (`same`) once with the same held secret: the client gets the second answer only', async () => {
    expect(await get('/challenge-1')).toEqual({ status: 200, text: 'the things' });
    expect(seen('/challenge-1')).toHaveLength(2);
    expect(heard.filter(([, path]) => path === '/challenge-1')).toEqual([
      [401, '/challenge-1'],
      [200, '/challenge-1'],
    ]);
    expect(await line('/challenge-1')).toMatchObject({ status: 200, replayed: true });
  });

  it('sends a challenged request’s body again with the answer', async () => {
    const body = JSON.stringify({ thing: 'made', pad: 'y'.repeat(20_000) });
    expect(await get('/challenge-post', body)).toEqual({ status: 200, text: 'the things' });
    expect(bodies.get('/challenge-post')).toEqual([body, body]);
  });

  it('has no newer secret for a `fresh`, nor for keyway’s default on a 401: the refusal goes to the client as it came, asked once', async () => {
    expect(await get('/stale')).toEqual({ status: 401, text: 'stale token' });
    expect(await get('/refused')).toEqual({ status: 401, text: 'no' });
    expect(seen('/stale')).toHaveLength(1);
    expect(seen('/refused')).toHaveLength(1);
    const stale = await line('/stale');
    expect(stale['replayed']).toBeUndefined();
    expect(stale['replay']).toBeUndefined();
  });

  it('never puts the held secret in a log or an audit line', async () => {
    await line('/refused');
    expect(canaryLeaks(proxy)).toEqual([]);
  });
});
