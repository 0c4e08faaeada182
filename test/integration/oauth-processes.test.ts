import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ProxyAgent, request } from 'undici';
import { OAUTH_STATE_PREFIX, type OAuthState } from '../../src/credentials/issuing/oauth-state.ts';
import { loadMasterKey, Store } from '../../src/credentials/store/index.ts';
import { CLIENT_ID, CLIENT_SECRET, startAuthServer, type AuthServer, type TokenResponse } from '../helpers/auth-server.ts';
import { startGate, type Gate } from '../helpers/token-gate.ts';
import { SRC_CLI, startChildProxy, type ChildProxy, writeChildHome } from '../helpers/child-proxy.ts';
import { cleanEnv, runCli } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';

// OAuth refresh across keyway processes that share one home and store: `keyway start` run as its
// own process, as a user runs it, against a real authorization server with rotating refresh tokens.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('OAuth refresh across keyway processes', () => {
  let auth: AuthServer;
  let gate: Gate;
  let upstream: TestUpstream;
  const sent: string[] = [];
  const children: ChildProxy[] = [];
  const agents: ProxyAgent[] = [];
  const secrets = new Set<string>();
  /** Tokens the upstream refuses whatever the provider says (an API that revoked one on its own). */
  const refusedUpstream = new Set<string>();
  /** Called once with the first token the upstream sees that it does not refuse, then cleared. */
  let onAccepted: ((token: string) => void) | undefined;

  beforeAll(async () => {
    auth = await startAuthServer();
    gate = await startGate(auth.tokenUrl);
    upstream = await startUpstream({
      authorize: async (header) => {
        const token = header?.replace(/^Bearer /, '') ?? '';
        sent.push(token);
        if (onAccepted !== undefined && token !== '' && !refusedUpstream.has(token)) {
          const told = onAccepted;
          onAccepted = undefined;
          told(token);
        }
        return token !== '' && !refusedUpstream.has(token) && auth.introspect(token);
      },
    });
  });
  afterEach(() => {
    auth.mode = 'normal';
    gate.hold = false;
  });
  afterAll(async () => {
    for (const a of agents) await a.close().catch(() => undefined);
    // Every child should still be alive here (the killed one is gone already) and stop cleanly.
    const codes = await Promise.all(children.filter((c) => c.child.exitCode === null && c.child.signalCode === null).map((c) => c.stop()));
    for (const c of children) {
      const out = c.stdout() + c.stderr();
      for (const s of secrets) expect(out.includes(s), "a token in keyway's output").toBe(false);
    }
    expect(codes.every((c) => c === 0)).toBe(true);
    await upstream?.close();
    await gate?.close();
    await auth?.close();
  });

  function newHome(): { home: string; env: Record<string, string> } {
    const provider = { client_id: CLIENT_ID, client_secret: 'env:TEST_CLIENT_SECRET', authorize_url: auth.authUrl };
    const home = writeChildHome({
      providers: {
        testauth: { ...provider, token_url: auth.tokenUrl },
        gated: { ...provider, token_url: gate.url },
      },
    });
    return { home, env: cleanEnv({ KEYWAY_MASTER_KEY: randomBytes(32).toString('base64'), TEST_CLIENT_SECRET: CLIENT_SECRET }) };
  }

  async function addExpiredGrant(home: string, env: Record<string, string>, id: string, provider: string, tokens: TokenResponse): Promise<string> {
    const stale = `${id}-stale-${randomBytes(6).toString('hex')}`;
    secrets.add(stale);
    const add = await runCli(['grants', 'add', id, '--type', 'oauth2', '--domains', 'api.example.test', '--provider', provider, '--home', home], env);
    expect(add.code, add.stderr).toBe(0);
    const material = { refreshToken: tokens.refresh_token, accessToken: stale, expiresAt: Date.now() - 1000 };
    const set = await runCli(['secrets', 'set', id, '--stdin', '--home', home], env, JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
    return stale;
  }

  async function obtain(): Promise<TokenResponse> {
    const tokens = await auth.obtainTokens();
    expect(tokens.refresh_token).toBeTruthy();
    secrets.add(tokens.access_token);
    secrets.add(tokens.refresh_token!);
    return tokens;
  }

  async function start(home: string, env: Record<string, string>): Promise<{ child: ChildProxy; agent: ProxyAgent }> {
    const child = await startChildProxy({ cli: SRC_CLI, home, env });
    children.push(child);
    const agent = new ProxyAgent({ uri: `http://127.0.0.1:${child.port}`, requestTls: { ca: readFileSync(join(home, 'certs', 'ca.pem'), 'utf8') } });
    agents.push(agent);
    return { child, agent };
  }

  async function send(agent: ProxyAgent, grant: string, path = '/echo'): Promise<{ status: number; text: string }> {
    const res = await request(`https://api.example.test:${upstream.port}${path}`, {
      dispatcher: agent,
      headers: { 'x-keyway-grant': grant },
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async function liveState(home: string, env: Record<string, string>, id: string): Promise<OAuthState | undefined> {
    const { key } = await loadMasterKey({ dataDir: join(home, 'data'), env: { KEYWAY_MASTER_KEY: env['KEYWAY_MASTER_KEY']! } });
    const store = await Store.open(join(home, 'data', 'store.json'), key);
    try {
      return store.get<OAuthState>(`${OAUTH_STATE_PREFIX}${id}`);
    } finally {
      store.close();
    }
  }

  it('two keyway processes on one store, both facing an expired token: one refresh in total, both serve', async () => {
    const { home, env } = newHome();
    const tokens = await obtain();
    const stale = await addExpiredGrant(home, env, 'shared', 'testauth', tokens);
    const a = await start(home, env);
    const b = await start(home, env);

    // The first refresh is held for 800 ms, so the other process's requests surely arrive while it
    // is in flight and have to wait on the cross-process lock rather than find the result on disk.
    auth.mode = 'slow';
    auth.slowMs = 800;
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const arrivals = auth.tokenArrivals;
    const sentBefore = sent.length;
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => send(a.agent, 'shared', `/echo?a=${i}`)),
      ...Array.from({ length: 20 }, (_, i) => send(b.agent, 'shared', `/echo?b=${i}`)),
    ]);

    expect(
      results.filter((r) => r.status !== 200),
      results.find((r) => r.status !== 200)?.text,
    ).toEqual([]);
    expect(auth.tokenArrivals - arrivals).toBe(1);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
    const used = new Set(sent.slice(sentBefore));
    expect(used.size).toBe(1); // both processes sent the one refreshed token
    expect(used.has(stale)).toBe(false);

    const state = await liveState(home, env, 'shared');
    expect(state?.accessToken).toBe([...used][0]);
    secrets.add(state!.accessToken!);
    secrets.add(state!.refreshToken!);
    expect(await auth.introspect(state!.refreshToken!)).toBe(true);

    // Later requests on either process use it without another call.
    expect((await send(a.agent, 'shared')).status).toBe(200);
    expect((await send(b.agent, 'shared')).status).toBe(200);
    expect(auth.tokenArrivals - arrivals).toBe(1);
  });

  it('an access token the upstream refused (401) in one process is not sent by the other once the renewed one is saved (issue 60)', async () => {
    const { home, env } = newHome();
    const tokens = await obtain();
    const add = await runCli(['grants', 'add', 'live', '--type', 'oauth2', '--domains', 'api.example.test', '--provider', 'testauth', '--home', home], env);
    expect(add.code, add.stderr).toBe(0);
    const material = { refreshToken: tokens.refresh_token, accessToken: tokens.access_token, expiresAt: Date.now() + 3_600_000 };
    const set = await runCli(['secrets', 'set', 'live', '--stdin', '--home', home], env, JSON.stringify(material));
    expect(set.code, set.stderr).toBe(0);
    const a = await start(home, env);
    const b = await start(home, env);
    expect((await send(a.agent, 'live')).status).toBe(200);
    expect((await send(b.agent, 'live')).status).toBe(200);

    // The upstream refuses the access token from now on (401).
    refusedUpstream.add(tokens.access_token);
    const mark = sent.length;
    // a: 401, refreshed, replayed. b's request leaves the moment a's replay reaches the upstream (the
    // renewed token is saved by then): well within the store watch's 250 ms, so b must look at the
    // store, not its memory, to send the renewed token rather than the one refused.
    let second: Promise<{ status: number }> | undefined;
    onAccepted = () => {
      second = send(b.agent, 'live');
    };
    expect((await send(a.agent, 'live')).status).toBe(200);
    expect((await second!).status).toBe(200);
    const after = sent.slice(mark);
    expect(after.filter((t) => t === tokens.access_token)).toHaveLength(1);
    expect(after).toHaveLength(3);
    for (const t of after) secrets.add(t);
  });

  it('a process killed in the middle of a refresh, then restarted: the grant still works', async () => {
    const { home, env } = newHome();
    const tokens = await obtain();
    const stale = await addExpiredGrant(home, env, 'crashy', 'gated', tokens);
    const first = await start(home, env);

    gate.hold = true;
    const calls = auth.tokenCalls['refresh_token'] ?? 0;
    const inFlight = send(first.agent, 'crashy').then(
      (r) => r.status,
      () => 'connection lost' as const,
    );
    await until('the refresh to reach the token endpoint', () => gate.parked.length === 1, 10_000);
    first.child.child.kill('SIGKILL');
    await once(first.child.child, 'exit');
    expect(await inFlight).toBe('connection lost');
    await until('the dead process to drop its token request', () => gate.parked[0]!.closed, 5_000);
    expect(auth.tokenCalls['refresh_token'] ?? 0).toBe(calls); // the provider never saw it
    // The dead process left its refresh lock behind: the next one must take it over, not wait forever.
    const locks = join(home, 'data', 'locks');
    expect(existsSync(locks) && readdirSync(locks).some((f) => f.includes('crashy'))).toBe(true);

    gate.hold = false;
    const second = await start(home, env);
    const started = Date.now();
    const attempts: string[] = [];
    let result = { status: 0, text: '' };
    while (Date.now() - started < 25_000) {
      result = await send(second.agent, 'crashy');
      if (result.status === 200) break;
      attempts.push(`${result.status} ${result.text}`);
      await sleep(500);
    }
    expect(result.status, attempts.join('\n')).toBe(200);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
    expect(sent).not.toContain(stale);

    const state = await liveState(home, env, 'crashy');
    secrets.add(state!.accessToken!);
    secrets.add(state!.refreshToken!);
    expect(state!.refreshToken).not.toBe(tokens.refresh_token);
    expect(await auth.introspect(state!.refreshToken!)).toBe(true);
    const again = await send(second.agent, 'crashy');
    expect(again.status).toBe(200);
    expect((auth.tokenCalls['refresh_token'] ?? 0) - calls).toBe(1);
  });
});
