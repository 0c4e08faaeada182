import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Canaries, closeWithSockets, isPlaceholder } from '../helpers/capture-canaries.ts';
import { curl } from '../helpers/clients.ts';
import { TLS_FIXTURES } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { scriptedAgentBin } from '../helpers/scripted-agent-login.ts';
import { mintTestLeaf } from '../helpers/test-leaf.ts';

// `keyway connect AGENT --login`, driven as a person does against a running keyway: the real CLI
// makes the login_capture grant and runs the agent's login command under `keyway run`. The login
// commands are scripts standing in for `claude auth login` and `codex login` (the real ones need a
// browser): first on PATH, they post a code to the agent's token endpoint through keyway and write
// the agent's credential file. The token endpoints and the APIs are one loopback stand-in reached by
// the vendors' host names (proxy.hosts; proxy.unmatched: deny), which checks every token it is given
// against those it issued. Afterwards the credential file holds placeholders, keyway the tokens: a
// request with the placeholder reaches the API with the real token, and a refresh through keyway
// with the placeholder refresh token reaches the token endpoint with the real one.

const LOGIN = {
  'claude-code': { tokenHost: 'platform.claude.com', tokenPath: '/v1/oauth/token', api: 'api.anthropic.com', apiPath: '/api/oauth/profile' },
  codex: { tokenHost: 'auth.openai.com', tokenPath: '/oauth/token', api: 'chatgpt.com', apiPath: '/backend-api/wham/accounts/check' },
  'gemini-cli': { tokenHost: 'oauth2.googleapis.com', tokenPath: '/token', api: 'cloudcode-pa.googleapis.com', apiPath: '/v1internal:loadCodeAssist' },
} as const;
const PROGRAM: Record<Agent, string> = { 'claude-code': 'claude', codex: 'codex', 'gemini-cli': 'gemini' };
const TITLE: Record<Agent, string> = { 'claude-code': 'Claude Code', codex: 'Codex CLI', 'gemini-cli': 'Gemini CLI' };
type Agent = keyof typeof LOGIN;
const HOSTS = [...new Set(Object.values(LOGIN).flatMap((l) => [l.tokenHost, l.api]))];

const canaries = new Canaries();
/** Tokens the stand-in issued and still takes, by kind. */
const issued = { access: new Set<string>(), refresh: new Set<string>(), id: new Set<string>() };
/** Every refresh token the stand-in issued, used or not. */
const everRefresh = new Set<string>();
/** What the stand-in saw: each token request's grant type and refresh token, each API call's bearer. */
const tokenRequests: Array<{ host: string; grant_type: string; refresh_token?: string | undefined; subject_token?: string | undefined }> = [];
const apiCalls: Array<{ host: string; bearer: string | undefined; ok: boolean }> = [];
const outputs: string[] = [];

let standIn: Server;
let closeStandIn: () => Promise<void>;
let port: number;
let proxy: TestProxy;
let bin: string;

/** A JWT-shaped token (Codex's access and ID tokens are JWTs): a canary as its signature. */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const token = `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${Buffer.from(canaries.make('sig')).toString('base64url')}`;
  canaries.values.push(token);
  return token;
}

/** What each token endpoint answers a code or a refresh with, in the shape its agent reads. */
function tokensFor(host: string, grantType: string): Record<string, unknown> {
  const exp = Math.floor(Date.now() / 1000) + 3600;
  if (host === 'auth.openai.com') {
    const access = jwt({ exp, aud: ['https://api.openai.com/v1'], 'https://api.openai.com/auth': { chatgpt_account_id: 'acct-1' } });
    const refresh = canaries.make('codexrefresh');
    const id = jwt({ exp, email: 'dev@example.test' });
    issued.access.add(access);
    issued.refresh.add(refresh);
    issued.id.add(id);
    everRefresh.add(refresh);
    return { id_token: id, access_token: access, refresh_token: refresh };
  }
  if (host === 'oauth2.googleapis.com') {
    const access = `ya29.${canaries.make('googleaccess')}`;
    issued.access.add(access);
    const answer: Record<string, unknown> = {
      access_token: access,
      expires_in: 3599,
      scope: 'https://www.googleapis.com/auth/cloud-platform openid',
      token_type: 'Bearer',
    };
    // Google's refresh token does not rotate: only the code's answer carries one.
    if (grantType === 'authorization_code') {
      const refresh = `1//${canaries.make('googlerefresh')}`;
      issued.refresh.add(refresh);
      everRefresh.add(refresh);
      answer['refresh_token'] = refresh;
      answer['id_token'] = jwt({ exp, iss: 'https://accounts.google.com', email: 'dev@example.test' });
    }
    return answer;
  }
  const access = `sk-ant-oat01-${canaries.make('claudeaccess')}`;
  const refresh = `sk-ant-ort01-${canaries.make('clauderefresh')}`;
  issued.access.add(access);
  issued.refresh.add(refresh);
  everRefresh.add(refresh);
  // Claude's answer names the account (claude keeps it): ids that look like credentials, passed by the grant.
  return {
    access_token: access,
    refresh_token: refresh,
    expires_in: 28_800,
    scope: 'user:inference user:profile',
    token_type: 'Bearer',
    account: { uuid: '2c7f3e1a-9b4d-4e8f-a1c2-5d6e7f8a9b0c', email_address: 'developer.account@example.test' },
    organization: { uuid: '8e9f0a1b-2c3d-4e5f-a6b7-c8d9e0f1a2b3', name: 'Example-Organization-Name' },
  };
}

beforeAll(async () => {
  standIn = createServer(mintTestLeaf(HOSTS), (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const json = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      };
      const login = Object.values(LOGIN).find((l) => l.tokenHost === host);
      if (login !== undefined && req.method === 'POST' && req.url === login.tokenPath) {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = (req.headers['content-type'] ?? '').includes('json')
          ? (JSON.parse(text) as Record<string, string>)
          : Object.fromEntries(new URLSearchParams(text));
        tokenRequests.push({ host, grant_type: body['grant_type'] ?? '', refresh_token: body['refresh_token'], subject_token: body['subject_token'] });
        const grantType = body['grant_type'] ?? '';
        if (grantType === 'authorization_code' && body['code'] === 'code-from-the-browser') return json(200, tokensFor(host, grantType));
        // A refresh token is taken once where it rotates; Google's is taken again. Only a real one the stand-in issued.
        const refresh = body['refresh_token'] ?? '';
        if (grantType === 'refresh_token' && issued.refresh.has(refresh)) {
          if (host !== 'oauth2.googleapis.com') issued.refresh.delete(refresh);
          return json(200, tokensFor(host, grantType));
        }
        // Codex's exchange of its ID token for an API key: only a real ID token gets one.
        if (grantType.endsWith(':token-exchange') && issued.id.has(body['subject_token'] ?? '')) {
          const key = `sk-proj-${canaries.make('codexapikey')}`;
          return json(200, { access_token: key, token_type: 'Bearer' });
        }
        json(400, { error: 'invalid_grant' });
        return;
      }
      const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
      const ok = bearer !== undefined && issued.access.has(bearer);
      apiCalls.push({ host, bearer, ok });
      json(ok ? 200 : 401, ok ? { account: { uuid: 'u-1' } } : { error: 'invalid token' });
    });
  });
  closeStandIn = closeWithSockets(standIn);
  standIn.listen(0, '127.0.0.1');
  await once(standIn, 'listening');
  port = (standIn.address() as AddressInfo).port;
  proxy = await startProxy({ config: { proxy: { unmatched: 'deny', hosts: Object.fromEntries(HOSTS.map((h) => [h, '127.0.0.1'])) } } });
  bin = scriptedAgentBin();
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await closeStandIn?.();
});

/** The real CLI on the test's home, with the scripted agents first on PATH and HOME a fresh folder. */
async function keyway(args: string[], home: string, stdin?: string) {
  const r = await runCli(args, { KEYWAY_HOME: proxy.home, ...proxy.env, HOME: home, PATH: `${bin}:${process.env['PATH']}`, STANDIN_PORT: String(port) }, stdin);
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

  it('a refresh with the placeholder refresh token reaches the token endpoint with the real one', async () => {
    const before = heldTokens(agent, home);
    const r = await keyway(['run', '--', PROGRAM[agent], 'refresh'], home);
    expect(r.code, r.stderr).toBe(0);
    const refresh = tokenRequests.at(-1)!;
    expect(refresh.grant_type).toBe('refresh_token');
    expect(refresh.refresh_token).not.toBe(before.refresh);
    expect(everRefresh.has(refresh.refresh_token!)).toBe(true);
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
