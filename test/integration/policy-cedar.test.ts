// Policy as code (issue 88) on the real request path: Cedar files in the home beside the YAML rules,
// judged by Cedar's own engine, with real clients (curl, fetch). A forbid wins over a YAML allow, a
// permit admits what no YAML allow rule did but never a grant the agent does not hold, the path is
// the one the upstream reads, the hash is on every line and changes on reload, a broken file is
// refused at reload with the old policy kept, and a canary secret never shows anywhere.
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fetch as undiciFetch, ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canaryLeaks, curl } from '../helpers/clients.ts';
import { CANARY } from '../helpers/fixtures.ts';
import { cleanEnv, makeHome, startProxy, type TestProxy } from '../helpers/keyway.ts';
import { startUpstream, type TestUpstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const QUERY_CANARY = `${CANARY}-in-a-query`;

const POLICY = `// policies for claude
@id("no-admin")
forbid (principal, action == Action::"request", resource)
when { context.path_lower like "/admin*" };

@id("no-delete")
forbid (principal == Agent::"claude", action, resource == Grant::"github")
when { context.method == "DELETE" };

@id("issues-by-post")
permit (principal == Agent::"claude", action == Action::"request", resource == Grant::"github")
when { context.method == "POST" && context.path like "/issues/*" };

// Names another grant: a permit can never hand the agent a grant it does not hold.
@id("personal-too")
permit (principal == Agent::"claude", action, resource == Grant::"personal");

@id("no-token-in-query")
forbid (principal, action, resource) when { context.query_keys.contains("token") };

// An entity name with quotes and unicode matches no agent of the config, and breaks nothing.
@id("quoted \\"é\\" name")
forbid (principal == Agent::"claude\\" || true || \\"\\u{e9}", action, resource);
`;

function writePolicy(home: string, name: string, text: string): string {
  mkdirSync(join(home, 'policies'), { recursive: true, mode: 0o700 });
  const file = join(home, 'policies', name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

describe('Cedar policies through the proxy', () => {
  let upstream: TestUpstream;
  let proxy: TestProxy;
  let dispatcher: ProxyAgent;
  const outputs: string[] = [];

  const grant = (id: string, domains: string[]) => ({ id, type: 'bearer' as const, domains, secret: `${CANARY}-${id}` });

  beforeAll(async () => {
    upstream = await startUpstream();
    const home = makeHome();
    writePolicy(home, 'main.cedar', POLICY);
    proxy = await startProxy({
      home,
      grants: [grant('github', ['api.example.test']), grant('personal', ['other.example.test'])],
      env: { CLAUDE_KEY: 'claude-key' },
      config: { agents: { claude: { key: 'env:CLAUDE_KEY', grants: ['github'], rules: [{ grant: 'github', methods: ['GET'] }] } } },
    });
    dispatcher = new ProxyAgent({ uri: `http://claude:claude-key@127.0.0.1:${proxy.port}`, requestTls: { ca: readFileSync(proxy.caPath, 'utf8') } });
  });
  afterAll(async () => {
    await dispatcher?.close();
    const leaks = proxy ? canaryLeaks(proxy, ...outputs) : [];
    for (const secret of [QUERY_CANARY]) {
      for (const text of [...outputs, ...(proxy?.logs ?? []), readFileSync(proxy.auditPath, 'utf8')])
        expect(text.includes(secret), 'the query canary').toBe(false);
    }
    await proxy?.stop();
    await upstream?.close();
    expect(leaks).toEqual([]);
  });

  const url = (path: string, host = 'api.example.test') => `https://${host}:${upstream.port}${path}`;

  /** curl as the agent; --path-as-is: the path goes out exactly as written. */
  async function viaCurl(target: TestProxy, method: string, path: string, host?: string) {
    const r = await curl(
      [
        '--path-as-is',
        '-X',
        method,
        '-x',
        `http://claude:claude-key@127.0.0.1:${target.port}`,
        '--cacert',
        target.bundlePath,
        '-w',
        '\n%{http_code}',
        url(path, host),
      ],
      cleanEnv(),
    );
    outputs.push(r.stdout, r.stderr);
    const lines = r.stdout.split('\n');
    const status = Number(lines.pop());
    const body = lines.join('\n');
    const error = body.startsWith('{"error"') ? (JSON.parse(body).error as Record<string, string>) : undefined;
    return { status, error };
  }

  async function viaFetch(method: string, path: string) {
    const res = await undiciFetch(url(path), { method, dispatcher, body: method === 'POST' ? 'x' : undefined });
    const text = await res.text();
    outputs.push(text);
    return { status: res.status, error: text.startsWith('{"error"') ? (JSON.parse(text).error as Record<string, string>) : undefined };
  }

  const lineOf = (target: TestProxy, path: string) =>
    waitFor(() => target.auditLines().findLast((l) => l['path'] === path && l['phase'] === undefined), `the line of ${path}`);

  it('a Cedar forbid wins over a YAML allow rule, and rule_denied names its @id (curl and fetch)', async () => {
    expect((await viaCurl(proxy, 'GET', '/repos/a')).status).toBe(200);
    for (const refused of [await viaCurl(proxy, 'GET', '/admin/users'), await viaFetch('GET', '/admin')]) {
      expect(refused.status).toBe(403);
      expect(refused.error?.['code']).toBe('rule_denied');
      expect(refused.error?.['message']).toContain('no-admin');
    }
    const line = await lineOf(proxy, '/admin');
    expect(line).toMatchObject({ decision: 'deny', code: 'rule_denied', rule: 'no-admin', agent: 'claude', grant: 'github' });
    expect(upstream.seen.some((s) => s.url.startsWith('/admin'))).toBe(false);
  });

  it('judges the path the upstream reads: dot segments, doubled slashes and case do not get past the forbid', async () => {
    for (const path of ['/a/%2e%2e/admin', '/a/../admin/x', '//admin', '/ADMIN', '/Admin/x']) {
      const refused = await viaCurl(proxy, 'GET', path);
      expect(refused.status, path).toBe(403);
      expect(refused.error?.['code'], path).toBe('rule_denied');
    }
    expect(upstream.seen.some((s) => /admin/i.test(s.url))).toBe(false);
  });

  it('a Cedar permit admits what no YAML allow rule did, and a forbid still refuses', async () => {
    expect((await viaFetch('POST', '/issues/1')).status).toBe(200);
    const line = await lineOf(proxy, '/issues/1');
    expect(line).toMatchObject({ decision: 'inject', rule: 'issues-by-post' });
    // No permit from either side: the YAML rule that did not allow it is named.
    const refused = await viaFetch('POST', '/repos/a');
    expect(refused.status).toBe(403);
    expect(refused.error?.['code']).toBe('policy_denied');
    expect(refused.error?.['message']).toContain('agents.claude.rules[0]');
    // Refused by both (YAML allows only GET, Cedar forbids DELETE): the forbid names itself.
    const deleted = await viaCurl(proxy, 'DELETE', '/repos/a');
    expect(deleted.error?.['code']).toBe('rule_denied');
    expect(deleted.error?.['message']).toContain('no-delete');
  });

  it('a Cedar permit never hands the agent a grant it does not hold', async () => {
    const refused = await viaCurl(proxy, 'GET', '/mine', 'other.example.test');
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect(refused.error?.['code']).not.toBe(undefined);
    expect(upstream.seen.some((s) => s.url === '/mine')).toBe(false);
  });

  it('reads the query keys, never their values', async () => {
    const refused = await viaCurl(proxy, 'GET', `/repos/a?token=${QUERY_CANARY}`);
    expect(refused.error?.['code']).toBe('rule_denied');
    expect(refused.error?.['message']).toContain('no-token-in-query');
  });

  it('puts the hash on every line, changes it on reload, and refuses a reload with a broken file, keeping the old policy', async () => {
    const loads = () => proxy.auditLines().filter((l) => l['action'] === 'policy.load');
    const first = loads()[0]!;
    expect(first['files']).toBe(join(proxy.home, 'policies', 'main.cedar'));
    for (const l of proxy.auditLines()) expect(l['policy'], JSON.stringify(l)).toBe(first['policy']);

    // A broken file: the reload is refused naming FILE:LINE:COLUMN, and the forbid still holds.
    writePolicy(proxy.home, 'zz-broken.cedar', 'permit (principal, action, resource)\nwhen { context.path like };\n');
    const broken = await proxy.running.reload();
    expect(broken).toMatchObject({ reloaded: false, error: { code: 'config_invalid' } });
    expect(broken.reloaded === false && broken.error.message).toContain(`${join(proxy.home, 'policies', 'zz-broken.cedar')}:2:26`);
    expect((await viaCurl(proxy, 'GET', '/admin/after-broken')).error?.['code']).toBe('rule_denied');
    expect((await lineOf(proxy, '/admin/after-broken'))?.['policy']).toBe(first['policy']);

    // Fixed: one more forbid, a new hash, a policy.load line naming it, and lines that carry it.
    writePolicy(proxy.home, 'zz-broken.cedar', '@id("no-gists") forbid (principal, action, resource) when { context.path like "/gists*" };\n');
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    expect(loads()).toHaveLength(2);
    const second = loads()[1]!;
    expect(second['policy']).not.toBe(first['policy']);
    expect(second['files']).toBe(`${join(proxy.home, 'policies', 'main.cedar')},${join(proxy.home, 'policies', 'zz-broken.cedar')}`);
    expect((await viaCurl(proxy, 'GET', '/gists/1')).error?.['code']).toBe('rule_denied');
    expect((await lineOf(proxy, '/gists/1'))?.['policy']).toBe(second['policy']);
    // A reload that changes nothing writes no policy.load line.
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    expect(loads()).toHaveLength(2);

    // A file others may write is refused like a broken one.
    chmodSync(join(proxy.home, 'policies', 'zz-broken.cedar'), 0o666);
    const writable = await proxy.running.reload();
    expect(writable.reloaded === false && writable.error.message).toMatch(/zz-broken\.cedar is refused: the file is writable by every user/);
    expect((await viaCurl(proxy, 'GET', '/gists/2')).error?.['code']).toBe('rule_denied');
    chmodSync(join(proxy.home, 'policies', 'zz-broken.cedar'), 0o600);

    // The last Cedar files gone: that change is a policy.load line too, and the forbids with them.
    rmSync(join(proxy.home, 'policies'), { recursive: true });
    expect(await proxy.running.reload()).toMatchObject({ reloaded: true });
    expect(loads()).toHaveLength(3);
    expect(loads()[2]).toMatchObject({ files: '' });
    expect((await viaCurl(proxy, 'GET', '/gists/3')).status).toBe(200);
    expect((await lineOf(proxy, '/gists/3'))?.['policy']).toBe(loads()[2]!['policy']);

    // The real CLI's verify: every hash on the log was loaded.
    const verified = await proxy.cli(['audit', 'verify']);
    outputs.push(verified.stdout, verified.stderr);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  it('refuses to start on a policy file other users may write', async () => {
    const home = makeHome();
    const file = writePolicy(home, 'open.cedar', '@id("x") forbid (principal, action, resource);\n');
    chmodSync(file, 0o646);
    await expect(startProxy({ home, config: {} })).rejects.toThrow(/open\.cedar is refused: the file is writable by every user/);
  });
});
