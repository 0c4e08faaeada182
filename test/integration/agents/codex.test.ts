// The real Codex CLI (@openai/codex, a devDependency: a Rust binary) in its headless mode, `codex
// exec`, under `keyway run --contain`, against loopback stand-ins of OpenAI's API and ChatGPT's backend
// that keyway maps api.openai.com, chatgpt.com and auth.openai.com to, every other host denied. Codex
// talks to the Responses API over a WebSocket first: keyway injects on the upgrade. With an API key
// the agent holds keyway's placeholder; with a ChatGPT login keyway holds the tokens (login_capture)
// and the agent's auth.json placeholders: an expired token is refreshed once for two runs at once.
// Needs root or unprivileged user namespaces (CI runs as root): the stand-ins listen on port 443.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentWorld, builtinProfile, CODEX_EXEC, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { chatgptBackendHandler } from '../../helpers/model-standins/chatgpt-backend.ts';
import { CHATGPT_ACCOUNT_ID, chatgptAccessToken, chatgptIdToken } from '../../helpers/model-standins/chatgpt-login.ts';
import { openaiHandler, openaiWebSocketHandler } from '../../helpers/model-standins/openai.ts';
import type { StandinRequest } from '../../helpers/model-standins/server.ts';
import { tokenEndpoint } from '../../helpers/model-standins/token-endpoint.ts';
import { connectLoginGrant } from '../../helpers/connect-grant.ts';

// The built-in profile `codex` (src/profiles/run/builtin/) is what the run opens: found from the CLI itself.
// Codex's own switches for a headless run: CODEX_EXEC (helpers/agent-world.ts).
const EXEC = CODEX_EXEC;
const HOSTS = ['api.openai.com', 'chatgpt.com', 'auth.openai.com'];
const CLIENT_ID = 'app_EMoamEEZ73f0CkXaXp7hrann';
const RUN_MS = 60_000;

function hasSession(home: string): boolean {
  const sessions = join(home, '.codex', 'sessions');
  return existsSync(sessions) && readdirSync(sessions, { recursive: true, encoding: 'utf8' }).some((f) => f.endsWith('.jsonl'));
}

describe('Codex (codex exec) under keyway run --contain, with an API key', () => {
  const KEY = `sk-proj-${CANARY}-codex`;
  const REPLY = 'Stand-in says: codex got its answer over the socket.';
  const frames: unknown[] = [];
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.20`,
      hosts: HOSTS,
      handlers: [openaiHandler({ keys: [KEY], reply: { text: REPLY } })],
      websocketHandlers: [openaiWebSocketHandler({ keys: [KEY], reply: { text: REPLY }, messages: frames })],
      grants: {
        openai: { type: 'api_key', domains: ['api.openai.com'], inject: { header: 'Authorization', format: 'Bearer {secret}' }, secret: 'env:OPENAI_REAL_KEY' },
      },
      secrets: { OPENAI_REAL_KEY: KEY },
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('prints the stand-in reply; the stand-in saw the real key on the WebSocket upgrade, the agent a placeholder; ~/.codex took its writes', {
    timeout: 2 * RUN_MS,
  }, async () => {
    const profile = builtinProfile('codex');
    const FLAGS = profile.flags;
    const r = await world.run(['sh', '-c', 'env; exec "$@"', 'sh', ...EXEC, 'Say hello.'], FLAGS, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    const placeholder = /^OPENAI_API_KEY=(.*)$/m.exec(r.stdout)?.[1];
    expect(placeholder).toBeDefined();
    expect(placeholder).not.toContain(CANARY);

    const upgrades = world.standin.seen.filter((s) => s.path === '/v1/responses' && s.headers.upgrade === 'websocket');
    expect(upgrades.length).toBeGreaterThan(0);
    for (const upgrade of upgrades) expect(upgrade.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(frames).toContainEqual(expect.objectContaining({ type: 'response.create' }));
    expect(new Set(world.standin.seen.map((s) => s.host))).toEqual(new Set(['api.openai.com']));
    const audit = world.proxy.auditLines();
    expect(audit.filter((l) => l['decision'] === 'deny')).toEqual([]);
    expect(audit).toContainEqual(
      expect.objectContaining({ host: 'api.openai.com', path: '/v1/responses', decision: 'inject', agent: 'agent', via: 'contain', status: 101 }),
    );

    expect(readFileSync(join(world.state('codex'), '.codex', 'installation_id'), 'utf8').trim()).toMatch(/^[0-9a-f-]{36}$/);
    expect(hasSession(world.state('codex'))).toBe(true);
    expect(world.leak(KEY)).toBeUndefined();
  });
});

describe("Codex's own sandbox under keyway's containment", () => {
  const KEY = `sk-proj-${CANARY}-codex-tools`;
  let world: AgentWorld;
  /** The model's answer: first a tool call (Codex's code-mode `exec`, running its exec_command tool), then text. */
  const items = (req: StandinRequest) => {
    const body = req.json as { generate?: boolean; input?: Array<{ type?: string }> } | undefined;
    if (body?.generate === false || body?.input?.some((item) => item.type === 'custom_tool_call_output')) return undefined;
    const code = 'const r = await tools.exec_command({cmd: "echo ran-as-$(id -u) > tool-ran.txt"}); text(JSON.stringify(r));';
    return [{ type: 'custom_tool_call', id: 'ctc_standin', call_id: 'call_standin', name: 'exec', namespace: 'functions', input: code, status: 'completed' }];
  };

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.22`,
      hosts: HOSTS,
      handlers: [openaiHandler({ keys: [KEY], items })],
      websocketHandlers: [openaiWebSocketHandler({ keys: [KEY], items })],
      grants: {
        openai: { type: 'api_key', domains: ['api.openai.com'], inject: { header: 'Authorization', format: 'Bearer {secret}' }, secret: 'env:OPENAI_REAL_KEY' },
      },
      secrets: { OPENAI_REAL_KEY: KEY },
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it("a command the model asks for runs with --sandbox danger-full-access (keyway is the sandbox); Codex's own bubblewrap cannot start inside", {
    timeout: 2 * RUN_MS,
  }, async () => {
    const profile = builtinProfile('codex');
    const ran = await world.run([...EXEC, 'Run it.'], profile.flags, profile.env, RUN_MS);
    expect(ran.code, ran.stderr).toBe(0);
    // Run as the contained user (nobody, keyway being root; never root), in the working folder, which reached the host.
    expect(readFileSync(join(world.work, 'tool-ran.txt'), 'utf8').trim()).toMatch(/^ran-as-[1-9]\d*$/);
    rmSync(join(world.work, 'tool-ran.txt'));

    // Its own sandbox wants a user namespace of its own, which keyway's containment does not allow.
    const own = EXEC.map((arg) => (arg === 'danger-full-access' ? 'workspace-write' : arg));
    const refused = await world.run([...own, 'Run it.'], profile.flags, profile.env, RUN_MS);
    expect(refused.stdout + refused.stderr).toContain('bwrap: No permissions to create new namespace');
    expect(existsSync(join(world.work, 'tool-ran.txt'))).toBe(false);
  });
});

describe('Codex with a ChatGPT login owned by keyway (login_capture)', () => {
  const REFRESH = `rt_${CANARY}-chatgpt`;
  const CODE = `code-${CANARY}-chatgpt`;
  const REPLY = 'Stand-in says: ChatGPT login, refreshed once.';
  let minted = 0;
  const tokens = tokenEndpoint({
    host: 'auth.openai.com',
    path: '/oauth/token',
    refreshToken: REFRESH,
    authorizationCode: CODE,
    body: 'json',
    clientId: CLIENT_ID,
    refreshPrefix: 'rt_',
    // The login's access token has already expired when the agent first reads it (Codex reads the
    // JWT's exp and refreshes at start); the refreshed ones last an hour.
    mintAccess: (ttl) => chatgptAccessToken(minted++ === 0 ? -60 : ttl),
    extra: () => ({ id_token: chatgptIdToken(CLIENT_ID) }),
    delayMs: 300,
  });
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.21`,
      hosts: HOSTS,
      handlers: [
        tokens.handler,
        // Listed before the Codex routes: the model catalogue is the backend's, not the Responses API's.
        chatgptBackendHandler({ accessToken: tokens.isValidAccess }),
        openaiHandler({ host: 'chatgpt.com', basePath: '/backend-api/codex', accessToken: tokens.isValidAccess, reply: { text: REPLY } }),
      ],
      websocketHandlers: [
        openaiWebSocketHandler({ host: 'chatgpt.com', basePath: '/backend-api/codex', accessToken: tokens.isValidAccess, reply: { text: REPLY } }),
      ],
      grants: {
        // The grant `keyway connect codex --login` makes: its hosts, and the paths its token goes on there.
        'chatgpt-login': connectLoginGrant('codex'),
      },
      secrets: {},
    });
  });
  afterAll(async () => {
    if (world) for (const secret of [REFRESH, tokens.refreshToken]) expect(world.leak(secret)).toBeUndefined();
    await world?.close();
  });

  it('an expired token: two runs at once refresh it once through keyway, both answer, auth.json keeps placeholders', { timeout: 3 * RUN_MS }, async () => {
    // The login's end (`codex login` posts the code exchange), made through keyway from inside.
    const exchange = JSON.stringify({
      grant_type: 'authorization_code',
      code: CODE,
      client_id: CLIENT_ID,
      redirect_uri: 'http://localhost:1455/auth/callback',
      code_verifier: 'v',
    });
    const login = await world.run(
      ['curl', '-sS', '-H', 'content-type: application/json', '-d', exchange, 'https://auth.openai.com/oauth/token'],
      [],
      {},
      RUN_MS,
    );
    expect(login.code, login.stderr).toBe(0);
    const got = JSON.parse(login.stdout) as { access_token: string; refresh_token: string; id_token: string };
    expect(got.refresh_token).toContain('kwcap_');
    expect(got.access_token).not.toBe(tokens.accessTokens[0]);

    mkdirSync(join(world.home, '.codex'), { recursive: true });
    const auth = {
      auth_mode: 'chatgpt',
      OPENAI_API_KEY: null,
      tokens: { id_token: got.id_token, access_token: got.access_token, refresh_token: got.refresh_token, account_id: CHATGPT_ACCOUNT_ID },
      last_refresh: new Date(Date.now() - 3_600_000).toISOString(),
    };
    writeFileSync(join(world.home, '.codex', 'auth.json'), JSON.stringify(auth), { mode: 0o600 });

    const profile = builtinProfile('codex');
    const [a, b] = await Promise.all([
      world.run([...EXEC, 'First.'], profile.flags, profile.env, RUN_MS),
      world.run([...EXEC, 'Second.'], profile.flags, profile.env, RUN_MS),
    ]);
    for (const r of [a, b]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(REPLY);
    }
    expect(tokens.refreshes).toBe(1);
    expect(tokens.attempts).toEqual([{ refreshToken: REFRESH, ok: true }]);
    // The turns went to ChatGPT's Codex backend with the refreshed real token and the account's id.
    const turns = world.standin.seen.filter((s) => s.path === '/backend-api/codex/responses');
    expect(turns.length).toBeGreaterThanOrEqual(2);
    for (const turn of turns) {
      expect(turn.headers.authorization).toBe(`Bearer ${tokens.accessTokens.at(-1)}`);
      expect(turn.headers['chatgpt-account-id']).toBe(CHATGPT_ACCOUNT_ID);
    }
    const kept = JSON.parse(readFileSync(join(world.state('codex'), '.codex', 'auth.json'), 'utf8')) as typeof auth;
    expect(kept.tokens.refresh_token).toContain('kwcap_');
    for (const real of tokens.accessTokens) expect(JSON.stringify(kept)).not.toContain(real);
  });
});
