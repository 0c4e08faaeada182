import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN_HOSTS, LOGINS, type LoginAgent, type LoginStandIn, startLoginStandIn } from '../helpers/agent-login-standin.ts';
import { isPlaceholder } from '../helpers/capture-canaries.ts';
import { curl } from '../helpers/clients.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { scriptedAgentBin } from '../helpers/scripted-agent-login.ts';

// `keyway connect AGENT --login`, driven as a person does against a running keyway: the real CLI
// makes the login_capture grant and runs the agent's login command under `keyway run`. The login
// commands are scripts standing in for `claude auth login` and `codex login` (the real ones need a
// browser): first on PATH, they post a code to the agent's token endpoint through keyway and write
// the agent's credential file. The token endpoints and the APIs are one loopback stand-in reached by
// the vendors' host names (proxy.hosts; proxy.unmatched: deny), which checks every token it is given
// against those it issued. Afterwards the credential file holds placeholders, keyway the tokens: a
// request with the placeholder reaches the API with the real token, and a refresh through keyway
// with the placeholder refresh token reaches the token endpoint with the real one.

const LOGIN = LOGINS;
type Agent = LoginAgent;
const PROGRAM: Record<Agent, string> = { 'claude-code': 'claude', codex: 'codex', 'gemini-cli': 'gemini' };
const TITLE: Record<Agent, string> = { 'claude-code': 'Claude Code', codex: 'Codex CLI', 'gemini-cli': 'Gemini CLI' };
const outputs: string[] = [];

let standIn: LoginStandIn;
let canaries: LoginStandIn['canaries'];
let issued: LoginStandIn['issued'];
let tokenRequests: LoginStandIn['tokenRequests'];
let apiCalls: LoginStandIn['apiCalls'];
let port: number;
let proxy: TestProxy;
let bin: string;

beforeAll(async () => {
  standIn = await startLoginStandIn();
  ({ canaries, issued, tokenRequests, apiCalls, port } = standIn);
  proxy = await startProxy({ config: { proxy: { unmatched: 'deny', hosts: Object.fromEntries(LOGIN_HOSTS.map((h) => [h, '127.0.0.1'])) } } });
  bin = scriptedAgentBin();
});

afterAll(async () => {
  await proxy?.stop();
  await standIn?.close();
  if (bin !== undefined) rmSync(bin, { recursive: true, force: true });
});

/** The real CLI on the test's home, with the scripted agents first on PATH and HOME a fresh folder. */
async function keyway(args: string[], home: string, stdin?: string, via: TestProxy = proxy) {
  const r = await runCli(args, { KEYWAY_HOME: via.home, ...via.env, HOME: home, PATH: `${bin}:${process.env['PATH']}`, STANDIN_PORT: String(port) }, stdin);
  outputs.push(r.stdout, r.stderr);
  return r;
}

function credentialFile(agent: Agent, home: string): string {
  return {
    'claude-code': join(home, '.claude', '.credentials.json'),
    codex: join(home, '.codex', 'auth.json'),
    'gemini-cli': join(home, '.gemini', 'oauth_creds.json'),
  }[agent];
}

/** The tokens the agent's file holds: access, refresh, and the ID token and API key where it keeps them. */
function heldTokens(agent: Agent, home: string): { access: string; refresh: string; id?: string; apiKey?: string } {
  const file = JSON.parse(readFileSync(credentialFile(agent, home), 'utf8')) as Record<string, Record<string, string>>;
  if (agent === 'claude-code') return { access: file['claudeAiOauth']!['accessToken']!, refresh: file['claudeAiOauth']!['refreshToken']! };
  if (agent === 'gemini-cli') {
    const flat = file as unknown as Record<string, string>;
    return { access: flat['access_token']!, refresh: flat['refresh_token']!, id: flat['id_token']! };
  }
  const t = file['tokens']!;
  return {
    access: t['access_token']!,
    refresh: t['refresh_token']!,
    id: t['id_token']!,
    apiKey: (file as unknown as Record<string, string>)['OPENAI_API_KEY']!,
  };
}

/** A placeholder in a vendor's shape: keyway's mark after the real token's known prefix (sk-ant-, sk-proj-), or a JWT. */
const heldPlaceholder = (value: string): boolean => isPlaceholder(value.replace(/^sk-(?:ant-|proj-)?/, ''));

/** curl through keyway with `Authorization: Bearer TOKEN` to the agent's API: the status the stand-in gave. */
async function callApi(agent: Agent, token: string, through = true): Promise<string> {
  const { api, apiPath } = LOGIN[agent];
  const via = through ? ['--proxy', proxy.url, '--cacert', proxy.caPath] : ['--cacert', TLS_FIXTURES.caPath, '--resolve', `${api}:${port}:127.0.0.1`];
  const r = await curl(
    [...via, '-H', `authorization: Bearer ${token}`, '-o', '/dev/null', '-w', '%{http_code}', `https://${api}:${port}${apiPath}`],
    cleanEnv(),
  );
  outputs.push(r.stdout, r.stderr);
  return r.stdout;
}

/** Where each agent sends its access token (its profile's hosts, on the paths the agent calls there). */
const NAMED: Record<Agent, Array<[string, string]>> = {
  'claude-code': [
    ['api.anthropic.com', '/api/oauth/profile'],
    ['api.anthropic.com', '/v1/messages'],
  ],
  codex: [['chatgpt.com', '/backend-api/codex/responses']],
  'gemini-cli': [
    ['cloudcode-pa.googleapis.com', '/v1internal:streamGenerateContent'],
    ['oauth2.googleapis.com', '/tokeninfo'],
    ['www.googleapis.com', '/oauth2/v2/userinfo'],
  ],
};

/** Paths on the same hosts the agent does not send its token to: another API on the host, the token endpoint's host. */
const NOT_NAMED: Record<Agent, Array<[string, string]>> = {
  'claude-code': [
    ['api.anthropic.com', '/admin/keys'],
    ['platform.claude.com', '/v1/oauth/profile'],
  ],
  codex: [
    ['chatgpt.com', '/c/conversation'],
    ['auth.openai.com', '/userinfo'],
  ],
  'gemini-cli': [
    ['www.googleapis.com', '/drive/v3/files'],
    ['www.googleapis.com', '/oauth2/v2/userinfo/other'],
    ['cloudcode-pa.googleapis.com', '/v1/projects'],
    ['oauth2.googleapis.com', '/v3/userinfo'],
  ],
};

/** curl through keyway with `Authorization: Bearer TOKEN` to host and path: the status, and keyway's error code if any. */
async function callAt(host: string, path: string, token: string): Promise<string> {
  const r = await curl(
    [
      ...['--proxy', proxy.url, '--cacert', proxy.caPath],
      ...['-H', `authorization: Bearer ${token}`, '-o', '/dev/null', '-w', '%{http_code} %header{x-keyway-error}', `https://${host}:${port}${path}`],
    ],
    cleanEnv(),
  );
  outputs.push(r.stdout, r.stderr);
  return r.stdout;
}

describe.each(Object.keys(LOGIN) as Agent[])('keyway connect %s --login', (agent) => {
  const home = mkdtempSync(join(tmpdir(), `keyway-${agent}-home-`));

  it('runs the agent login under keyway: its file holds placeholders, keyway the tokens', async () => {
    const r = await keyway(['connect', agent, '--login'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`connected ${TITLE[agent]}'s login`);
    const login = tokenRequests.filter((t) => t.host === LOGIN[agent].tokenHost);
    expect(login[0]?.grant_type).toBe('authorization_code');
    const held = heldTokens(agent, home);
    for (const [name, token] of Object.entries(held)) expect(heldPlaceholder(token), name).toBe(true);
    for (const token of Object.values(held)) expect(issued.access.has(token) || issued.refresh.has(token) || issued.id.has(token)).toBe(false);
    if (agent === 'codex') {
      // Its API-key exchange carried the real ID token to the issuer, and the key it got is captured too.
      const exchange = login.find((t) => t.grant_type.endsWith(':token-exchange'));
      expect(issued.id.has(exchange?.subject_token ?? '')).toBe(true);
      expect(held.apiKey?.startsWith('sk-proj-kwcap_')).toBe(true);
    }
    expect(canaries.leaks(readFileSync(credentialFile(agent, home)))).toEqual([]);
    // Claude's login ran with its state in a folder of its own: only its login file reached the home.
    if (agent === 'claude-code') expect(readdirSync(home, { recursive: true }).sort()).toEqual(['.claude', join('.claude', '.credentials.json')]);
    const listed = await keyway(['grants', 'list'], home);
    expect(listed.stdout).toMatch(new RegExp(`^${agent}\\s+login_capture\\s+active\\s`, 'm'));
    const grant = proxy.auditLines().find((l) => l['action'] === 'grants.create' && l['grant'] === agent);
    expect(grant?.['changed']).toBe('type,domains,capture');
    expect(proxy.auditLines().some((l) => l['grant'] === agent && Array.isArray(l['captured']))).toBe(true);
  });

  it('the placeholder reaches the API as the real token; the API refuses the placeholder itself', async () => {
    const { access } = heldTokens(agent, home);
    expect(await callApi(agent, access)).toBe('200');
    const seen = apiCalls.at(-1)!;
    expect(seen.host).toBe(LOGIN[agent].api);
    expect(issued.access.has(seen.bearer!)).toBe(true);
    // The stand-in's check is real: the placeholder sent straight to it is refused.
    expect(await callApi(agent, access, false)).toBe('401');
  });

  it('the access token goes only to the hosts and paths the agent names: elsewhere on those hosts the placeholder is refused', async () => {
    const { access } = heldTokens(agent, home);
    for (const [host, path] of NAMED[agent]) {
      expect(await callAt(host, path, access), `${host}${path}`).toBe('200 ');
      const seen = apiCalls.at(-1)!;
      expect(seen).toMatchObject({ host, path, ok: true });
      expect(issued.access.has(seen.bearer!)).toBe(true);
    }
    for (const [host, path] of NOT_NAMED[agent]) {
      const before = apiCalls.length;
      expect(await callAt(host, path, access), `${host}${path}`).toBe('403 placeholder_refused');
      // Refused at keyway: the stand-in got no request, so no credential, there.
      expect(apiCalls.length, `${host}${path}`).toBe(before);
    }
  });

  it('a refresh with the placeholder refresh token reaches the token endpoint with the real one', async () => {
    const before = heldTokens(agent, home);
    const r = await keyway(['run', '--', PROGRAM[agent], 'refresh'], home);
    expect(r.code, r.stderr).toBe(0);
    const refresh = tokenRequests.at(-1)!;
    expect(refresh.grant_type).toBe('refresh_token');
    expect(refresh.refresh_token).not.toBe(before.refresh);
    expect(standIn.everRefresh.has(refresh.refresh_token!)).toBe(true);
    const after = heldTokens(agent, home);
    expect(after.access).not.toBe(before.access);
    expect(heldPlaceholder(after.refresh)).toBe(true);
    // Google's refresh token does not rotate: the agent keeps its placeholder, which still refreshes.
    if (agent === 'gemini-cli') expect(after.refresh).toBe(before.refresh);
    expect(await callApi(agent, after.access)).toBe('200');
  });

  it('connecting again without --replace is refused before any login runs', async () => {
    const count = tokenRequests.length;
    const r = await keyway(['connect', agent, '--login'], home);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`grant "${agent}" exists`);
    expect(tokenRequests.length).toBe(count);
    // The captured login still serves.
    expect(await callApi(agent, heldTokens(agent, home).access)).toBe('200');
  });
});

describe('keyway connect AGENT --login, refused', () => {
  it('--watch sets up the grant and prints the login command instead of running it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'keyway-watch-home-'));
    const count = tokenRequests.length;
    const r = await keyway(['connect', 'claude-code', '--login', '--watch', '--grant', 'claude-watch'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('keyway run -- claude auth login');
    expect(tokenRequests.length).toBe(count);
    expect(existsSync(credentialFile('claude-code', home))).toBe(false);
    // No login yet: the listing says how a login grant is filled (issue 86: it said `secrets set`).
    const listed = await keyway(['grants', 'list'], home);
    expect(listed.stdout, listed.stdout).toContain('grant claude-watch: waiting for login: run keyway connect claude-code --grant claude-watch --login');
    expect(listed.stdout).toMatch(/^claude-watch\s+login_capture\s+waiting_for_login\s/m);
    expect(listed.stdout).not.toContain('secrets set claude-watch');
  });

  it('--login on a grant waiting for its login fills it without --replace; the file keeps what it held beside the login', async () => {
    // A keyway of its own: another claude login grant on the same token endpoint would make it ambiguous.
    const own = await startProxy({ config: { proxy: { unmatched: 'deny', hosts: Object.fromEntries(LOGIN_HOSTS.map((h) => [h, '127.0.0.1'])) } } });
    try {
      const home = mkdtempSync(join(tmpdir(), 'keyway-refill-home-'));
      expect((await keyway(['connect', 'claude-code', '--login', '--watch'], home, undefined, own)).code).toBe(0);
      mkdirSync(join(home, '.claude'), { mode: 0o700 });
      writeFileSync(credentialFile('claude-code', home), JSON.stringify({ mcpOAuth: { docs: { clientId: 'docs-client' } } }), { mode: 0o600 });
      const r = await keyway(['connect', 'claude-code', '--login'], home, undefined, own);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain("connected Claude Code's login");
      expect(
        own
          .auditLines()
          .filter((l) => l['grant'] === 'claude-code')
          .map((l) => l['action']),
      ).toEqual(expect.arrayContaining(['grants.create', 'grants.replace']));
      const file = JSON.parse(readFileSync(credentialFile('claude-code', home), 'utf8')) as Record<string, Record<string, unknown>>;
      expect(file['mcpOAuth']).toEqual({ docs: { clientId: 'docs-client' } });
      expect(heldPlaceholder(String(file['claudeAiOauth']!['refreshToken']))).toBe(true);
      expect(existsSync(join(home, '.claude.json'))).toBe(false);
      const listed = await keyway(['grants', 'list'], home, undefined, own);
      expect(listed.stdout).toMatch(/^claude-code\s+login_capture\s+active\s/m);
      // Now it holds a login: connecting again needs --replace.
      const again = await keyway(['connect', 'claude-code', '--login'], home, undefined, own);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('grant "claude-code" exists');
    } finally {
      await own.stop();
    }
  });

  it('without a running keyway, --login says so and changes nothing', async () => {
    const home = makeHome();
    const r = await runCli(['connect', 'codex', '--login'], {
      KEYWAY_HOME: home,
      HOME: home,
      PATH: `${bin}:${process.env['PATH']}`,
      STANDIN_PORT: String(port),
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no keyway is running');
    expect(r.stderr).toContain('keyway start');
    expect(existsSync(join(home, 'data', 'store.json'))).toBe(false);
    expect(existsSync(credentialFile('codex', home))).toBe(false);
  });

  it('no token leaks into any output, audit line, log or the store', () => {
    const places: Array<[string, string | Buffer]> = [
      ['the CLI and client output', outputs.join('\n')],
      ['the audit log', readFileSync(proxy.auditPath)],
      ['the app log', proxy.logs.join('')],
      ...filesUnder(join(proxy.home, 'data')).map((file): [string, Buffer] => [file, readFileSync(file)]),
    ];
    for (const [where, bytes] of places) expect(canaries.leaks(bytes), where).toEqual([]);
    expect(canaries.leaks(`a ${[...issued.access][0]} b`)).not.toEqual([]);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return stat.isDirectory() ? filesUnder(path) : stat.isFile() ? [path] : [];
  });
}
