import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { h2Request, h2ThroughProxy, tlsThroughProxy } from '../helpers/http2-client.ts';
import { startProxy, type TestProxy } from '../helpers/keyway.ts';
import { delta, parseMetrics } from '../helpers/metrics-text.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// Issue 21, "the agent can erase its own trail": the volume of audit an agent can force. A line is
// bounded whatever the request (a long path is recorded cut, with its SHA-256); identical refusals
// past a budget become one summary line per interval; proxy authentication failures are throttled
// per client address.

const AGENT = 'flood';
const KEY = 'flood-agent-key';
const AUTH = `${AGENT}:${KEY}`;

let proxy: TestProxy | undefined;
let upstream: TestUpstream | undefined;
afterEach(async () => {
  await proxy?.stop();
  await upstream?.close();
  proxy = undefined;
  upstream = undefined;
});

async function start(): Promise<{ proxy: TestProxy; authority: string }> {
  upstream = await startUpstream();
  proxy = await startProxy({
    env: { FLOOD_KEY: KEY },
    config: { agents: { [AGENT]: { key: 'env:FLOOD_KEY', rules: [{ grant: 'api', methods: ['GET'], paths: ['/echo', '/allowed/**'] }] } } },
    grants: [{ id: 'api', type: 'bearer', domains: ['api.example.test'], secret: CANARY }],
  });
  return { proxy, authority: `api.example.test:${upstream.port}` };
}

/** Sends requests one after another on one HTTP/1.1 connection inside the tunnel; returns the statuses. */
async function http1Requests(tls: TLSSocket, targets: string[], host: string): Promise<number[]> {
  const statuses: number[] = [];
  let buffered = '';
  let wake: (() => void) | undefined;
  let closed = false;
  tls.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('latin1');
    wake?.();
  });
  tls.on('close', () => {
    closed = true;
    wake?.();
  });
  for (const target of targets) {
    tls.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
    for (;;) {
      const end = buffered.indexOf('\r\n\r\n');
      const length = end === -1 ? -1 : Number(/\r\ncontent-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      if (end !== -1 && buffered.length >= end + 4 + length) {
        statuses.push(Number(buffered.slice(9, 12)));
        buffered = buffered.slice(end + 4 + length);
        break;
      }
      if (closed) throw new Error('connection closed');
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5_000);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }
  return statuses;
}

/** A plain-HTTP request on its own connection from `localAddress`, with Proxy-Authorization `auth`. */
function plainRequest(port: number, auth: string, localAddress = '127.0.0.1'): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1',
      port,
      localAddress,
      agent: false,
      method: 'GET',
      path: 'http://plain.example.test:1/x',
      headers: { 'proxy-authorization': `Basic ${Buffer.from(auth).toString('base64')}` },
      timeout: 5_000,
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer')));
    req.on('error', reject);
    req.end();
  });
}

/** Writes `text` on a new connection and collects the answer until keyway closes it (bounded in time). */
function rawConnect(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no close within 5 s')), 5_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(text);
  });
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

describe('an audit line is bounded whatever the request', () => {
  it('a 15 KB path (HTTP/1.1) and a 60 KB :path (HTTP/2) are recorded cut at 1 KiB, with path_sha256 and path_truncated; verify still passes', async () => {
    const { proxy, authority } = await start();
    const long1 = `/denied/h1/${'a'.repeat(15_000)}`;
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn: ['http/1.1'], proxyAuth: AUTH });
    expect(await http1Requests(tls, [`${long1}?token=${CANARY}`], authority)).toEqual([403]);
    tls.destroy();

    const long2 = `/denied/h2/${'b'.repeat(60_000)}`;
    const session = await h2ThroughProxy(proxy.port, authority, proxy.caPath, AUTH);
    const answer = await h2Request(session, { ':method': 'GET', ':path': long2 });
    expect(answer.headers[':status']).toBe(403);
    session.close();

    await proxy.stop();
    const raw = readFileSync(proxy.auditPath, 'utf8');
    expect(raw).not.toContain(CANARY);
    const lines = raw.split('\n').filter(Boolean);
    for (const [full, marker] of [
      [long1, '/denied/h1/'],
      [long2, '/denied/h2/'],
    ] as const) {
      const text = lines.find((l) => l.includes(marker))!;
      expect(Buffer.byteLength(text)).toBeLessThan(3 * 1024);
      const line = JSON.parse(text) as Record<string, unknown>;
      expect(line).toMatchObject({ decision: 'deny', code: 'policy_denied', path_truncated: true, path_sha256: sha256(full) });
      expect(Buffer.byteLength(line['path'] as string)).toBeLessThanOrEqual(1024);
      expect(full.startsWith(line['path'] as string)).toBe(true);
    }
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
    const query = await proxy.cli(['audit', 'query', '--decision', 'deny', '--json']);
    expect(query.code, query.stderr).toBe(0);
    expect(query.stdout).toContain('"path_truncated":true');
  });
});

describe('identical refusals past the budget become one summary line', () => {
  it('60 refusals with different paths: 20 lines, then one line with repeated: 40 at stop; every answer a 403, every refusal in /metrics', async () => {
    const { proxy, authority } = await start();
    const admin = `http://127.0.0.1:${proxy.running.adminAddress!.port}/metrics`;
    const token = readFileSync(proxy.running.services.paths.adminToken, 'utf8').trim();
    const scrape = async () => parseMetrics(await (await fetch(admin, { headers: { authorization: `Bearer ${token}` } })).text());
    const before = await scrape();

    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn: ['http/1.1'], proxyAuth: AUTH });
    const targets = Array.from({ length: 60 }, (_, i) => `/denied/${i}/${'c'.repeat(2_000)}`);
    const statuses = await http1Requests(tls, [...targets, '/echo'], authority);
    tls.destroy();
    expect(statuses).toEqual([...targets.map(() => 403), 200]);
    // /metrics counts every refusal, folded or not (counted when the line is committed).
    let after = await scrape();
    for (let i = 0; i < 50 && delta(before, after, 'keyway_requests_total', { decision: 'deny', code: 'policy_denied' }) < 60; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await scrape();
    }
    expect(delta(before, after, 'keyway_requests_total', { decision: 'deny', code: 'policy_denied' })).toBe(60);

    await proxy.stop(); // the summary is written at a graceful stop, through the same hash chain
    const lines = proxy.auditLines();
    const denied = lines.filter((l) => l['code'] === 'policy_denied');
    const full = denied.filter((l) => l['repeated'] === undefined);
    const summaries = denied.filter((l) => l['repeated'] !== undefined);
    expect(full).toHaveLength(20);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      decision: 'deny',
      code: 'policy_denied',
      agent: AGENT,
      method: 'GET',
      host: 'api.example.test',
      port: upstream!.port,
      path: null,
      status: 403,
      repeated: 40,
    });
    expect(Date.parse(summaries[0]!['first'] as string)).toBeLessThanOrEqual(Date.parse(summaries[0]!['last'] as string));
    // The allowed request's line is there, in full.
    expect(lines.some((l) => l['decision'] === 'inject' && l['path'] === '/echo' && l['status'] === 200)).toBe(true);
    const verify = await proxy.cli(['audit', 'verify']);
    expect(verify.code, verify.stderr).toBe(0);
    const tail = await proxy.cli(['audit', 'tail', '-n', '5']);
    expect(tail.code, tail.stderr).toBe(0);
  });
});

describe('proxy authentication failures are throttled per address and agent; guesses at one agent are slowed', () => {
  it('after 5 failures in a row: 429 rate_limited with Retry-After, the right key too; another address still gets through', async () => {
    const { proxy } = await start();
    const wrong = `${AGENT}:not-the-key`;
    const first: number[] = [];
    for (let i = 0; i < 5; i++) first.push((await plainRequest(proxy.port, wrong)).status);
    expect(first).toEqual([407, 407, 407, 407, 407]);
    const throttled = await plainRequest(proxy.port, wrong);
    expect(throttled.status).toBe(429);
    expect(throttled.headers['retry-after']).toBe('10');
    expect(throttled.headers['x-keyway-error']).toBe('rate_limited');
    expect(throttled.headers['connection']).toBe('close');
    // A CONNECT from the throttled address with a wrong key gets the same answer.
    const connect = await rawConnect(
      proxy.port,
      `CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\nProxy-Authorization: Basic ${Buffer.from(wrong).toString('base64')}\r\n\r\n`,
    );
    expect(connect).toMatch(/^HTTP\/1\.1 429 /);
    expect(connect).toMatch(/\r\nretry-after: 10\r\n/i);
    // Another client address is not locked out: its own failures are its own.
    expect((await plainRequest(proxy.port, wrong, '127.0.0.2')).status).toBe(407);
    // The right key on the throttled address gets the very same answer: nothing tells a guesser it won.
    const right = await plainRequest(proxy.port, AUTH);
    expect(right.status).toBe(429);
    expect(right.body).toBe(throttled.body);
    // From another address the right key goes through (refused later, for the destination, not for
    // authentication), which clears that address's count.
    const elsewhere = await plainRequest(proxy.port, AUTH, '127.0.0.3');
    expect([407, 429]).not.toContain(elsewhere.status);

    await proxy.stop();
    const limited = proxy.auditLines().filter((l) => l['code'] === 'rate_limited');
    expect(limited).toHaveLength(3);
    expect(limited[0]).toMatchObject({ decision: 'deny', status: 429, agent: null, client: '127.0.0.1' });
  });

  it('issue 46: a flood of wrong keys for an agent from one address never locks the agent out elsewhere; the guessing address gets the right key refused alike', async () => {
    const { proxy, authority } = await start();
    // Far past every count there is: 5 checked failures, then 35 refused unchecked.
    const flood: number[] = [];
    for (let i = 0; i < 40; i++) flood.push((await plainRequest(proxy.port, `${AGENT}:wrong-${i}`)).status);
    expect(flood.slice(0, 5)).toEqual([407, 407, 407, 407, 407]);
    expect(flood.slice(5).every((s) => s === 429)).toBe(true);
    // The oracle stays closed on the guessing address: the right key gets the wrong key's answer.
    const sameAnswer = async () => {
      const wrong = await plainRequest(proxy.port, `${AGENT}:wrong-again`);
      const right = await plainRequest(proxy.port, AUTH);
      expect(right.status).toBe(429);
      expect(wrong.status).toBe(429);
      expect(right.body).toBe(wrong.body);
      for (const name of ['retry-after', 'x-keyway-error', 'connection', 'content-type', 'content-length'])
        expect(right.headers[name]).toBe(wrong.headers[name]);
    };
    await sameAnswer();
    // The agent itself, with its right key, from its own address: served (a real request upstream).
    const tls = await tlsThroughProxy(proxy.port, authority, proxy.caPath, { alpn: ['http/1.1'], proxyAuth: AUTH, localAddress: '127.0.0.2' });
    expect(await http1Requests(tls, ['/echo'], authority)).toEqual([200]);
    tls.destroy();
    // And from a third address, on a plain request (refused later for its made-up destination, not for authentication).
    const elsewhere = await plainRequest(proxy.port, AUTH, '127.0.0.3');
    expect([407, 429]).not.toContain(elsewhere.status);
    // The agent's successes elsewhere do not reopen the guessing address.
    await sameAnswer();
    // Only the 5 keys checked counted against the name, not the 35 refused unchecked: a wrong key
    // from a clean address is a prompt 407 (past 20 it would wait 100 ms more each, up to 1 s).
    const t0 = performance.now();
    expect((await plainRequest(proxy.port, `${AGENT}:typo`, '127.0.0.4')).status).toBe(407);
    expect(performance.now() - t0).toBeLessThan(400);
    await proxy.stop();
  });

  it('guesses at one agent rotated over many addresses: past 20, each wrong key is answered later (never refused); the right key is served at once; other agents are not slowed', async () => {
    const { proxy } = await start();
    const timed = async (auth: string, from: string) => {
      const t0 = performance.now();
      const { status } = await plainRequest(proxy.port, auth, from);
      return { status, ms: performance.now() - t0 };
    };
    const guesses: { status: number; ms: number }[] = [];
    for (let i = 0; i < 24; i++) guesses.push(await timed(`${AGENT}:guess-${i}`, `127.0.0.${10 + i}`));
    // Each address failed once: every guess was checked and got its 407, none a 429.
    expect(guesses.map((g) => g.status)).toEqual(guesses.map(() => 407));
    // The 21st to 24th wrong keys waited 100, 200, 300, 400 ms for it.
    for (const [i, g] of guesses.slice(20).entries()) expect(g.ms).toBeGreaterThanOrEqual((i + 1) * 100 - 5);
    // The right key, from an address that never failed: served (refused later, for the made-up destination), not slowed.
    const right = await timed(AUTH, '127.0.0.99');
    expect([407, 429]).not.toContain(right.status);
    expect(right.ms).toBeLessThan(400); // a wrong key here would wait 500 ms
    // The agent's success does not clear the count that slows guessers.
    const after = await timed(`${AGENT}:guess-after`, '127.0.0.98');
    expect(after.status).toBe(407);
    expect(after.ms).toBeGreaterThanOrEqual(495);
    // A wrong key naming another agent, from a fresh address, is a 407 at once.
    const other = await timed('someone-else:wrong', '127.0.0.100');
    expect(other.status).toBe(407);
    expect(other.ms).toBeLessThan(400);
    await proxy.stop();
  });

  it('a flood of wrong keys from one address writes a bounded audit: full lines up to the budget, then one summary', async () => {
    const { proxy } = await start();
    const size = () => statSync(proxy.auditPath).size;
    const start0 = size();
    const statuses: Record<number, number> = {};
    for (let i = 0; i < 80; i++) {
      const { status } = await plainRequest(proxy.port, `${AGENT}:wrong-${i}`);
      statuses[status] = (statuses[status] ?? 0) + 1;
    }
    expect(statuses).toEqual({ 407: 5, 429: 75 });
    await proxy.stop();
    const lines = proxy.auditLines();
    const summary = lines.filter((l) => l['code'] === 'rate_limited' && l['repeated'] !== undefined);
    expect(summary).toHaveLength(1);
    expect(summary[0]).toMatchObject({ repeated: 55, client: '127.0.0.1', agent: null });
    expect(lines.filter((l) => l['code'] === 'rate_limited' && l['repeated'] === undefined)).toHaveLength(20);
    // 5 407s + 20 429s + one summary: well under 80 lines' worth.
    expect(size() - start0).toBeLessThan(26 * 1024);
  });
});
