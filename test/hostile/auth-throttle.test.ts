import { statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AGENT, AUTH, http1Requests, plainRequest, rawConnect, floodProxyPerTest } from '../helpers/flood-agent.ts';
import { tlsThroughProxy } from '../helpers/http2-client.ts';

// Guessing agent keys, as a hostile agent on the same machine would (any local process can use all
// of 127.0.0.0/8). Failures are throttled per address and per agent named there: the guessing
// address gets every answer alike during its backoff, right key or wrong, while the agent keeps
// working from its own address (issue 46: a flood from one address used to lock the agent out
// everywhere); guesses spread over addresses are slowed, never refused; the audit stays bounded.

const start = floodProxyPerTest();

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
