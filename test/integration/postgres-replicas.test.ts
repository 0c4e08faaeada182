// Three `keyway start` processes, each with its own home, on one PostgreSQL store, against a real
// authorization server (oidc-provider) that rotates refresh tokens: 300 concurrent requests spread
// over the three on an expired grant make exactly one token call, all succeed with the one new token,
// and the rotated refresh token stored is the live one (a later refresh works). The refresh lock is
// the database's (an advisory lock per grant), not a file: the homes share nothing but the database.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer } from '../helpers/auth-server.ts';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { startGate, type Gate } from '../helpers/token-gate.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { startPostgres, type TestPostgres } from '../helpers/postgres.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { slack } from '../helpers/load.ts';

describe('replicas on one PostgreSQL store: one refresh per expiry', () => {
  let db: TestPostgres;
  let auth: AuthServer;
  let gate: Gate;
  let upstream: TestUpstream;
  const sent: string[] = [];
  const secrets = new Set<string>();
  const masterKey = randomBytes(32).toString('base64');
  const replicas: Array<{ home: string; env: Record<string, string>; child: ChildProxy; agent: ProxyAgent }> = [];

  function newHome(): { home: string; env: Record<string, string> } {
    const home = writeChildHome({
      store: { backend: 'postgres', url: 'env:KEYWAY_DATABASE_URL' },
      providers: {
        testauth: { client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET', authorize_url: auth.authUrl, token_url: auth.tokenUrl },
        gated: { client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET', authorize_url: auth.authUrl, token_url: gate.url },
      },
    });
    return { home, env: cleanEnv({ KEYWAY_MASTER_KEY: masterKey, TEST_CLIENT_SECRET: CLIENT_SECRET, KEYWAY_DATABASE_URL: db.url }) };
  }

  beforeAll(async () => {
    [db, auth] = await Promise.all([startPostgres(), startAuthServer()]);
    gate = await startGate(auth.tokenUrl);
    upstream = await startUpstream({
      authorize: async (header) => {
        const token = header?.replace(/^Bearer /, '') ?? '';
        sent.push(token);
        return token !== '' && auth.introspect(token);
      },
    });
    for (let i = 0; i < 3; i++) {
      const { home, env } = newHome();
      const child = await startChildProxy({ cli: SRC_CLI, home, env });
      const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
      replicas.push({ home, env, child, agent });
    }
  });

  afterAll(async () => {
    for (const r of replicas) await r.agent.close().catch(() => undefined);
    const codes = await Promise.all(replicas.map((r) => r.child.stop()));
    for (const r of replicas) {
      const out = r.child.stdout() + r.child.stderr();
      for (const s of secrets) expect(out.includes(s), "a token in keyway's output").toBe(false);
    }
    expect(codes.every((c) => c === 0)).toBe(true);
    await upstream?.close();
    await gate?.close();
    await auth?.close();
    await db?.destroy();
  });

  /** An oauth2 grant whose access token has expired, added through `replica`'s CLI. */
  async function addExpiredGrant(replica: { home: string; env: Record<string, string> }, id: string, provider: string) {
    const tokens = await auth.obtainTokens();
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token as string);
    const add = await runCli(
      ['grants', 'add', id, '--type', 'oauth2', '--domains', 'api.example.test', '--provider', provider, '--home', replica.home],
      replica.env,
    );
    expect(add.code, add.stderr).toBe(0);
    const stale = `stale-${randomBytes(8).toString('hex')}`;
    secrets.add(stale);
    const material = { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 };
    const set = await runCli(['secrets', 'set', id, '--stdin', '--home', replica.home], replica.env, JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
    return { stale, refreshToken: tokens.refresh_token as string };
  }

  function send(agent: ProxyAgent, grant: string, path = '/echo'): Promise<{ status: number; text: string }> {
    return request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agent,
      headers: { 'x-keyway-grant': grant },
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    }).then(async (res) => ({ status: res.statusCode, text: await res.body.text() }));
  }

  it('300 concurrent requests over three replicas on an expired grant: exactly 1 token call, 300 successes', async () => {
    const tokens = await auth.obtainTokens();
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token as string);
    const [first] = replicas;
    if (!first) throw new Error('no replica');
    const add = await runCli(
      ['grants', 'add', 'shared', '--type', 'oauth2', '--domains', 'api.example.test', '--provider', 'testauth', '--home', first.home],
      first.env,
    );
    expect(add.code, add.stderr).toBe(0);
    const stale = `stale-${randomBytes(8).toString('hex')}`;
    secrets.add(stale);
    const material = { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 };
    const set = await runCli(['secrets', 'set', 'shared', '--stdin', '--home', first.home], first.env, JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
    // Every replica has the grant (within a second, through NOTIFY) before the burst.
    await new Promise((r) => setTimeout(r, 1_500));

    // The token call is held 800 ms so the burst surely meets it in flight on every replica.
    auth.mode = 'slow';
    auth.slowMs = 800;
    const callsBefore = auth.tokenCalls['refresh_token'] ?? 0;
    const sentBefore = sent.length;
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => send((replicas[i % 3] as (typeof replicas)[number]).agent, 'shared', `/echo?i=${i}`)),
    );
    auth.mode = 'normal';
    expect(results.filter((r) => r.status !== 200).length, results.find((r) => r.status !== 200)?.text).toBe(0);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - callsBefore).toBe(1);
    const used = new Set(sent.slice(sentBefore));
    expect(used.size).toBe(1);
    expect(used.has(stale)).toBe(false);
    for (const t of used) secrets.add(t);

    // The rotated refresh token that was stored is the live one: a forced refresh now succeeds.
    const refreshed = await runCli(['refresh', 'shared', '--home', first.home], first.env);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - callsBefore).toBe(2);
  });

  it('kill -9 of the replica holding the refresh lock: another refreshes once it is gone; the grant survives', async () => {
    const { home, env } = newHome();
    const victim = await startChildProxy({ cli: SRC_CLI, home, env });
    const victimAgent = new ProxyAgent({ uri: `http://127.0.0.1:${victim.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
    const [survivor] = replicas;
    if (!survivor) throw new Error('no replica');
    const { stale, refreshToken } = await addExpiredGrant({ home, env }, 'crashy', 'gated');
    await new Promise((r) => setTimeout(r, 1_500));

    // The victim's token call is held at the gate: it holds the grant's lock in the database.
    gate.hold = true;
    const callsBefore = auth.tokenCalls['refresh_token'] ?? 0;
    const lost = send(victimAgent, 'crashy').then(
      (r) => `${r.status}`,
      () => 'connection lost',
    );
    const deadline = Date.now() + 10_000;
    while (gate.parked.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(gate.parked).toHaveLength(1);
    // The survivor's request waits on that lock (it does not call the provider itself).
    const waiting = send(survivor.agent, 'crashy');
    await new Promise((r) => setTimeout(r, 500));
    expect(gate.parked).toHaveLength(1);

    gate.hold = false;
    const killedAt = Date.now();
    victim.child.kill('SIGKILL');
    await once(victim.child, 'exit');
    expect(await lost).toBe('connection lost');
    const result = await waiting;
    const windowMs = Date.now() - killedAt;
    await victimAgent.close().catch(() => undefined);

    expect(result.status, result.text).toBe(200);
    // The held call never reached the provider; the survivor's is the one refresh.
    expect((auth.tokenCalls['refresh_token'] ?? 0) - callsBefore).toBe(1);
    expect(sent).not.toContain(stale);
    expect(await auth.introspect(refreshToken)).toBe(false); // rotated away, by the survivor's call
    console.log(`kill -9 of the lock holder: the other replica served ${windowMs} ms after the kill`);
    expect(windowMs).toBeLessThan(slack(5_000, 20_000)); // 5 s idle, stretched by the measured load
    // And the rotated refresh token it stored is live: a forced refresh works.
    const again = await runCli(['refresh', 'crashy', '--home', survivor.home], survivor.env);
    expect(again.code, again.stderr).toBe(0);
  });

  it('the database stopped 10 s under load: cached tokens keep serving, a refresh-needing request gets 502, recovery within 2 s', async () => {
    const [first, second, third] = replicas;
    if (!first || !second || !third) throw new Error('no replicas');
    await addExpiredGrant(first, 'warm', 'testauth');
    const { stale } = await addExpiredGrant(first, 'cold', 'testauth');
    await new Promise((r) => setTimeout(r, 1_500));
    // 'warm' gets a fresh token (an hour) now; 'cold' keeps its expired one until the database is gone.
    for (const r of replicas) expect((await send(r.agent, 'warm')).status).toBe(200);

    await db.stop();
    const counts = { warmOk: 0, warmOther: [] as string[], cold502: 0, coldOther: [] as string[] };
    const sentBefore = sent.length;
    try {
      const until = Date.now() + 10_000;
      let budget = 20_000; // bounded in count as well as time
      const warmLoop = async (agent: ProxyAgent) => {
        while (Date.now() < until && budget-- > 0) {
          const r = await send(agent, 'warm');
          if (r.status === 200) counts.warmOk++;
          else counts.warmOther.push(`${r.status} ${r.text.slice(0, 120)}`);
        }
      };
      const coldLoop = async () => {
        while (Date.now() < until) {
          const r = await send(second.agent, 'cold');
          if (r.status === 502 && r.text.includes('token_refresh_failed')) counts.cold502++;
          else counts.coldOther.push(`${r.status} ${r.text.slice(0, 120)}`);
          await new Promise((res) => setTimeout(res, 250));
        }
      };
      await Promise.all([...replicas.flatMap((r) => [warmLoop(r.agent), warmLoop(r.agent)]), coldLoop()]);
    } finally {
      await db.start();
    }
    const back = Date.now();
    let recoveredMs = Number.POSITIVE_INFINITY;
    while (Date.now() - back < slack(10_000)) {
      if ((await send(second.agent, 'cold')).status === 200) {
        recoveredMs = Date.now() - back;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    console.log(
      `database down 10 s: ${counts.warmOk} cached-token requests served, ${counts.cold502} refresh-needing requests answered 502; a refresh worked ${recoveredMs} ms after the database returned`,
    );
    expect(counts.warmOther).toEqual([]);
    expect(counts.warmOk).toBeGreaterThan(100);
    expect(counts.coldOther).toEqual([]);
    expect(counts.cold502).toBeGreaterThan(10);
    expect(sent.slice(sentBefore)).not.toContain(stale);
    expect(recoveredMs).toBeLessThan(slack(2_000, 10_000)); // 2 s idle, stretched by the measured load
  });
});
