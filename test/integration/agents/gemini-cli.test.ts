// The real Gemini CLI (@google/gemini-cli, a devDependency: a Node bundle) in its headless mode, `gemini
// -p`, under `keyway run --contain`, against a loopback stand-in of the Gemini API that keyway maps
// generativelanguage.googleapis.com (and play.googleapis.com, its usage statistics) to, every other host
// denied. The agent holds keyway's placeholders (GEMINI_API_KEY and GOOGLE_API_KEY), the stand-in sees
// the real key in x-goog-api-key, the answer comes back over SSE. With a Google login instead, keyway
// holds the tokens (login_capture), the agent's oauth_creds.json placeholders, and the CLI speaks to the
// Code Assist API: an expired token is refreshed once for two runs at once.
// Needs root or unprivileged user namespaces (CI runs as root): the stand-in listens on port 443.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_BIN, type AgentWorld, builtinProfile, filesUnder, startAgentWorld } from '../../helpers/agent-world.ts';
import { CANARY } from '../../helpers/fixtures.ts';
import { codeAssistHandler } from '../../helpers/model-standins/code-assist.ts';
import { geminiHandler } from '../../helpers/model-standins/gemini.ts';
import { GOOGLE_SCOPES, googleTokenInfoHandler, googleUserInfoHandler } from '../../helpers/model-standins/google-login.ts';
import { tokenEndpoint } from '../../helpers/model-standins/token-endpoint.ts';
import { connectLoginGrant } from '../../helpers/connect-grant.ts';

// The built-in profile `gemini-cli` (src/profiles/run/builtin/) is what the run opens: found from the CLI itself.
const HOSTS = ['generativelanguage.googleapis.com', 'play.googleapis.com', 'cloudcode-pa.googleapis.com', 'oauth2.googleapis.com', 'www.googleapis.com'];
// Gemini CLI's installed-app OAuth client (Google's own, public by design), read from the installed
// CLI rather than copied here: the stand-in token endpoint then checks what this version sends.
const GEMINI_CLIENT = geminiOAuthClient();
const CLIENT_ID = GEMINI_CLIENT.id;
const CLIENT_SECRET = GEMINI_CLIENT.secret;

function geminiOAuthClient(): { id: string; secret: string } {
  const bundle = join(AGENT_BIN, '..', '@google', 'gemini-cli', 'bundle');
  for (const file of readdirSync(bundle).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(bundle, file), 'utf8');
    const id = /\bOAUTH_CLIENT_ID = "([^"]+)"/.exec(text)?.[1];
    const secret = /\bOAUTH_CLIENT_SECRET = "([^"]+)"/.exec(text)?.[1];
    if (id && secret) return { id, secret };
  }
  throw new Error(`no OAuth client found in ${bundle}`);
}
const RUN_MS = 60_000;

describe('Gemini CLI (gemini -p) under keyway run --contain, with an API key', () => {
  const KEY = `AIza-${CANARY}-gemini`;
  const REPLY = 'Stand-in says: Gemini answered through keyway.';
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.30`,
      hosts: HOSTS,
      handlers: [geminiHandler({ keys: [KEY], reply: { text: REPLY } })],
      grants: {
        gemini: {
          type: 'api_key',
          domains: ['generativelanguage.googleapis.com'],
          inject: { header: 'x-goog-api-key', format: '{secret}' },
          secret: 'env:GEMINI_REAL_KEY',
        },
      },
      secrets: { GEMINI_REAL_KEY: KEY },
    });
  });
  afterAll(async () => {
    if (world) expect(world.leak(KEY)).toBeUndefined();
    await world?.close();
  });

  it('prints the stand-in reply; the stand-in saw the real key, the agent placeholders; usage statistics off by its settings file', {
    timeout: 2 * RUN_MS,
  }, async () => {
    // Its usage statistics (play.googleapis.com) have no variable: only its settings file turns them off.
    // Its settings go where keyway keeps its state contained (the person's own ~/.gemini is not read there).
    mkdirSync(join(world.state('gemini-cli'), '.gemini'), { recursive: true });
    writeFileSync(join(world.state('gemini-cli'), '.gemini', 'settings.json'), JSON.stringify({ privacy: { usageStatisticsEnabled: false } }));
    const profile = builtinProfile('gemini-cli', { GEMINI_CLI_TRUST_WORKSPACE: 'true' });
    const FLAGS = profile.flags;
    // A model named: by default ("auto") it first asks a small model to pick one, in JSON.
    const r = await world.run(['sh', '-c', 'env; exec gemini -m gemini-2.5-flash -p "$0"', 'Say hello.'], FLAGS, profile.env, RUN_MS);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().endsWith(REPLY), r.stdout + r.stderr).toBe(true);
    for (const name of ['GEMINI_API_KEY', 'GOOGLE_API_KEY']) {
      const placeholder = new RegExp(`^${name}=(.*)$`, 'm').exec(r.stdout)?.[1];
      expect(placeholder, name).toBeDefined();
      expect(placeholder).not.toContain(CANARY);
    }
    const calls = world.standin.seen.filter((s) => s.path === '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
    expect(calls).toHaveLength(1);
    expect(calls[0]?.query.get('alt')).toBe('sse');
    expect(calls[0]?.headers['x-goog-api-key']).toBe(KEY);
    expect(new Set(world.standin.seen.map((s) => s.host))).toEqual(new Set(['generativelanguage.googleapis.com']));
    const audit = world.proxy.auditLines();
    expect(audit.filter((l) => l['decision'] === 'deny')).toEqual([]);
    expect(audit).toContainEqual(
      expect.objectContaining({
        host: 'generativelanguage.googleapis.com',
        path: '/v1beta/models/gemini-2.5-flash:streamGenerateContent',
        decision: 'inject',
        agent: 'agent',
        via: 'contain',
        status: 200,
      }),
    );
    // Its state reached the host: the session it kept (tmp/<project>/chats/session-*.jsonl).
    const state = filesUnder(join(world.state('gemini-cli'), '.gemini')).map((f) => f.slice(world.state('gemini-cli').length));
    expect(
      state.filter((f) => /\/chats\/session-.*\.jsonl$/.test(f)),
      state.join(' '),
    ).toHaveLength(1);
    expect(world.leak(KEY)).toBeUndefined();
  });
});

describe('Gemini CLI with a Google login owned by keyway (login_capture)', () => {
  const REFRESH = `1//${CANARY}-google`;
  const CODE = `4/${CANARY}-google-code`;
  const REPLY = 'Stand-in says: Code Assist, through a login keyway holds.';
  const tokens = tokenEndpoint({
    host: 'oauth2.googleapis.com',
    path: '/token',
    refreshToken: REFRESH,
    authorizationCode: CODE,
    body: 'form',
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    // Google keeps a refresh token: a refresh answers a new access token only.
    rotate: false,
    accessPrefix: 'ya29.',
    extra: () => ({ scope: GOOGLE_SCOPES }),
    delayMs: 300,
  });
  let world: AgentWorld;

  beforeAll(async () => {
    world = await startAgentWorld({
      address: `127.62.${1 + (process.pid % 200)}.31`,
      hosts: HOSTS,
      handlers: [
        tokens.handler,
        googleTokenInfoHandler({ clientId: CLIENT_ID, accessToken: tokens.isValidAccess }),
        googleUserInfoHandler({ accessToken: tokens.isValidAccess }),
        codeAssistHandler({ accessToken: tokens.isValidAccess, reply: { text: REPLY } }),
      ],
      grants: {
        // The grant `keyway connect gemini-cli --login` makes: its hosts, and the paths its token goes on there.
        'google-login': connectLoginGrant('gemini-cli'),
      },
      secrets: {},
    });
  });
  afterAll(async () => {
    if (world) for (const secret of [REFRESH, ...tokens.accessTokens]) expect(world.leak(secret)).toBeUndefined();
    await world?.close();
  });

  it('an expired token: two runs at once refresh it once through keyway, both answer, oauth_creds.json keeps placeholders', {
    timeout: 3 * RUN_MS,
  }, async () => {
    // The login's end (the CLI posts the code exchange as a form), made through keyway from inside.
    const exchange = new URLSearchParams({
      grant_type: 'authorization_code',
      code: CODE,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uri: 'http://127.0.0.1:45289/oauth2callback',
      code_verifier: 'v',
    });
    const login = await world.run(['curl', '-sS', '-d', exchange.toString(), 'https://oauth2.googleapis.com/token'], [], {}, RUN_MS);
    expect(login.code, login.stderr).toBe(0);
    const got = JSON.parse(login.stdout) as { access_token: string; refresh_token: string };
    expect(got.refresh_token).toContain('kwcap_');

    mkdirSync(join(world.home, '.gemini'), { recursive: true });
    const creds = {
      access_token: got.access_token,
      refresh_token: got.refresh_token,
      scope: GOOGLE_SCOPES,
      token_type: 'Bearer',
      expiry_date: Date.now() - 60_000,
    };
    writeFileSync(join(world.home, '.gemini', 'oauth_creds.json'), JSON.stringify(creds), { mode: 0o600 });
    // The login it uses, and no usage statistics: both only in its settings file.
    // Settings go where keyway keeps its state contained; the login is copied there from the person's (placeholders only).
    mkdirSync(join(world.state('gemini-cli'), '.gemini'), { recursive: true });
    writeFileSync(
      join(world.state('gemini-cli'), '.gemini', 'settings.json'),
      JSON.stringify({ privacy: { usageStatisticsEnabled: false }, security: { auth: { selectedType: 'oauth-personal' } } }),
    );

    const profile = builtinProfile('gemini-cli', { GEMINI_CLI_TRUST_WORKSPACE: 'true' });
    const command = (prompt: string) => ['gemini', '-m', 'gemini-2.5-flash', '-p', prompt];
    const [a, b] = await Promise.all([
      world.run(command('First.'), profile.flags, profile.env, RUN_MS),
      world.run(command('Second.'), profile.flags, profile.env, RUN_MS),
    ]);
    for (const r of [a, b]) {
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(REPLY);
    }
    expect(tokens.refreshes).toBe(1);
    expect(tokens.attempts).toEqual([{ refreshToken: REFRESH, ok: true }]);
    const turns = world.standin.seen.filter((s) => s.path === '/v1internal:streamGenerateContent');
    expect(turns).toHaveLength(2);
    for (const turn of turns) expect(turn.headers.authorization).toBe(`Bearer ${tokens.accessTokens.at(-1)}`);
    const kept = JSON.parse(readFileSync(join(world.state('gemini-cli'), '.gemini', 'oauth_creds.json'), 'utf8')) as typeof creds;
    expect(kept.refresh_token).toContain('kwcap_');
    expect(kept.access_token).toContain('kwcap_');
  });
});
