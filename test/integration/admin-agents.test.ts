// The admin API's agent and lease routes on a real keyway: a key made over the API is returned once
// and works as Proxy-Authorization (real curl through the proxy); a rotated key refuses the old one;
// a lease granted, revoked or renewed over the API changes what the proxy allows on the next
// request; the key is in no other answer, audit line or log; every write leaves one audit line.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient, type AdminCall, type AdminClient } from '../helpers/admin-api.ts';
import { curl, waitFor } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

const CONFIG_AGENT_KEY = 'config-agent-key-5d1e8a';

interface KeyAnswer {
  agent: { id: string; source: string; grants: string[]; lease_ttl: string | null; leases: Array<{ grant: string; lease: string }> };
  key: string;
  proxy_url: string;
}

describe('admin API: agents and leases', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let admin: AdminClient;
  /** Answers that must not hold any agent key (all but the create and rotate answers themselves). */
  const answers: string[] = [];
  const keys: string[] = [];
  let botUrl = '';

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { CONFIG_AGENT_KEY },
      config: { agents: { cfg: { key: 'env:CONFIG_AGENT_KEY', grants: ['github'] } } },
      grants: [
        { id: 'github', type: 'bearer', domains: ['api.example.test'], secret: CANARY },
        { id: 'other', type: 'bearer', domains: ['other.example.test'], secret: `${CANARY}-other` },
      ],
    });
    admin = adminClient(proxy);
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const call = async (method: string, path: string, body?: unknown): Promise<AdminCall> => {
    const res = await admin.call(method, path, body);
    answers.push(res.text);
    return res;
  };
  /** Makes or rotates a key: its answer is the one place the key may be. */
  const keyCall = async (method: string, path: string, body?: unknown): Promise<AdminCall & { body: KeyAnswer }> => {
    const res = await admin.call(method, path, body);
    const answer = res.body as KeyAnswer;
    if (typeof answer.key === 'string') keys.push(answer.key);
    return res as AdminCall & { body: KeyAnswer };
  };
  /** A real curl through the proxy with this proxy URL (agent credentials in it): the status, and keyway's error code if it refused. */
  const send = async (proxyUrl: string) => {
    const before = upstream.seen.length;
    const res = await curl(
      ['-o', '/dev/null', '-w', '%{http_code} %header{x-keyway-error}', '-x', proxyUrl, `https://api.example.test:${upstream.port}/echo`],
      cleanEnv({ CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const [code = '', error = ''] = res.stdout.split(' ');
    // A refused CONNECT (407) has no response code of its own: curl names the CONNECT's status on stderr.
    const status = Number(code) || Number(/CONNECT tunnel failed, response (\d+)/.exec(res.stderr)?.[1]);
    return { status, error, reachedUpstream: upstream.seen.length > before };
  };
  const through = async (proxyUrl: string) => (await send(proxyUrl)).status;
  const withKey = (url: string, key: string) => url.replace(/:[^:@/]+@/, `:${encodeURIComponent(key)}@`);

  it('create returns the key once, with a proxy URL that works as Proxy-Authorization', async () => {
    const created = await keyCall('POST', '/api/agents', { id: 'bot', grants: ['github'], lease_ttl: '10m', max_lease_ttl: '1h' });
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(created.body.proxy_url).toBe(`http://bot:${created.body.key}@127.0.0.1:${proxy.port}`);
    expect(created.body.agent).toMatchObject({
      id: 'bot',
      source: 'store',
      grants: ['github'],
      lease_ttl: '10m',
      leases: [{ grant: 'github', lease: 'pending' }],
    });
    botUrl = created.body.proxy_url;

    expect(await through(botUrl)).toBe(200);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(await through(withKey(botUrl, 'not-the-key'))).toBe(407);

    // Listed with its lease (the first use started one), never its key.
    const list = await call('GET', '/api/agents');
    const agents = (list.body as { agents: KeyAnswer['agent'][] }).agents;
    expect(agents.map((a) => a.id)).toEqual(['bot', 'cfg']);
    expect(agents[0]?.leases).toEqual([expect.objectContaining({ grant: 'github', lease: 'active' })]);
    expect(list.text).not.toContain(created.body.key);
  });

  it('rotate-key: the old key is refused from now on, the new one works', async () => {
    const rotated = await keyCall('POST', '/api/agents/bot/rotate-key');
    expect(rotated.status).toBe(200);
    expect(rotated.body.key).not.toBe(keys[0]);
    expect(await through(botUrl)).toBe(407);
    botUrl = rotated.body.proxy_url;
    expect(await through(botUrl)).toBe(200);
  });

  it('leases: revoke refuses the next request at once; a renewal is capped by max_lease_ttl and lets it through', async () => {
    const revoked = await call('DELETE', '/api/agents/bot/leases/github');
    expect(revoked.status).toBe(200);
    expect((revoked.body as { lease: { revoked_at?: string } }).lease.revoked_at).toBeTruthy();
    expect(await send(botUrl)).toEqual({ status: 403, error: 'lease_expired', reachedUpstream: false });

    const renewed = await call('PUT', '/api/agents/bot/leases/github', { ttl: '2h' });
    expect(renewed.status).toBe(200);
    const lease = (renewed.body as { lease: { capped: boolean; ttl: string; expires_at: string } }).lease;
    expect(lease).toMatchObject({ capped: true, ttl: '1h', requested_ttl: '2h', max_lease_ttl: '1h' });
    expect(Math.abs(Date.parse(lease.expires_at) - (Date.now() + 3_600_000))).toBeLessThan(60_000);
    expect(await through(botUrl)).toBe(200);

    // No body: the agent's lease_ttl, renewing the live lease.
    const byDefault = await call('PUT', '/api/agents/bot/leases/github');
    expect(byDefault.status).toBe(200);
    expect(byDefault.body).toMatchObject({ lease: { ttl: '10m', renewed: true, capped: false } });
  });

  it('refuses what it cannot do, with the stable statuses', async () => {
    const cases: Array<[string, string, unknown, number]> = [
      ['PUT', '/api/agents/cfg/leases/github', { ttl: '1h' }, 409], // no lease_ttl: not leased
      ['PUT', '/api/agents/bot/leases/other', {}, 409], // not one of its grants
      ['PUT', '/api/agents/nobody/leases/github', {}, 404],
      ['PUT', '/api/agents/bot/leases/nothing', {}, 404],
      ['PUT', '/api/agents/bot/leases/github', { ttl: 'soon' }, 400],
      ['PUT', '/api/agents/bot/leases/github', { ttl: 60 }, 400],
      ['DELETE', '/api/agents/nobody/leases/github', undefined, 404],
      ['POST', '/api/agents/cfg/rotate-key', undefined, 409],
      ['DELETE', '/api/agents/cfg', undefined, 409],
      ['POST', '/api/agents/nobody/rotate-key', undefined, 404],
      ['DELETE', '/api/agents/nobody', undefined, 404],
      ['POST', '/api/agents', { id: 'bot' }, 409],
      ['POST', '/api/agents', { id: 'cfg' }, 409],
      ['POST', '/api/agents', { id: 'Evil' }, 400],
      ['POST', '/api/agents', { id: '../x' }, 400],
      ['POST', '/api/agents', { id: 'typo', grants: ['githb'] }, 400],
      ['POST', '/api/agents', { id: 'short', lease_ttl: '2h', max_lease_ttl: '1h' }, 400],
      ['POST', '/api/agents', { id: 'keyed', key: 'my-own-key' }, 400],
      ['POST', '/api/agents', {}, 400],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${res.text}`).toBe(status);
      expect((res.body as { error: { code: string; message: string } }).error.message).toBeTruthy();
    }
    const text = await fetch(`${admin.base}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'text/plain' },
      body: '{"id":"t"}',
    });
    expect(text.status).toBe(415);
    const huge = await fetch(`${admin.base}/api/agents`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ id: 'huge', grants: Array.from({ length: 10_000 }, () => 'github') }),
    });
    expect(huge.status).toBe(413);
    // None of it made an agent.
    const ids = ((await call('GET', '/api/agents')).body as { agents: Array<{ id: string }> }).agents.map((a) => a.id);
    expect(ids).toEqual(['bot', 'cfg']);
  });

  it('delete removes the agent and its leases: its key is refused', async () => {
    const removed = await call('DELETE', '/api/agents/bot');
    expect(removed).toMatchObject({ status: 200, body: { removed: 'bot' } });
    expect(await through(botUrl)).toBe(407);
    expect(await through(`http://cfg:${CONFIG_AGENT_KEY}@127.0.0.1:${proxy.port}`)).toBe(200);
  });

  it('every write left one audit line with the agent (and grant); no key in any other answer, the audit log or the log', async () => {
    const lines = () => proxy.auditLines().filter((l) => l['decision'] === 'admin');
    await waitFor(() => lines().some((l) => l['action'] === 'agents.delete' && l['status'] === 200), 3_000);
    const done = (action: string) => lines().filter((l) => l['action'] === action && [200, 201].includes(l['status'] as number));
    expect(done('agents.create').map((l) => l['agent'])).toEqual(['bot']);
    expect(done('agents.rotate_key').map((l) => l['agent'])).toEqual(['bot']);
    expect(done('agents.revoke_lease').map((l) => [l['agent'], l['grant']])).toEqual([['bot', 'github']]);
    expect(done('agents.lease').map((l) => [l['agent'], l['grant']])).toEqual([
      ['bot', 'github'],
      ['bot', 'github'],
    ]);
    expect(done('agents.delete').map((l) => l['agent'])).toEqual(['bot']);
    expect(lines().some((l) => l['action'] === 'agents.rotate_key' && l['status'] === 409 && l['agent'] === 'cfg')).toBe(true);

    const audit = readFileSync(proxy.auditPath, 'utf8');
    expect(keys).toHaveLength(2);
    for (const secret of [...keys, CONFIG_AGENT_KEY, CANARY]) {
      expect(findLeak(answers.join('\n'), secret)).toBeUndefined();
      expect(findLeak(audit, secret)).toBeUndefined();
      expect(findLeak(proxy.logs.join(''), secret)).toBeUndefined();
    }
  });
});
