import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOGIN_HOSTS, LOGINS, type LoginAgent, type LoginStandIn, startLoginStandIn } from '../helpers/agent-login-standin.ts';
import { isPlaceholder } from '../helpers/capture-canaries.ts';
import { curl } from '../helpers/clients.ts';
import { cleanEnv, runCli, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { scriptedAgentBin } from '../helpers/scripted-agent-login.ts';

// `keyway connect AGENT --import`: an agent logged in before keyway has real tokens in its
// credential file. The real CLI takes them into the agent's login_capture grant and rewrites the
// file with placeholders (its other members and its mode as they were). Then, through a running
// keyway, the placeholder reaches the agent's API as the real token, and the agent's refresh with
// the placeholder refresh token reaches the token endpoint with the real one. The tokens are
// canaries a loopback stand-in issued and checks; none shows anywhere else.

const PROGRAM: Record<LoginAgent, string> = { 'claude-code': 'claude', codex: 'codex', 'gemini-cli': 'gemini' };
const outputs: string[] = [];

let standIn: LoginStandIn;
let proxy: TestProxy;
let bin: string;

beforeAll(async () => {
  standIn = await startLoginStandIn();
  proxy = await startProxy({ config: { proxy: { unmatched: 'deny', hosts: Object.fromEntries(LOGIN_HOSTS.map((h) => [h, '127.0.0.1'])) } } });
  bin = scriptedAgentBin();
});

afterAll(async () => {
  await proxy?.stop();
  await standIn?.close();
  if (bin !== undefined) rmSync(bin, { recursive: true, force: true });
});

async function keyway(args: string[], home: string) {
  const r = await runCli(args, {
    KEYWAY_HOME: proxy.home,
    ...proxy.env,
    HOME: home,
    PATH: `${bin}:${process.env['PATH']}`,
    STANDIN_PORT: String(standIn.port),
  });
  outputs.push(r.stdout, r.stderr);
  return r;
}

const FILES: Record<LoginAgent, string> = { 'claude-code': '.claude/.credentials.json', codex: '.codex/auth.json', 'gemini-cli': '.gemini/oauth_creds.json' };

/** The agent's credential file as the agent writes it after a login made without keyway: real tokens. */
function writeRealLogin(agent: LoginAgent, home: string): { file: string; content: Record<string, unknown> } {
  const t = standIn.issue(agent) as Record<string, string | number>;
  const content: Record<string, unknown> =
    agent === 'claude-code'
      ? {
          claudeAiOauth: {
            accessToken: t['access_token'],
            refreshToken: t['refresh_token'],
            expiresAt: Date.now() + 3_600_000,
            scopes: ['user:inference'],
            subscriptionType: 'max',
          },
        }
      : agent === 'codex'
        ? {
            auth_mode: 'chatgpt',
            OPENAI_API_KEY: `sk-proj-${standIn.canaries.make('importkey')}`,
            tokens: { id_token: t['id_token'], access_token: t['access_token'], refresh_token: t['refresh_token'], account_id: 'acct-1' },
            last_refresh: '2026-11-20T10:00:00Z',
          }
        : { ...t, expiry_date: Date.now() + 3_600_000 };
  const file = join(home, FILES[agent]);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(content, null, 2));
  // An unusual mode, to see it kept.
  chmodSync(file, 0o640);
  return { file, content };
}

/** Each token the file holds, by its path. */
function tokensIn(agent: LoginAgent, json: Record<string, unknown>): Record<string, string> {
  if (agent === 'claude-code') {
    const o = json['claudeAiOauth'] as Record<string, string>;
    return { access: o['accessToken']!, refresh: o['refreshToken']! };
  }
  if (agent === 'codex') {
    const o = json['tokens'] as Record<string, string>;
    return { access: o['access_token']!, refresh: o['refresh_token']!, id: o['id_token']!, apiKey: json['OPENAI_API_KEY'] as string };
  }
  const o = json as Record<string, string>;
  return { access: o['access_token']!, refresh: o['refresh_token']!, id: o['id_token']! };
}

const heldPlaceholder = (value: string): boolean => isPlaceholder(value.replace(/^sk-(?:ant-|proj-)?/, ''));

async function callApi(agent: LoginAgent, token: string): Promise<string> {
  const { api, apiPath } = LOGINS[agent];
  const r = await curl(
    [
      '--proxy',
      proxy.url,
      '--cacert',
      proxy.caPath,
      '-H',
      `authorization: Bearer ${token}`,
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `https://${api}:${standIn.port}${apiPath}`,
    ],
    cleanEnv(),
  );
  outputs.push(r.stdout, r.stderr);
  return r.stdout;
}

describe.each(Object.keys(LOGINS) as LoginAgent[])('keyway connect %s --import', (agent) => {
  const home = mkdtempSync(join(tmpdir(), `keyway-import-${agent}-`));
  let before: { file: string; content: Record<string, unknown> };

  it('takes the tokens into keyway and leaves placeholders in the file, its mode and other members kept', async () => {
    before = writeRealLogin(agent, home);
    const real = tokensIn(agent, before.content);
    const r = await keyway(['connect', agent, '--import'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`holds placeholders`);
    expect(statSync(before.file).mode & 0o777).toBe(0o640);
    const after = JSON.parse(readFileSync(before.file, 'utf8')) as Record<string, unknown>;
    const held = tokensIn(agent, after);
    for (const [name, value] of Object.entries(held)) {
      expect(heldPlaceholder(value), name).toBe(true);
      expect(value).not.toBe(real[name]);
    }
    // Everything but the tokens is as the agent wrote it.
    const blank = (json: Record<string, unknown>) =>
      JSON.stringify(json, (_k, v) => (typeof v === 'string' && Object.values(tokensIn(agent, json)).includes(v) ? 'T' : v));
    expect(blank(after)).toBe(blank(before.content));
    expect(standIn.canaries.leaks(readFileSync(before.file))).toEqual([]);
    expect(proxy.auditLines().some((l) => l['action'] === 'grants.import_login' && l['grant'] === agent && l['code'] === null)).toBe(true);
  });

  it('the placeholder reaches the API as the real token, and a refresh with the placeholder goes through keyway', async () => {
    const held = tokensIn(agent, JSON.parse(readFileSync(before.file, 'utf8')) as Record<string, unknown>);
    expect(await callApi(agent, held['access']!)).toBe('200');
    expect(standIn.apiCalls.at(-1)?.bearer).toBe(tokensIn(agent, before.content)['access']);
    const r = await keyway(['run', '--', PROGRAM[agent], 'refresh'], home);
    expect(r.code, r.stderr).toBe(0);
    expect(standIn.tokenRequests.at(-1)?.refresh_token).toBe(tokensIn(agent, before.content)['refresh']);
    const refreshed = tokensIn(agent, JSON.parse(readFileSync(before.file, 'utf8')) as Record<string, unknown>);
    expect(heldPlaceholder(refreshed['access']!)).toBe(true);
    expect(await callApi(agent, refreshed['access']!)).toBe('200');
  });

  it('a file that holds placeholders already is refused, and left as it is', async () => {
    const text = readFileSync(before.file, 'utf8');
    const r = await keyway(['connect', agent, '--import', '--replace'], home);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('holds keyway placeholders already');
    expect(readFileSync(before.file, 'utf8')).toBe(text);
  });
});

describe('keyway connect AGENT --import, refused', () => {
  it('a file with an API key and no sign-in, or none at all, makes no grant', async () => {
    const home = mkdtempSync(join(tmpdir(), 'keyway-import-key-'));
    const file = join(home, '.codex', 'auth.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: `sk-proj-${standIn.canaries.make('onlykey')}` }));
    const key = await keyway(['connect', 'codex', '--import', '--grant', 'codex-key'], home);
    expect(key.code).toBe(2);
    expect(key.stderr).toContain('holds no refresh token');
    const none = await keyway(['connect', 'claude-code', '--import', '--grant', 'claude-none'], home);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no such file');
    const listed = await keyway(['grants', 'list', '--json'], home);
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((g) => g.id)).not.toContain('codex-key');
    expect((JSON.parse(listed.stdout) as Array<{ id: string }>).map((g) => g.id)).not.toContain('claude-none');
  });

  it('no token leaks into any output, audit line, log or the store', () => {
    const places: Array<[string, string | Buffer]> = [
      ['the CLI and client output', outputs.join('\n')],
      ['the audit log', readFileSync(proxy.auditPath)],
      ['the app log', proxy.logs.join('')],
      ...filesUnder(join(proxy.home, 'data')).map((file): [string, Buffer] => [file, readFileSync(file)]),
    ];
    for (const [where, bytes] of places) expect(standIn.canaries.leaks(bytes), where).toEqual([]);
    expect(standIn.canaries.leaks(`a ${[...standIn.issued.access][0]} b`)).not.toEqual([]);
  });
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    const stat = statSync(path);
    return stat.isDirectory() ? filesUnder(path) : stat.isFile() ? [path] : [];
  });
}
