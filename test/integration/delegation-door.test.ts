import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CANARY } from '../helpers/fixtures.ts';
import { curlStatus } from '../helpers/clients.ts';
import { cleanEnv, runProcess, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitForAsync } from '../helpers/wait.ts';

// Issue 89, self-service: an agent mints and revokes its own children through keyway's door
// (POST / DELETE https://keyway.internal/delegate) with only its own proxy credentials, driven with
// the real curl through the real proxy. The door admits what docs/delegation.md lists; the rest is
// attacked here: a stranger revoking another's child, a child widening itself, a body too big, a
// wrong method or type, plain HTTP to keyway.internal, a mint flood, and no key ever in the log.

const GITHUB = 'api.example.test';
const OPENAI = 'other.example.test';
const LEAD_KEY = 'kw-canary-lead-key-7f3a91c2';
const OTHER_KEY = 'kw-canary-other-key-0b88d1';
const FLOOD_KEY = 'kw-canary-flood-key-55ce02';
const SWEEP_KEY = 'kw-canary-sweep-key-9a1b7e';
const SHARED_KEY = 'kw-canary-shared-key-c3d4e5';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: string;
}

describe('delegation door: an agent mints and revokes its own children through the proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  const keys: string[] = [LEAD_KEY, OTHER_KEY, FLOOD_KEY, SWEEP_KEY, SHARED_KEY];

  beforeAll(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({
      env: { LEAD_KEY, OTHER_KEY, FLOOD_KEY, SWEEP_KEY, SHARED_KEY, OPS_KEY: 'ops-key-never-minted-0123' },
      config: {
        agents: {
          lead: { key: 'env:LEAD_KEY', grants: ['github', 'openai'] },
          other: { key: 'env:OTHER_KEY', grants: ['github'] },
          flood: { key: 'env:FLOOD_KEY', grants: ['github'] },
          sweep: { key: 'env:SWEEP_KEY', grants: ['github'] },
          shared: { key: 'env:SHARED_KEY', grants: ['github'] },
          // The operator's own agent whose id a door mint by lead would make: never overwritten.
          'lead-ops': { key: 'env:OPS_KEY', grants: ['github'] },
        },
      },
      grants: [
        { id: 'github', type: 'bearer', domains: [GITHUB], secret: CANARY },
        { id: 'openai', type: 'bearer', domains: [OPENAI], secret: 'kw-canary-openai-9d0e' },
      ],
    });
  });
  afterAll(async () => {
    await proxy?.stop();
    await upstream?.close();
  });

  const proxyUrl = (id: string, key: string) => `http://${id}:${key}@127.0.0.1:${proxy.port}`;
  /** One request to the door with curl, as the agent whose proxy URL it is. */
  const door = async (asProxy: string, method: string, path: string, body?: string, extra: string[] = []): Promise<Answer> => {
    const args = ['-sS', '-D', '-', '-X', method, `https://keyway.internal${path}`, ...extra];
    if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
    const result = await runProcess('curl', args, cleanEnv({ HTTPS_PROXY: asProxy, CURL_CA_BUNDLE: proxy.bundlePath }), body);
    // The CONNECT's own head comes first (curl -D shows both): the door's answer is the last head.
    const blocks = result.stdout.split('\r\n\r\n');
    const last = blocks.findLastIndex((b) => b.startsWith('HTTP/'));
    const head = blocks[last] ?? '';
    const status = Number(/^HTTP\/\S+ (\d{3})/.exec(head)?.[1] ?? 0);
    const text = blocks.slice(last + 1).join('\r\n\r\n');
    return { status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: head.toLowerCase() };
  };
  const mint = async (asProxy: string, fields: Record<string, unknown>): Promise<Answer> => {
    const answer = await door(asProxy, 'POST', '/delegate', JSON.stringify(fields));
    if (typeof answer.body['key'] === 'string') keys.push(answer.body['key']);
    return answer;
  };
  const curl = async (asProxy: string, host: string): Promise<number> => {
    const result = await runProcess(
      'curl',
      ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--proxy-header', 'Connection: close', `https://${host}:${upstream.port}/echo`],
      cleanEnv({ HTTPS_PROXY: asProxy, CURL_CA_BUNDLE: proxy.bundlePath }),
    );
    const connect = /response (\d{3})/.exec(result.stderr);
    return Number(result.stdout) || Number(connect?.[1] ?? 0);
  };
  const served = (asProxy: string) => waitForAsync(async () => ((await curl(asProxy, GITHUB)) === 200 ? true : undefined), 'the new child to be served');
  const agentIds = async (): Promise<string[]> =>
    (JSON.parse((await proxy.cli(['agents', 'list', '--json'])).stdout) as Array<{ id: string }>).map((a) => a.id);
  const lead = () => proxyUrl('lead', LEAD_KEY);
  const readConfig = (): Record<string, unknown> => parse(readFileSync(join(proxy.home, 'config', 'keyway.yaml'), 'utf8')) as Record<string, unknown>;

  it("mints a child with one of the parent's two grants, named under the parent, audited with the parent as actor", async () => {
    const answer = await mint(lead(), { name: 'worker', grants: ['github'], ttl: '30m' });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    expect(answer.body).toMatchObject({ id: 'lead-worker', parent: 'lead', grants: ['github'], chain: ['lead', 'lead-worker'], depth: 0 });
    const child = answer.body['proxy_url'] as string;
    expect(child).toBe(proxyUrl('lead-worker', answer.body['key'] as string));
    await served(child);
    expect(upstream.seen.at(-1)?.headers.authorization).toBe(`Bearer ${CANARY}`);
    expect(await curl(child, OPENAI)).toBe(403);
    const line = proxy.auditLines().find((l) => l['action'] === 'agent.delegate' && l['agent'] === 'lead-worker');
    expect(line).toMatchObject({ decision: 'admin', actor: 'agent:lead', code: null, status: 201, host: 'keyway.internal', chain: ['lead', 'lead-worker'] });
    expect(await agentIds()).toContain('lead-worker');
    // A name that already begins with the parent's id is taken as it is.
    const direct = await mint(lead(), { name: 'lead-direct', grants: ['github'] });
    expect(direct.body).toMatchObject({ id: 'lead-direct', chain: ['lead', 'lead-direct'] });
  });

  it('refuses a grant the parent lacks, naming it, and writes nothing', async () => {
    const answer = await mint(proxyUrl('other', OTHER_KEY), { name: 'wide', grants: ['github', 'openai'] });
    expect(answer.status).toBe(403);
    expect(answer.body['error']).toMatchObject({ code: 'delegation_refused' });
    expect((answer.body['error'] as { message: string }).message).toContain('"openai"');
    expect(await agentIds()).not.toContain('other-wide');
    const line = proxy.auditLines().findLast((l) => l['action'] === 'agent.delegate' && l['agent'] === 'other-wide');
    expect(line).toMatchObject({ decision: 'deny', code: 'delegation_refused', actor: 'agent:other' });
  });

  it('never overwrites an agent: a config agent of the would-be id, or a child minted before', async () => {
    const ops = await mint(lead(), { name: 'ops' });
    expect(ops.status).toBe(403);
    expect(ops.body['error']).toMatchObject({ code: 'delegation_refused' });
    const first = await mint(lead(), { name: 'twice', grants: ['github'] });
    expect(first.status).toBe(201);
    const again = await mint(lead(), { name: 'twice', grants: ['openai'] });
    expect(again.status).toBe(403);
    expect(String((again.body['error'] as { message: string }).message)).toContain('exists');
    await served(first.body['proxy_url'] as string);
  });

  it('lets a child go no wider through the door: no depth left, no grant it lacks', async () => {
    const worker = await mint(lead(), { name: 'narrow', grants: ['github'] });
    const child = worker.body['proxy_url'] as string;
    await served(child);
    const deeper = await mint(child, { name: 'sub' });
    expect(deeper.status).toBe(403);
    expect(String((deeper.body['error'] as { message: string }).message)).toContain('no delegation depth left');
    expect(deeper.body['error']).toMatchObject({ code: 'delegation_refused' });
    // A root agent may mint one generation: a child asking for a depth of its own is wider.
    const mid = await mint(lead(), { name: 'mid', grants: ['github'], depth: 1 });
    expect(mid.status).toBe(403);
    expect(mid.body['error']).toMatchObject({ code: 'delegation_refused' });
    expect(await agentIds()).not.toContain('lead-narrow-sub');
  });

  it("refuses a stranger revoking another's child, and a child revoking its parent or sibling, alike", async () => {
    const answer = await mint(lead(), { name: 'kept', grants: ['github'] });
    const child = answer.body['proxy_url'] as string;
    await served(child);
    for (const [as, target] of [
      [proxyUrl('other', OTHER_KEY), 'lead-kept'],
      [proxyUrl('other', OTHER_KEY), 'no-such-agent'],
      [child, 'lead'],
      [child, 'lead-worker'],
      [child, 'lead-kept'],
    ] as const) {
      const refused = await door(as, 'DELETE', `/delegate/${target}`);
      expect(refused.status, `${as} revoking ${target}`).toBe(404);
      expect(refused.body['error']).toMatchObject({ code: 'not_found' });
    }
    expect(await curl(child, GITHUB)).toBe(200);
    expect(await agentIds()).toEqual(expect.arrayContaining(['lead', 'lead-kept', 'lead-worker']));
  });

  it('revokes its own child: its key is refused at once, its open connection cut', async () => {
    const gone = await mint(lead(), { name: 'gone', grants: ['github'] });
    const child = gone.body['proxy_url'] as string;
    await served(child);
    const revoked = await door(lead(), 'DELETE', '/delegate/lead-gone');
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ removed: ['lead-gone'] });
    await waitForAsync(async () => ((await curl(child, GITHUB)) === 407 ? true : undefined), 'the revoked child refused');
    expect(await agentIds()).not.toContain('lead-gone');
    const line = proxy.auditLines().findLast((l) => l['action'] === 'agents.delete' && l['agent'] === 'lead-gone');
    expect(line).toMatchObject({ decision: 'admin', actor: 'agent:lead', status: 200 });
    // Gone is gone: a second revoke finds nothing.
    expect((await door(lead(), 'DELETE', '/delegate/lead-gone')).status).toBe(404);
  });

  it('refuses what the door does not admit: a method, a type, a query, an unknown field, a body too big', async () => {
    const cases: Array<[Answer, number, string]> = [
      [await door(lead(), 'GET', '/delegate'), 400, 'bad_request'],
      [await door(lead(), 'PUT', '/delegate', '{"name":"x"}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate/lead-worker', '{"name":"x"}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate?name=x', '{"name":"x"}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate', 'name=x', ['-H', 'content-type: application/x-www-form-urlencoded']), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate', '{"name":"x","parent":"other"}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate', '{"name":"../x"}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate', '[1]'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegate', JSON.stringify({ name: 'big', rules: ['x'.repeat(20_000)] })), 413, 'body_too_large'],
      // HTTP/1.1 inside the tunnel too, a big body without a length (chunked).
      [await door(lead(), 'POST', '/delegate', 'y'.repeat(40_000), ['--http1.1', '-H', 'transfer-encoding: chunked']), 413, 'body_too_large'],
      [await door(lead(), 'GET', '/delegate', undefined, ['--http1.1']), 400, 'bad_request'],
      [await door(lead(), 'DELETE', '/delegate/lead-worker', '{}'), 400, 'bad_request'],
      [await door(lead(), 'POST', '/delegates', '{"name":"x"}'), 404, 'not_found'],
      [await door(lead(), 'DELETE', '/delegate/%E0%A4%A'), 404, 'not_found'],
      [await door(lead(), 'DELETE', '/delegate/lead-worker/x'), 404, 'not_found'],
    ];
    for (const [answer, status, code] of cases) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.body['error']).toMatchObject({ code });
    }
    expect((await agentIds()).filter((id) => id === 'lead-x' || id === 'lead-big')).toEqual([]);
    // The door's own check is still answered.
    expect((await door(lead(), 'GET', '/healthz')).body).toMatchObject({ ok: true, agent: 'lead' });
  });

  it('answers no plain-HTTP request to keyway.internal: the door is only inside TLS', async () => {
    const result = await curlStatus(
      'http://keyway.internal/delegate',
      { method: 'POST', headers: ['content-type: application/json'], data: '{"name":"plain"}' },
      cleanEnv({ http_proxy: lead() }),
    );
    expect(result.status, result.stderr).not.toBe(201);
    // keyway answers its own name only inside an intercepted CONNECT: never looked up, never sent on.
    expect(result.status).toBe(400);
    const line = await waitForAsync(async () => proxy.auditLines().find((l) => l['host'] === 'keyway.internal' && l['port'] === 80), 'the refusal line');
    expect(line).toMatchObject({ agent: 'lead', decision: 'deny', code: 'bad_request' });
    expect(await agentIds()).not.toContain('lead-plain');
  });

  it('refuses a mint flood with delegation_limited and Retry-After; nothing past the limit is written', async () => {
    const flood = proxyUrl('flood', FLOOD_KEY);
    const answers: Answer[] = [];
    for (let i = 0; i < 12; i++) answers.push(await mint(flood, { name: `f${i}`, ttl: '5m' }));
    expect(answers.slice(0, 10).map((a) => a.status)).toEqual(Array(10).fill(201));
    for (const refused of answers.slice(10)) {
      expect(refused.status).toBe(429);
      expect(refused.body['error']).toMatchObject({ code: 'delegation_limited' });
      expect(refused.headers).toMatch(/retry-after: \d+/);
    }
    const ids = await agentIds();
    expect(ids.filter((id) => id.startsWith('flood-'))).toHaveLength(10);
    // Revoking does not give the window back.
    expect((await door(flood, 'DELETE', '/delegate/flood-f0')).status).toBe(200);
    expect((await mint(flood, { name: 'again' })).status).toBe(429);
  });

  it("sweeps a parent's expired children from the store at its next mint", async () => {
    const sweep = proxyUrl('sweep', SWEEP_KEY);
    // Long enough that the three are minted before the first expires, on a loaded machine too.
    const expiries: number[] = [];
    for (const name of ['a', 'b', 'c']) {
      const minted = await mint(sweep, { name, ttl: '5s' });
      expect(minted.status).toBe(201);
      expiries.push(Date.parse(String(minted.body['expires_at'])));
    }
    const short = (await agentIds()).filter((id) => id.startsWith('sweep-'));
    expect(short).toEqual(['sweep-a', 'sweep-b', 'sweep-c']);
    // Expired, they serve nothing, but their records stay until the parent mints again.
    await new Promise((resolve) => setTimeout(resolve, Math.max(...expiries) - Date.now() + 100));
    expect((await agentIds()).filter((id) => id.startsWith('sweep-'))).toHaveLength(3);
    expect((await mint(sweep, { name: 'd' })).status).toBe(201);
    expect((await agentIds()).filter((id) => id.startsWith('sweep-'))).toEqual(['sweep-d']);
  });

  it('counts the mint limit across processes on one store', async () => {
    // A second keyway on the same home (a replica, or a worker): its mints and the first's are one count.
    const second = await startProxy({ home: proxy.home, env: proxy.env, config: JSON.parse(JSON.stringify(readConfig())) });
    try {
      const at = (p: TestProxy) => `http://shared:${SHARED_KEY}@127.0.0.1:${p.port}`;
      for (let i = 0; i < 5; i++) expect((await mint(at(proxy), { name: `one${i}` })).status).toBe(201);
      for (let i = 0; i < 5; i++) expect((await mint(at(second), { name: `two${i}` })).status).toBe(201);
      expect((await mint(at(second), { name: 'eleventh' })).status).toBe(429);
      expect((await mint(at(proxy), { name: 'eleventh' })).status).toBe(429);
    } finally {
      await second.stop();
    }
  });

  it('writes no key in the audit log or the app log', async () => {
    const audit = readFileSync(proxy.auditPath, 'utf8');
    const logs = proxy.logs.join('');
    expect(keys.length).toBeGreaterThan(8);
    for (const key of keys) {
      expect(audit).not.toContain(key);
      expect(logs).not.toContain(key);
    }
  });
});
