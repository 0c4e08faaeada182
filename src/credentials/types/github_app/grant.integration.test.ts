// github_app grants end to end: keyway signs the app's JWT with its private key and exchanges it
// for an installation token at a loopback GitHub double that verifies the JWT with the app's
// public key; the token goes as Bearer to the API host and as Basic x-access-token to git, where
// real `git clone` and `git push` run through keyway against `git http-backend`.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProxyAgent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { git } from '../../../../test/helpers/clients.ts';
import { TLS_FIXTURES } from '../../../../test/helpers/fixtures.ts';
import { type GitHubDouble, startGitHubDouble } from '../../../../test/helpers/github-double.ts';
import { cleanEnv, startProxy, type TestProxy } from '../../../../test/helpers/keyway.ts';
import { findLeak } from '../../../../test/helpers/leak-canary.ts';
import { waitFor } from '../../../../test/helpers/wait.ts';

const MINUTE = 60_000;
const keys = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const APP = keys();
const STRANGER = keys();
const pemOf = (k: ReturnType<typeof keys>) => k.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();

describe('github_app: installation tokens minted from the app key, for the API and for git', () => {
  let github: GitHubDouble;
  let proxy: TestProxy;
  let agent: ProxyAgent;
  let ahead = 0;
  const clock = () => Date.now() + ahead;
  const work = mkdtempSync(join(tmpdir(), 'keyway-github-'));
  const outputs: string[] = [];
  const api = () => `https://api.example.test:${github.port}`;

  beforeAll(async () => {
    // A bare repository with one commit, served by git http-backend.
    const seed = join(work, 'seed');
    const env = cleanEnv({ GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@example.test', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@example.test' });
    for (const args of [
      ['init', '-q', '--bare', '-b', 'main', join(work, 'widgets.git')],
      ['init', '-q', '-b', 'main', seed],
      ['-C', seed, 'commit', '-q', '--allow-empty', '-m', 'first'],
      ['-C', seed, 'push', '-q', join(work, 'widgets.git'), 'main'],
    ]) {
      const r = await git(args, env);
      if (r.code !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    }
    github = await startGitHubDouble({
      appId: '123456',
      publicKey: APP.publicKey,
      installations: [42],
      apiHost: 'api.example.test',
      gitHost: 'other.example.test',
      gitRoot: work,
      now: clock,
    });
    proxy = await startProxy({
      tokenClock: clock,
      env: {
        GH_APP: JSON.stringify({ app_id: 123456, private_key: pemOf(APP) }),
        GH_STRANGER: JSON.stringify({ appId: '123456', privateKey: pemOf(STRANGER), installationId: '42' }),
      },
      config: {
        grants: {
          gh: {
            type: 'github_app',
            domains: ['api.example.test', 'other.example.test'],
            secret: 'env:GH_APP',
            api_url: api(),
            repositories: ['widgets'],
            permissions: { contents: 'write', metadata: 'read' },
          },
          stranger: { type: 'github_app', domains: ['tunnel.example.test'], secret: 'env:GH_STRANGER', api_url: api() },
        },
      },
    });
    agent = new ProxyAgent({ uri: proxy.url, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') }, connections: 64 });
  });

  afterAll(async () => {
    await agent?.close();
    const audit = readFileSync(proxy.auditPath, 'utf8');
    const secrets = [pemOf(APP).split('\n')[1]!, pemOf(STRANGER).split('\n')[1]!, ...github.tokens];
    for (const text of [audit, ...outputs, ...proxy.logs])
      for (const secret of secrets) expect(findLeak(text, secret), 'a secret in an output').toBeUndefined();
    await proxy?.stop();
    await github?.close();
    rmSync(work, { recursive: true, force: true });
  });

  const call = async (host: string, path: string) => {
    const res = await request(`https://${host}:${github.port}${path}`, { dispatcher: agent, headersTimeout: 30_000 });
    const text = await res.body.text();
    outputs.push(text);
    return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
  };

  it('the API gets the installation token as Bearer: one mint, with the JWT verified, the only installation found, the token narrowed', async () => {
    const r = await call('api.example.test', '/repos/acme/widgets');
    expect(r.status, r.text).toBe(200);
    expect(github.mints).toEqual([
      { installation: '42', body: { repositories: ['widgets'], permissions: { contents: 'write', metadata: 'read' } }, jwtLifetime: 540 },
    ]);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['grant'] === 'gh' && l['decision'] === 'inject'), 'the line');
    expect(line).toMatchObject({ secret_source: 'github_app', refreshed: true });
    const shown = JSON.parse((await proxy.cli(['grants', 'show', 'gh', '--json'])).stdout);
    expect(Date.parse(shown.token_expires_at) - clock()).toBeGreaterThan(50 * MINUTE);
  });

  it("the app's own endpoints on the API host are refused in every spelling: only keyway mints", async () => {
    await call('api.example.test', '/repos/acme/widgets');
    const before = github.mints.length;
    const send = async (path: string, method = 'GET', headers: Record<string, string> = {}) => {
      const res = await request(`https://api.example.test:${github.port}${path}`, {
        dispatcher: agent,
        method,
        headers,
        body: method === 'POST' ? '{}' : undefined,
      });
      const text = await res.body.text();
      outputs.push(text);
      return { status: res.statusCode, code: res.headers['x-keyway-error'], text };
    };
    for (const [path, method, headers] of [
      ['/app/installations/42/access_tokens', 'POST', {}],
      ['/app', 'GET', {}],
      ['/app/installations', 'GET', {}],
      ['/APP/installations', 'GET', {}],
      ['/%61pp/installations', 'GET', {}],
      ['/app;x=1/installations', 'GET', {}],
      ['/repos/acme/widgets', 'POST', { 'x-original-url': '/app/installations/42/access_tokens' }],
    ] as Array<[string, string, Record<string, string>]>) {
      const r = await send(path, method, headers);
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.code).toBe('policy_denied');
      expect(r.text).toContain('only keyway mints');
    }
    // Nothing reached the double's mint endpoint: no 401 made keyway mint again either.
    expect(github.mints.length).toBe(before);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/app/installations/42/access_tokens'), 'the line');
    expect(line).toMatchObject({ decision: 'deny', code: 'policy_denied', rule: 'github_app: /app/**' });
    // Other paths that merely start with "app" are the API's own.
    expect((await call('api.example.test', '/repos/acme/widgets')).status).toBe(200);
  });

  it('git clone and git push through keyway: Basic x-access-token with the token; without keyway, git is refused', async () => {
    const env = cleanEnv({
      HTTPS_PROXY: proxy.url,
      GIT_SSL_CAINFO: proxy.bundlePath,
      GIT_AUTHOR_NAME: 'agent',
      GIT_AUTHOR_EMAIL: 'agent@example.test',
      GIT_COMMITTER_NAME: 'agent',
      GIT_COMMITTER_EMAIL: 'agent@example.test',
    });
    const clone = join(work, 'clone');
    const cloned = await git(['clone', '-q', `https://other.example.test:${github.port}/widgets.git`, clone], env);
    outputs.push(cloned.stdout, cloned.stderr);
    expect(cloned.code, cloned.stderr).toBe(0);
    writeFileSync(join(clone, 'README.md'), 'pushed through keyway\n');
    for (const args of [
      ['-C', clone, 'add', 'README.md'],
      ['-C', clone, 'commit', '-q', '-m', 'from the agent'],
    ]) {
      const r = await git(args, env);
      expect(r.code, r.stderr).toBe(0);
    }
    const pushed = await git(['-C', clone, 'push', '-q', 'origin', 'main'], env);
    outputs.push(pushed.stdout, pushed.stderr);
    expect(pushed.code, pushed.stderr).toBe(0);
    const log = await git(['--git-dir', join(work, 'widgets.git'), 'log', '--format=%s', 'main'], cleanEnv({}));
    expect(log.stdout.trim().split('\n')).toEqual(['from the agent', 'first']);
    expect(github.gitCalls.some((c) => c.startsWith('POST /widgets.git/git-receive-pack'))).toBe(true);
    // The same clone straight at the double, with no keyway in the way: refused.
    const direct = await git(['clone', '-q', `https://other.example.test:${github.port}/widgets.git`, join(work, 'direct')], {
      ...cleanEnv({ GIT_SSL_CAINFO: TLS_FIXTURES.caPath }),
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.curloptResolve',
      GIT_CONFIG_VALUE_0: `other.example.test:${github.port}:127.0.0.1`,
    });
    expect(direct.code).not.toBe(0);
    expect(github.refused).toContain('git: no credentials');
  });

  /** Waits until the running proxy holds `token` (a CLI write reaches it through the store within a second). */
  async function proxyHolds(token: string): Promise<void> {
    for (let i = 0; i < 50 && proxy.running.services.store.get<{ accessToken: string }>('minted:gh')?.accessToken !== token; i++) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('keyway refresh mints a new token at once, one mint, and the proxy sends it from then on', async () => {
    const before = github.mints.length;
    const r = await proxy.cli(['refresh', 'gh', '--json']);
    outputs.push(r.stdout, r.stderr);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ grant: 'gh', refreshed: true, token_expires_at: expect.any(String) });
    expect(github.mints.length).toBe(before + 1);
    await proxyHolds(github.tokens.at(-1)!);
    // The double takes only the newest token: a 200 is the new one.
    expect((await call('api.example.test', '/repos/acme/widgets?after=refresh')).status).toBe(200);
    expect(github.mints.length).toBe(before + 1);
  });

  it('a refresh the token endpoint fails: token_refresh_failed, and the proxy goes on with its valid token, no backoff', async () => {
    github.failMints(true);
    try {
      const before = github.mints.length;
      const r = await proxy.cli(['refresh', 'gh']);
      outputs.push(r.stdout, r.stderr);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('could not get');
      const served = await call('api.example.test', '/repos/acme/widgets?after=failed-refresh');
      expect(served.status).toBe(200);
      expect(github.mints.length).toBe(before);
    } finally {
      github.failMints(false);
    }
  });

  /** Past the renew_floor (30 s by default) of the last mint a 401 made, on keyway's clock: a 401 mints at most once per floor. */
  const pastRenewFloor = () => {
    ahead += 31_000;
  };

  it('a token GitHub revoked: its 401 brings one new mint and one replay; 50 requests refused together mint once', async () => {
    const before = github.mints.length;
    github.revokeNewest();
    const r = await call('api.example.test', '/repos/acme/widgets?after=revoke');
    expect(r.status, r.text).toBe(200);
    expect(github.mints.length).toBe(before + 1);
    const line = await waitFor(() => proxy.auditLines().find((l) => l['path'] === '/repos/acme/widgets' && l['replayed'] === true), 'the replayed line');
    expect(line).toMatchObject({ decision: 'inject', status: 200, refreshed: true });

    pastRenewFloor();
    github.revokeNewest();
    const many = await Promise.all(Array.from({ length: 50 }, (_, i) => call('api.example.test', `/repos/acme/widgets?together=${i}`)));
    expect(many.filter((a) => a.status !== 200)).toEqual([]);
    expect(github.mints.length).toBe(before + 2);
  });

  it('a replay refused again goes to the client as GitHub answered it: one replay, no loop', async () => {
    pastRenewFloor();
    github.refuseAll(true);
    try {
      const before = github.mints.length;
      const r = await call('api.example.test', '/repos/acme/widgets?refused=twice');
      expect(r.status).toBe(401);
      expect(github.mints.length).toBe(before + 1);
    } finally {
      github.refuseAll(false);
    }
  });

  it('200 requests at once when the token is due: one mint, every request with the new token', async () => {
    ahead += 56 * MINUTE;
    const before = github.mints.length;
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => call('api.example.test', `/repos/acme/widgets?i=${i}`)));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(github.mints.length - before).toBe(1);
  });

  it('an app key GitHub does not know: 502 token_refresh_failed saying the JWT was refused; the double refused it', async () => {
    const r = await call('tunnel.example.test', '/anything');
    expect(r.status).toBe(502);
    expect(r.code).toBe('token_refresh_failed');
    expect(JSON.parse(r.text).error.message).toMatch(/refused the app's JWT \(HTTP 401: a wrong app id or private key\)$/);
    expect(github.refused.some((why) => why.startsWith('app JWT: '))).toBe(true);
  });

  it('keyway secrets set refuses a key that is not one, and an app id that is not a number, without quoting them', async () => {
    const bad = await proxy.cli(
      ['grants', 'add', 'gh-store', '--type', 'github_app', '--domains', 'plain.example.test', '--secret-stdin'],
      JSON.stringify({ appId: 'abc', privateKey: pemOf(APP) }),
    );
    outputs.push(bad.stdout, bad.stderr);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('"appId" must be a number');
    const notKey = await proxy.cli(
      ['grants', 'add', 'gh-store', '--type', 'github_app', '--domains', 'plain.example.test', '--secret-stdin'],
      JSON.stringify({ appId: '1', privateKey: 'not a key' }),
    );
    expect(notKey.stderr).toContain('"privateKey" is not a PEM private key');
  });
});
