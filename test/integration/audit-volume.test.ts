import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { AGENT, AUTH, http1Requests, floodProxyPerTest } from '../helpers/flood-agent.ts';
import { h2Request, h2ThroughProxy, tlsThroughProxy } from '../helpers/http2-client.ts';
import { delta, parseMetrics } from '../helpers/metrics-text.ts';

// Issue 21, "the agent can erase its own trail": the volume of audit an agent can force. A line is
// bounded whatever the request (a long path is recorded cut, with its SHA-256); identical refusals
// past a budget become one summary line per interval. Proxy authentication failures are throttled
// per client address: test/hostile/auth-throttle.test.ts.

const start = floodProxyPerTest();

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
      port: Number(authority.split(':')[1]),
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
