// A secret source's value an upstream refused (issue 60): refused everywhere before anyone sends it
// again. Two `keyway start` processes on one home, one keyway with two workers, and two replicas on
// one PostgreSQL store, each holding the source's value in memory; the upstream then refuses it
// (401). After the first 401 reached the agent, a request through the other process (worker,
// replica) must not carry the refused value: the upstream counts what it received. No sleep stands
// between the 401 and the next request: it is sent as soon as the first answer is in.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type ChildProxy, SRC_CLI, startChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { findLeak } from '../helpers/leak-canary.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { type AwsSecretsDouble, startSecretsManagerDouble } from '../helpers/secret-source-doubles.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { slack } from '../helpers/load.ts';

const AWS_KEY = { accessKeyId: 'AKIASOURCEREFUSED01', secretAccessKey: `${CANARY}-aws-secret-key` };
const value = (name: string) => `${CANARY}-refused-${name}-${randomBytes(6).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a secret source value an upstream refused is sent again by no other process', () => {
  let sm: AwsSecretsDouble;
  let upstream: TestUpstream;
  /** The Authorization values the upstream takes now. */
  const accepted = new Set<string>();
  const children: ChildProxy[] = [];
  const stopped = new Set<ChildProxy>();
  const codes: Array<number | null> = [];
  const agents: ProxyAgent[] = [];
  const values: string[] = [];
  /** Stops the processes still running (the PostgreSQL ones before their database goes), keeping their exit codes. */
  async function stopChildren() {
    for (const a of agents.splice(0)) await a.close().catch(() => undefined);
    const running = children.filter((c) => !stopped.has(c));
    for (const c of running) stopped.add(c);
    codes.push(...(await Promise.all(running.map((c) => c.stop()))));
  }

  beforeAll(async () => {
    sm = await startSecretsManagerDouble([AWS_KEY], new Map());
    upstream = await startUpstream({ authorize: async (authorization) => authorization !== undefined && accepted.has(authorization) });
  });
  // Each test's processes stop with it (a 2-core machine runs this beside other files).
  afterEach(stopChildren);
  afterAll(async () => {
    await stopChildren();
    for (const c of children) for (const v of [...values, AWS_KEY.secretAccessKey]) expect(findLeak(c.stdout() + c.stderr(), v)).toBeUndefined();
    expect(codes.every((c) => c === 0)).toBe(true);
    await Promise.all([sm?.close(), upstream?.close()]);
  });

  const env = (extra: Record<string, string> = {}) =>
    cleanEnv({
      KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'),
      AWS_ACCESS_KEY_ID: AWS_KEY.accessKeyId,
      AWS_SECRET_ACCESS_KEY: AWS_KEY.secretAccessKey,
      ...extra,
    });

  /** A home whose grant `api` takes its bearer token from the Secrets Manager item `item`. */
  function home(item: string, source: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): string {
    return writeChildHome({
      secret_sources: { aws: { type: 'aws_secrets_manager', region: 'us-east-1', endpoint: sm.url, ttl: '1h', failure_ttl: '0s', max_stale: '1h', ...source } },
      grants: { api: { type: 'bearer', domains: ['api.example.test'], secret: { from: 'aws', id: item } } },
      ...extra,
    });
  }

  async function start(at: string, environment: Record<string, string>): Promise<ChildProxy> {
    const child = await startChildProxy({ cli: SRC_CLI, home: at, env: environment });
    children.push(child);
    return child;
  }

  /** A client of `child` (one keep-alive connection: it stays with the worker that took it). */
  function agentOf(at: string, child: ChildProxy): ProxyAgent {
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(at, 'certs', 'ca.pem'), 'utf8') } });
    agents.push(agent);
    return agent;
  }

  async function get(agent: ProxyAgent, item: string): Promise<{ status: number; code: string | undefined }> {
    const res = await request(`https://api.example.test:${upstream.port}/echo?item=${encodeURIComponent(item)}`, {
      dispatcher: agent,
      signal: AbortSignal.timeout(slack(30_000)),
    });
    await res.body.text();
    return { status: res.statusCode, code: res.headers['x-keyway-error'] as string | undefined };
  }

  const fetchesOf = (item: string) => sm.calls.filter((c) => (c.body as { SecretId?: string }).SecretId === item).length;

  /** How many requests for `item` carried `token` since `from` (an index into upstream.seen). */
  const received = (item: string, token: string, from = 0) =>
    upstream.seen.slice(from).filter((s) => s.url.includes(`item=${encodeURIComponent(item)}`) && s.headers.authorization === `Bearer ${token}`).length;

  /**
   * Both clients hold `old` (fetched once), the upstream then refuses it and the source gives `next`
   * (or is down): the first client's request gets the 401 (replayed with `next`, or 502), and the
   * second client's request, sent once that answer is in, must not carry `old`.
   */
  async function refusedOnce(item: string, first: ProxyAgent, second: ProxyAgent, then: { rotateTo: string } | 'source down') {
    // The value both hold: the one a refusedOnce before rotated to, or a new one (fetched once for both).
    const held = sm.values.get(item);
    const old = held ?? value('old');
    const fetches = fetchesOf(item);
    if (held === undefined) {
      values.push(old);
      sm.values.set(item, old);
      accepted.add(`Bearer ${old}`);
    }
    expect(await get(first, item)).toMatchObject({ status: 200 });
    expect(await get(second, item)).toMatchObject({ status: 200 });
    expect(fetchesOf(item) - fetches).toBe(held === undefined ? 1 : 0);

    accepted.delete(`Bearer ${old}`);
    if (then === 'source down') await sm.pause();
    else {
      values.push(then.rotateTo);
      sm.values.set(item, then.rotateTo);
      accepted.add(`Bearer ${then.rotateTo}`);
    }
    const mark = upstream.seen.length;
    try {
      const one = await get(first, item);
      const two = await get(second, item);
      if (then === 'source down') {
        // The refused value is never served stale: nothing left to send, and nothing is sent.
        expect(one).toMatchObject({ status: 502, code: 'secret_unavailable' });
        expect(two).toMatchObject({ status: 502, code: 'secret_unavailable' });
      } else {
        expect([one.status, two.status]).toEqual([200, 200]);
        expect(received(item, then.rotateTo, mark)).toBe(2);
      }
      // The refused value reached the upstream once: the first client's request, which got the 401.
      expect(received(item, old, mark)).toBe(1);
    } finally {
      if (then === 'source down') await sm.resume();
    }
  }

  it('two keyway processes on one home: after the 401 in one, the other sends the new value, not the refused one', async () => {
    const at = home('prod/two-processes');
    const environment = env();
    const [a, b] = [await start(at, environment), await start(at, environment)];
    await refusedOnce('prod/two-processes', agentOf(at, a!), agentOf(at, b!), { rotateTo: value('new') });
    // And the other way round: the value both hold now refused in the second process first.
    await refusedOnce('prod/two-processes', agentOf(at, b!), agentOf(at, a!), { rotateTo: value('newer') });
  }, 180_000);

  it('two keyway processes on one home, the source down: after the 401 in one, nothing is sent by the other', async () => {
    const at = home('prod/down');
    const environment = env();
    const [a, b] = [await start(at, environment), await start(at, environment)];
    await refusedOnce('prod/down', agentOf(at, a!), agentOf(at, b!), 'source down');
  }, 180_000);

  it('two keyway processes on one home, the source down: the refused value is not served stale by the other', async () => {
    const at = home('prod/stale', { ttl: '1s' });
    const environment = env();
    const [a, b] = [await start(at, environment), await start(at, environment)];
    const first = agentOf(at, a!);
    const second = agentOf(at, b!);
    // Past the 1 s ttl with the source down, both serve their last value (max_stale): stale-while-down.
    const stale = value('stale');
    values.push(stale);
    sm.values.set('prod/stale', stale);
    accepted.add(`Bearer ${stale}`);
    expect(await get(first, 'prod/stale')).toMatchObject({ status: 200 });
    expect(await get(second, 'prod/stale')).toMatchObject({ status: 200 });
    await sm.pause();
    try {
      await sleep(1_100); // past the ttl: what each serves now is its stale value
      expect(await get(first, 'prod/stale')).toMatchObject({ status: 200 });
      expect(await get(second, 'prod/stale')).toMatchObject({ status: 200 });
      accepted.delete(`Bearer ${stale}`);
      const mark = upstream.seen.length;
      expect(await get(first, 'prod/stale')).toMatchObject({ status: 502, code: 'secret_unavailable' });
      expect(await get(second, 'prod/stale')).toMatchObject({ status: 502, code: 'secret_unavailable' });
      expect(received('prod/stale', stale, mark)).toBe(1);
    } finally {
      await sm.resume();
    }
  }, 180_000);

  it('a 401 to a request not replayed (its body over 1 MiB, streamed) drops the value for every process too', async () => {
    const item = 'prod/streamed';
    const at = home(item);
    const environment = env();
    const [a, b] = [await start(at, environment), await start(at, environment)];
    const [first, second] = [agentOf(at, a), agentOf(at, b)];
    const old = value('streamed-old');
    const next = value('streamed-new');
    values.push(old, next);
    sm.values.set(item, old);
    accepted.add(`Bearer ${old}`);
    expect(await get(first, item)).toMatchObject({ status: 200 });
    expect(await get(second, item)).toMatchObject({ status: 200 });
    accepted.delete(`Bearer ${old}`);
    sm.values.set(item, next);
    accepted.add(`Bearer ${next}`);
    const fetches = fetchesOf(item);
    const mark = upstream.seen.length;
    const big = await request(`https://api.example.test:${upstream.port}/echo?item=${encodeURIComponent(item)}`, {
      dispatcher: first,
      method: 'POST',
      body: Buffer.alloc(2 * 1024 * 1024, 0x61),
      signal: AbortSignal.timeout(slack(30_000)),
    });
    await big.body.text();
    expect(big.statusCode).toBe(401); // not replayed: the upstream's own answer
    // The value is fetched again once its drop is in the store (the drop comes first): from then
    // on neither process sends the refused value.
    await waitFor(() => (fetchesOf(item) > fetches ? true : undefined), 'the fetch after the drop', 15_000);
    expect(await get(second, item)).toMatchObject({ status: 200 });
    expect(await get(first, item)).toMatchObject({ status: 200 });
    expect(received(item, old, mark)).toBe(1);
    expect(received(item, next, mark)).toBe(2);
  }, 180_000);

  it('proxy.workers: 2: the refused value reaches the upstream once, not once per worker', async () => {
    const item = 'prod/workers';
    const at = home(item);
    const environment = env();
    // proxy.workers: 2, beside the proxy settings writeChildHome wrote.
    const configFile = join(at, 'config', 'keyway.yaml');
    const config = parse(readFileSync(configFile, 'utf8')) as { proxy: Record<string, unknown> };
    config.proxy['workers'] = 2;
    writeFileSync(configFile, stringify(config));
    const child = await start(at, environment);
    const perWorker = async () =>
      (JSON.parse((await runCli(['status', '--json', '--home', at], environment)).stdout) as { workers: Array<{ requests?: number }> }).workers.map(
        (w) => w.requests ?? 0,
      );
    // Both workers serve the old value first, so each holds it when it is refused.
    const old = value('workers-old');
    values.push(old);
    sm.values.set(item, old);
    accepted.add(`Bearer ${old}`);
    const servedBy = new Set<number>();
    for (let tries = 0; servedBy.size < 2 && tries < 16; tries++) {
      const before = await perWorker();
      expect(await get(agentOf(at, child), item)).toMatchObject({ status: 200 });
      const after = await perWorker();
      servedBy.add(after.findIndex((n, i) => n > before[i]!));
    }
    expect(servedBy.size).toBe(2);
    expect(fetchesOf(item)).toBe(1);

    accepted.delete(`Bearer ${old}`);
    const next = value('workers-new');
    values.push(next);
    sm.values.set(item, next);
    accepted.add(`Bearer ${next}`);
    // Fresh clients until both workers have served one since the rotation. (A kept-alive client
    // does not stay with its worker for sure: undici lets an idle connection go after 4 s, and the
    // CLI's status calls between requests can take that long on a loaded machine.)
    const before = await perWorker();
    const mark = upstream.seen.length;
    const bothServed = (now: number[]) => now.every((n, i) => n > before[i]!);
    let after = before;
    let sent = 0;
    for (let tries = 0; !bothServed(after) && tries < 16; tries++) {
      expect(await get(agentOf(at, child), item)).toMatchObject({ status: 200 });
      sent += 1;
      after = await perWorker();
    }
    expect(bothServed(after)).toBe(true);
    // The old value went up once (the 401 that dropped it), from one worker; every request since,
    // the replay included, carried the new one, whichever worker served it.
    expect(received(item, old, mark)).toBe(1);
    expect(received(item, next, mark)).toBe(sent);
  }, 240_000);

  describe('replicas on one PostgreSQL store', () => {
    let db: TestPostgres;
    beforeAll(async () => {
      db = await startPostgres();
    });
    afterAll(async () => {
      await stopChildren();
      await db?.destroy();
    });

    it('two replicas: after the 401 in one, the other sends the new value, not the refused one', async () => {
      const environment = env({ KEYWAY_DATABASE_URL: db.url });
      const store = { store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' } };
      // Two homes that share nothing but the database; the grant is in each one's config.
      const at = (item: string) => home(item, {}, store);
      const [homeA, homeB] = [at('prod/replicas'), at('prod/replicas')];
      const a = await start(homeA, environment);
      const b = await start(homeB, environment);
      await refusedOnce('prod/replicas', agentOf(homeA, a), agentOf(homeB, b), { rotateTo: value('replica-new') });
    }, 240_000);
  });
});
