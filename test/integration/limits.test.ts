// Rate limits and request quotas (config `limits:`) on the real request path: a pinned clock, so a
// bucket refills only when the test moves it; real clients; the upstream counts what reached it.
// Then quotas across `keyway start` processes on one home and across replicas on PostgreSQL: the
// day's count is in the store, so the processes together pass exactly the quota.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { delta, parseMetrics } from '../helpers/metrics-text.ts';
import { adminClient } from '../helpers/admin-api.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const TOKEN = `${CANARY}-limits-token`;
const BOT_KEY = 'bot-key-0123456789';
const OTHER_KEY = 'other-key-0123456789';

interface Answer {
  status: number;
  code: string | undefined;
  retryAfter: string | undefined;
  text: string;
}

async function send(agent: ProxyAgent, url: string): Promise<Answer> {
  const res = await request(url, { dispatcher: agent, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const text = await res.body.text();
  const header = (name: string) => (typeof res.headers[name] === 'string' ? (res.headers[name] as string) : undefined);
  return { status: res.statusCode, code: header('x-keyway-error'), retryAfter: header('retry-after'), text };
}

describe('limits on one proxy: rates per agent, per grant and per agent on a grant; request quotas per UTC day', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  // The start of today (UTC), so that `keyway agents show`, on the real clock, reads the same day's count.
  const today = new Date(new Date().toISOString().slice(0, 10));
  let clock = today;
  const agents: ProxyAgent[] = [];
  let bot: ProxyAgent;
  let other: ProxyAgent;
  const outputs: string[] = [];
  const config = {
    grants: {
      api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN' },
      counted: { type: 'bearer', domains: ['other.example.test'], secret: 'env:API_TOKEN', limits: { rate: '2/s', burst: 2 } },
    },
    agents: {
      bot: {
        key: 'env:BOT_KEY',
        limits: { rate: '60/min', burst: 20 },
        grant_limits: { counted: { quota: { requests: '5/day' } } },
      },
      other: { key: 'env:OTHER_KEY' },
      bulk: { key: 'env:BULK_KEY', limits: { quota: { bytes: '1MiB/day' } } },
    },
  };
  const env = { API_TOKEN: TOKEN, BOT_KEY, OTHER_KEY, BULK_KEY: 'bulk-key-0123456789' };
  const home = makeHome();

  const connect = (id: string, key: string, port: number) => {
    const agent = new ProxyAgent({ uri: `http://${id}:${key}@127.0.0.1:${port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 64 });
    agents.push(agent);
    return agent;
  };
  let bulk: ProxyAgent;
  const start = async () => {
    proxy = await startProxy({ home, env, now: () => clock, tokenClock: () => clock.getTime(), config });
    bot = connect('bot', BOT_KEY, proxy.port);
    other = connect('other', OTHER_KEY, proxy.port);
    bulk = connect('bulk', env.BULK_KEY, proxy.port);
  };

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${TOKEN}` });
    await start();
  });

  afterAll(async () => {
    for (const a of agents) await a.close().catch(() => undefined);
    const audit = readFileSync(proxy.auditPath, 'utf8');
    for (const text of [audit, ...outputs, ...proxy.logs]) expect(findLeak(text, TOKEN), 'the token in an output').toBeUndefined();
    await proxy?.stop();
    await upstream?.close();
  });

  const url = (host: string, tag: string) => `https://${host}:${upstream.port}/echo?${tag}`;
  const reached = (tag: string) => upstream.seen.filter((r) => r.url.includes(tag)).length;

  it('200 requests at once against burst 20: exactly 20 pass, 180 get 429 rate_limited with Retry-After; the next second lets one more through', async () => {
    const admin = adminClient(proxy);
    const before = parseMetrics((await admin.call('GET', '/metrics')).text);
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => send(bot, url('api.example.test', `burst=${i}`))));
    outputs.push(...answers.map((a) => a.text));
    expect(answers.filter((a) => a.status === 200)).toHaveLength(20);
    const limited = answers.filter((a) => a.status !== 200);
    expect(limited).toHaveLength(180);
    expect(new Set(limited.map((a) => `${a.status} ${a.code} ${a.retryAfter}`))).toEqual(new Set(['429 rate_limited 1']));
    expect(JSON.parse(limited[0]!.text).error.message).toBe('agent "bot" is over its rate of 60/min (burst 20)');
    expect(reached('burst=')).toBe(20);

    // Each line of a refusal says whose limit it was; /metrics counts them.
    // Identical refusals past the agent's refusal budget are summed up later in one line
    // (repeated: N, once per interval: the pinned clock never ends it); those written say whose limit.
    const lines = await waitFor(() => {
      const mine = proxy.auditLines().filter((l) => l['code'] === 'rate_limited' && l['agent'] === 'bot');
      return mine.length >= 20 ? mine : undefined;
    }, 'the refusals in the audit log');
    expect(lines.every((l) => l['decision'] === 'deny' && l['limit'] === 'agent' && l['grant'] === 'api')).toBe(true);
    const after = parseMetrics((await admin.call('GET', '/metrics')).text);
    expect(delta(before, after, 'keyway_limited_total', { grant: 'api', agent: 'bot', limit: 'rate' })).toBe(180);

    // Another agent has no limit of its own: unaffected.
    expect((await send(other, url('api.example.test', 'unlimited=1'))).status).toBe(200);
    // 60/min refills one a second: a second later, one passes and the next is refused.
    clock = new Date(clock.getTime() + 1_000);
    const [one, two] = [await send(bot, url('api.example.test', 'refill=1')), await send(bot, url('api.example.test', 'refill=2'))];
    expect([one.status, two.status]).toEqual([200, 429]);
  });

  it("a grant's rate holds for every agent together; an agent's quota on one grant counts that pair only", async () => {
    clock = new Date(clock.getTime() + 60_000); // bot's bucket full again
    // counted: 2/s, burst 2, for all agents: bot and other share it.
    const shared = [
      await send(bot, url('other.example.test', 'g=1')),
      await send(other, url('other.example.test', 'g=2')),
      await send(other, url('other.example.test', 'g=3')),
    ];
    outputs.push(...shared.map((a) => a.text));
    expect(shared.map((a) => a.status)).toEqual([200, 200, 429]);
    expect(JSON.parse(shared[2]!.text).error.message).toBe('grant "counted" is over its rate of 2/s (burst 2)');
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'rate_limited' && l['grant'] === 'counted'), 'the line');
    expect(line).toMatchObject({ agent: 'other', limit: 'grant' });
  });

  it('quota: 5 requests a day for bot on counted, the 6th is 429 quota_exhausted until the next UTC day; other agents unaffected', async () => {
    const statuses: number[] = [];
    let last: Answer | undefined;
    for (let i = 0; i < 6; i++) {
      clock = new Date(clock.getTime() + 1_000); // the grant's 2/s rate is not what refuses here
      last = await send(bot, url('other.example.test', `q=${i}`));
      outputs.push(last.text);
      statuses.push(last.status);
    }
    // bot used one request of its quota in the test before.
    expect(statuses).toEqual([200, 200, 200, 200, 429, 429]);
    expect(last!.code).toBe('quota_exhausted');
    const midnight = new Date(today.getTime() + 86_400_000);
    expect(Number(last!.retryAfter)).toBe(Math.ceil((midnight.getTime() - clock.getTime()) / 1000));
    expect(JSON.parse(last!.text).error.message).toBe(
      `agent "bot" on grant "counted" has used its 5 requests for today (UTC); the quota resets at ${midnight.toISOString()}`,
    );
    expect((await send(other, url('other.example.test', 'q-other'))).status).toBe(200);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'quota_exhausted'), 'the line');
    expect(line).toMatchObject({ decision: 'deny', agent: 'bot', grant: 'counted', limit: 'agent_grant' });

    // keyway agents show, and the admin API's listing: the limits and today's use, from the store.
    const shown = await proxy.cli(['agents', 'show', 'bot', '--json']);
    outputs.push(shown.stdout, shown.stderr);
    expect(shown.code, shown.stderr).toBe(0);
    const expected = [
      {
        scope: 'agent',
        grant: null,
        rate: '60/min',
        burst: 20,
        quota_requests: null,
        quota_used: null,
        quota_bytes: null,
        bytes_used: null,
        quota_resets_at: null,
      },
      {
        scope: 'agent_grant',
        grant: 'counted',
        rate: null,
        burst: null,
        quota_requests: 5,
        quota_used: 5,
        quota_bytes: null,
        bytes_used: null,
        quota_resets_at: midnight.toISOString(),
      },
    ];
    expect(JSON.parse(shown.stdout).limits).toEqual(expected);
    const words = await proxy.cli(['agents', 'show', 'bot']);
    expect(words.stdout).toMatch(/on counted\s+-\s+5\/5 today/);
    expect(words.stdout).toMatch(/all its requests\s+60\/min \(burst 20\)/);
    const listed = await adminClient(proxy).call('GET', '/api/agents');
    expect((listed.body as { agents: Array<{ id: string; limits: unknown }> }).agents.find((a) => a.id === 'bot')?.limits).toEqual(expected);
    expect((await proxy.cli(['agents', 'show', 'nobody'])).stderr).toContain('no agent "nobody"');
  });

  it('a bytes quota counts request and response bodies: 1 MiB a day passes a 600 KiB upload and a 600 KiB download, then refuses', async () => {
    const up = await request(url('api.example.test', 'bytes-up').replace('/echo', '/upload'), {
      dispatcher: bulk,
      method: 'POST',
      body: Buffer.alloc(600 * 1024, 0x61),
    });
    expect(up.statusCode).toBe(200);
    expect(await up.body.json()).toEqual({ bytes: 600 * 1024 });
    const down = await request(`https://api.example.test:${upstream.port}/download?n=${600 * 1024}`, { dispatcher: bulk });
    expect(down.statusCode).toBe(200);
    expect((await down.body.arrayBuffer()).byteLength).toBe(600 * 1024);
    // The count is added when each exchange closes: the next request sees it.
    let refused: Answer | undefined;
    for (let i = 0; i < 20 && refused?.status !== 429; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      refused = await send(bulk, url('api.example.test', `bytes-after=${i}`));
    }
    outputs.push(refused!.text);
    expect(refused!.code).toBe('quota_exhausted');
    expect(JSON.parse(refused!.text).error.message).toMatch(/^agent "bulk" has used its 1 MiB of bodies for today \(UTC\); the quota resets at /);
  });

  it("the day's count is in the store: a restart does not give it back; the next UTC day does", async () => {
    await proxy.stop();
    await start();
    const refused = await send(bot, url('other.example.test', 'after-restart'));
    outputs.push(refused.text);
    expect(refused.code).toBe('quota_exhausted');
    clock = new Date(today.getTime() + 86_400_000 + 1_000);
    expect((await send(bot, url('other.example.test', 'next-day'))).status).toBe(200);
  });
});

describe('limits in the config: a mistake names its key', () => {
  const load = (agent: Record<string, unknown>) => () =>
    parseConfig(
      { grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:T' } }, agents: { bot: { key: 'env:K', grants: ['api'], ...agent } } },
      makeHome(),
    );
  it.each([
    [{ limits: { rate: 'fast' } }, /agents\.bot\.limits\.rate: expected a rate such as 60\/min/],
    [{ limits: { rate: '0/s' } }, /agents\.bot\.limits\.rate: expected a rate/],
    [{ limits: { burst: 5 } }, /agents\.bot\.limits\.burst: burst sizes a rate: give rate too/],
    [{ limits: { quota: { requests: 'lots' } } }, /agents\.bot\.limits\.quota\.requests: expected a count per day such as 10000\/day/],
    [{ limits: { quota: { bytes: 'a lot' } } }, /agents\.bot\.limits\.quota\.bytes: expected a size per day such as 2GiB\/day/],
    [{ limits: { quota: {} } }, /agents\.bot\.limits\.quota: expected requests: N\/day, bytes: SIZE\/day, or both/],
    [{ grant_limits: { slack: { rate: '1/s' } } }, /agents\.bot\.grant_limits\.slack: "slack" is not one of this agent's grants/],
  ])('%j', (agent, message) => {
    expect(load(agent)).toThrow(message);
  });
});

describe('request quotas across keyway processes', () => {
  const children: ChildProxy[] = [];
  const agents: ProxyAgent[] = [];
  let upstream: TestUpstream;
  const codes: Array<number | null> = [];
  const stopped = new Set<ChildProxy>();
  /** Stops the processes still running (the PostgreSQL ones before their database goes), keeping their exit codes. */
  async function stopChildren() {
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    const running = children.filter((c) => !stopped.has(c));
    for (const c of running) stopped.add(c);
    codes.push(...(await Promise.all(running.map((c) => c.stop()))));
  }

  beforeAll(async () => {
    upstream = await startUpstream({ requireAuthorization: `Bearer ${TOKEN}` });
  });
  afterAll(async () => {
    await stopChildren();
    for (const c of children) expect(findLeak(c.stdout() + c.stderr(), TOKEN), "the token in keyway's output").toBeUndefined();
    expect(codes.every((c) => c === 0)).toBe(true);
    await upstream?.close();
  });

  function writeHome(extra: Record<string, unknown> = {}): string {
    return writeChildHome({
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: 'env:API_TOKEN', limits: { quota: { requests: '30/day' } } } },
      ...extra,
    });
  }

  async function start(home: string, env: Record<string, string>): Promise<ProxyAgent> {
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    children.push(child);
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
    agents.push(agent);
    return agent;
  }

  /** 25 requests through each process at once against one grant's 30/day: exactly 30 reach the upstream. */
  async function exactlyTheQuota(through: ProxyAgent[], tag: string) {
    const answers = await Promise.all(
      through.flatMap((agent, n) => Array.from({ length: 25 }, (_, i) => send(agent, `https://api.example.test:${upstream.port}/echo?${tag}=${n}-${i}`))),
    );
    expect(
      answers.filter((a) => a.status === 200),
      answers.find((a) => a.status !== 200 && a.status !== 429)?.text,
    ).toHaveLength(30);
    const refused = answers.filter((a) => a.status !== 200);
    expect(new Set(refused.map((a) => `${a.status} ${a.code}`))).toEqual(new Set(['429 quota_exhausted']));
    expect(upstream.seen.filter((r) => r.url.includes(`${tag}=`))).toHaveLength(30);
  }

  it('two processes on one home (the file store): 50 requests, 30 pass', async () => {
    const home = writeHome();
    const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: TOKEN });
    await exactlyTheQuota([await start(home, env), await start(home, env)], 'home');
  });

  describe('replicas on one PostgreSQL store', () => {
    let db: TestPostgres;
    beforeAll(async () => {
      db = await startPostgres();
    });
    afterAll(async () => {
      await stopChildren();
      await db?.destroy();
    });

    it('two replicas: 50 requests, 30 pass', async () => {
      const env = cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), API_TOKEN: TOKEN, KEYWAY_DATABASE_URL: db.url });
      const replicas = [];
      for (let i = 0; i < 2; i++) replicas.push(await start(writeHome({ store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } }), env));
      await exactlyTheQuota(replicas, 'pg');
    });
  });
});
