import { execFile } from 'node:child_process';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as client from 'openid-client';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminClient } from '../helpers/admin-api.ts';
import { type AuthServer, CLIENT_ID, CLIENT_SECRET, startAuthServer } from '../helpers/auth-server.ts';
import { codeLogin } from '../helpers/oidc-login.ts';
import { startProxy, TEST_HOSTS, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor, waitForAsync } from '../helpers/wait.ts';

// Login capture with agents: captured tokens belong to the agent that logged in, show in every
// listing (never their value), and go when the grant's captures are dropped or the agent is
// removed. A Python client (requests-oauthlib) logs in and refreshes too. Every output is searched
// for every real token the provider issued.

const run = promisify(execFile);
const LOGIN_HOST = 'login.example.test';
const ALICE_KEY = 'alice-agent-key-3b9d2f';
const BOB_KEY = 'bob-agent-key-8c1e4a';

let auth: AuthServer;
let api: TestUpstream;
let proxy: TestProxy;
/** Everything any client, command or API call printed or answered: searched for real tokens at the end. */
const outputs: string[] = [];

function agentFetch(agent: string, key: string): typeof fetch {
  const dispatcher = new ProxyAgent({
    uri: proxy.url.replace('http://', `http://${agent}:${encodeURIComponent(key)}@`),
    requestTls: { ca: readFileSync(proxy.caPath, 'utf8') },
  });
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const response = await undiciFetch(input as string, { ...(init as object), dispatcher });
    outputs.push(await response.clone().text());
    return response;
  }) as unknown as typeof fetch;
}

async function login(agent: string, key: string): Promise<{ config: client.Configuration; access: string; fetch: typeof fetch }> {
  const agentFetchImpl = agentFetch(agent, key);
  const config = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, {
    [client.customFetch]: agentFetchImpl as client.CustomFetch,
  });
  const tokens = await client.clientCredentialsGrant(config, { scope: 'api' });
  outputs.push(JSON.stringify(tokens));
  return { config, access: tokens.access_token, fetch: agentFetchImpl };
}

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const result = await proxy.cli(args);
  outputs.push(result.stdout, result.stderr);
  return result;
}

beforeAll(async () => {
  auth = await startAuthServer({ tls: { hostname: LOGIN_HOST } });
  api = await startUpstream({
    authorize: async (authorization) => authorization?.startsWith('Bearer ') === true && auth.introspect(authorization.slice('Bearer '.length)),
  });
  proxy = await startProxy({
    config: {
      proxy: { hosts: Object.fromEntries([...TEST_HOSTS, LOGIN_HOST].map((h) => [h, '127.0.0.1'])) },
      grants: {
        'corp-login': { type: 'login_capture', domains: ['api.example.test'], capture: { endpoints: [{ host: LOGIN_HOST, path: '/token' }] } },
      },
      agents: {
        alice: { key: 'env:ALICE_KEY', grants: ['corp-login'] },
        bob: { key: 'env:BOB_KEY', grants: ['corp-login'] },
      },
    },
    env: { ALICE_KEY, BOB_KEY },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await api?.close();
  await auth?.close();
});

describe('captured tokens and agents', () => {
  it('a placeholder resolves for the agent that logged in, and is refused from another', async () => {
    const alice = await login('alice', ALICE_KEY);
    const resource = new URL(`https://api.example.test:${api.port}/echo`);
    expect((await client.fetchProtectedResource(alice.config, alice.access, resource, 'GET')).status).toBe(200);
    const bob = agentFetch('bob', BOB_KEY);
    const before = api.seen.length;
    const refused = await bob(resource.toString(), { headers: { authorization: `Bearer ${alice.access}` } });
    expect(refused.status).toBe(403);
    expect(refused.headers.get('x-keyway-error')).toBe('placeholder_refused');
    expect(await refused.text()).toContain('another agent');
    expect(api.seen.length).toBe(before);
    await waitFor(() => proxy.auditLines().find((l) => l['code'] === 'placeholder_refused' && l['agent'] === 'bob'), 'bob refused, audited');
  });

  it('grants list, grants show and the admin API name each login’s agent, fields, expiry and last use, never a token', { timeout: 40_000 }, async () => {
    const listed = await cli('grants', 'list', '--json');
    expect(listed.code).toBe(0);
    const row = (JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((g) => g['id'] === 'corp-login')!;
    expect(row['display_status']).toBe('active');
    expect(row['secret_from']).toBe('capture');
    const captured = row['captured'] as Array<Record<string, unknown>>;
    expect(captured.map((c) => c['agent'])).toEqual(['alice']);
    expect(captured[0]).toMatchObject({ fields: ['access_token'], endpoint: `${LOGIN_HOST}/token` });
    expect(Date.parse(String(captured[0]!['expires_at']))).toBeGreaterThan(Date.now());
    const shown = await cli('grants', 'show', 'corp-login');
    expect(shown.stdout).toMatch(/Captured logins:\s+alice: access_token from login\.example\.test\/token/);
    const table = await cli('grants', 'list');
    expect(table.stdout).toContain('alice:access_token');
    const admin = adminClient(proxy);
    const viaApi = await admin.call('GET', '/api/grants');
    outputs.push(viaApi.text);
    const apiRow = (viaApi.body as { grants: Array<Record<string, unknown>> }).grants.find((g) => g['id'] === 'corp-login')!;
    expect((apiRow['captured'] as Array<Record<string, unknown>>)[0]).toMatchObject({ agent: 'alice', fields: ['access_token'] });
    // Last use is written every few seconds: it shows once the proxy flushed it.
    await waitForAsync(
      async () => {
        const again = await admin.call('GET', '/api/grants');
        const c = (
          (again.body as { grants: Array<Record<string, unknown>> }).grants.find((g) => g['id'] === 'corp-login')!['captured'] as Array<Record<string, unknown>>
        )[0];
        return c?.['last_used_at'] ? true : undefined;
      },
      'last use recorded (written every 10 s)',
      25_000,
    );
  });

  it('a Python client (requests-oauthlib) logs in and refreshes through keyway, holding only placeholders', async () => {
    // A refresh token to refresh with: alice logs in with the authorization code (its placeholders).
    const agent = agentFetch('alice', ALICE_KEY);
    const config = await client.discovery(new URL(auth.issuer), CLIENT_ID, CLIENT_SECRET, undefined, { [client.customFetch]: agent as client.CustomFetch });
    const tokens = await codeLogin(config, auth);
    const refreshes = auth.tokenCalls['refresh_token'] ?? 0;
    const script = new URL('../helpers/oauthlib-client.py', import.meta.url).pathname;
    const { stdout, stderr } = await run('/usr/bin/python3', [script], {
      env: {
        PATH: process.env['PATH'] ?? '/usr/bin:/bin',
        HTTPS_PROXY: proxy.url.replace('http://', `http://alice:${ALICE_KEY}@`),
        REQUESTS_CA_BUNDLE: proxy.caPath,
        TOKEN_URL: `${auth.issuer}/token`,
        CLIENT_ID,
        CLIENT_SECRET,
        RESOURCE_URL: `https://api.example.test:${api.port}/echo`,
        REFRESH_TOKEN: tokens.refresh_token!,
      },
      timeout: 60_000,
    });
    outputs.push(stdout, stderr);
    const report = JSON.parse(stdout) as { client_credentials: Record<string, unknown>; refreshed: Record<string, unknown>; statuses: number[] };
    expect(String(report.client_credentials['access_token'])).toMatch(/^kwcap_/);
    expect(String(report.refreshed['access_token'])).toMatch(/^kwcap_/);
    expect(String(report.refreshed['refresh_token'])).toMatch(/^kwcap_/);
    expect(report.refreshed['refresh_token']).not.toBe(tokens.refresh_token);
    expect(report.statuses).toEqual([200, 200]);
    expect(auth.tokenCalls['refresh_token']).toBe(refreshes + 1);
  });

  it('a removed agent’s captured tokens go with it', async () => {
    const admin = adminClient(proxy);
    const created = await admin.call('POST', '/api/agents', { id: 'carol', grants: ['corp-login'] });
    expect(created.status).toBe(201);
    const key = (created.body as { key: string }).key;
    await waitForAsync(
      async () => ((await agentFetch('carol', key)(`https://api.example.test:${api.port}/echo`)).status !== 407 ? true : undefined),
      'carol known to the proxy',
    );
    const carol = await login('carol', key);
    const agentsOf = async () => {
      const listed = await cli('grants', 'list', '--json');
      return ((JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((g) => g['id'] === 'corp-login')!['captured'] as Array<{ agent: string }>).map(
        (c) => c.agent,
      );
    };
    expect(await agentsOf()).toContain('carol');
    expect((await admin.call('DELETE', '/api/agents/carol')).status).toBe(200);
    expect(await agentsOf()).not.toContain('carol');
    // Its placeholder, sent by another agent now, is one keyway no longer holds.
    await waitForAsync(async () => {
      const response = await agentFetch('alice', ALICE_KEY)(`https://api.example.test:${api.port}/echo`, {
        headers: { authorization: `Bearer ${carol.access}` },
      });
      return response.status === 403 && (await response.text()).includes('does not hold') ? true : undefined;
    }, 'carol’s placeholder refused as dropped');
  });

  it('keyway grants rm on a capture grant of the config drops every agent’s captured tokens', async () => {
    const alice = await login('alice', ALICE_KEY);
    const resource = `https://api.example.test:${api.port}/echo`;
    const removed = await cli('grants', 'rm', 'corp-login');
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(/dropped \d+ captured token\(s\) of grant corp-login/);
    const listed = await cli('grants', 'list', '--json');
    expect((JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((g) => g['id'] === 'corp-login')!['captured']).toEqual([]);
    await waitForAsync(async () => {
      const response = await agentFetch('alice', ALICE_KEY)(resource, { headers: { authorization: `Bearer ${alice.access}` } });
      return response.status === 403 ? true : undefined;
    }, 'the dropped placeholder refused');
  });

  it('an agent removed from the config (revoked) loses its captured logins at the reload', async () => {
    await login('alice', ALICE_KEY);
    const captured = async () => {
      const listed = await cli('grants', 'list', '--json');
      return ((JSON.parse(listed.stdout) as Array<Record<string, unknown>>).find((g) => g['id'] === 'corp-login')!['captured'] as Array<{ agent: string }>).map(
        (c) => c.agent,
      );
    };
    expect(await captured()).toContain('alice');
    const file = join(proxy.home, 'config', 'keyway.yaml');
    const config = parse(readFileSync(file, 'utf8')) as { agents: Record<string, unknown> };
    delete config.agents['alice'];
    writeFileSync(file, stringify(config));
    const reloaded = await adminClient(proxy).call('POST', '/api/reload');
    expect(reloaded.status).toBe(200);
    await waitForAsync(async () => (!(await captured()).includes('alice') ? true : undefined), 'alice’s captures dropped');
  });

  it('no real token the provider issued is in any output: answers, commands, the API, logs, the audit log, or the store file', async () => {
    expect(auth.issuedTokens.size).toBeGreaterThan(4);
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        const stat = statSync(path);
        if (stat.isDirectory()) walk(path);
        else if (stat.isFile()) files.push(readFileSync(path, 'latin1'));
      }
    };
    walk(proxy.home);
    const everything = [...outputs, ...proxy.logs, ...files].join('\n');
    for (const token of auth.issuedTokens) expect(everything.includes(token), 'a real token leaked').toBe(false);
  });
});
