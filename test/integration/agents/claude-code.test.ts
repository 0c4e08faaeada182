// The real Claude Code CLI (@anthropic-ai/claude-code, a devDependency) in its headless mode, `claude
// -p`, under `keyway run --contain`, against a loopback stand-in of Anthropic's API that keyway maps
// api.anthropic.com and platform.claude.com to, every other host denied. The agent holds keyway's
// placeholder, never the key: the stand-in sees the real one, the agent prints its answer, its state
// folder takes its writes, keyway's audit has the call, and the real credential is in no output, file
// or log. With a subscription login instead, keyway holds the tokens (a login_capture grant), the
// agent's credential file placeholders: an expired token is refreshed once for two runs at once.
// Needs root or unprivileged user namespaces (CI runs as root): the stand-in listens on port 443.
// That the stand-in refuses a wrong key is shown in model-standins.test.ts (with a wrong key the CLI
// itself retries for a minute, too long for here).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AgentWorld, builtinProfile, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { anthropicHandler } from '../../helpers/model-standins/anthropic.ts';
import type { StandinRequest } from '../../helpers/model-standins/server.ts';
import { tokenEndpoint } from '../../helpers/model-standins/token-endpoint.ts';
import { connectLoginGrant } from '../../helpers/connect-grant.ts';

// The built-in profile `claude-code` (src/profiles/run/builtin/) is what the run opens: found from the CLI itself.
const HOSTS = ['api.anthropic.com', 'platform.claude.com'];
const CLIENT_ID = '9d1c250a-e61b-44d9-88ed-5944d1962f5e';
// The CLI takes 2–4 s a run here; a busy machine triples that.
const RUN_MS = 60_000;

function sessionFiles(home: string): string[] {
  const projects = join(home, '.claude', 'projects');
  if (!existsSync(projects)) return [];
  return readdirSync(projects, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.jsonl'));
}

describe('Claude Code (claude -p) under keyway run --contain, with an API key', () => {
  const KEY = `sk-ant-api03-${CANARY}-claude`;
  const REPLY = 'Stand-in says: the key never left keyway.';
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.10`,
      hosts: HOSTS,
      handlers: [anthropicHandler({ keys: [KEY], reply: { text: REPLY } })],
      grants: {
        anthropic: { type: 'api_key', domains: ['api.anthropic.com'], inject: { header: 'x-api-key', format: '{secret}' }, secret: 'env:ANTHROPIC_REAL_KEY' },
      },
      secrets: { ANTHROPIC_REAL_KEY: KEY },
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('prints the stand-in reply; the stand-in saw the real key, the agent only a placeholder; its state folder took its writes', {
    timeout: 2 * RUN_MS,
  }, async () => {
    const profile = builtinProfile('claude-code');
    const FLAGS = profile.flags;
    // `env` first, from the same shell claude starts from: what the agent's environment holds.
    const r = await world.run(['sh', '-c', 'env; exec claude -p "$0"', 'Say hello.'], FLAGS, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    const placeholder = /^ANTHROPIC_API_KEY=(.*)$/m.exec(r.stdout)?.[1];
    expect(placeholder).toBeDefined();
    expect(placeholder).not.toContain(CANARY);

    const messages = world.standin.seen.filter((s) => s.path === '/v1/messages');
    expect(messages).toHaveLength(1);
    expect(messages[0]?.headers['x-api-key']).toBe(KEY);
    // Nothing else was called but Anthropic's API (the switches above), and nothing was denied.
    expect(new Set(world.standin.seen.map((s) => s.host))).toEqual(new Set(['api.anthropic.com']));
    const audit = world.proxy.auditLines();
    expect(audit.filter((l) => l['decision'] === 'deny')).toEqual([]);
    expect(audit).toContainEqual(
      expect.objectContaining({ host: 'api.anthropic.com', path: '/v1/messages', decision: 'inject', agent: 'agent', via: 'contain', status: 200 }),
    );

    // Its state reached the host: the config it saved (atomically, inside the folder) and the session.
    const config = JSON.parse(readFileSync(join(world.state('claude-code'), '.claude', '.claude.json'), 'utf8')) as Record<string, unknown>;
    expect(config['firstStartVersion']).toMatch(/^\d+\.\d+\.\d+$/);
    expect(sessionFiles(world.state('claude-code'))).toHaveLength(1);
    expect(world.leak(KEY)).toBeUndefined();
  });
});

describe("Claude Code's tools under keyway's containment", () => {
  const KEY = `sk-ant-api03-${CANARY}-claude-tools`;
  let world: AgentWorld;
  /** The model's answer: first its Bash tool, then (with the tool's result in hand) text. */
  const toolUse = (req: StandinRequest) => {
    const last = (req.json as { messages?: Array<{ content?: unknown }> } | undefined)?.messages?.at(-1)?.content;
    if (Array.isArray(last) && last.some((block: { type?: string }) => block.type === 'tool_result')) return undefined;
    return { name: 'Bash', input: { command: 'echo ran-as-$(id -u) > tool-ran.txt', description: 'Write a marker file' } };
  };

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.13`,
      hosts: HOSTS,
      handlers: [anthropicHandler({ keys: [KEY], toolUse, reply: { text: 'Done.' } })],
      grants: {
        anthropic: { type: 'api_key', domains: ['api.anthropic.com'], inject: { header: 'x-api-key', format: '{secret}' }, secret: 'env:ANTHROPIC_REAL_KEY' },
      },
      secrets: { ANTHROPIC_REAL_KEY: KEY },
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('a Bash command the model asks for runs contained, never as root, in the working folder', { timeout: 2 * RUN_MS }, async () => {
    const profile = builtinProfile('claude-code');
    // Headless, a tool runs only when allowed beforehand (nobody is there to answer a prompt).
    const r = await world.run(['claude', '-p', 'Write the marker file.', '--allowedTools', 'Bash'], profile.flags, profile.env, RUN_MS);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('Done.');
    expect(readFileSync(join(world.work, 'tool-ran.txt'), 'utf8').trim()).toMatch(/^ran-as-[1-9]\d*$/);
    const results = world.standin.seen.filter((s) => s.path === '/v1/messages' && JSON.stringify(s.json).includes('"tool_result"'));
    expect(results).toHaveLength(1);
  });
});

describe('Claude Code with a subscription login owned by keyway (login_capture)', () => {
  const REFRESH = `sk-ant-ort01-${CANARY}-refresh`;
  const CODE = `code-${CANARY}-login`;
  const REPLY = 'Stand-in says: refreshed once, by keyway.';
  const tokens = tokenEndpoint({
    host: 'platform.claude.com',
    path: '/v1/oauth/token',
    refreshToken: REFRESH,
    authorizationCode: CODE,
    body: 'json',
    clientId: CLIENT_ID,
    accessPrefix: 'sk-ant-oat01-',
    refreshPrefix: 'sk-ant-ort01-',
    // Held a moment, so the second run's refresh arrives while the first is in flight.
    delayMs: 300,
  });
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.12`,
      hosts: HOSTS,
      handlers: [tokens.handler, anthropicHandler({ accessToken: tokens.isValidAccess, reply: { text: REPLY } })],
      grants: {
        // The grant `keyway connect claude-code --login` makes: its hosts, and the paths its token goes on there.
        'claude-login': connectLoginGrant('claude-code'),
      },
      secrets: {},
    });
  });
  afterAll(async () => {
    if (world) for (const secret of [REFRESH, ...tokens.accessTokens, tokens.refreshToken]) expect(world.leak(secret)).toBeUndefined();
    await world?.close();
  });

  it('an expired token: two runs at once refresh it once through keyway, both answer, the agent keeps placeholders', { timeout: 3 * RUN_MS }, async () => {
    // The login's end, as `claude /login` posts it (code exchange), made through keyway from inside:
    // keyway captures the answer, and what the agent gets back are placeholders.
    const exchange = JSON.stringify({
      grant_type: 'authorization_code',
      code: CODE,
      client_id: CLIENT_ID,
      redirect_uri: 'http://localhost:54545/callback',
      code_verifier: 'v',
      state: 's',
    });
    const login = await world.run(
      ['curl', '-sS', '-H', 'content-type: application/json', '-d', exchange, 'https://platform.claude.com/v1/oauth/token'],
      [],
      {},
      RUN_MS,
    );
    expect(login.code, login.stderr).toBe(0);
    const got = JSON.parse(login.stdout) as { access_token: string; refresh_token: string };
    expect(tokens.logins).toBe(1);
    expect(got.refresh_token).not.toBe(REFRESH);
    expect(got.refresh_token).toContain('kwcap_');

    // The agent's credential file: the placeholders, and an access token that expired a minute ago.
    mkdirSync(join(world.home, '.claude'), { recursive: true });
    const credentials = {
      claudeAiOauth: {
        accessToken: got.access_token,
        refreshToken: got.refresh_token,
        expiresAt: Date.now() - 60_000,
        scopes: ['user:inference', 'user:profile', 'user:sessions:claude_code'],
        subscriptionType: 'max',
      },
    };
    writeFileSync(join(world.home, '.claude', '.credentials.json'), JSON.stringify(credentials), { mode: 0o600 });

    const profile = builtinProfile('claude-code');
    const [a, b] = await Promise.all([
      world.run(['claude', '-p', 'First.'], profile.flags, profile.env, RUN_MS),
      world.run(['claude', '-p', 'Second.'], profile.flags, profile.env, RUN_MS),
    ]);
    for (const r of [a, b]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(REPLY);
    }
    // One refresh reached the token endpoint, with the real refresh token; the other run got its answer from keyway.
    expect(tokens.refreshes).toBe(1);
    expect(tokens.attempts).toEqual([{ refreshToken: REFRESH, ok: true }]);
    const calls = world.standin.seen.filter((s) => s.path === '/v1/messages');
    expect(calls).toHaveLength(2);
    for (const call of calls) expect(call.headers.authorization).toBe(`Bearer ${tokens.accessTokens.at(-1)}`);

    // What the agent kept on the host: placeholders only (a run whose file changed under it keeps its
    // copy aside, so either run's may be the one that landed).
    const kept = JSON.parse(readFileSync(join(world.state('claude-code'), '.claude', '.credentials.json'), 'utf8')) as typeof credentials;
    expect(kept.claudeAiOauth.refreshToken).toContain('kwcap_');
    expect(kept.claudeAiOauth.expiresAt).toBeGreaterThan(Date.now());
  });
});
